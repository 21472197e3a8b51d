"""books

Revision ID: 0006
Revises: 0005
The bookkeeper's records: daily closes, money-order deposit batches, CareCredit fundings with their
lines, imported bank statements and their lines (with confirmed matches), and the accounts' names
in Beancount and QuickBooks for exports.
Create Date: 2026-11-25 18:25:13.138770

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('bank_statements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('file_format', sa.String(length=10), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('account_ref', sa.String(length=40), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=True),
    sa.Column('period_end', sa.Date(), nullable=True),
    sa.Column('ledger_balance_cents', sa.BigInteger(), nullable=True),
    sa.Column('imported_at', sa.DateTime(), nullable=False),
    sa.Column('imported_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['imported_by_id'], ['users.id'], name=op.f('fk_bank_statements_imported_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bank_statements')),
    sa.UniqueConstraint('sha256', name=op.f('uq_bank_statements_sha256'))
    )
    op.create_table('carecredit_fundings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=40), nullable=False),
    sa.Column('funded_on', sa.Date(), nullable=False),
    sa.Column('gross_cents', sa.BigInteger(), nullable=False),
    sa.Column('fee_cents', sa.BigInteger(), nullable=False),
    sa.Column('net_cents', sa.BigInteger(), nullable=False),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_carecredit_fundings_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_carecredit_fundings')),
    sa.UniqueConstraint('reference', name=op.f('uq_carecredit_fundings_reference'))
    )
    with op.batch_alter_table('carecredit_fundings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_carecredit_fundings_funded_on'), ['funded_on'], unique=False)

    op.create_table('daily_closes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('expected_cents', sa.BigInteger(), nullable=False),
    sa.Column('counted_cents', sa.BigInteger(), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('closed_at', sa.DateTime(), nullable=False),
    sa.Column('closed_by_id', sa.Integer(), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(), nullable=True),
    sa.Column('reviewed_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['closed_by_id'], ['users.id'], name=op.f('fk_daily_closes_closed_by_id_users')),
    sa.ForeignKeyConstraint(['reviewed_by_id'], ['users.id'], name=op.f('fk_daily_closes_reviewed_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_daily_closes')),
    sa.UniqueConstraint('day', name=op.f('uq_daily_closes_day'))
    )
    op.create_table('deposit_batches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('status', sa.Enum('open', 'deposited', 'cancelled', name='deposit_status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('total_cents', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('deposited_on', sa.Date(), nullable=True),
    sa.Column('bank_reference', sa.String(length=60), nullable=False),
    sa.Column('deposited_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_deposit_batches_created_by_id_users')),
    sa.ForeignKeyConstraint(['deposited_by_id'], ['users.id'], name=op.f('fk_deposit_batches_deposited_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deposit_batches')),
    sa.UniqueConstraint('number', name=op.f('uq_deposit_batches_number'))
    )
    op.create_table('bank_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('statement_id', sa.Integer(), nullable=False),
    sa.Column('account_ref', sa.String(length=40), nullable=False),
    sa.Column('fitid', sa.String(length=80), nullable=False),
    sa.Column('posted_on', sa.Date(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('description', sa.String(length=300), nullable=False),
    sa.Column('match_kind', sa.Enum('stripe_payout', 'deposit_batch', 'carecredit_funding', name='bank_match_kind', native_enum=False, create_constraint=True), nullable=True),
    sa.Column('match_id', sa.Integer(), nullable=True),
    sa.Column('matched_at', sa.DateTime(), nullable=True),
    sa.Column('matched_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['matched_by_id'], ['users.id'], name=op.f('fk_bank_lines_matched_by_id_users')),
    sa.ForeignKeyConstraint(['statement_id'], ['bank_statements.id'], name=op.f('fk_bank_lines_statement_id_bank_statements')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bank_lines')),
    sa.UniqueConstraint('account_ref', 'fitid', name='uq_bank_lines_account_fitid')
    )
    with op.batch_alter_table('bank_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bank_lines_posted_on'), ['posted_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_bank_lines_statement_id'), ['statement_id'], unique=False)

    op.create_table('carecredit_funding_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('funding_id', sa.Integer(), nullable=False),
    sa.Column('authorization_code', sa.String(length=20), nullable=False),
    sa.Column('transaction_date', sa.Date(), nullable=True),
    sa.Column('promo_code', sa.String(length=20), nullable=False),
    sa.Column('gross_cents', sa.BigInteger(), nullable=False),
    sa.Column('fee_cents', sa.BigInteger(), nullable=False),
    sa.Column('net_cents', sa.BigInteger(), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['funding_id'], ['carecredit_fundings.id'], name=op.f('fk_carecredit_funding_lines_funding_id_carecredit_fundings')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_carecredit_funding_lines_payment_id_payments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_carecredit_funding_lines')),
    sa.UniqueConstraint('payment_id', name=op.f('uq_carecredit_funding_lines_payment_id'))
    )
    with op.batch_alter_table('carecredit_funding_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_carecredit_funding_lines_authorization_code'), ['authorization_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_carecredit_funding_lines_funding_id'), ['funding_id'], unique=False)

    op.create_table('deposit_batch_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['deposit_batches.id'], name=op.f('fk_deposit_batch_items_batch_id_deposit_batches')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_deposit_batch_items_payment_id_payments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deposit_batch_items')),
    sa.UniqueConstraint('payment_id', name=op.f('uq_deposit_batch_items_payment_id'))
    )
    with op.batch_alter_table('deposit_batch_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deposit_batch_items_batch_id'), ['batch_id'], unique=False)

    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('beancount_name', sa.String(length=120), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('quickbooks_name', sa.String(length=120), nullable=False, server_default=''))



def downgrade():
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('quickbooks_name')
        batch_op.drop_column('beancount_name')

    with op.batch_alter_table('deposit_batch_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deposit_batch_items_batch_id'))

    op.drop_table('deposit_batch_items')
    with op.batch_alter_table('carecredit_funding_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_carecredit_funding_lines_funding_id'))
        batch_op.drop_index(batch_op.f('ix_carecredit_funding_lines_authorization_code'))

    op.drop_table('carecredit_funding_lines')
    with op.batch_alter_table('bank_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bank_lines_statement_id'))
        batch_op.drop_index(batch_op.f('ix_bank_lines_posted_on'))

    op.drop_table('bank_lines')
    op.drop_table('deposit_batches')
    op.drop_table('daily_closes')
    with op.batch_alter_table('carecredit_fundings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_carecredit_fundings_funded_on'))

    op.drop_table('carecredit_fundings')
    op.drop_table('bank_statements')
