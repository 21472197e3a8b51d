"""The day's figures for the daily close: SQL aggregates over payments and refunds of one date.

A payment counts on the day it was received whatever happened to it later (refunded, returned):
its refund or return counts on the day that was posted. So a closed day's figures never change,
and each day's totals tie to the journal entries dated that day.
"""

from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so

from billing.extensions import db
from billing.models import DailyClose, Payment, PaymentMethod, PaymentStatus, Refund, RefundKind
from billing.money import Money
from billing.reports.money_orders import on_hand_total

# Money that came in: everything but a card payment still waiting for (or refused by) Stripe.
RECEIVED = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED,
            PaymentStatus.RETURNED)


@dataclass(frozen=True)
class MethodTotal:
    method: PaymentMethod
    count: int
    total: Money


@dataclass(frozen=True)
class RefundTotal:
    method: PaymentMethod
    kind: RefundKind
    count: int
    total: Money

    @property
    def label(self) -> str:
        if self.kind == RefundKind.RETURN:
            return f"{self.method.label} returned"
        return f"{self.method.label} refunds"


@dataclass(frozen=True)
class DayFigures:
    day: date
    payments: list[MethodTotal]  # one row per method, in PaymentMethod order, zero rows included
    refunds: list[RefundTotal]  # only the kinds that happened
    on_hand: Money  # money orders received (any day) and not yet in a deposit batch, as of now

    @property
    def received(self) -> Money:
        return sum((row.total for row in self.payments), Money.zero())

    @property
    def refunded(self) -> Money:
        return sum((row.total for row in self.refunds), Money.zero())

    @property
    def net(self) -> Money:
        return self.received - self.refunded


def payments_by_method(day: date) -> list[MethodTotal]:
    """Payments received on `day` by method: one GROUP BY over the payments of that date."""
    rows = {method: (count, cents) for method, count, cents in db.session.execute(
        sa.select(Payment.method, sa.func.count(), sa.func.sum(Payment.amount_cents))
        .where(Payment.received_date == day, Payment.status.in_(RECEIVED))
        .group_by(Payment.method)
    )}
    return [MethodTotal(method, int(rows.get(method, (0, 0))[0]), Money(int(rows.get(method, (0, 0))[1])))
            for method in PaymentMethod]


def refunds_by_method(day: date) -> list[RefundTotal]:
    """Refunds and returns posted on `day` by the method of the payment they give back."""
    rows = db.session.execute(
        sa.select(Payment.method, Refund.kind, sa.func.count(), sa.func.sum(Refund.amount_cents))
        .join(Payment, Payment.id == Refund.payment_id)
        .where(Refund.refund_date == day)
        .group_by(Payment.method, Refund.kind)
    ).all()
    order = {method: i for i, method in enumerate(PaymentMethod)}
    return sorted((RefundTotal(method, kind, int(count), Money(int(cents))) for method, kind, count, cents in rows),
                  key=lambda r: (order[r.method], r.kind.value))


def day_figures(day: date) -> DayFigures:
    return DayFigures(day, payments_by_method(day), refunds_by_method(day), on_hand_total())


def close_for(day: date) -> DailyClose | None:
    return db.session.scalar(sa.select(DailyClose).where(DailyClose.day == day))


def recent_closes(limit: int = 30) -> list[DailyClose]:
    return list(db.session.scalars(sa.select(DailyClose).order_by(DailyClose.day.desc()).limit(limit)))


def unclosed_days(today: date, *, days: int = 62) -> list[date]:
    """Days of the last `days` (today included) with payments or refunds and no close, newest first."""
    since = today - timedelta(days=days - 1)
    active = sa.union(
        sa.select(Payment.received_date.label("day")).where(Payment.received_date.between(since, today),
                                                            Payment.status.in_(RECEIVED)),
        sa.select(Refund.refund_date.label("day")).where(Refund.refund_date.between(since, today)),
    ).subquery()
    closed = sa.select(DailyClose.day).where(DailyClose.day.between(since, today))
    return list(db.session.scalars(
        sa.select(active.c.day).where(active.c.day.not_in(closed)).order_by(active.c.day.desc())
    ))


def day_payments(day: date) -> list[Payment]:
    """The payments received on `day`, in the order they were taken, with their patients."""
    return list(db.session.scalars(
        sa.select(Payment).where(Payment.received_date == day, Payment.status.in_(RECEIVED))
        .order_by(Payment.id).options(so.selectinload(Payment.patient))
    ))
