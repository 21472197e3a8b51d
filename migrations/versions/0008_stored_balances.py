"""stored balances

Revision ID: 0008
Revises: 0007
What the monthly reports read instead of all of history:
- account_month_totals: each account's debits and credits per month and per kind of source, kept
  by journal.post as entries are written (one upsert per transaction) and filled here from the
  journal as it stands;
- on payments, the payment's figures as of the last day of the month it was received in (what the
  monthly reconciliation sums), and cleared_on, the last day anything moved it once its clearing
  account holds nothing of it (NULL while it does), kept by services/settlement.py;
- deposit_batch_items.released_on: a money order taken out of an open batch stays listed in it,
  released (one live batch per money order, by a partial unique index);
- invoices.voided_on: the clinic day an invoice was voided, for aging as of an earlier date.

Create Date: 2026-12-06 07:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

RECON_COLUMNS = ("recon_refunded_cents", "recon_settled_cents", "recon_in_transit_cents", "recon_fee_cents",
                 "recon_expected_fee_cents", "recon_clearing_cents")


def upgrade():
    op.create_table('account_month_totals',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('source_type', sa.String(length=40), nullable=False),
    sa.Column('debit_cents', sa.BigInteger(), nullable=False),
    sa.Column('credit_cents', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_account_month_totals_account_id_accounts')),
    sa.PrimaryKeyConstraint('account_id', 'month', 'source_type', name=op.f('pk_account_month_totals'))
    )
    # The journal as it stands (month: the first day of the entry's month, on both databases).
    postgresql = op.get_bind().dialect.name == "postgresql"
    month = ("CAST(date_trunc('month', e.entry_date) AS date)" if postgresql
             else "date(e.entry_date, 'start of month')")
    op.execute(f"""
        INSERT INTO account_month_totals (account_id, month, source_type, debit_cents, credit_cents)
        SELECT l.account_id, {month}, e.source_type,
               coalesce(sum(CASE WHEN l.amount_cents > 0 THEN l.amount_cents END), 0),
               coalesce(sum(CASE WHEN l.amount_cents < 0 THEN -l.amount_cents END), 0)
        FROM journal_lines l JOIN journal_entries e ON e.id = l.entry_id
        GROUP BY l.account_id, {month}, e.source_type
    """)

    with op.batch_alter_table('payments', schema=None) as batch_op:
        for name in RECON_COLUMNS:
            batch_op.add_column(sa.Column(name, sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('recon_refund_count', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('cleared_on', sa.Date(), nullable=True))
        batch_op.create_index(batch_op.f('ix_payments_cleared_on'), ['cleared_on'], unique=False)

    with op.batch_alter_table('deposit_batch_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('released_on', sa.Date(), nullable=True))
        batch_op.drop_constraint('uq_deposit_batch_items_payment_id', type_='unique')
        batch_op.create_index('uq_deposit_batch_items_live_payment', ['payment_id'], unique=True,
                              sqlite_where=sa.text('released_on IS NULL'),
                              postgresql_where=sa.text('released_on IS NULL'))

    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('voided_on', sa.Date(), nullable=True))
    # Invoices voided before this revision: the day of their audit event (UTC; at most a day off).
    day = "CAST(min(a.occurred_at) AS date)" if postgresql else "date(min(a.occurred_at))"
    op.execute(f"""
        UPDATE invoices SET voided_on = (
            SELECT {day} FROM audit_events a
            WHERE a.action = 'invoice.void' AND a.entity_type = 'Invoice' AND a.entity_id = CAST(invoices.id AS varchar(64)))
        WHERE status = 'void'
    """)


def downgrade():
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_column('voided_on')

    with op.batch_alter_table('deposit_batch_items', schema=None) as batch_op:
        batch_op.drop_index('uq_deposit_batch_items_live_payment')
        batch_op.create_unique_constraint('uq_deposit_batch_items_payment_id', ['payment_id'])
        batch_op.drop_column('released_on')

    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payments_cleared_on'))
        batch_op.drop_column('cleared_on')
        batch_op.drop_column('recon_refund_count')
        for name in reversed(RECON_COLUMNS):
            batch_op.drop_column(name)

    op.drop_table('account_month_totals')
