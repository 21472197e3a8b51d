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

    for statement in settlement_backfill(op.get_bind().dialect.name):
        op.execute(statement)

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


RECEIVED = "('succeeded', 'partially_refunded', 'refunded', 'returned')"


def settlement_backfill(dialect: str) -> list[str]:
    """SQL filling each payment's month-end figures and cleared_on from the rows as they stand: the
    definition of billing.services.settlement.per_payment as of this revision, frozen here. Each
    received payment is computed twice — as of the last day of its month (the recon_* columns) and as
    of the end of time (cleared_on: the latest day anything moved it once its clearing weight is
    zero); a payment that did not come in holds nothing and is cleared on its own date. Runs before
    deposit_batch_items has released_on: every item is live."""
    postgresql = dialect == "postgresql"
    month_end = ("CAST(date_trunc('month', p.received_date) + interval '1 month' - interval '1 day' AS date)"
                 if postgresql else "date(p.received_date, 'start of month', '+1 month', '-1 day')")
    far = "DATE '9999-12-31'" if postgresql else "'9999-12-31'"
    latest = "greatest" if postgresql else "max"
    bt = ("FROM stripe_balance_transactions t JOIN stripe_payouts o ON o.id = t.payout_id "
          "WHERE t.payment_id = e.id AND o.arrival_date <= e.d")
    line = ("FROM carecredit_funding_lines l JOIN carecredit_fundings f ON f.id = l.funding_id "
            "WHERE l.payment_id = e.id AND f.funded_on <= e.d")
    refunds = "FROM refunds r WHERE r.payment_id = e.id AND r.refund_date <= e.d"
    deposit = ("FROM deposit_batch_items i JOIN deposit_batches b ON b.id = i.batch_id "
               "WHERE i.payment_id = e.id AND b.status = 'deposited' AND b.deposited_on <= e.d")
    figures = f"""
        WITH ends AS (
            SELECT p.id, p.method, p.status, p.amount_cents AS amount, p.received_date AS received,
                   {month_end} AS d, 1 AS month_row
            FROM payments p WHERE p.status IN {RECEIVED}
            UNION ALL
            SELECT p.id, p.method, p.status, p.amount_cents, p.received_date, {far}, 0
            FROM payments p WHERE p.status IN {RECEIVED}
        ), lookups AS (
            SELECT e.id, e.method, e.amount, e.month_row,
                CASE WHEN e.status <> 'succeeded' THEN (SELECT coalesce(sum(r.amount_cents), 0) {refunds}) ELSE 0 END
                    AS refunded,
                CASE WHEN e.status <> 'succeeded' THEN (SELECT count(*) {refunds}) ELSE 0 END AS refund_count,
                CASE WHEN e.method = 'money_order' AND e.status = 'returned'
                     THEN (SELECT coalesce(sum(r.amount_cents), 0) {refunds} AND r.kind = 'return') ELSE 0 END
                    AS returned,
                CASE WHEN e.method = 'card' THEN (SELECT count(*) {bt} AND t.reporting_category = 'charge') ELSE 0 END
                    AS charges_paid,
                CASE WHEN e.method = 'card' THEN (SELECT coalesce(sum(t.gross_cents), 0) {bt}
                     AND t.reporting_category NOT IN ('fee', 'network_cost')) ELSE 0 END AS stripe_gross,
                CASE WHEN e.method = 'card' THEN (SELECT coalesce(sum(t.fee_cents), 0) {bt}
                     AND t.reporting_category NOT IN ('fee', 'network_cost')) ELSE 0 END AS stripe_fee,
                CASE WHEN e.method = 'card' AND e.status <> 'succeeded' THEN (SELECT coalesce(sum(-t.gross_cents), 0)
                     {bt} AND t.reporting_category = 'refund') ELSE 0 END AS refunds_paid,
                CASE WHEN e.method = 'card' THEN (SELECT coalesce(sum(
                         CASE WHEN x.opened_on <= e.d THEN x.amount_cents ELSE 0 END
                         - CASE WHEN x.closed_on <= e.d AND x.outcome = 'won' THEN x.amount_cents ELSE 0 END), 0)
                     FROM disputes x WHERE x.payment_id = e.id) ELSE 0 END AS disputed,
                CASE WHEN e.method = 'carecredit' THEN (SELECT count(*) {line}) ELSE 0 END AS funded_lines,
                CASE WHEN e.method = 'carecredit' THEN (SELECT coalesce(sum(l.gross_cents), 0) {line}) ELSE 0 END
                    AS funded_gross,
                CASE WHEN e.method = 'carecredit' THEN (SELECT coalesce(sum(l.fee_cents), 0) {line}) ELSE 0 END
                    AS funded_fee,
                (SELECT c.merchant_fee_bps FROM carecredit_details c WHERE c.payment_id = e.id) AS fee_bps,
                CASE WHEN e.method = 'money_order' THEN (SELECT count(*) {deposit}) ELSE 0 END AS deposited,
                {latest}(e.received,
                    coalesce((SELECT max(r.refund_date) {refunds}), e.received),
                    coalesce((SELECT max(o.arrival_date) {bt}), e.received),
                    coalesce((SELECT max(f.funded_on) {line}), e.received),
                    coalesce((SELECT max(b.deposited_on) {deposit}), e.received),
                    coalesce((SELECT max(x.opened_on) FROM disputes x WHERE x.payment_id = e.id), e.received),
                    coalesce((SELECT max(x.closed_on) FROM disputes x WHERE x.payment_id = e.id), e.received))
                    AS last_moved
            FROM ends e
        ), figures AS (
            SELECT id, month_row, refunded, refund_count, last_moved,
                CASE method WHEN 'card' THEN stripe_gross
                     WHEN 'money_order' THEN CASE WHEN deposited > 0 THEN amount - returned ELSE 0 END
                                             - (refunded - returned)
                     ELSE funded_gross END AS settled,
                CASE method WHEN 'card' THEN CASE WHEN charges_paid > 0 THEN 0 ELSE amount END
                                             - (refunded - refunds_paid)
                     WHEN 'money_order' THEN CASE WHEN deposited > 0 OR returned > 0 THEN 0 ELSE amount END
                     ELSE CASE WHEN funded_lines > 0 THEN 0 ELSE amount - refunded END END AS in_transit,
                CASE method WHEN 'card' THEN stripe_fee ELSE funded_fee END AS fees,
                CASE WHEN funded_lines > 0 THEN (amount * fee_bps + 5000) / 10000 ELSE 0 END AS expected_fee,
                CASE method WHEN 'card' THEN amount - refunded - stripe_gross - disputed
                     WHEN 'money_order' THEN CASE WHEN deposited > 0 OR returned > 0 THEN 0 ELSE amount END
                     ELSE amount - refunded - funded_gross END AS clearing
            FROM lookups
        ), both_ends AS (
            SELECT m.id, m.refunded, m.refund_count, m.settled, m.in_transit, m.fees, m.expected_fee, m.clearing,
                   CASE WHEN a.clearing = 0 THEN a.last_moved END AS cleared_on
            FROM figures m JOIN figures a ON a.id = m.id AND a.month_row = 0
            WHERE m.month_row = 1
        )"""
    return [
        f"""{figures}
        UPDATE payments SET recon_refunded_cents = x.refunded, recon_refund_count = x.refund_count,
            recon_settled_cents = x.settled, recon_in_transit_cents = x.in_transit, recon_fee_cents = x.fees,
            recon_expected_fee_cents = x.expected_fee, recon_clearing_cents = x.clearing, cleared_on = x.cleared_on
        FROM both_ends x WHERE payments.id = x.id""",
        f"UPDATE payments SET cleared_on = received_date WHERE status NOT IN {RECEIVED}",
    ]


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
