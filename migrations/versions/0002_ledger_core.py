"""ledger core

Revision ID: 0002
Revises: 0001
The ledger: patients, fee schedule, providers, CareCredit plans, charges, packages, invoices,
payments with their method details, allocations, refunds, adjustments, the journal with its
chart of accounts, accounting periods, counters and one-time form tokens.

Create Date: 2026-11-25 15:09:17.605395

"""
from alembic import op
import sqlalchemy as sa

from append_only import create_append_only_triggers, drop_append_only_triggers

# Rows that record money events are never changed or deleted; payments, invoices and
# charges change status, so only DELETE is refused there.
APPEND_ONLY = ['journal_entries', 'journal_lines', 'allocations', 'refunds', 'adjustments', 'invoice_lines']
NO_DELETE = ['payments', 'invoices', 'charges', 'money_order_details', 'carecredit_details', 'package_purchases']

CHART = [
    ('1000', 'Bank', 'asset'),
    ('1010', 'Undeposited funds', 'asset'),
    ('1020', 'Stripe clearing', 'asset'),
    ('1030', 'CareCredit receivable', 'asset'),
    ('1100', 'Patient receivables', 'asset'),
    ('2100', 'Patient credits', 'liability'),
    ('4010', 'Revenue: visits and consultations', 'income'),
    ('4020', 'Revenue: infusions', 'income'),
    ('4030', 'Revenue: drugs', 'income'),
    ('4040', 'Revenue: packages', 'income'),
    ('4090', 'Revenue: other', 'income'),
    ('4900', 'Refunds', 'income'),
    ('4910', 'Discounts and write-offs', 'income'),
    ('6100', 'Merchant fees', 'expense'),
    ('6110', 'Financing fees', 'expense'),
]


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=10), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('type', sa.Enum('asset', 'liability', 'income', 'expense', name='account_type', native_enum=False, create_constraint=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('code', name=op.f('uq_accounts_code'))
    )
    op.create_table('carecredit_plans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('months', sa.Integer(), nullable=False),
    sa.Column('merchant_fee_bps', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_carecredit_plans')),
    sa.UniqueConstraint('name', name=op.f('uq_carecredit_plans_name'))
    )
    op.create_table('counters',
    sa.Column('key', sa.String(length=40), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_counters'))
    )
    op.create_table('form_submissions',
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('result_url', sa.String(length=300), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('token', name=op.f('pk_form_submissions'))
    )
    op.create_table('patients',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_number', sa.String(length=20), nullable=False),
    sa.Column('first_name', sa.String(length=80), nullable=False),
    sa.Column('last_name', sa.String(length=80), nullable=False),
    sa.Column('search_name', sa.String(length=161), nullable=False),
    sa.Column('date_of_birth', sa.Date(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('phone', sa.String(length=30), nullable=False),
    sa.Column('address_line1', sa.String(length=200), nullable=False),
    sa.Column('address_line2', sa.String(length=200), nullable=False),
    sa.Column('city', sa.String(length=100), nullable=False),
    sa.Column('state', sa.String(length=2), nullable=False),
    sa.Column('postal_code', sa.String(length=10), nullable=False),
    sa.Column('archived', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patients')),
    sa.UniqueConstraint('account_number', name=op.f('uq_patients_account_number'))
    )
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patients_date_of_birth'), ['date_of_birth'], unique=False)
        batch_op.create_index('ix_patients_search_name', ['search_name'], unique=False, postgresql_ops={'search_name': 'text_pattern_ops'})

    op.create_table('providers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('credentials', sa.String(length=40), nullable=False),
    sa.Column('npi', sa.String(length=10), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_providers'))
    )
    op.create_table('services',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('cpt_code', sa.String(length=10), nullable=False),
    sa.Column('category', sa.Enum('visit', 'infusion', 'drug', 'package', 'other', name='service_category', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('default_price_cents', sa.BigInteger(), nullable=False),
    sa.Column('unit', sa.String(length=20), nullable=False),
    sa.Column('ndc', sa.String(length=20), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_services')),
    sa.UniqueConstraint('code', name=op.f('uq_services_code'))
    )
    op.create_table('accounting_periods',
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('status', sa.Enum('open', 'closed', name='period_status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('changed_at', sa.DateTime(), nullable=False),
    sa.Column('changed_by_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(['changed_by_id'], ['users.id'], name=op.f('fk_accounting_periods_changed_by_id_users')),
    sa.PrimaryKeyConstraint('month', name=op.f('pk_accounting_periods'))
    )
    op.create_table('invoices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=30), nullable=True),
    sa.Column('status', sa.Enum('draft', 'open', 'paid', 'void', name='invoice_status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('issue_date', sa.Date(), nullable=True),
    sa.Column('issued_at', sa.DateTime(), nullable=True),
    sa.Column('issued_by_id', sa.Integer(), nullable=True),
    sa.Column('total_cents', sa.BigInteger(), nullable=False),
    sa.Column('void_reason', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['issued_by_id'], ['users.id'], name=op.f('fk_invoices_issued_by_id_users')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_invoices_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoices')),
    sa.UniqueConstraint('number', name=op.f('uq_invoices_number'))
    )
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_index('ix_invoices_patient_status', ['patient_id', 'status'], unique=False)

    op.create_table('journal_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entry_date', sa.Date(), nullable=False),
    sa.Column('posted_at', sa.DateTime(), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('source_type', sa.String(length=40), nullable=False),
    sa.Column('source_id', sa.String(length=40), nullable=False),
    sa.Column('reverses_id', sa.Integer(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_journal_entries_created_by_id_users')),
    sa.ForeignKeyConstraint(['reverses_id'], ['journal_entries.id'], name=op.f('fk_journal_entries_reverses_id_journal_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journal_entries'))
    )
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_journal_entries_entry_date'), ['entry_date'], unique=False)
        batch_op.create_index('ix_journal_entries_source', ['source_type', 'source_id'], unique=False)

    op.create_table('packages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('units', sa.Integer(), nullable=False),
    sa.Column('price_cents', sa.BigInteger(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], name=op.f('fk_packages_service_id_services')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_packages')),
    sa.UniqueConstraint('code', name=op.f('uq_packages_code'))
    )
    op.create_table('payments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('method', sa.Enum('card', 'money_order', 'carecredit', name='payment_method', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('status', sa.Enum('pending', 'succeeded', 'failed', 'refunded', 'partially_refunded', 'returned', name='payment_status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('received_date', sa.Date(), nullable=False),
    sa.Column('received_by_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('amount_cents > 0', name=op.f('ck_payments_amount_positive')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_payments_patient_id_patients')),
    sa.ForeignKeyConstraint(['received_by_id'], ['users.id'], name=op.f('fk_payments_received_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payments'))
    )
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payments_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payments_received_date'), ['received_date'], unique=False)

    op.create_table('adjustments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('courtesy', 'write_off', name='adjustment_kind', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('adjustment_date', sa.Date(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('amount_cents > 0', name=op.f('ck_adjustments_amount_positive')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_adjustments_created_by_id_users')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_adjustments_invoice_id_invoices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_adjustments'))
    )
    with op.batch_alter_table('adjustments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_adjustments_invoice_id'), ['invoice_id'], unique=False)

    op.create_table('allocations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=True),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('reverses_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('amount_cents <> 0', name=op.f('ck_allocations_nonzero')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_allocations_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_allocations_patient_id_patients')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_allocations_payment_id_payments')),
    sa.ForeignKeyConstraint(['reverses_id'], ['allocations.id'], name=op.f('fk_allocations_reverses_id_allocations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_allocations'))
    )
    with op.batch_alter_table('allocations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_allocations_invoice_id'), ['invoice_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_allocations_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_allocations_payment_id'), ['payment_id'], unique=False)

    op.create_table('carecredit_details',
    sa.Column('payment_id', sa.Integer(), nullable=False),
    sa.Column('authorization_code', sa.String(length=20), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('merchant_fee_bps', sa.Integer(), nullable=False),
    sa.Column('account_last4', sa.String(length=4), nullable=False),
    sa.Column('id_checked', sa.Boolean(), nullable=False),
    sa.Column('receipt_signed', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_carecredit_details_payment_id_payments')),
    sa.ForeignKeyConstraint(['plan_id'], ['carecredit_plans.id'], name=op.f('fk_carecredit_details_plan_id_carecredit_plans')),
    sa.PrimaryKeyConstraint('payment_id', name=op.f('pk_carecredit_details'))
    )
    with op.batch_alter_table('carecredit_details', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_carecredit_details_authorization_code'), ['authorization_code'], unique=False)

    op.create_table('journal_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=True),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('amount_cents <> 0', name=op.f('ck_journal_lines_nonzero')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_journal_lines_account_id_accounts')),
    sa.ForeignKeyConstraint(['entry_id'], ['journal_entries.id'], name=op.f('fk_journal_lines_entry_id_journal_entries')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_journal_lines_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journal_lines'))
    )
    with op.batch_alter_table('journal_lines', schema=None) as batch_op:
        batch_op.create_index('ix_journal_lines_account_patient', ['account_id', 'patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_journal_lines_entry_id'), ['entry_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_journal_lines_patient_id'), ['patient_id'], unique=False)

    op.create_table('money_order_details',
    sa.Column('payment_id', sa.Integer(), nullable=False),
    sa.Column('issuer', sa.Enum('usps', 'western_union', 'moneygram', 'bank', 'other', name='money_order_issuer', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('serial', sa.String(length=30), nullable=False),
    sa.Column('purchaser', sa.String(length=120), nullable=False),
    sa.Column('id_seen', sa.Boolean(), nullable=False),
    sa.Column('signed_in_front_of_staff', sa.Boolean(), nullable=False),
    sa.Column('security_features_checked', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_money_order_details_payment_id_payments')),
    sa.PrimaryKeyConstraint('payment_id', name=op.f('pk_money_order_details')),
    sa.UniqueConstraint('issuer', 'serial', name='uq_money_order_details_issuer_serial')
    )
    op.create_table('package_purchases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('package_id', sa.Integer(), nullable=False),
    sa.Column('charge_id', sa.Integer(), nullable=False),
    sa.Column('units_bought', sa.Integer(), nullable=False),
    sa.Column('units_refunded', sa.Integer(), nullable=False),
    sa.Column('price_cents', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['package_id'], ['packages.id'], name=op.f('fk_package_purchases_package_id_packages')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_package_purchases_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_package_purchases'))
    )
    with op.batch_alter_table('package_purchases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_package_purchases_patient_id'), ['patient_id'], unique=False)

    op.create_table('refunds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('refund', 'return', name='refund_kind', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('refund_date', sa.Date(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('check_number', sa.String(length=20), nullable=False),
    sa.Column('return_reference', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('amount_cents > 0', name=op.f('ck_refunds_amount_positive')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_refunds_created_by_id_users')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_refunds_payment_id_payments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refunds'))
    )
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refunds_payment_id'), ['payment_id'], unique=False)

    op.create_table('charges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=True),
    sa.Column('date_of_service', sa.Date(), nullable=False),
    sa.Column('units', sa.Integer(), nullable=False),
    sa.Column('unit_price_cents', sa.BigInteger(), nullable=False),
    sa.Column('price_reason', sa.String(length=200), nullable=False),
    sa.Column('discount_cents', sa.BigInteger(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('icd10_codes', sa.String(length=100), nullable=False),
    sa.Column('infusion_start', sa.DateTime(), nullable=True),
    sa.Column('infusion_stop', sa.DateTime(), nullable=True),
    sa.Column('package_id', sa.Integer(), nullable=True),
    sa.Column('package_purchase_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.Enum('open', 'invoiced', 'void', name='charge_status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=True),
    sa.Column('void_reason', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('unit_price_cents >= 0 AND discount_cents >= 0 AND amount_cents >= 0', name=op.f('ck_charges_amounts_not_negative')),
    sa.CheckConstraint('units > 0', name=op.f('ck_charges_units_positive')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_charges_created_by_id_users')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_charges_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['package_id'], ['packages.id'], name=op.f('fk_charges_package_id_packages')),
    sa.ForeignKeyConstraint(['package_purchase_id'], ['package_purchases.id'], name=op.f('fk_charges_package_purchase_id_package_purchases')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_charges_patient_id_patients')),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_charges_provider_id_providers')),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], name=op.f('fk_charges_service_id_services')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_charges'))
    )
    with op.batch_alter_table('charges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_charges_invoice_id'), ['invoice_id'], unique=False)
        batch_op.create_index('ix_charges_patient_status', ['patient_id', 'status'], unique=False)

    op.create_table('invoice_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('charge_id', sa.Integer(), nullable=False),
    sa.Column('date_of_service', sa.Date(), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('code', sa.String(length=10), nullable=False),
    sa.Column('units', sa.Integer(), nullable=False),
    sa.Column('unit_price_cents', sa.BigInteger(), nullable=False),
    sa.Column('discount_cents', sa.BigInteger(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['charge_id'], ['charges.id'], name=op.f('fk_invoice_lines_charge_id_charges')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_invoice_lines_invoice_id_invoices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice_lines'))
    )
    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoice_lines_invoice_id'), ['invoice_id'], unique=False)
    # charges and package_purchases refer to each other: the second key is added last.
    with op.batch_alter_table('package_purchases', schema=None) as batch_op:
        batch_op.create_foreign_key(op.f('fk_package_purchases_charge_id_charges'), 'charges', ['charge_id'], ['id'])

    accounts = sa.table('accounts', sa.column('code'), sa.column('name'), sa.column('type'))
    op.bulk_insert(accounts, [dict(code=c, name=n, type=t) for c, n, t in CHART])
    for table in APPEND_ONLY:
        create_append_only_triggers(table)
    for table in NO_DELETE:
        create_append_only_triggers(table, allow_update=True)


def downgrade():
    for table in APPEND_ONLY + NO_DELETE:
        drop_append_only_triggers(table)
    with op.batch_alter_table('package_purchases', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('fk_package_purchases_charge_id_charges'), type_='foreignkey')
    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoice_lines_invoice_id'))

    op.drop_table('invoice_lines')
    with op.batch_alter_table('charges', schema=None) as batch_op:
        batch_op.drop_index('ix_charges_patient_status')
        batch_op.drop_index(batch_op.f('ix_charges_invoice_id'))

    op.drop_table('charges')
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refunds_payment_id'))

    op.drop_table('refunds')
    with op.batch_alter_table('package_purchases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_package_purchases_patient_id'))

    op.drop_table('package_purchases')
    op.drop_table('money_order_details')
    with op.batch_alter_table('journal_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_journal_lines_patient_id'))
        batch_op.drop_index(batch_op.f('ix_journal_lines_entry_id'))
        batch_op.drop_index('ix_journal_lines_account_patient')

    op.drop_table('journal_lines')
    with op.batch_alter_table('carecredit_details', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_carecredit_details_authorization_code'))

    op.drop_table('carecredit_details')
    with op.batch_alter_table('allocations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_allocations_payment_id'))
        batch_op.drop_index(batch_op.f('ix_allocations_patient_id'))
        batch_op.drop_index(batch_op.f('ix_allocations_invoice_id'))

    op.drop_table('allocations')
    with op.batch_alter_table('adjustments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_adjustments_invoice_id'))

    op.drop_table('adjustments')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payments_received_date'))
        batch_op.drop_index(batch_op.f('ix_payments_patient_id'))

    op.drop_table('payments')
    op.drop_table('packages')
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_journal_entries_source')
        batch_op.drop_index(batch_op.f('ix_journal_entries_entry_date'))

    op.drop_table('journal_entries')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index('ix_invoices_patient_status')

    op.drop_table('invoices')
    op.drop_table('accounting_periods')
    op.drop_table('services')
    op.drop_table('providers')
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_index('ix_patients_search_name', postgresql_ops={'search_name': 'text_pattern_ops'})
        batch_op.drop_index(batch_op.f('ix_patients_date_of_birth'))

    op.drop_table('patients')
    op.drop_table('form_submissions')
    op.drop_table('counters')
    op.drop_table('carecredit_plans')
    op.drop_table('accounts')
