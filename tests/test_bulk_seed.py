"""The bulk demo generator (billing.bulk_seed): its rows make consistent books, read by the app's own
balances and reports, and the app carries on normally after it (ids, account and invoice numbers)."""

import random
from datetime import date

import pytest
import sqlalchemy as sa

from billing import bulk_seed
from billing.demo import seed_catalog
from billing.extensions import db
from billing.models import (
    Allocation, CardDetails, CareCreditDetails, Charge, Invoice, InvoiceLine, InvoiceStatus, JournalEntry,
    JournalLine, MoneyOrderDetails, MoneyOrderIssuer, Patient, Payment, PaymentMethod,
)
from billing.money import Money
from billing.reports.revenue import method_totals
from billing.reports.trial_balance import totals, trial_balance
from billing.services import journal
from billing.services import patients as patient_service
from billing.services import payments as payment_service
from billing.services.balances import invoice_balance, patient_credit, patient_receivable
from billing.services.payments import MoneyOrderInput

TODAY = date(2026, 3, 16)
PATIENTS, MONTHS = 30, 4  # 240 payments, over two calendar years (Nov 2025 to Feb 2026)


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def cents(query) -> int:
    return int(db.session.scalar(query) or 0)


@pytest.fixture
def seeded(app):
    seed_catalog()
    db.session.commit()
    progress = []
    stats = bulk_seed.seed(random.Random(7), today=TODAY, patients=PATIENTS, months=MONTHS, progress=progress.append)
    db.session.commit()
    return stats, progress


def test_counts_and_progress(seeded):
    stats, progress = seeded
    payments = bulk_seed.expected_payments(PATIENTS, MONTHS)
    assert payments == 240 and sum(progress) == payments
    assert (count(Patient), count(Payment), count(Invoice), count(Allocation)) == (PATIENTS, payments, payments,
                                                                                 payments)
    assert (stats.patients, stats.payments, stats.invoices) == (PATIENTS, payments, payments)
    assert count(Charge) == count(InvoiceLine) == stats.charges >= payments
    assert count(JournalEntry) == stats.charges + payments == stats.journal_entries
    # every payment has the detail row of its method, and only that one
    by_method = dict(db.session.execute(sa.select(Payment.method, sa.func.count()).group_by(Payment.method)).all())
    assert set(by_method) == set(PaymentMethod)
    assert (count(CardDetails), count(MoneyOrderDetails), count(CareCreditDetails)) == (
        by_method[PaymentMethod.CARD], by_method[PaymentMethod.MONEY_ORDER], by_method[PaymentMethod.CARECREDIT])
    days = db.session.execute(sa.select(sa.func.min(Payment.received_date), sa.func.max(Payment.received_date))).one()
    assert days[0] >= date(2025, 11, 1) and days[1] <= TODAY


def test_every_entry_balances_and_the_trial_balance_ties(seeded):
    unbalanced = db.session.execute(
        sa.select(JournalLine.entry_id).group_by(JournalLine.entry_id)
        .having(sa.func.sum(JournalLine.amount_cents) != 0)).all()
    assert unbalanced == []
    assert count(JournalLine) >= 2 * count(JournalEntry)
    debits, credits = totals(trial_balance(TODAY))
    assert debits == credits and debits.is_positive


def test_receivables_are_the_open_invoices_balances(seeded):
    stats, _ = seeded
    open_invoices = db.session.scalars(sa.select(Invoice).where(Invoice.status == InvoiceStatus.OPEN)).all()
    assert len(open_invoices) == stats.open_invoices > 0
    open_total = sum((invoice_balance(i) for i in open_invoices), Money.zero())
    assert open_total.is_positive
    assert journal.balance(journal.RECEIVABLES) == open_total
    # an invoice marked paid owes nothing; per patient, the ledger agrees with the invoices
    paid = db.session.scalars(sa.select(Invoice).where(Invoice.status == InvoiceStatus.PAID)).all()
    assert paid and all(invoice_balance(i) == Money.zero() for i in paid)
    for patient_id in db.session.scalars(sa.select(Patient.id)):
        owed = sum((invoice_balance(i) for i in open_invoices if i.patient_id == patient_id), Money.zero())
        assert patient_receivable(patient_id) == owed


def test_money_lands_where_the_services_would_put_it(seeded):
    paid = {m: cents(sa.select(sa.func.sum(Payment.amount_cents)).where(Payment.method == m)) for m in PaymentMethod}
    assert journal.balance(journal.STRIPE_CLEARING) == Money(paid[PaymentMethod.CARD])
    assert journal.balance(journal.UNDEPOSITED) == Money(paid[PaymentMethod.MONEY_ORDER])
    assert journal.balance(journal.CARECREDIT_RECEIVABLE) == Money(paid[PaymentMethod.CARECREDIT])
    overpaid = (cents(sa.select(sa.func.sum(Payment.amount_cents)))
                - cents(sa.select(sa.func.sum(Allocation.amount_cents))))
    assert overpaid > 0
    assert journal.balance(journal.PATIENT_CREDITS) == -Money(overpaid)
    assert sum((patient_credit(p) for p in db.session.scalars(sa.select(Patient.id))), Money.zero()) == Money(overpaid)
    revenue = sum((journal.balance(code) for code in set(journal.REVENUE.values())), Money.zero())
    assert revenue == -Money(cents(sa.select(sa.func.sum(Charge.amount_cents))))
    # the bookkeeper's report reads the same totals
    report = {f.label: f.amount for f in method_totals(date(2025, 11, 1), TODAY)}
    assert report == {m.label: Money(paid[m]) for m in PaymentMethod}


def test_invoice_numbers_run_per_year_and_the_app_carries_on(seeded):
    numbers = db.session.scalars(sa.select(Invoice.number).order_by(Invoice.id)).all()
    in_2025 = [n for n in numbers if n.startswith("INV-2025-")]
    in_2026 = [n for n in numbers if n.startswith("INV-2026-")]
    assert len(in_2025) + len(in_2026) == len(numbers)
    assert in_2025 == [f"INV-2025-{i:06d}" for i in range(1, len(in_2025) + 1)]
    assert in_2026 == [f"INV-2026-{i:06d}" for i in range(1, len(in_2026) + 1)]
    # services after the bulk rows: the next account number, new ids from the sequences, a payment on an open invoice
    patient = patient_service.create_patient({"first_name": "Ada", "last_name": "After", "date_of_birth":
                                              date(1970, 1, 2)}, today=TODAY)
    assert patient.account_number == f"P{PATIENTS + 1:06d}"
    invoice = db.session.scalars(sa.select(Invoice).where(Invoice.status == InvoiceStatus.OPEN)
                                 .order_by(Invoice.id).limit(1)).one()
    due = invoice_balance(invoice)
    payment = payment_service.record_money_order(
        invoice.patient, due, MoneyOrderInput(MoneyOrderIssuer.USPS, "12345678901", "Ada After", True, True, True),
        received_date=TODAY, today=TODAY, apply_to=[(invoice.id, due)])
    db.session.commit()
    assert payment.id > count(Payment) - 1
    assert db.session.get(Invoice, invoice.id).status == InvoiceStatus.PAID
    assert db.session.execute(sa.select(sa.func.sum(JournalLine.amount_cents))).scalar() == 0


def test_refuses_a_clinic_with_patients_and_writes_nothing(seeded):
    before = (count(Patient), count(Payment), count(JournalLine))
    with pytest.raises(ValueError, match="without patients"):
        bulk_seed.seed(random.Random(7), today=TODAY, patients=5, months=1)
    assert (count(Patient), count(Payment), count(JournalLine)) == before


def test_same_seed_same_rows(app):
    """Two chunks built from the same seed are identical (the rows, before ids are offset)."""
    seed_catalog()
    db.session.flush()

    def chunk(seed):
        return bulk_seed._Clinic.load(random.Random(seed), TODAY, 2).rows_for(3)

    assert chunk(3) == chunk(3)
    assert chunk(3) != chunk(4)


def test_an_unbalanced_entry_is_refused(app):
    seed_catalog()
    db.session.flush()
    clinic = bulk_seed._Clinic.load(random.Random(1), TODAY, 1)
    clinic.tables = {t: [] for t in bulk_seed.ORDER}
    with pytest.raises(ValueError, match="Unbalanced"):
        clinic.post(TODAY, "Broken", "Charge", 1, [(1, None, 100), (2, None, -99)])
    assert clinic.tables["journal_entries"] == clinic.tables["journal_lines"] == []


def test_refuses_a_catalog_without_the_demo_services(app):
    with pytest.raises(ValueError, match="run seed_catalog first"):
        bulk_seed.seed(random.Random(1), today=TODAY, patients=2, months=1)
    assert count(Payment) == 0


def test_seed_demo_bulk_from_the_command_line(runner):
    result = runner.invoke(args=["billing", "seed-demo", "--bulk", "--patients", "4", "--months", "2"])

    assert result.exit_code == 0, result.output
    assert "Seeded 4 patients" in result.output and "16 payments over 2 months" in result.output
    assert (count(Patient), count(Payment)) == (4, 16)
    assert db.session.execute(sa.select(sa.func.sum(JournalLine.amount_cents))).scalar() == 0
