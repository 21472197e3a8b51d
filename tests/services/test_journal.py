"""The double-entry journal: balanced entries, reversals, balances, closed months, and rows that never change."""

from datetime import date

import pytest
import sqlalchemy as sa

from billing.extensions import db
from billing.models import (
    Account, AccountingPeriod, AuditEvent, JournalEntry, JournalLine, PeriodStatus, ServiceCategory,
)
from billing.money import Money
from billing.services import ServiceError, audit, journal
from billing.services import charges as charge_service
from billing.services import invoices as invoice_service
from billing.services import payments as payment_service
from tests.services.conftest import TODAY, close_month, ledger_snapshot, refused, unbalanced_entries

# What the append-only triggers say (the audit log's first wording is kept for older databases).
TRIGGER_MESSAGE = r"rows cannot be changed or deleted|is append-only"


def usd(text: str) -> Money:
    return Money.parse(text)


def lines_of(entry: JournalEntry) -> set[tuple[str, int, int | None]]:
    return {(line.account.code, line.amount_cents, line.patient_id) for line in entry.lines}


# --- the chart of accounts -------------------------------------------------------------------------


def test_every_code_the_services_post_to_is_in_the_chart(app):
    codes = set(db.session.scalars(sa.select(Account.code)))
    used = {journal.BANK, journal.UNDEPOSITED, journal.STRIPE_CLEARING, journal.CARECREDIT_RECEIVABLE,
            journal.RECEIVABLES, journal.PATIENT_CREDITS, journal.REFUNDS, journal.DISCOUNTS,
            journal.MERCHANT_FEES, journal.FINANCING_FEES, *journal.REVENUE.values()}
    assert used <= codes
    assert set(journal.REVENUE) == set(ServiceCategory)
    for code in used:
        assert db.session.get(Account, journal.account_id(code)).code == code


# --- post --------------------------------------------------------------------------------------


def test_post_writes_one_balanced_entry_for_its_source(make_patient):
    patient = make_patient()
    entry_id = journal.post(TODAY, "Opening balance", patient, [
        (journal.RECEIVABLES, usd("120.50"), patient.id),
        (journal.REVENUE[ServiceCategory.OTHER], -usd("120.50"), None),
    ])
    entry = db.session.get(JournalEntry, entry_id)

    assert (entry.entry_date, entry.description, entry.reverses_id) == (TODAY, "Opening balance", None)
    assert (entry.source_type, entry.source_id) == ("Patient", str(patient.id))
    assert lines_of(entry) == {("1100", 12050, patient.id), ("4090", -12050, None)}
    assert sum(line.amount_cents for line in entry.lines) == 0
    assert journal.entries_for(patient) == [entry]
    assert unbalanced_entries() == []


def test_post_drops_zero_lines(make_patient):
    patient = make_patient()
    entry = db.session.get(JournalEntry, journal.post(TODAY, "Payment", patient, [
        (journal.UNDEPOSITED, usd("50"), None),
        (journal.RECEIVABLES, -usd("50"), patient.id),
        (journal.PATIENT_CREDITS, Money.zero(), patient.id),
    ]))
    assert lines_of(entry) == {("1010", 5000, None), ("1100", -5000, patient.id)}


@pytest.mark.parametrize("lines", [
    [(journal.RECEIVABLES, Money(100), None), (journal.REVENUE[ServiceCategory.OTHER], Money(-99), None)],
    [(journal.RECEIVABLES, Money(100), None)],
    [],
    [(journal.RECEIVABLES, Money.zero(), None), (journal.BANK, Money.zero(), None)],
], ids=["off-by-a-cent", "one-sided", "no-lines", "only-zero-lines"])
def test_post_refuses_an_unbalanced_or_empty_entry(make_patient, lines):
    patient = make_patient()
    before = ledger_snapshot()
    with pytest.raises(ValueError):
        journal.post(TODAY, "Broken", patient, lines)
    assert ledger_snapshot() == before


def test_post_refuses_a_date_in_a_closed_month(make_patient):
    patient = make_patient()
    close_month(date(2026, 2, 1))
    with refused(match="February 2026 are closed"):
        journal.post(date(2026, 2, 28), "Late entry", patient, [
            (journal.BANK, usd("1"), None), (journal.REVENUE[ServiceCategory.OTHER], -usd("1"), None)])
    # The months either side are open; an explicitly open period is open too.
    db.session.add(AccountingPeriod(month=date(2026, 1, 1), status=PeriodStatus.OPEN))
    for day in (date(2026, 1, 31), date(2026, 3, 1)):
        journal.post(day, "Fine", patient, [
            (journal.BANK, usd("1"), None), (journal.REVENUE[ServiceCategory.OTHER], -usd("1"), None)])


def test_ensure_period_open(app):
    journal.ensure_period_open(TODAY)  # no period row: open
    close_month(TODAY)
    with pytest.raises(ServiceError, match="March 2026 are closed"):
        journal.ensure_period_open(date(2026, 3, 31))
    journal.ensure_period_open(date(2026, 4, 1))
    assert journal.month_of(date(2026, 3, 31)) == date(2026, 3, 1)


# --- reverse, entries_for, balance ------------------------------------------------------------------


def test_reverse_writes_the_mirror_image_pointing_at_the_original(make_patient, charge):
    patient = make_patient()
    posted = charge(patient, "infusion")
    [original] = journal.entries_for(posted)

    reversal = db.session.get(JournalEntry, journal.reverse(original, TODAY, "Posted to the wrong patient", posted))

    assert reversal.reverses_id == original.id
    assert lines_of(reversal) == {(code, -amount, pid) for code, amount, pid in lines_of(original)}
    assert journal.entries_for(posted) == [original, reversal]
    assert journal.balance(journal.RECEIVABLES, patient_id=patient.id) == Money.zero()
    assert unbalanced_entries() == []


def test_reverse_into_a_closed_month_is_refused(make_patient, charge):
    patient = make_patient()
    posted = charge(patient, "infusion", day=date(2026, 2, 10))
    close_month(date(2026, 2, 1))
    [original] = journal.entries_for(posted)
    with refused(match="closed"):
        journal.reverse(original, date(2026, 2, 27), "Too late", posted)
    journal.reverse(original, TODAY, "In the open month", posted)  # dated today: fine


def test_balance_per_patient_and_as_of(make_patient, charge):
    first, second = make_patient(), make_patient()
    charge(first, "infusion", day=date(2026, 3, 1))
    charge(first, "addl", day=date(2026, 3, 10))
    charge(second, "infusion", day=date(2026, 3, 5))

    assert journal.balance(journal.RECEIVABLES, patient_id=first.id) == usd("600")
    assert journal.balance(journal.RECEIVABLES, patient_id=second.id) == usd("450")
    assert journal.balance(journal.RECEIVABLES) == usd("1050")
    assert journal.balance(journal.REVENUE[ServiceCategory.INFUSION]) == -usd("1050")
    assert journal.balance(journal.RECEIVABLES, patient_id=first.id, as_of=date(2026, 3, 9)) == usd("450")
    assert journal.balance(journal.RECEIVABLES, as_of=date(2026, 2, 28)) == Money.zero()
    assert journal.balance(journal.BANK) == Money.zero()


def test_every_entry_of_a_busy_day_balances_and_the_books_sum_to_zero(
        make_patient, invoice_for, pay_mo, pay_cc, catalog):
    patient = make_patient()
    invoice = invoice_for(patient, "infusion", "addl")
    payment_service.adjust_invoice(invoice, payment_service.AdjustmentKind.COURTESY, usd("5"), "Kindness",
                                   today=TODAY)
    mo = pay_mo(patient, "700", confirm=True)
    pay_cc(patient, "100", confirm=True)
    payment_service.refund_payment(mo, usd("300"), "Overpaid", today=TODAY, check_number="5001")
    invoice_service.void_invoice(invoice, "Wrong patient", today=TODAY)

    assert unbalanced_entries() == []
    assert db.session.scalar(sa.select(sa.func.sum(JournalLine.amount_cents))) == 0
    # Each entry is balanced on its own, not just the sum of all of them.
    for entry in db.session.scalars(sa.select(JournalEntry)):
        assert sum(line.amount_cents for line in entry.lines) == 0, entry.description


# --- the journal and the audit log never change -------------------------------------------------------


def _first_id(model) -> int:
    return db.session.scalar(sa.select(sa.func.min(model.id)))


APPEND_ONLY = ["journal_entries", "journal_lines", "allocations", "refunds", "adjustments", "invoice_lines",
               "audit_events"]
NO_DELETE = ["payments", "invoices", "charges", "package_purchases"]


@pytest.fixture
def busy_ledger(make_patient, invoice_for, pay_mo, pay_cc, catalog):
    """One row in every money table."""
    patient = make_patient()
    invoice = invoice_for(patient)
    mo = pay_mo(patient, "500", confirm=True)
    pay_cc(patient, "10", confirm=True)
    payment_service.refund_payment(mo, usd("20"), "Overpaid", today=TODAY, check_number="5001")
    invoice_service.void_invoice(invoice, "Wrong service", today=TODAY)
    charge_service.sell_package(patient, catalog["package"], date_of_service=TODAY, today=TODAY)
    invoice = invoice_for(patient, "addl")
    payment_service.adjust_invoice(invoice, payment_service.AdjustmentKind.WRITE_OFF, usd("1"), "Small balance",
                                   today=TODAY)
    audit.record("test.event")
    db.session.flush()
    return patient


@pytest.mark.parametrize("table", APPEND_ONLY)
@pytest.mark.parametrize("verb", ["update", "delete"])
def test_database_refuses_to_change_append_only_rows(busy_ledger, table, verb):
    row_id = db.session.scalar(sa.text(f"SELECT min(id) FROM {table}"))
    assert row_id is not None
    before = ledger_snapshot()
    statement = (f"UPDATE {table} SET id = id WHERE id = :id" if verb == "update"
                 else f"DELETE FROM {table} WHERE id = :id")
    with pytest.raises(sa.exc.DBAPIError, match=TRIGGER_MESSAGE):
        with db.session.begin_nested():
            db.session.execute(sa.text(statement), {"id": row_id})
    assert ledger_snapshot() == before


@pytest.mark.parametrize("table", APPEND_ONLY + NO_DELETE)
def test_database_refuses_to_empty_a_table(busy_ledger, table):
    count = db.session.scalar(sa.text(f"SELECT count(*) FROM {table}"))
    with pytest.raises(sa.exc.DBAPIError, match=TRIGGER_MESSAGE):
        with db.session.begin_nested():
            db.session.execute(sa.text(f"DELETE FROM {table}"))
    assert db.session.scalar(sa.text(f"SELECT count(*) FROM {table}")) == count


def test_amounts_of_posted_lines_cannot_be_rewritten(busy_ledger):
    line_id = _first_id(JournalLine)
    amount = db.session.get(JournalLine, line_id).amount_cents
    with pytest.raises(sa.exc.DBAPIError, match=TRIGGER_MESSAGE):
        with db.session.begin_nested():
            db.session.execute(sa.update(JournalLine).where(JournalLine.id == line_id)
                               .values(amount_cents=JournalLine.amount_cents + 1))
    db.session.expire_all()
    assert db.session.get(JournalLine, line_id).amount_cents == amount
    assert unbalanced_entries() == []


@pytest.mark.parametrize("table", NO_DELETE)
def test_status_rows_can_change_but_not_be_deleted(busy_ledger, table):
    row_id = db.session.scalar(sa.text(f"SELECT min(id) FROM {table}"))
    with db.session.begin_nested():  # an UPDATE is allowed (statuses move on)
        db.session.execute(sa.text(f"UPDATE {table} SET id = id WHERE id = :id"), {"id": row_id})
    with pytest.raises(sa.exc.DBAPIError, match=TRIGGER_MESSAGE):
        with db.session.begin_nested():
            db.session.execute(sa.text(f"DELETE FROM {table} WHERE id = :id"), {"id": row_id})
    assert db.session.scalar(sa.text(f"SELECT count(*) FROM {table} WHERE id = :id"), {"id": row_id}) == 1


def test_audit_rows_survive_a_refused_delete(busy_ledger):
    count = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    with pytest.raises(sa.exc.DBAPIError, match=TRIGGER_MESSAGE):
        with db.session.begin_nested():
            db.session.execute(sa.delete(AuditEvent))
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == count


def test_the_database_refuses_an_entry_dated_in_a_closed_month(make_patient):
    patient = make_patient()
    close_month(date(2026, 2, 1))
    insert = sa.text("INSERT INTO journal_entries (entry_date, posted_at, description, source_type, source_id) "
                     "VALUES (:day, CURRENT_TIMESTAMP, 'written past the services', 'Patient', :id)")
    with pytest.raises(sa.exc.DBAPIError, match="cannot be dated in a closed month"):
        with db.session.begin_nested():
            db.session.execute(insert, {"day": date(2026, 2, 27), "id": str(patient.id)})
    with db.session.begin_nested():  # the month after is open
        db.session.execute(insert, {"day": date(2026, 3, 1), "id": str(patient.id)})
    assert db.session.scalar(sa.select(sa.func.count()).select_from(JournalEntry)
                             .where(JournalEntry.description == "written past the services")) == 1
