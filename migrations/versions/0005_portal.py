"""portal

Revision ID: 0005
Revises: 0004
The patient portal: portal accounts (the email sign-in links go to, revocable), single-use sign-in
tokens and signed document links (both stored as SHA-256 only), and statements or superbills
patients asked for that wait in the front desk's queue.

Create Date: 2026-11-25 17:49:12.780843

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('document_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('receipt', 'invoice', name='document_link_kind', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_document_links_created_by_id_users')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_document_links_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_document_links')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_document_links_token_sha256'))
    )
    with op.batch_alter_table('document_links', schema=None) as batch_op:
        batch_op.create_index('ix_document_links_document', ['kind', 'document_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_document_links_patient_id'), ['patient_id'], unique=False)

    op.create_table('document_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('statement', 'superbill', name='document_request_kind', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('status', sa.Enum('open', 'done', name='document_request_status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('handled_at', sa.DateTime(), nullable=True),
    sa.Column('handled_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['handled_by_id'], ['users.id'], name=op.f('fk_document_requests_handled_by_id_users')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_document_requests_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_document_requests'))
    )
    with op.batch_alter_table('document_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_document_requests_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index('ix_document_requests_status', ['status', 'created_at'], unique=False)

    op.create_table('portal_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('invited_at', sa.DateTime(), nullable=False),
    sa.Column('invited_by_id', sa.Integer(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_by_id', sa.Integer(), nullable=True),
    sa.Column('last_sign_in_at', sa.DateTime(), nullable=True),
    sa.Column('session_epoch', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['invited_by_id'], ['users.id'], name=op.f('fk_portal_accounts_invited_by_id_users')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_portal_accounts_patient_id_patients')),
    sa.ForeignKeyConstraint(['revoked_by_id'], ['users.id'], name=op.f('fk_portal_accounts_revoked_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_portal_accounts')),
    sa.UniqueConstraint('email', name=op.f('uq_portal_accounts_email')),
    sa.UniqueConstraint('patient_id', name=op.f('uq_portal_accounts_patient_id'))
    )
    op.create_table('portal_sign_in_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.Column('requested_ip', sa.String(length=45), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['portal_accounts.id'], name=op.f('fk_portal_sign_in_tokens_account_id_portal_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_portal_sign_in_tokens')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_portal_sign_in_tokens_token_sha256'))
    )
    with op.batch_alter_table('portal_sign_in_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_portal_sign_in_tokens_account_id'), ['account_id'], unique=False)



def downgrade():
    with op.batch_alter_table('portal_sign_in_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_portal_sign_in_tokens_account_id'))

    op.drop_table('portal_sign_in_tokens')
    op.drop_table('portal_accounts')
    with op.batch_alter_table('document_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_document_requests_status')
        batch_op.drop_index(batch_op.f('ix_document_requests_patient_id'))

    op.drop_table('document_requests')
    with op.batch_alter_table('document_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_document_links_patient_id'))
        batch_op.drop_index('ix_document_links_document')

    op.drop_table('document_links')
