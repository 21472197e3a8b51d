"""stripe

Revision ID: 0004
Revises: 0003
Card payments through Stripe: card details of a payment, every webhook event once, refunds asked
of Stripe, disputes, payouts with their balance transactions, the Stripe refund id on refunds and
the Disputed card payments account.

Create Date: 2026-11-25 17:41:02.134712

"""
from alembic import op
import sqlalchemy as sa

from append_only import create_append_only_triggers, drop_append_only_triggers


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('stripe_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=80), nullable=False),
    sa.Column('object_id', sa.String(length=64), nullable=False),
    sa.Column('stripe_created_at', sa.DateTime(), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.Column('outcome', sa.String(length=200), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stripe_events')),
    sa.UniqueConstraint('event_id', name=op.f('uq_stripe_events_event_id'))
    )
    with op.batch_alter_table('stripe_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stripe_events_type'), ['type'], unique=False)

    op.create_table('stripe_payouts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('payout_id', sa.String(length=64), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('fee_cents', sa.BigInteger(), nullable=False),
    sa.Column('arrival_date', sa.Date(), nullable=False),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.Column('posted', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stripe_payouts')),
    sa.UniqueConstraint('payout_id', name=op.f('uq_stripe_payouts_payout_id'))
    )
    with op.batch_alter_table('stripe_payouts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stripe_payouts_arrival_date'), ['arrival_date'], unique=False)

    op.create_table('card_details',
    sa.Column('payment_id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=64), nullable=False),
    sa.Column('payment_intent_id', sa.String(length=64), nullable=True),
    sa.Column('charge_id', sa.String(length=64), nullable=True),
    sa.Column('invoice_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.Enum('desk', 'link', 'portal', name='card_channel', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('brand', sa.String(length=20), nullable=False),
    sa.Column('last4', sa.String(length=4), nullable=False),
    sa.Column('failure_message', sa.String(length=300), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_card_details_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_card_details_payment_id_payments')),
    sa.PrimaryKeyConstraint('payment_id', name=op.f('pk_card_details')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_card_details_idempotency_key')),
    sa.UniqueConstraint('payment_intent_id', name=op.f('uq_card_details_payment_intent_id'))
    )
    with op.batch_alter_table('card_details', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_card_details_charge_id'), ['charge_id'], unique=False)

    op.create_table('disputes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dispute_id', sa.String(length=64), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=60), nullable=False),
    sa.Column('stripe_status', sa.String(length=40), nullable=False),
    sa.Column('opened_on', sa.Date(), nullable=False),
    sa.Column('closed_on', sa.Date(), nullable=True),
    sa.Column('outcome', sa.Enum('won', 'lost', name='dispute_outcome', native_enum=False, create_constraint=True), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('amount_cents > 0', name=op.f('ck_disputes_amount_positive')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_disputes_payment_id_payments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_disputes')),
    sa.UniqueConstraint('dispute_id', name=op.f('uq_disputes_dispute_id'))
    )
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_disputes_payment_id'), ['payment_id'], unique=False)

    op.create_table('stripe_balance_transactions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('transaction_id', sa.String(length=64), nullable=False),
    sa.Column('payout_id', sa.Integer(), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=True),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('reporting_category', sa.String(length=40), nullable=False),
    sa.Column('source_id', sa.String(length=64), nullable=False),
    sa.Column('charge_id', sa.String(length=64), nullable=False),
    sa.Column('payment_intent_id', sa.String(length=64), nullable=False),
    sa.Column('gross_cents', sa.BigInteger(), nullable=False),
    sa.Column('fee_cents', sa.BigInteger(), nullable=False),
    sa.Column('net_cents', sa.BigInteger(), nullable=False),
    sa.Column('available_on', sa.Date(), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_stripe_balance_transactions_payment_id_payments')),
    sa.ForeignKeyConstraint(['payout_id'], ['stripe_payouts.id'], name=op.f('fk_stripe_balance_transactions_payout_id_stripe_payouts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stripe_balance_transactions')),
    sa.UniqueConstraint('transaction_id', name=op.f('uq_stripe_balance_transactions_transaction_id'))
    )
    with op.batch_alter_table('stripe_balance_transactions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stripe_balance_transactions_payment_id'), ['payment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_stripe_balance_transactions_payout_id'), ['payout_id'], unique=False)

    op.create_table('card_refund_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('idempotency_key', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Enum('pending', 'succeeded', 'failed', name='card_refund_status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('stripe_refund_id', sa.String(length=64), nullable=True),
    sa.Column('failure_message', sa.String(length=300), nullable=False),
    sa.Column('refund_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('amount_cents > 0', name=op.f('ck_card_refund_requests_amount_positive')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_card_refund_requests_created_by_id_users')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_card_refund_requests_payment_id_payments')),
    sa.ForeignKeyConstraint(['refund_id'], ['refunds.id'], name=op.f('fk_card_refund_requests_refund_id_refunds')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_card_refund_requests')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_card_refund_requests_idempotency_key')),
    sa.UniqueConstraint('stripe_refund_id', name=op.f('uq_card_refund_requests_stripe_refund_id'))
    )
    with op.batch_alter_table('card_refund_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_card_refund_requests_payment_id'), ['payment_id'], unique=False)

    op.add_column('refunds', sa.Column('stripe_refund_id', sa.String(length=64), nullable=True))
    op.create_index(op.f('ix_refunds_stripe_refund_id'), 'refunds', ['stripe_refund_id'], unique=True)

    create_append_only_triggers('stripe_events', allow_update=True)
    create_append_only_triggers('stripe_balance_transactions')
    accounts = sa.table('accounts', sa.column('code', sa.String), sa.column('name', sa.String),
                        sa.column('type', sa.String))
    op.bulk_insert(accounts, [{'code': '1040', 'name': 'Disputed card payments', 'type': 'asset'}])


def downgrade():
    op.execute("DELETE FROM accounts WHERE code = '1040'")
    drop_append_only_triggers('stripe_balance_transactions')
    drop_append_only_triggers('stripe_events')
    op.drop_index(op.f('ix_refunds_stripe_refund_id'), table_name='refunds')
    drop_append_only_triggers('refunds')  # SQLite drops a column by copying the table
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_column('stripe_refund_id')
    create_append_only_triggers('refunds')

    with op.batch_alter_table('card_refund_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_card_refund_requests_payment_id'))

    op.drop_table('card_refund_requests')
    with op.batch_alter_table('stripe_balance_transactions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stripe_balance_transactions_payout_id'))
        batch_op.drop_index(batch_op.f('ix_stripe_balance_transactions_payment_id'))

    op.drop_table('stripe_balance_transactions')
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_disputes_payment_id'))

    op.drop_table('disputes')
    with op.batch_alter_table('card_details', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_card_details_charge_id'))

    op.drop_table('card_details')
    with op.batch_alter_table('stripe_payouts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stripe_payouts_arrival_date'))

    op.drop_table('stripe_payouts')
    with op.batch_alter_table('stripe_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stripe_events_type'))

    op.drop_table('stripe_events')
