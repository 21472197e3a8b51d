"""The daily close: the day's totals by method, money orders on hand, over/short, and a closed day
refusing payments dated on it."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from billing.extensions import db
from billing.models import AuditEvent, DailyClose, JournalEntry, JournalLine, Payment, PaymentMethod, Refund
from billing.money import Money
from billing.reports import daily
from billing.services import ServiceError, daily_close, deposits, journal
from billing.services import payments as payment_service
from tests.services.conftest import TODAY, refused
from tests.services.conftest import money_order as _money_order

_serials = iter(range(55_000_001, 56_000_000))


def money_order():
    """Money order details with a serial of this module's own (pay_mo's fixtures count theirs apart)."""
    return _money_order(serial=f"DC{next(_serials)}")

YESTERDAY = TODAY - timedelta(days=1)


def usd(text: str) -> Money:
    return Money.parse(text)


def independent_received(day) -> dict[PaymentMethod, int]:
    """Each method's day total from the journal: debits to the method's holding account by the
    payments' own entries dated that day (not the payments table the report reads)."""
    holding = {payment_service.RECEIVED_INTO[m]: m for m in PaymentMethod}
    totals = {m: 0 for m in PaymentMethod}
    rows = db.session.execute(
        sa.select(JournalLine.account_id, JournalLine.amount_cents).join(JournalEntry)
        .where(JournalEntry.entry_date == day, JournalEntry.source_type == "Payment", JournalLine.amount_cents > 0))
    by_id = {journal.account_id(code): method for code, method in holding.items()}
    for account_id, cents in rows:
        if account_id in by_id:
            totals[by_id[account_id]] += cents
    return totals


def test_the_days_totals_by_method_equal_the_journal_and_exclude_other_days(make_patient, invoice_for, pay_mo,
                                                                                pay_cc):
    alice, bob = make_patient(), make_patient("Okafor")
    invoice_for(alice, "infusion", "addl")  # $600
    invoice_for(bob)  # $450
    pay_mo(alice, "125.50")
    pay_mo(alice, "74.50")
    pay_cc(alice, "400.00")
    pay_mo(bob, "450.00")
    # Yesterday's money order counts on yesterday, not today.
    payment_service.record_money_order(bob, usd("30.00"), money_order(), received_date=YESTERDAY, today=TODAY,
                                       confirm_overpayment=True)

    figures = daily.day_figures(TODAY)

    totals = {row.method: row for row in figures.payments}
    expected = independent_received(TODAY)
    assert {m: totals[m].total.cents for m in PaymentMethod} == expected
    assert expected == {PaymentMethod.MONEY_ORDER: 65000, PaymentMethod.CARECREDIT: 40000, PaymentMethod.CARD: 0}
    assert (totals[PaymentMethod.MONEY_ORDER].count, totals[PaymentMethod.CARECREDIT].count) == (3, 1)
    assert figures.received == usd("1050.00")
    assert daily.payments_by_method(YESTERDAY)[1].total == usd("30.00")
    # Every money order received and not batched is on hand, whatever day it came in.
    assert figures.on_hand == usd("680.00") == journal.balance(journal.UNDEPOSITED)


def test_refunds_and_returns_count_on_the_day_they_are_posted(make_patient, invoice_for, pay_mo, pay_cc):
    patient = make_patient()
    invoice_for(patient, "infusion", "addl")
    kept = pay_mo(patient, "200.00")
    bounced = pay_mo(patient, "100.00")
    cc = pay_cc(patient, "300.00")
    payment_service.refund_payment(kept, usd("20.00"), "Overcharged", today=TODAY, check_number="1001")
    payment_service.refund_payment(cc, usd("45.00"), "Series cancelled", today=TODAY, return_reference="R77")
    payment_service.return_money_order(bounced, "Counterfeit", today=TODAY)

    figures = daily.day_figures(TODAY)

    refunds = {(r.method, r.kind.value): r.total for r in figures.refunds}
    sums = dict(db.session.execute(
        sa.select(Refund.kind, sa.func.sum(Refund.amount_cents)).where(Refund.refund_date == TODAY)
        .group_by(Refund.kind)).all())
    assert refunds == {(PaymentMethod.MONEY_ORDER, "refund"): usd("20.00"),
                       (PaymentMethod.MONEY_ORDER, "return"): usd("100.00"),
                       (PaymentMethod.CARECREDIT, "refund"): usd("45.00")}
    assert figures.refunded.cents == sum(sums.values()) == 16500
    # A payment received today still counts as received today after it was refunded or returned.
    assert figures.received == usd("600.00")
    assert figures.net == usd("435.00")
    # The returned money order left the drawer; the refunded one is still deposited.
    assert figures.on_hand == usd("200.00") == journal.balance(journal.UNDEPOSITED)


def test_close_shows_over_and_short_against_money_orders_on_hand(make_patient, invoice_for, pay_mo):
    patient = make_patient()
    invoice_for(patient, "infusion", "addl")
    pay_mo(patient, "250.00")
    pay_mo(patient, "100.00")
    before = journal.balance(journal.BANK), journal.balance(journal.UNDEPOSITED)

    with refused("note", match=r"short by \$5\.00 \(counted \$345\.00, expected \$350\.00\)"):
        daily_close.close_day(TODAY, usd("345.00"), "", today=TODAY)
    close = daily_close.close_day(TODAY, usd("345.00"), "  One money order mislaid, found Monday ", today=TODAY)

    assert (close.expected_cents, close.counted_cents) == (35000, 34500)
    assert daily_close.over_short(close) == Money(-500)
    assert close.note == "One money order mislaid, found Monday"
    # Over/short is shown, never posted.
    assert (journal.balance(journal.BANK), journal.balance(journal.UNDEPOSITED)) == before
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "day.close"))
    assert event.changes["over_short"] == "-5.00"


def test_an_exact_count_needs_no_note_and_over_is_positive(make_patient, invoice_for, pay_mo):
    patient = make_patient()
    invoice_for(patient)
    pay_mo(patient, "450.00")
    assert daily_close.over_short(daily_close.close_day(YESTERDAY, usd("450.00"), "", today=TODAY)) == Money(0)
    over = daily_close.close_day(TODAY, usd("460.00"), "A $10 bill in the drawer", today=TODAY)
    assert daily_close.over_short(over) == usd("10.00")


def test_money_orders_in_a_batch_are_no_longer_on_hand(make_patient, invoice_for, pay_mo):
    patient = make_patient()
    invoice_for(patient, "infusion", "addl")
    first, second = pay_mo(patient, "250.00"), pay_mo(patient, "100.00")
    deposits.create_batch([first.id], today=TODAY)
    assert daily.day_figures(TODAY).on_hand == usd("100.00")
    close = daily_close.close_day(TODAY, usd("100.00"), "", today=TODAY)
    assert close.expected_cents == second.amount_cents


def test_one_close_per_day_and_no_future_day(make_patient):
    daily_close.close_day(TODAY, Money(0), "", today=TODAY)
    with refused("day", match="already closed"):
        daily_close.close_day(TODAY, Money(0), "", today=TODAY)
    with refused("day", match="has not happened yet"):
        daily_close.close_day(TODAY + timedelta(days=1), Money(0), "", today=TODAY)
    with refused("counted", match="Enter the total"):
        daily_close.close_day(YESTERDAY, None, "", today=TODAY)
    with refused("counted", match="negative"):
        daily_close.close_day(YESTERDAY, Money(-1), "", today=TODAY)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DailyClose)) == 1


def test_a_closed_day_refuses_a_backdated_money_order_with_nothing_written(make_patient, invoice_for, pay_mo,
                                                                           catalog):
    patient = make_patient()
    invoice_for(patient)
    daily_close.close_day(YESTERDAY, Money(0), "", today=TODAY)
    payments_before = db.session.scalar(sa.select(sa.func.count()).select_from(Payment))

    with refused("received_date", match=r"03/15/2026 is closed.*Date this payment today \(03/16/2026\)"):
        payment_service.record_money_order(patient, usd("100.00"), money_order(), received_date=YESTERDAY,
                                           today=TODAY)
    details = payment_service.CareCreditInput(authorization_code="A1B2C3", plan=catalog["12mo"],
                                              account_last4="4321", id_checked=True, receipt_signed=True)
    with refused("received_date", match="is closed"):
        payment_service.record_carecredit(patient, usd("100.00"), details, received_date=YESTERDAY, today=TODAY)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment)) == payments_before

    # Dated today it is taken, and counts on today.
    pay_mo(patient, "100.00")
    assert daily.payments_by_method(TODAY)[1].total == usd("100.00")


def test_once_today_is_closed_a_payment_waits_for_tomorrow(make_patient, invoice_for):
    patient = make_patient()
    invoice_for(patient)
    daily_close.close_day(TODAY, Money(0), "", today=TODAY)
    with refused("received_date", match="Today .* was already closed"):
        payment_service.record_money_order(patient, usd("100.00"), money_order(), received_date=TODAY, today=TODAY)


def test_refunds_after_a_close_post_on_today(make_patient, invoice_for, pay_mo):
    patient = make_patient()
    invoice_for(patient)
    payment = payment_service.record_money_order(patient, usd("450.00"), money_order(), received_date=YESTERDAY,
                                                 today=TODAY)
    daily_close.close_day(YESTERDAY, usd("450.00"), "", today=TODAY)
    payment_service.refund_payment(payment, usd("50.00"), "Discount agreed", today=TODAY, check_number="1002")
    assert daily.refunds_by_method(YESTERDAY) == []
    assert daily.day_figures(YESTERDAY).received == usd("450.00")
    assert daily.day_figures(TODAY).refunded == usd("50.00")


def test_the_bookkeeper_reviews_once(make_patient):
    close = daily_close.close_day(TODAY, Money(0), "", today=TODAY)
    daily_close.review_close(close)
    assert close.reviewed_at is not None
    with pytest.raises(ServiceError, match="already reviewed"):
        daily_close.review_close(close)


def test_unclosed_days_lists_days_with_activity(make_patient, invoice_for, pay_mo):
    patient = make_patient()
    invoice_for(patient, "infusion", "addl")
    payment_service.record_money_order(patient, usd("10.00"), money_order(), received_date=YESTERDAY - timedelta(days=1),
                                       today=TODAY)
    payment_service.record_money_order(patient, usd("10.00"), money_order(), received_date=YESTERDAY, today=TODAY)
    pay_mo(patient, "10.00")
    daily_close.close_day(YESTERDAY, usd("30.00"), "", today=TODAY)
    assert daily.unclosed_days(TODAY) == [TODAY, YESTERDAY - timedelta(days=1)]
