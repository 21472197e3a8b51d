"""Closing a month: what blocks it, the close (refused, or overridden with a reason), nothing posting
into the closed month through any service, and an admin's reopen."""

from datetime import date

import pytest
import sqlalchemy as sa

from billing.extensions import db
from billing.models import (
    AccountingPeriod, AuditEvent, BankLine, BankMatchKind, BankStatement, Charge, JournalEntry, Payment,
    PeriodStatus, Refund, StripePayout,
)
from billing.money import Money
from billing.services import bank, daily_close, deposits, journal, periods
from billing.services import charges as charge_service
from billing.services import payments as payment_service
from tests.services.conftest import TODAY, money_order, refused

FEB = date(2026, 2, 1)


def mo(patient, dollars: str, day: date) -> Payment:
    return payment_service.record_money_order(patient, Money.parse(dollars), money_order(), received_date=day,
                                              today=TODAY, confirm_overpayment=True)


def kinds(items) -> list[tuple]:
    return [(item.kind, item.day) for item in items]


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def bank_line(day: date, cents: int) -> BankLine:
    statement = BankStatement(filename="feb.ofx", file_format="ofx1", sha256=f"{day.isoformat()}-{cents}".ljust(64, "0"))
    db.session.add(statement)
    db.session.flush()
    line = BankLine(statement_id=statement.id, fitid=f"F{day:%Y%m%d}{cents}", posted_on=day, amount_cents=cents,
                    description="DEPOSIT")
    db.session.add(line)
    db.session.flush()
    return line


@pytest.fixture
def february(make_patient, invoice_for):
    """February's desk: money orders on 2/10 ($100) and 2/11 ($40, $60), a refund on 2/12; only 2/10 is
    closed. One March money order (3/02), not February's business."""
    patient = make_patient()
    invoice_for(patient, day=date(2026, 2, 9))
    first = mo(patient, "100", date(2026, 2, 10))
    second = mo(patient, "40", date(2026, 2, 11))
    third = mo(patient, "60", date(2026, 2, 11))
    payment_service.refund_payment(third, Money.parse("60"), "Paid twice", today=date(2026, 2, 12),
                                   check_number="1001")
    daily_close.close_day(date(2026, 2, 10), Money.parse("200"), "", today=TODAY)
    mo(patient, "25", date(2026, 3, 2))
    return {"patient": patient, "payments": (first, second, third)}


def test_blockers_are_the_days_not_closed_and_the_deposits_not_reconciled(february):
    first, second, _ = february["payments"]
    review = periods.blockers(FEB, today=TODAY)
    assert review.ended and review.status == PeriodStatus.OPEN
    # 2/11 (payments) and 2/12 (a refund) are open at the desk; 2/10 is closed; March is not February's.
    assert kinds(review.blockers) == [("day", date(2026, 2, 11)), ("day", date(2026, 2, 12))]

    for day in (date(2026, 2, 11), date(2026, 2, 12)):
        daily_close.close_day(day, Money.parse("165"), "counted later", today=TODAY)
    # A batch holding February money orders, still open, blocks.
    batch = deposits.create_batch([first.id, second.id], today=TODAY)
    review = periods.blockers(FEB, today=TODAY)
    assert [(i.kind, i.ref_id) for i in review.blockers] == [("open_batch", batch.id)]
    assert "not marked deposited" in review.blockers[0].text

    # Deposited in February, but no bank line matched to it: still blocks.
    deposits.mark_deposited(batch, date(2026, 2, 20), "REF-9", today=TODAY)
    review = periods.blockers(FEB, today=TODAY)
    assert [(i.kind, i.ref_id) for i in review.blockers] == [("deposit", batch.id)]
    assert f"Deposit {batch.number} ($140.00, deposited 02/20/2026) is not matched" in review.blockers[0].text

    # A Stripe payout of the month without a bank line is a warning, never a blocker.
    db.session.add(StripePayout(payout_id="po_feb", amount_cents=9700, fee_cents=300, arrival_date=date(2026, 2, 25),
                                source="csv", posted=True))
    db.session.flush()
    bank.confirm(bank_line(date(2026, 2, 21), 14000), BankMatchKind.DEPOSIT_BATCH, batch.id)
    review = periods.blockers(FEB, today=TODAY)
    assert review.blockers == []
    assert [i.kind for i in review.warnings] == ["payout"]
    assert "po_feb ($97.00, 02/25/2026) has no bank line" in review.warnings[0].text


def test_the_current_month_is_not_over_and_days_count_up_to_today(make_patient):
    patient = make_patient()
    mo(patient, "25", date(2026, 3, 2))
    review = periods.blockers(TODAY, today=TODAY)
    assert not review.ended
    assert kinds(review.blockers) == [("day", date(2026, 3, 2))]
    with refused(match=r"March 2026 is not over yet \(today is 03/16/2026\)"):
        periods.close_month(TODAY, today=TODAY, override_reason="Anyway")


def test_a_month_with_blockers_is_refused_and_nothing_is_written(february):
    with refused("override_reason", match=r"February 2026 cannot be closed yet: 2 things to settle first"):
        periods.close_month(FEB, today=TODAY)
    with refused("override_reason"):
        periods.close_month(FEB, today=TODAY, override_reason="   ")
    assert periods.period_of(FEB) is None


def test_an_override_with_a_reason_closes_and_is_audited(february):
    period = periods.close_month(date(2026, 2, 17), today=TODAY,
                                 override_reason=" The 2/11 drawer was counted by the owner ")
    assert (period.month, period.status) == (FEB, PeriodStatus.CLOSED)
    assert period.reason == "The 2/11 drawer was counted by the owner"
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "period.close"))
    assert event.entity_type == "AccountingPeriod"
    assert event.changes["month"] == "2026-02"
    assert event.changes["override_reason"] == "The 2/11 drawer was counted by the owner"
    assert len(event.changes["blockers_overridden"]) == 2
    assert "02/11/2026 has payments or refunds and is not closed" in event.changes["blockers_overridden"][0]
    # Once closed, a second close is refused.
    with refused(match="February 2026 was already closed"):
        periods.close_month(FEB, today=TODAY, override_reason="again")


def test_a_clean_month_closes_without_a_reason(make_patient):
    patient = make_patient()
    mo(patient, "30", date(2026, 1, 20))
    daily_close.close_day(date(2026, 1, 20), Money.parse("30"), "", today=TODAY)
    period = periods.close_month(date(2026, 1, 5), today=TODAY, override_reason="not needed")
    assert period.status == PeriodStatus.CLOSED and period.reason == ""
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "period.close"))
    assert event.changes["blockers_overridden"] == [] and event.changes["override_reason"] is None


def test_an_earlier_open_month_is_a_warning(make_patient):
    patient = make_patient()
    mo(patient, "30", date(2026, 1, 20))
    daily_close.close_day(date(2026, 1, 20), Money.parse("30"), "", today=TODAY)
    review = periods.blockers(FEB, today=TODAY)
    assert review.blockers == [] and kinds(review.warnings) == [("earlier_month", date(2026, 1, 1))]
    periods.close_month(FEB, today=TODAY)  # allowed
    periods.close_month(date(2026, 1, 1), today=TODAY)
    assert periods.blockers(date(2026, 3, 1), today=TODAY).warnings == []


def test_nothing_posts_into_the_closed_month(february, catalog):
    patient = february["patient"]
    first, second, _ = february["payments"]
    batch = deposits.create_batch([first.id, second.id], today=TODAY)
    periods.close_month(FEB, today=TODAY, override_reason="Closing for the accountant")
    entries = count(JournalEntry)

    with refused("date_of_service", match="February 2026 are closed"):
        charge_service.post_charge(patient, charge_service.ChargeInput(service=catalog["infusion"],
                                                                       date_of_service=date(2026, 2, 27)), today=TODAY)
    with refused("received_date", match="February 2026 are closed"):
        mo(patient, "10", date(2026, 2, 27))
    with refused(match="February 2026 are closed"):
        payment_service.refund_payment(second, Money.parse("5"), "Overpaid", today=date(2026, 2, 27),
                                       check_number="1002")
    with refused("deposited_on", match="February 2026 are closed"):
        deposits.mark_deposited(batch, date(2026, 2, 27), "REF-1", today=TODAY)
    assert count(JournalEntry) == entries
    assert count(Charge) == 1 and count(Refund) == 1
    assert journal.balance(journal.BANK) == -Money.parse("60")  # only the refund check of 2/12


def test_reopen_needs_a_reason_and_a_closed_month_then_postings_work_again(february, catalog):
    patient = february["patient"]
    with refused(match="February 2026 is not closed"):
        periods.reopen_month(FEB, "Fix a date")
    periods.close_month(FEB, today=TODAY, override_reason="Closing for the accountant")
    with refused("reason", match="Say why February 2026 must be reopened"):
        periods.reopen_month(FEB, "  ")
    assert periods.period_of(FEB).status == PeriodStatus.CLOSED

    period = periods.reopen_month(date(2026, 2, 14), "  A February charge was missed  ")
    assert (period.status, period.reason) == (PeriodStatus.OPEN, "A February charge was missed")
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "period.reopen"))
    assert event.changes["reason"] == "A February charge was missed"
    assert event.changes["close_reason"] == "Closing for the accountant"

    receivables = journal.balance(journal.RECEIVABLES, patient_id=patient.id)
    charge_service.post_charge(patient, charge_service.ChargeInput(service=catalog["infusion"],
                                                                   date_of_service=date(2026, 2, 27)), today=TODAY)
    assert journal.balance(journal.RECEIVABLES, patient_id=patient.id) == receivables + Money.parse("450")
    # And it can be closed again (one row per month, its history in the audit log).
    periods.close_month(FEB, today=TODAY, override_reason="Closed again after the fix")
    assert count(AccountingPeriod) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action.like("period.%"))) == 3


def test_parse_month():
    assert periods.parse_month("2026-02") == FEB
    assert periods.parse_month("2026-2") is None and periods.parse_month("12") is None
    assert periods.parse_month("2026-13") is None and periods.parse_month("abcd-ef") is None
