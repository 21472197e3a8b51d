"""Stored balances: account_month_totals kept exact at commit by journal.post, and the readers (trial
balance, balances, movements, journal.balance) that read them for whole months and the lines for the rest."""

import os
import threading
import time
from collections import defaultdict
from datetime import date

import flask_sqlalchemy.session
import pytest
import sqlalchemy as sa
from flask import Flask

from billing.extensions import db
from billing.models import (
    Account, AccountMonthTotal, CardChannel, JournalEntry, JournalLine, Patient, ServiceCategory,
)
from billing.money import Money
from billing.reports.trial_balance import balances, movements, totals_drift, trial_balance
from billing.services import card_payments, journal
from billing.services import invoices as invoice_service
from billing.services import patients as patient_service
from billing.services import payments as payment_service
from tests.services.conftest import TODAY
from tests.stripe_support import intent_object

OTHER = journal.REVENUE[ServiceCategory.OTHER]
INFUSION = journal.REVENUE[ServiceCategory.INFUSION]
# Dates on both sides of month ends, from December to April, to read across whole and partial months.
DAYS = [date(2025, 12, 31), date(2026, 1, 1), date(2026, 1, 15), date(2026, 1, 31), date(2026, 2, 1),
        date(2026, 2, 10), date(2026, 2, 28), date(2026, 3, 1), date(2026, 3, 5), date(2026, 3, 16),
        date(2026, 3, 31), date(2026, 4, 1), date(2026, 4, 20)]


def usd(text: str) -> Money:
    return Money.parse(text)


# --- what the lines say, summed in Python: the reference the stored totals must equal -------------------


def _line_rows(exclude_pending: bool = False):
    rows = db.session.execute(
        sa.select(JournalLine.account_id, JournalEntry.entry_date, JournalEntry.source_type, JournalEntry.id,
                  JournalLine.amount_cents, Account.code)
        .join(JournalEntry, JournalEntry.id == JournalLine.entry_id).join(Account, Account.id == JournalLine.account_id))
    pending = journal.pending_entry_ids() if exclude_pending else frozenset()
    return [row for row in rows if row.id not in pending]


def lines_by_key() -> dict[tuple[int, date, str], tuple[int, int]]:
    """(account id, month, source type) -> (debits, credits) from the committed journal lines."""
    sums: dict = defaultdict(lambda: [0, 0])
    for row in _line_rows(exclude_pending=True):
        key = (row.account_id, row.entry_date.replace(day=1), row.source_type)
        sums[key][0 if row.amount_cents > 0 else 1] += abs(row.amount_cents)
    return {key: tuple(value) for key, value in sums.items()}


def stored_by_key() -> dict[tuple[int, date, str], tuple[int, int]]:
    return {(t.account_id, t.month, t.source_type): (t.debit_cents, t.credit_cents)
            for t in db.session.scalars(sa.select(AccountMonthTotal).execution_options(populate_existing=True))}


def assert_totals_exact() -> None:
    stored = {key: value for key, value in stored_by_key().items() if value != (0, 0)}
    assert stored == lines_by_key()
    assert totals_drift() == []


def lines_between(start: date | None, end: date) -> list:
    return [row for row in _line_rows() if row.entry_date <= end and (start is None or row.entry_date >= start)]


def reference_trial_balance(as_of: date, since: date | None) -> dict[str, tuple[int, int]]:
    result = {code: (0, 0) for code in db.session.scalars(sa.select(Account.code))}
    for row in lines_between(since, as_of):
        debits, credits = result[row.code]
        result[row.code] = ((debits + row.amount_cents, credits) if row.amount_cents > 0
                            else (debits, credits - row.amount_cents))
    return result


def reference_balance(code: str, as_of: date) -> Money:
    return Money(sum(row.amount_cents for row in lines_between(None, as_of) if row.code == code))


def reference_movements(code: str, start: date, end: date) -> dict[str, Money]:
    result: dict[str, int] = defaultdict(int)
    for row in lines_between(start, end):
        if row.code == code:
            result[row.source_type] += row.amount_cents
    return {source: Money(cents) for source, cents in sorted(result.items())}


def assert_readers_match_lines() -> None:
    codes = list(db.session.scalars(sa.select(Account.code)))
    for as_of in DAYS:
        for since in (None, date(2026, 1, 1), date(2026, 1, 15), date(2026, 2, 10), date(2026, 3, 1),
                      date(2026, 3, 5), date(2026, 4, 2)):
            rows = trial_balance(as_of, since=since)
            assert [r.code for r in rows] == sorted(codes)
            assert {r.code: (r.debits.cents, r.credits.cents) for r in rows} == \
                reference_trial_balance(as_of, since), (as_of, since)
        assert balances(as_of) == {code: reference_balance(code, as_of) for code in codes}, as_of
        assert balances(as_of, [journal.RECEIVABLES, journal.UNDEPOSITED]) == {
            journal.RECEIVABLES: reference_balance(journal.RECEIVABLES, as_of),
            journal.UNDEPOSITED: reference_balance(journal.UNDEPOSITED, as_of)}, as_of
        for code in (journal.RECEIVABLES, journal.BANK, OTHER):
            assert journal.balance(code, as_of=as_of) == reference_balance(code, as_of), (code, as_of)
    for code in (journal.RECEIVABLES, journal.BANK, journal.UNDEPOSITED):
        assert journal.balance(code) == reference_balance(code, date.max)
    for start, end in [(date(2026, 3, 1), date(2026, 3, 31)), (date(2026, 1, 1), date(2026, 2, 28)),
                       (date(2026, 2, 10), date(2026, 3, 16)), (date(2026, 3, 5), date(2026, 3, 20)),
                       (date(2026, 1, 15), date(2026, 4, 1)), (date(2026, 3, 31), date(2026, 3, 1))]:
        for code in (journal.RECEIVABLES, journal.BANK):
            assert movements(code, start, end) == reference_movements(code, start, end), (code, start, end)


def post_across_months(patient: Patient, scale: int = 1) -> None:
    """Entries of several sources on days either side of month ends (a Patient source and the patient's
    charges' kind of lines), for the readers to split into whole months and edges."""
    for n, day in enumerate(DAYS, start=1):
        cents = Money((1000 + n * 37) * scale)
        journal.post(day, f"Opening balance {n}", patient, [
            (journal.RECEIVABLES, cents, patient.id), (OTHER, -cents, None)])
        if n % 2:
            journal.post(day, f"Cash {n}", db.session.get(Account, journal.account_id(journal.BANK)), [
                (journal.BANK, Money(500 * scale + n), None), (journal.RECEIVABLES, -Money(500 * scale + n), patient.id)])


# --- writing: the totals follow every posting, at commit ---------------------------------------------------


def test_totals_equal_the_lines_after_the_service_flows(make_patient, invoice_for, pay_mo):
    db.session.commit()
    before = stored_by_key()
    patient = make_patient()
    invoice = invoice_for(patient)
    money_order = pay_mo(patient, "500", confirm=True)  # a checkout: charge, invoice, money order
    assert journal.pending_entry_ids()  # posted, not counted until the commit
    assert stored_by_key() == before
    db.session.commit()
    assert journal.pending_entry_ids() == frozenset()
    assert_totals_exact()
    assert stored_by_key() != before

    other = make_patient()
    card_invoice = invoice_for(other)
    payment = card_payments.start(other, usd("450"), invoice=card_invoice,
                                  channel=CardChannel.DESK, today=TODAY)
    intent = intent_object(payment.id, payment.amount_cents)
    card_payments.attach_intent(payment, intent["id"])
    card_payments.intent_succeeded(intent, today=TODAY)
    db.session.commit()
    assert_totals_exact()

    payment_service.refund_payment(money_order, usd("20"), "Overpaid", today=TODAY, check_number="5001")
    db.session.commit()
    invoice_service.void_invoice(invoice, "Wrong service", today=TODAY)
    db.session.commit()
    assert_totals_exact()
    month = TODAY.replace(day=1)
    assert {key[2] for key in stored_by_key() if key[1] == month} >= {"Charge", "Payment", "Refund", "Invoice"}


def test_a_savepoint_rolled_back_after_posting_leaves_no_trace(make_patient):
    patient = make_patient()
    db.session.commit()
    before = stored_by_key()
    journal.post(TODAY, "Kept", patient, [(journal.RECEIVABLES, usd("10"), patient.id), (OTHER, -usd("10"), None)])
    with pytest.raises(RuntimeError, match="changed my mind"):
        with db.session.begin_nested():
            journal.post(TODAY, "Rolled back", patient, [(journal.BANK, usd("777"), None), (OTHER, -usd("777"), None)])
            raise RuntimeError("changed my mind")
    with db.session.begin_nested():  # a savepoint released: its entry is counted at the real commit, once
        journal.post(TODAY, "Released", patient, [(journal.BANK, usd("3"), None), (OTHER, -usd("3"), None)])
    # On SQLite the rolled-back entry's id may be given to this one: counted once, as itself.
    journal.post(TODAY, "After", patient, [(journal.RECEIVABLES, usd("5"), patient.id), (OTHER, -usd("5"), None)])
    db.session.commit()

    assert_totals_exact()
    month = TODAY.replace(day=1)
    added = {key: (value[0] - before.get(key, (0, 0))[0], value[1] - before.get(key, (0, 0))[1])
             for key, value in stored_by_key().items() if value != before.get(key)}
    assert added == {
        (journal.account_id(journal.RECEIVABLES), month, "Patient"): (1500, 0),
        (journal.account_id(journal.BANK), month, "Patient"): (300, 0),
        (journal.account_id(OTHER), month, "Patient"): (0, 1800),
    }


def test_a_full_rollback_forgets_the_posted_entries(make_patient):
    patient = make_patient()
    db.session.commit()
    before = stored_by_key()
    journal.post(TODAY, "Rolled back", patient, [(journal.BANK, usd("99"), None), (OTHER, -usd("99"), None)])
    assert journal.pending_entry_ids()
    db.session.rollback()
    assert journal.pending_entry_ids() == frozenset()
    db.session.commit()
    assert stored_by_key() == before

    journal.post(TODAY, "Kept", patient, [(journal.BANK, usd("1"), None), (OTHER, -usd("1"), None)])
    db.session.commit()
    assert_totals_exact()
    bank = (journal.account_id(journal.BANK), TODAY.replace(day=1), "Patient")
    assert stored_by_key()[bank][0] - before.get(bank, (0, 0))[0] == 100


def test_two_commits_accumulate_in_one_row(make_patient):
    patient = make_patient()
    db.session.commit()
    key = (journal.account_id(journal.BANK), date(2026, 2, 1), "Patient")
    start = stored_by_key().get(key, (0, 0))
    journal.post(date(2026, 2, 3), "First", patient, [(journal.BANK, usd("10"), None), (OTHER, -usd("10"), None)])
    db.session.commit()
    journal.post(date(2026, 2, 27), "Second", patient, [(journal.BANK, usd("2.50"), None), (OTHER, -usd("2.50"), None)])
    journal.post(date(2026, 2, 27), "Third", patient, [(OTHER, usd("1"), None), (journal.BANK, -usd("1"), None)])
    db.session.commit()
    assert stored_by_key()[key] == (start[0] + 1250, start[1] + 100)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AccountMonthTotal).where(
        AccountMonthTotal.account_id == key[0], AccountMonthTotal.month == key[1],
        AccountMonthTotal.source_type == key[2])) == 1
    assert_totals_exact()


def test_hundreds_of_entries_in_one_transaction(make_patient):
    """A payout import posts many entries before its commit: one statement binds all their ids."""
    patient = make_patient()
    for n in range(600):
        journal.post(date(2026, 1 + n % 3, 1 + n % 28), f"Entry {n}", patient,
                     [(journal.BANK, Money(n + 1), None), (OTHER, -Money(n + 1), None)])
    assert len(journal.pending_entry_ids()) == 600
    db.session.commit()
    assert_totals_exact()


# --- reading: whole months from the totals, the edges from the lines ------------------------------------------


def test_readers_equal_the_line_based_answers(make_patient, invoice_for, pay_mo):
    patient = make_patient()
    post_across_months(patient)
    invoice_for(patient)
    pay_mo(patient, "100")
    db.session.commit()
    assert_totals_exact()
    assert_readers_match_lines()


def test_readers_see_this_transactions_own_postings_before_the_commit(make_patient):
    patient = make_patient()
    post_across_months(patient)
    db.session.commit()
    post_across_months(patient, scale=3)  # not committed: in the lines, not yet in the totals
    assert journal.pending_entry_ids()
    assert_readers_match_lines()
    db.session.commit()
    assert_readers_match_lines()
    assert_totals_exact()


@pytest.fixture
def statements(app):
    """The SQL the test's connection runs, while recording."""
    seen: list[str] = []
    engine = db.session.get_bind()

    def record(conn, cursor, statement, parameters, context, executemany):
        if not statement.startswith(("SAVEPOINT", "RELEASE SAVEPOINT")):
            seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(engine, "before_cursor_execute", record)


def test_month_end_readings_read_no_journal_lines(make_patient, statements):
    patient = make_patient()
    post_across_months(patient)
    db.session.commit()
    statements.clear()
    trial_balance(date(2026, 3, 31))
    trial_balance(date(2026, 3, 31), since=date(2026, 2, 1))
    balances(date(2026, 2, 28), [journal.RECEIVABLES])
    movements(journal.RECEIVABLES, date(2026, 3, 1), date(2026, 3, 31))
    journal.balance(journal.BANK, as_of=date(2026, 1, 31))
    journal.balance(journal.BANK)
    assert len(statements) == 6
    assert not [s for s in statements if "journal_lines" in s]
    statements.clear()
    trial_balance(date(2026, 3, 16))  # a partial month reads its days from the lines
    assert len(statements) == 1 and "journal_lines" in statements[0]


# --- the guard -----------------------------------------------------------------------------------------


def test_totals_drift_finds_a_drift_made_on_purpose(make_patient):
    patient = make_patient()
    post_across_months(patient)
    db.session.commit()
    assert totals_drift() == []
    bank, month = journal.account_id(journal.BANK), date(2026, 2, 1)
    row = db.session.get(AccountMonthTotal, (bank, month, "Account"))
    debits, credits = row.debit_cents, row.credit_cents
    db.session.execute(sa.update(AccountMonthTotal).where(
        AccountMonthTotal.account_id == bank, AccountMonthTotal.month == month,
        AccountMonthTotal.source_type == "Account").values(debit_cents=AccountMonthTotal.debit_cents + 1))
    db.session.execute(sa.delete(AccountMonthTotal).where(
        AccountMonthTotal.account_id == journal.account_id(OTHER), AccountMonthTotal.month == date(2026, 4, 1)))
    db.session.add(AccountMonthTotal(account_id=journal.account_id(INFUSION), month=date(2025, 6, 1),
                                     source_type="Charge", debit_cents=0, credit_cents=5))
    db.session.flush()

    drift = totals_drift()
    assert [(d.code, d.month, d.source_type) for d in drift] == [
        (journal.BANK, month, "Account"), (INFUSION, date(2025, 6, 1), "Charge"),
        (OTHER, date(2026, 4, 1), "Patient")]
    assert (drift[0].stored_debits, drift[0].stored_credits) == (Money(debits + 1), Money(credits))
    assert (drift[0].line_debits, drift[0].line_credits) == (Money(debits), Money(credits))
    assert (drift[1].stored_credits, drift[1].line_credits) == (Money(5), Money.zero())
    assert drift[2].stored_credits == Money.zero() and drift[2].line_credits > Money.zero()


def test_totals_drift_leaves_out_entries_not_committed_yet(make_patient):
    patient = make_patient()
    journal.post(TODAY, "Not yet", patient, [(journal.BANK, usd("4"), None), (OTHER, -usd("4"), None)])
    assert totals_drift() == []
    db.session.commit()
    assert totals_drift() == []


# --- the app's own session, and commits at the same time -----------------------------------------------------


def _patient(app: Flask, last_name: str) -> int:
    with app.app_context():
        patient = patient_service.create_patient(
            {"first_name": "Pat", "last_name": last_name, "date_of_birth": date(1980, 1, 1)}, today=TODAY)
        db.session.commit()
        return patient.id


def test_the_apps_own_session_keeps_the_totals(live_app):
    """The app's Flask-SQLAlchemy session (not the tests' plain one) fires the commit hook too."""
    patient_id = _patient(live_app, "Session")
    with live_app.app_context():
        assert isinstance(db.session(), flask_sqlalchemy.session.Session)
        patient = db.session.get(Patient, patient_id)
        journal.post(TODAY, "Through the app's session", patient,
                     [(journal.BANK, usd("12"), None), (OTHER, -usd("12"), None)])
        db.session.commit()
        assert journal.pending_entry_ids() == frozenset()
        assert_totals_exact()
        assert stored_by_key()[(journal.account_id(journal.BANK), TODAY.replace(day=1), "Patient")][0] >= 1200


@pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
                    reason="row locks and concurrent transactions need PostgreSQL")
def test_concurrent_commits_touching_the_same_totals_in_opposite_orders_do_not_deadlock(live_app):
    """Each transaction posts to the same accounts in another order and holds its transaction open:
    the totals' rows are locked only at commit and in key order, so nobody deadlocks."""
    patient_id = _patient(live_app, "Concurrent")
    with live_app.app_context():
        before = stored_by_key()
    n, rounds = 6, 3
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []
    codes = [journal.BANK, journal.UNDEPOSITED, journal.RECEIVABLES, OTHER]

    def work(i: int) -> None:
        try:
            with live_app.app_context():
                patient = db.session.get(Patient, patient_id)
                order = codes if i % 2 else list(reversed(codes))
                for _ in range(rounds):
                    barrier.wait(timeout=30)
                    for debit, credit in zip(order, order[1:]):
                        journal.post(TODAY, f"Thread {i}", patient, [(debit, Money(100 + i), None),
                                                                     (credit, -Money(100 + i), None)])
                        time.sleep(0.01)
                    db.session.commit()
        except BaseException as err:  # reported in the test's thread
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    with live_app.app_context():
        assert_totals_exact()
        key = (journal.account_id(journal.BANK), TODAY.replace(day=1), "Patient")
        bank, start = stored_by_key()[key], before.get(key, (0, 0))
        # Odd threads debit the bank (it comes first in their order), even ones credit it, every round.
        assert (bank[0] - start[0], bank[1] - start[1]) == (
            rounds * sum(100 + i for i in range(1, n, 2)), rounds * sum(100 + i for i in range(0, n, 2)))
