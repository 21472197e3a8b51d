"""documents

Revision ID: 0003
Revises: 0002
Numbered receipts (one per payment or refund; rows are never deleted, only their first
rendering's SHA-256 is filled in), Good Faith Estimates with their lines, and the email outbox.

Create Date: 2026-11-25 16:19:39.166841

"""
from alembic import op
import sqlalchemy as sa

from append_only import create_append_only_triggers, drop_append_only_triggers


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('email_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('to_address', sa.String(length=254), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('body_text', sa.Text(), nullable=False),
    sa.Column('attachment_name', sa.String(length=120), nullable=True),
    sa.Column('attachment', sa.LargeBinary(), nullable=True),
    sa.Column('patient_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('status', sa.Enum('pending', 'sent', 'failed', name='outbox_status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_email_outbox_created_by_id_users')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_email_outbox_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_email_outbox'))
    )
    with op.batch_alter_table('email_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_email_outbox_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index('ix_email_outbox_status_next', ['status', 'next_attempt_at'], unique=False)

    op.create_table('good_faith_estimates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=30), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.Enum('draft', 'given', 'superseded', name='estimate_status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('icd10_codes', sa.String(length=100), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('total_cents', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('given_at', sa.DateTime(), nullable=True),
    sa.Column('given_how', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_good_faith_estimates_created_by_id_users')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_good_faith_estimates_patient_id_patients')),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_good_faith_estimates_provider_id_providers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_good_faith_estimates')),
    sa.UniqueConstraint('number', name=op.f('uq_good_faith_estimates_number'))
    )
    with op.batch_alter_table('good_faith_estimates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_good_faith_estimates_patient_id'), ['patient_id'], unique=False)

    op.create_table('estimate_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('estimate_id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=True),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('code', sa.String(length=10), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price_cents', sa.BigInteger(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['estimate_id'], ['good_faith_estimates.id'], name=op.f('fk_estimate_lines_estimate_id_good_faith_estimates')),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], name=op.f('fk_estimate_lines_service_id_services')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_estimate_lines'))
    )
    with op.batch_alter_table('estimate_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_estimate_lines_estimate_id'), ['estimate_id'], unique=False)

    op.create_table('receipts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=30), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=True),
    sa.Column('refund_id', sa.Integer(), nullable=True),
    sa.Column('issued_at', sa.DateTime(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.CheckConstraint('(payment_id IS NULL) <> (refund_id IS NULL)', name=op.f('ck_receipts_one_source')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_receipts_payment_id_payments')),
    sa.ForeignKeyConstraint(['refund_id'], ['refunds.id'], name=op.f('fk_receipts_refund_id_refunds')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_receipts')),
    sa.UniqueConstraint('number', name=op.f('uq_receipts_number')),
    sa.UniqueConstraint('payment_id', name=op.f('uq_receipts_payment_id')),
    sa.UniqueConstraint('refund_id', name=op.f('uq_receipts_refund_id'))
    )

    create_append_only_triggers('receipts', allow_update=True)
    create_append_only_triggers('estimate_lines')

def downgrade():
    drop_append_only_triggers('receipts')
    drop_append_only_triggers('estimate_lines')
    op.drop_table('receipts')
    with op.batch_alter_table('estimate_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_estimate_lines_estimate_id'))

    op.drop_table('estimate_lines')
    with op.batch_alter_table('good_faith_estimates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_good_faith_estimates_patient_id'))

    op.drop_table('good_faith_estimates')
    with op.batch_alter_table('email_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_email_outbox_status_next')
        batch_op.drop_index(batch_op.f('ix_email_outbox_patient_id'))

    op.drop_table('email_outbox')
