"""Concurrent requests on PostgreSQL: gap-free invoice numbers and payments that never over-apply.

Each thread works in its own app context (its own session and connection) and commits for
real, against `live_app`'s own database.
"""

import os
import threading
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from billing.extensions import db
from billing.models import (
    Allocation, BankLine, Charge, ChargeStatus, Invoice, InvoiceStatus, JournalEntry, JournalLine, Patient, Payment,
    PaymentMethod, PaymentMonthFigures, PaymentStatus, Service, ServiceCategory,
)
from billing.money import Money
from billing.services import ServiceError, balances, bank, journal, settlement
from billing.services import charges as charge_service
from billing.services import invoices as invoice_service
from billing.services import patients as patient_service
from billing.services import payments as payment_service
from tests.services.conftest import TODAY, money_order

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="row locks and concurrent transactions need PostgreSQL",
)


def run_at_once(app: Flask, n: int, work: Callable[[int], object]) -> list[object]:
    """Run work(0..n-1) in n threads released together; each commits its own transaction."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n
    errors: list[BaseException] = []

    def thread(i: int) -> None:
        try:
            with app.app_context():
                barrier.wait(timeout=30)
                results[i] = work(i)
                db.session.commit()
        except BaseException as err:  # reported below, in the test's thread
            errors.append(err)

    threads = [threading.Thread(target=thread, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread is stuck"
    assert errors == [], errors
    return results


@pytest.fixture(scope="module")
def infusion_id(live_app) -> int:
    with live_app.app_context():
        service = Service(code="KET-INF", name="Ketamine infusion, first hour", cpt_code="96365",
                          category=ServiceCategory.INFUSION, default_price_cents=45000)
        db.session.add(service)
        db.session.commit()
        return service.id


def patients_with_a_charge(app: Flask, infusion_id: int, n: int, last_name: str) -> list[int]:
    with app.app_context():
        service = db.session.get(Service, infusion_id)
        ids = []
        for i in range(n):
            patient = patient_service.create_patient(
                {"first_name": f"Pat{i}", "last_name": last_name, "date_of_birth": date(1980, 1, 1)}, today=TODAY)
            charge_service.post_charge(patient, charge_service.ChargeInput(service=service, date_of_service=TODAY),
                                       today=TODAY)
            ids.append(patient.id)
        db.session.commit()
        return ids


def test_twenty_invoices_issued_at_once_get_consecutive_numbers(live_app, infusion_id):
    for round_number, today in enumerate((date(2031, 1, 2), date(2031, 1, 3))):  # a new counter, then an old one
        ids = patients_with_a_charge(live_app, infusion_id, 20, f"Numbered{round_number}")

        def issue(i: int, ids=ids, today=today) -> str:
            patient = db.session.get(Patient, ids[i])
            return invoice_service.issue_invoice(patient, today=today).number

        numbers = run_at_once(live_app, 20, issue)

        first = round_number * 20 + 1
        assert sorted(numbers) == [f"INV-2031-{n:06d}" for n in range(first, first + 20)]
        with live_app.app_context():
            for patient_id, number in zip(ids, numbers, strict=True):
                invoice = db.session.scalar(sa.select(Invoice).where(Invoice.number == number))
                assert invoice.patient_id == patient_id
                assert invoice.total_cents == 45000
                [line] = invoice.lines
                charge = db.session.get(Charge, line.charge_id)
                assert (charge.patient_id, charge.status, charge.invoice_id) == (
                    patient_id, ChargeStatus.INVOICED, invoice.id)


@pytest.mark.parametrize("dollars", ["450.00", "100.00", "45.01"])
def test_ten_money_orders_at_once_never_pay_an_invoice_twice(live_app, infusion_id, dollars):
    [patient_id] = patients_with_a_charge(live_app, infusion_id, 1, f"Crowded{dollars}")
    with live_app.app_context():
        invoice_id = invoice_service.issue_invoice(db.session.get(Patient, patient_id), today=TODAY).id
        db.session.commit()
    amount = Money.parse(dollars)

    def pay(i: int) -> int:
        patient = db.session.get(Patient, patient_id)
        return payment_service.record_money_order(
            patient, amount, money_order(purchaser=f"Buyer {i}"), received_date=TODAY, today=TODAY,
            confirm_overpayment=True).id

    payment_ids = run_at_once(live_app, 10, pay)

    with live_app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        allocations = db.session.scalars(sa.select(Allocation).where(Allocation.invoice_id == invoice_id)).all()
        assert all(a.amount_cents > 0 and a.payment_id in payment_ids for a in allocations)
        assert balances.invoice_paid(invoice_id) == Money(45000)
        assert invoice.status == InvoiceStatus.PAID
        assert balances.invoice_balance(invoice) == Money.zero()
        assert balances.patient_credit(patient_id) == amount * 10 - Money(45000)
        assert balances.patient_receivable(patient_id) == Money.zero()
        assert balances.patient_summary(db.session.get(Patient, patient_id)).balance == Money(45000) - amount * 10
        statuses = db.session.scalars(sa.select(Payment.status).where(Payment.id.in_(payment_ids))).all()
        assert statuses == [PaymentStatus.SUCCEEDED] * 10
        held = db.session.scalar(
            sa.select(sa.func.sum(JournalLine.amount_cents)).join(JournalEntry)
            .where(JournalLine.account_id == journal.account_id(journal.UNDEPOSITED),
                   JournalEntry.source_type == "Payment", JournalEntry.source_id.in_([str(i) for i in payment_ids])))
        assert held == (amount * 10).cents
        unbalanced = db.session.scalars(sa.select(JournalLine.entry_id).group_by(JournalLine.entry_id)
                                        .having(sa.func.sum(JournalLine.amount_cents) != 0)).all()
        assert unbalanced == []
        assert db.session.scalar(sa.select(sa.func.sum(JournalLine.amount_cents))) == 0


def test_the_same_money_order_taken_at_two_desks_at_once_is_recorded_once(live_app, infusion_id):
    ids = patients_with_a_charge(live_app, infusion_id, 5, "SameSerial")

    def pay(i: int):
        patient = db.session.get(Patient, ids[i])
        try:
            return payment_service.record_money_order(
                patient, Money(10000), money_order(serial="555000111"), received_date=TODAY, today=TODAY,
                confirm_overpayment=True).id
        except ServiceError as err:
            db.session.rollback()
            return err

    results = run_at_once(live_app, 5, pay)

    recorded = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, ServiceError)]
    assert len(recorded) == 1 and len(refused) == 4, results
    assert all(err.field == "serial" and f"(payment #{recorded[0]})" in err.message for err in refused)
    with live_app.app_context():
        count = db.session.scalar(sa.select(sa.func.count()).select_from(Payment).where(Payment.patient_id.in_(ids)))
        assert count == 1


def test_ten_patients_paying_at_once_all_count_in_the_month_figures(live_app, infusion_id):
    """Ten commits add to the same payment_month_figures row at once (no patient lock between them):
    each waits for the one before it, none is lost."""
    ids = patients_with_a_charge(live_app, infusion_id, 10, "MonthFigures")
    key = (TODAY.replace(day=1), PaymentMethod.MONEY_ORDER)

    def counted() -> tuple[int, int]:
        row = db.session.get(PaymentMonthFigures, key)
        return (row.payment_count, row.received_cents) if row is not None else (0, 0)

    with live_app.app_context():
        before = counted()

    def pay(i: int) -> int:
        return payment_service.record_money_order(db.session.get(Patient, ids[i]), Money(12500 + i),
                                                  money_order(purchaser=f"Buyer {i}"), received_date=TODAY,
                                                  today=TODAY, confirm_overpayment=True).id

    run_at_once(live_app, 10, pay)
    with live_app.app_context():
        assert counted() == (before[0] + 10, before[1] + sum(12500 + i for i in range(10)))
        assert settlement.month_figures_drift() == []


def test_a_payment_and_a_void_of_the_same_invoice_at_once(live_app, infusion_id):
    """Whichever goes first, the money ends up as credit and nothing is left applied to the void invoice."""
    ids = patients_with_a_charge(live_app, infusion_id, 6, "PayAndVoid")
    with live_app.app_context():
        invoice_ids = []
        for patient_id in ids:  # each invoice partly paid: the void has money to move
            patient = db.session.get(Patient, patient_id)
            invoice_ids.append(invoice_service.issue_invoice(patient, today=TODAY).id)
            payment_service.record_money_order(patient, Money(10000), money_order(), received_date=TODAY, today=TODAY)
        db.session.commit()

    def work(k: int):
        patient_id, invoice_id = ids[k // 2], invoice_ids[k // 2]
        if k % 2:
            invoice_service.void_invoice(db.session.get(Invoice, invoice_id), "Duplicate", today=TODAY)
        else:
            payment_service.record_money_order(db.session.get(Patient, patient_id), Money(45000), money_order(),
                                               received_date=TODAY, today=TODAY, confirm_overpayment=True)

    run_at_once(live_app, 2 * len(ids), work)

    with live_app.app_context():
        for patient_id, invoice_id in zip(ids, invoice_ids, strict=True):
            assert db.session.get(Invoice, invoice_id).status == InvoiceStatus.VOID
            assert balances.invoice_paid(invoice_id) == Money.zero()
            assert balances.patient_credit(patient_id) == Money(55000)
            summary = balances.patient_summary(db.session.get(Patient, patient_id))
            assert (summary.uninvoiced, summary.balance) == (Money(45000), -Money(10000))
        assert db.session.scalar(sa.select(sa.func.sum(JournalLine.amount_cents))) == 0


def test_a_posting_checked_before_its_month_closed_is_refused_by_the_database(live_app, infusion_id):
    """The services check the month first; if the bookkeeper closes it between that check and the
    insert, the database refuses the entry (migration 0007), so nothing lands in a closed month."""
    from billing.services import periods

    february = date(2026, 2, 10)
    [patient_id] = patients_with_a_charge(live_app, infusion_id, 1, "LateForFebruary")
    checked, closed = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def post() -> None:
        with live_app.app_context():
            journal.ensure_period_open(february)  # open: the month is remembered for this transaction
            checked.set()
            closed.wait(timeout=30)
            try:
                journal.post(february, "Late February entry", db.session.get(Patient, patient_id), [
                    (journal.BANK, Money(100), None), (journal.RECEIVABLES, Money(-100), patient_id)])
                db.session.commit()
                outcome["post"] = "committed"
            except sa.exc.DBAPIError as err:
                db.session.rollback()
                outcome["post"] = str(err.orig)

    def close() -> None:
        checked.wait(timeout=30)
        with live_app.app_context():
            periods.close_month(february, today=TODAY, override_reason="Closing February in the race test")
            db.session.commit()
        closed.set()

    threads = [threading.Thread(target=post), threading.Thread(target=close)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert "cannot be dated in a closed month" in str(outcome["post"])
    with live_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(JournalEntry)
                                 .where(JournalEntry.description == "Late February entry")) == 0


def test_the_months_ofx_and_csv_imported_at_once_store_its_lines_once(live_app, monkeypatch):
    """Each import reads what the account holds, then waits up to 2 s for the other before writing.
    Under the account's lock the second one reads only once the first has committed, and finds every
    line there; without it both would find none and store the month twice."""
    waiting = threading.Barrier(2)
    read_rows = bank._new_rows

    def read_then_wait(*args, **kwargs):
        rows = read_rows(*args, **kwargs)
        try:
            waiting.wait(timeout=2)
        except threading.BrokenBarrierError:  # the other one is waiting for the lock
            pass
        return rows

    monkeypatch.setattr(bank, "_new_rows", read_then_wait)
    files = [SAMPLES / "bank_statement.ofx", SAMPLES / "bank_statement.csv"]

    def upload(i: int):
        try:
            return bank.import_statement(files[i].name, files[i].read_bytes(), account_last4="9377").added
        except ServiceError as err:
            db.session.rollback()
            return err

    results = run_at_once(live_app, 2, upload)
    assert sorted(results, key=lambda r: isinstance(r, ServiceError))[0] == 15
    [refused] = [r for r in results if isinstance(r, ServiceError)]
    assert refused.message.startswith("All 15 lines of this file were already imported")
    with live_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(BankLine)
                                 .where(BankLine.account_ref == "****9377")) == 15
