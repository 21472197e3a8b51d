"""reconciliation indexes

Revision ID: 0009
Revises: 0008
The reconciliation's clearing accounts find the payments still in a clearing account at a month's
end by two indexes: earlier months' payments not cleared by then by (cleared_on, received_date, id),
read without the table, and the month's own by received_date among those its end left in a clearing
account, by method in date order (a partial index on recon_clearing_cents != 0). The month's refunds
of earlier months' payments are found by refund_date.

Create Date: 2026-12-06 14:45:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

IN_CLEARING = sa.text('recon_clearing_cents != 0')


def upgrade():
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index('ix_payments_cleared_on')
        batch_op.create_index('ix_payments_cleared_on', ['cleared_on', 'received_date', 'id'], unique=False)
        batch_op.create_index('ix_payments_in_clearing', ['method', 'received_date', 'id', 'recon_clearing_cents'],
                              unique=False, sqlite_where=IN_CLEARING, postgresql_where=IN_CLEARING)
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refunds_refund_date'), ['refund_date'], unique=False)


def downgrade():
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refunds_refund_date'))
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index('ix_payments_in_clearing')
        batch_op.drop_index('ix_payments_cleared_on')
        batch_op.create_index('ix_payments_cleared_on', ['cleared_on'], unique=False)
