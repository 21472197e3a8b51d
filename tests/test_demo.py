"""The demo clinic's books: seed_activity plays card payments, Stripe payouts, money-order deposits,
CareCredit fundings and daily closes through the services, and what it leaves ties out."""

import random
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from billing.demo import OPEN_DAYS, seed_activity, seed_catalog
from billing.extensions import db
from billing.models import (
    CardDetails, CareCreditFunding, CareCreditFundingLine, DailyClose, DepositBatch, DepositStatus, JournalLine,
    Payment, PaymentMethod, PaymentStatus, Refund, StripeBalanceTransaction, StripePayout,
)
from billing.money import Money
from billing.reports import reconciliation as rec
from billing.reports.money_orders import on_hand_total
from billing.services import fundings, journal

TODAY = date(2026, 6, 17)  # a Wednesday: three months from March 17
WEEKDAYS = [d for d in (date(2026, 3, 17) + timedelta(n) for n in range((TODAY - date(2026, 3, 17)).days))
            if d.weekday() < 5]


def _seed(seed: int = 1) -> dict[str, int]:
    seed_catalog()
    db.session.flush()
    return seed_activity(random.Random(seed), today=TODAY)


@pytest.fixture
def demo(app) -> dict[str, int]:
    return _seed()


def total(query) -> Money:
    return Money(int(db.session.scalar(query) or 0))


def test_the_demo_has_the_bookkeepers_side(demo):
    count = lambda model: db.session.scalar(sa.select(sa.func.count()).select_from(model))  # noqa: E731
    card = db.session.scalar(sa.select(sa.func.count()).select_from(Payment).where(
        Payment.method == PaymentMethod.CARD, Payment.status == PaymentStatus.SUCCEEDED))
    assert demo["card_payments"] == card > 0
    assert 0.3 < card / demo["payments"] < 0.6  # about 45 % of payments
    assert demo["payouts"] == count(StripePayout) >= 10
    assert demo["deposits"] == count(DepositBatch) >= 10
    assert demo["fundings"] == count(CareCreditFunding) > 0
    assert demo["daily_closes"] == count(DailyClose) == len(WEEKDAYS) - OPEN_DAYS

    # Every card payment came with its charge and card; every payout was posted from Stripe-shaped rows.
    details = db.session.scalars(sa.select(CardDetails).join(Payment).where(
        Payment.status == PaymentStatus.SUCCEEDED)).all()
    assert all(d.charge_id.startswith("ch_demo_") and d.payment_intent_id.startswith("pi_demo_")
               and len(d.last4) == 4 and d.brand for d in details)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StripePayout).where(~StripePayout.posted)) == 0
    charges = db.session.scalars(sa.select(StripeBalanceTransaction)).all()
    assert charges and all(t.payment_id is not None and t.type == "charge" for t in charges)
    assert all(t.fee_cents == (t.gross_cents * 29 + 500) // 1000 + 30 for t in charges)
    for payout in db.session.scalars(sa.select(StripePayout)):
        assert payout.arrival_date.weekday() == 1 and payout.payout_id.startswith("po_demo_")
        assert payout.amount_cents == sum(t.net_cents for t in charges if t.payout_id == payout.id)

    # CareCredit funded every charge it was asked for, at the plan's fee, two business days later.
    lines = db.session.scalars(sa.select(CareCreditFundingLine)).all()
    assert lines and all(line.payment_id is not None for line in lines)
    for line in lines:
        payment = db.session.get(Payment, line.payment_id)
        assert line.gross_cents == payment.amount_cents
        assert line.fee_cents == (payment.amount_cents * payment.carecredit.merchant_fee_bps + 5000) // 10000
        assert WEEKDAYS.index(line.funding.funded_on) == WEEKDAYS.index(payment.received_date) + 2

    # The desk closed every weekday but the last two, with the drawer counted as expected.
    closes = db.session.scalars(sa.select(DailyClose).order_by(DailyClose.day)).all()
    assert [c.day for c in closes] == WEEKDAYS[:-OPEN_DAYS]
    assert all(c.counted_cents == c.expected_cents for c in closes)
    assert any(c.expected_cents > 0 for c in closes)

    # The refund by check of an overpaid money order is still there.
    [refund] = db.session.scalars(sa.select(Refund)).all()
    assert refund.check_number and db.session.get(Payment, refund.payment_id).method == PaymentMethod.MONEY_ORDER


def test_the_demo_books_tie_out(demo):
    unbalanced = db.session.execute(sa.select(JournalLine.entry_id).group_by(JournalLine.entry_id)
                                    .having(sa.func.sum(JournalLine.amount_cents) != 0)).all()
    assert unbalanced == []

    paid_out = sa.select(StripeBalanceTransaction.payment_id).where(StripeBalanceTransaction.payment_id.is_not(None))
    not_paid_out = total(sa.select(sa.func.sum(Payment.amount_cents)).where(
        Payment.method == PaymentMethod.CARD, Payment.status == PaymentStatus.SUCCEEDED, Payment.id.not_in(paid_out)))
    assert not_paid_out.is_positive  # the last days' card payments wait for next Tuesday's payout
    assert journal.balance(journal.STRIPE_CLEARING) == not_paid_out

    open_batches = total(sa.select(sa.func.sum(DepositBatch.total_cents)).where(
        DepositBatch.status == DepositStatus.OPEN))
    assert journal.balance(journal.UNDEPOSITED) == on_hand_total() + open_batches
    assert (on_hand_total() + open_batches).is_positive

    funded = sa.select(CareCreditFundingLine.payment_id).where(CareCreditFundingLine.payment_id.is_not(None))
    unfunded = total(sa.select(sa.func.sum(Payment.amount_cents)).where(
        Payment.method == PaymentMethod.CARECREDIT, Payment.status == PaymentStatus.SUCCEEDED,
        Payment.id.not_in(funded)))
    assert journal.balance(journal.CARECREDIT_RECEIVABLE) == unfunded == fundings.unfunded_total()[1]

    bank_in = (total(sa.select(sa.func.sum(StripePayout.amount_cents)))
               + total(sa.select(sa.func.sum(DepositBatch.total_cents)).where(
                   DepositBatch.status == DepositStatus.DEPOSITED))
               + total(sa.select(sa.func.sum(CareCreditFunding.net_cents))))
    refunded_by_check = total(sa.select(sa.func.sum(Refund.amount_cents)))
    assert journal.balance(journal.BANK) == bank_in - refunded_by_check
    assert journal.balance(journal.MERCHANT_FEES) == total(sa.select(sa.func.sum(StripePayout.fee_cents)))
    assert journal.balance(journal.FINANCING_FEES) == total(sa.select(sa.func.sum(CareCreditFunding.fee_cents)))


@pytest.mark.parametrize("month", [date(2026, 4, 1), date(2026, 5, 1)])
def test_the_demo_middle_months_reconcile_with_no_difference(demo, month):
    report = rec.reconciliation(month)

    for figures in report.methods:
        assert (figures.difference, figures.differing, figures.fee_mismatches) == (Money.zero(), 0, 0), figures.method
    for method in (PaymentMethod.CARD, PaymentMethod.MONEY_ORDER, PaymentMethod.CARECREDIT):
        assert report.method(method).count > 0 and report.method(method).settled.is_positive
    assert report.method(PaymentMethod.CARD).fees.is_positive and report.carecredit.fees.is_positive
    for account in report.clearing:
        assert account.unexplained == Money.zero(), account.code
        assert account.journal_balance == journal.balance(account.code, as_of=report.end)
    assert report.receivables.difference == Money.zero()
    debits, credits = report.trial_totals
    assert debits == credits and debits.is_positive


def test_the_same_seed_gives_the_same_books(app):
    def books() -> tuple:
        return (
            db.session.execute(sa.select(StripePayout.payout_id, StripePayout.arrival_date, StripePayout.amount_cents,
                                         StripePayout.fee_cents).order_by(StripePayout.payout_id)).all(),
            db.session.execute(sa.select(CareCreditFunding.reference, CareCreditFunding.funded_on,
                                         CareCreditFunding.gross_cents, CareCreditFunding.fee_cents)
                               .order_by(CareCreditFunding.reference)).all(),
            db.session.execute(sa.select(DepositBatch.number, DepositBatch.status, DepositBatch.total_cents,
                                         DepositBatch.deposited_on).order_by(DepositBatch.number)).all(),
            db.session.execute(sa.select(DailyClose.day, DailyClose.expected_cents).order_by(DailyClose.day)).all(),
        )

    nested = db.session.begin_nested()
    first_stats = _seed(5)
    first = books()
    nested.rollback()
    assert books() == ([], [], [], [])
    second_stats = _seed(5)

    assert (second_stats, books()) == (first_stats, first)
    assert first_stats["payouts"] > 0 and first[0]
