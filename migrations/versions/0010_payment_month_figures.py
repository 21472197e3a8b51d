"""payment month figures

Revision ID: 0010
Revises: 0009
payment_month_figures: per month and method, the sums of the figures the month's payments store as of
its end (payments.recon_*) and the counts the reconciliation shows, so that a month's per-method
figures are a few rows instead of a GROUP BY over every payment of the month. From here on
billing.services.settlement keeps them at each commit; here they are filled from the payments as
they stand (a payment that came in: succeeded, partially refunded, refunded or returned).

Create Date: 2026-12-06 20:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

COUNTS = ('payment_count', 'refund_count', 'unsettled_count', 'differing_count', 'fee_mismatch_count')
SUMS = ('received_cents', 'refunded_cents', 'settled_cents', 'in_transit_cents', 'fee_cents', 'expected_fee_cents')


def upgrade():
    op.create_table('payment_month_figures',
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('method', sa.Enum('card', 'money_order', 'carecredit', name='payment_method', native_enum=False, create_constraint=True), nullable=False),
    *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
    *(sa.Column(name, sa.BigInteger(), nullable=False) for name in SUMS),
    sa.PrimaryKeyConstraint('month', 'method', name=op.f('pk_payment_month_figures'))
    )
    op.execute(month_figures_fill(op.get_bind().dialect.name))


def month_figures_fill(dialect: str) -> str:
    """The payments as they stand, summed into payment_month_figures (frozen: the GROUP BY of
    billing.services.settlement.month_figures_query at this revision)."""
    month = ("CAST(date_trunc('month', received_date) AS date)" if dialect == "postgresql"
             else "date(received_date, 'start of month')")
    return f"""
        INSERT INTO payment_month_figures (month, method, payment_count, received_cents, refund_count,
            refunded_cents, settled_cents, in_transit_cents, fee_cents, expected_fee_cents, unsettled_count,
            differing_count, fee_mismatch_count)
        SELECT {month}, method, count(*), sum(amount_cents), sum(recon_refund_count), sum(recon_refunded_cents),
               sum(recon_settled_cents), sum(recon_in_transit_cents), sum(recon_fee_cents),
               sum(recon_expected_fee_cents),
               sum(CASE WHEN recon_in_transit_cents != 0 THEN 1 ELSE 0 END),
               sum(CASE WHEN amount_cents - recon_refunded_cents - recon_settled_cents - recon_in_transit_cents != 0
                        THEN 1 ELSE 0 END),
               sum(CASE WHEN method = 'carecredit' AND recon_fee_cents != recon_expected_fee_cents THEN 1 ELSE 0 END)
        FROM payments
        WHERE status IN ('succeeded', 'partially_refunded', 'refunded', 'returned')
        GROUP BY {month}, method
    """


def downgrade():
    op.drop_table('payment_month_figures')
