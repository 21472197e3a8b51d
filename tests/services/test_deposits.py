"""Money-order deposit batches: picked from the money orders on hand, deposited once (Bank /
Undeposited funds), a money order in one batch only, an open batch cancelled."""

import os
import threading
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from billing.extensions import db
from billing.models import (
    AuditEvent, DepositBatch, DepositBatchItem, DepositStatus, JournalEntry, Patient,
)
from billing.money import Money
from billing.reports.money_orders import money_orders_on_hand, on_hand_total, undeposited_funds
from billing.services import ServiceError, daily_close, deposits, journal
from billing.services import patients as patient_service
from billing.services import payments as payment_service
from tests.services.conftest import TODAY, close_month, refused
from tests.services.conftest import money_order as _money_order

YESTERDAY = TODAY - timedelta(days=1)
_serials = iter(range(66_000_001, 67_000_000))


def money_order():
    return _money_order(serial=f"DP{next(_serials)}")


def usd(text: str) -> Money:
    return Money.parse(text)


def batches() -> list[tuple]:
    return [tuple(r) for r in db.session.execute(
        sa.select(DepositBatch.number, DepositBatch.status, DepositBatch.total_cents).order_by(DepositBatch.id))]


def batch_rows() -> tuple[int, int]:
    return (db.session.scalar(sa.select(sa.func.count()).select_from(DepositBatch)),
            db.session.scalar(sa.select(sa.func.count()).select_from(DepositBatchItem)))


@pytest.fixture
def three(make_patient, invoice_for, pay_mo):
    """Three money orders on hand: $250 (yesterday), $100 and $75.25 (today)."""
    patient = make_patient()
    invoice_for(patient, "infusion", "addl")
    first = payment_service.record_money_order(patient, usd("250.00"), money_order(), received_date=YESTERDAY,
                                               today=TODAY)
    return [first, pay_mo(patient, "100.00"), pay_mo(patient, "75.25")]


def test_a_batch_takes_money_orders_off_hand_and_numbers_itself(three):
    batch = deposits.create_batch([three[0].id, three[2].id], today=TODAY)

    assert (batch.number, batch.status, batch.total_cents) == ("DEP-2026-0001", DepositStatus.OPEN, 32525)
    assert sorted(i.payment_id for i in batch.items) == [three[0].id, three[2].id]
    assert [p.id for p in money_orders_on_hand()] == [three[1].id]
    assert on_hand_total() == usd("100.00")
    # Nothing posts until the bank takes it; the page's check still agrees.
    assert journal.balance(journal.UNDEPOSITED) == usd("425.25")
    assert undeposited_funds() == on_hand_total()
    assert deposits.create_batch([three[1].id], today=TODAY).number == "DEP-2026-0002"


def test_marking_deposited_posts_bank_and_undeposited_exactly(three):
    batch = deposits.create_batch([p.id for p in three], today=TODAY)
    bank, undeposited = journal.balance(journal.BANK), journal.balance(journal.UNDEPOSITED)

    deposits.mark_deposited(batch, TODAY, "  DEP 8841-22 ", today=TODAY)

    total = sum((Money(p.amount_cents) for p in three), Money.zero())
    assert total == usd("425.25")
    assert journal.balance(journal.BANK) - bank == total
    assert undeposited - journal.balance(journal.UNDEPOSITED) == total
    assert journal.balance(journal.UNDEPOSITED) == Money(0)
    [entry] = journal.entries_for(batch)
    assert entry.entry_date == TODAY
    assert sorted((line.account.code, line.amount_cents) for line in entry.lines) == [
        (journal.BANK, 42525), (journal.UNDEPOSITED, -42525)]
    assert (batch.status, batch.deposited_on, batch.bank_reference) == (DepositStatus.DEPOSITED, TODAY, "DEP 8841-22")
    with refused(match="already marked deposited"):
        deposits.mark_deposited(batch, TODAY, "again", today=TODAY)
    assert len(journal.entries_for(batch)) == 1


def test_the_deposit_date_and_reference_are_checked(three):
    batch = deposits.create_batch([p.id for p in three], today=TODAY)
    with refused("deposited_on", match="before 03/16/2026"):
        deposits.mark_deposited(batch, YESTERDAY, "REF1", today=TODAY)
    with refused("deposited_on", match="future"):
        deposits.mark_deposited(batch, TODAY + timedelta(days=1), "REF1", today=TODAY)
    with refused("deposited_on", match="Enter the date"):
        deposits.mark_deposited(batch, None, "REF1", today=TODAY)
    with refused("bank_reference", match="reference"):
        deposits.mark_deposited(batch, TODAY, "   ", today=TODAY)
    assert journal.entries_for(batch) == []


def test_no_deposit_into_a_closed_month(make_patient, invoice_for):
    patient = make_patient()
    invoice_for(patient)
    old = date(2026, 2, 27)
    payment = payment_service.record_money_order(patient, usd("450.00"), money_order(), received_date=old,
                                                 today=TODAY)
    batch = deposits.create_batch([payment.id], today=TODAY)
    close_month(old)
    with refused("deposited_on", match="February 2026 are closed"):
        deposits.mark_deposited(batch, date(2026, 2, 28), "REF", today=TODAY)
    deposits.mark_deposited(batch, date(2026, 3, 2), "REF", today=TODAY)
    assert journal.entries_for(batch)[0].entry_date == date(2026, 3, 2)


def test_a_money_order_goes_in_one_batch_only(three):
    deposits.create_batch([three[0].id], today=TODAY)
    with refused("payments", match=r"already in deposit batch DEP-2026-0001"):
        deposits.create_batch([three[1].id, three[0].id], today=TODAY)
    assert batch_rows() == (1, 1)
    # The unique key holds even when the check is bypassed.
    with pytest.raises(sa.exc.IntegrityError):
        with db.session.begin_nested():
            db.session.add(DepositBatch(number="DEP-X", status=DepositStatus.OPEN, total_cents=25000,
                                        items=[DepositBatchItem(payment_id=three[0].id)]))


def test_only_money_orders_on_hand_are_batched(three, make_patient, invoice_for, pay_cc):
    patient = make_patient("Okafor")
    invoice_for(patient)
    cc = pay_cc(patient, "100.00")
    with refused("payments", match="not a money order"):
        deposits.create_batch([three[0].id, cc.id], today=TODAY)
    payment_service.return_money_order(three[1], "Counterfeit", today=TODAY)
    with refused("payments", match="was returned"):
        deposits.create_batch([three[1].id], today=TODAY)
    with refused("payments", match="Choose at least one"):
        deposits.create_batch([], today=TODAY)
    with refused("payments", match="no longer exists"):
        deposits.create_batch([999_999], today=TODAY)
    # A refunded money order is still in the drawer (the refund was a clinic check) and is deposited.
    payment_service.refund_payment(three[2], usd("75.25"), "Overpaid", today=TODAY, check_number="2001")
    batch = deposits.create_batch([three[0].id, three[2].id], today=TODAY)
    deposits.mark_deposited(batch, TODAY, "R-1", today=TODAY)
    assert journal.balance(journal.UNDEPOSITED) == Money(0)


def test_a_returned_money_order_in_an_open_batch_stops_the_deposit(three):
    batch = deposits.create_batch([p.id for p in three], today=TODAY)
    payment_service.return_money_order(three[1], "Stopped by the issuer", today=TODAY)
    with refused(match="was returned, so the slip is wrong"):
        deposits.mark_deposited(batch, TODAY, "REF", today=TODAY)
    assert undeposited_funds() != on_hand_total()  # the money orders page flags it too


def test_a_money_order_returned_after_its_deposit_comes_back_out_of_the_bank(three):
    batch = deposits.create_batch([p.id for p in three], today=TODAY)
    deposits.mark_deposited(batch, TODAY, "DEP 1", today=TODAY)
    bank, undeposited = journal.balance(journal.BANK), journal.balance(journal.UNDEPOSITED)

    payment_service.return_money_order(three[1], "Counterfeit, the bank charged it back", today=TODAY)

    assert journal.balance(journal.BANK) == bank - usd("100.00")
    assert journal.balance(journal.UNDEPOSITED) == undeposited == Money.zero()


def test_cancelling_an_open_batch_frees_its_money_orders(three):
    batch = deposits.create_batch([p.id for p in three], today=TODAY)
    entries = db.session.scalar(sa.select(sa.func.count()).select_from(JournalEntry))
    assert deposits.cancel_batch(batch, today=TODAY) == "DEP-2026-0001"
    # nothing is deleted: the items stay, released, and the cancelled batch still shows what it held
    assert batch_rows() == (1, 3) and batch.status == DepositStatus.CANCELLED
    assert [item.released_on for item in batch.items] == [TODAY] * 3 and deposits.live_items(batch) == []
    assert deposits.batch_payments(batch) == sorted(three, key=lambda p: (p.received_date, p.id))
    assert on_hand_total() == usd("425.25")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(JournalEntry)) == entries
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "deposit.cancel"))
    assert event.changes["payments"] == [p.id for p in three]
    again = deposits.create_batch([three[0].id], today=TODAY)
    assert again.number == "DEP-2026-0002"  # numbers are never reused


def test_a_deposited_batch_is_not_cancelled(three):
    batch = deposits.create_batch([three[0].id], today=TODAY)
    deposits.mark_deposited(batch, TODAY, "REF", today=TODAY)
    with refused(match="a deposit is not cancelled"):
        deposits.cancel_batch(batch, today=TODAY)
    assert batches() == [("DEP-2026-0001", DepositStatus.DEPOSITED, 25000)]


def test_the_close_after_a_deposit_expects_only_what_is_left(three):
    deposits.mark_deposited(deposits.create_batch([three[0].id], today=TODAY), TODAY, "REF", today=TODAY)
    close = daily_close.close_day(TODAY, usd("175.25"), "", today=TODAY)
    assert close.expected_cents == 17525 == journal.balance(journal.UNDEPOSITED).cents


# --- concurrency (PostgreSQL) --------------------------------------------------------------------

postgres_only = pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
                                   reason="row locks and concurrent transactions need PostgreSQL")


def _at_once(app, works) -> list:
    barrier = threading.Barrier(len(works))
    results: list = [None] * len(works)

    def thread(i: int) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=30)
                results[i] = works[i]()
                db.session.commit()
            except ServiceError as err:
                db.session.rollback()
                results[i] = err
            except BaseException as err:  # reported in the test's thread
                db.session.rollback()
                results[i] = err

    threads = [threading.Thread(target=thread, args=(i,)) for i in range(len(works))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread is stuck"
    return results


def _live_money_order(app, received: date) -> int:
    with app.app_context():
        patient = patient_service.create_patient(
            {"first_name": "Conc", "last_name": f"Urrent{next(_serials)}", "date_of_birth": date(1980, 1, 1)},
            today=TODAY)
        payment = payment_service.record_money_order(patient, usd("40.00"), money_order(), received_date=received,
                                                     today=TODAY, confirm_overpayment=True)
        db.session.commit()
        return payment.id


@postgres_only
def test_two_desks_batching_the_same_money_order_make_one_batch(live_app):
    payment_id = _live_money_order(live_app, TODAY)
    results = _at_once(live_app, [lambda: deposits.create_batch([payment_id], today=TODAY).number] * 2)
    assert sorted(type(r).__name__ for r in results) == ["ServiceError", "str"], results
    with live_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(DepositBatchItem)
                                 .where(DepositBatchItem.payment_id == payment_id)) == 1


@postgres_only
def test_a_payment_racing_the_close_of_its_day_is_either_counted_or_refused(live_app):
    day = date(2026, 3, 10)
    with live_app.app_context():
        patient_id = patient_service.create_patient(
            {"first_name": "Race", "last_name": "Close", "date_of_birth": date(1980, 1, 1)}, today=TODAY).id
        db.session.commit()

    def pay() -> int:
        patient = db.session.get(Patient, patient_id)
        return payment_service.record_money_order(patient, usd("60.00"), money_order(), received_date=day,
                                                  today=TODAY, confirm_overpayment=True).id

    def close() -> int:  # the count read before the close may miss the payment: the race is about `expected`
        return daily_close.close_day(day, on_hand_total(), "Counted during the race", today=TODAY).expected_cents

    for _ in range(3):
        day += timedelta(days=1)
        paid, expected = _at_once(live_app, [pay, close])
        assert isinstance(expected, int), expected
        with live_app.app_context():
            if isinstance(paid, ServiceError):  # it came after the close and was refused
                assert "is closed" in paid.message
            else:
                assert isinstance(paid, int), paid
            # Either way the close expected exactly what was on hand once both were done.
            assert expected == on_hand_total().cents
