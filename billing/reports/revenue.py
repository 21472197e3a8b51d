"""Revenue by service, provider and month; payments by method and month; refunds and disputes.
SQL aggregates: one GROUP BY per table, nothing summed row by row in Python."""

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from billing.extensions import db
from billing.models import (
    Charge, ChargeStatus, Dispute, Patient, Payment, PaymentMethod, PaymentStatus, Provider, Refund, RefundKind,
    Service,
)
from billing.money import Money

# Payments that were received (a refund or a return is reported on its own, on its own date).
RECEIVED = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED,
            PaymentStatus.RETURNED)


def _month(column) -> tuple:
    return sa.extract("year", column), sa.extract("month", column)


def _charges_in(start: date, end: date):
    return (Charge.status != ChargeStatus.VOID, Charge.date_of_service >= start, Charge.date_of_service <= end)


@dataclass(frozen=True)
class Figure:
    label: str
    count: int
    amount: Money


def revenue_by_service(start: date, end: date) -> list[Figure]:
    """Charges not void with a date of service in the period, per service (largest first)."""
    rows = db.session.execute(
        sa.select(Service.code, Service.name, sa.func.count(Charge.id), sa.func.sum(Charge.amount_cents))
        .join(Charge.service).where(*_charges_in(start, end))
        .group_by(Service.id, Service.code, Service.name)
        .order_by(sa.func.sum(Charge.amount_cents).desc(), Service.code)
    )
    return [Figure(f"{name} ({code})", int(n), Money(int(cents))) for code, name, n, cents in rows]


def revenue_by_provider(start: date, end: date) -> list[Figure]:
    """Charges not void in the period, per rendering provider (charges without one together)."""
    rows = db.session.execute(
        sa.select(Provider.name, Provider.credentials, sa.func.count(Charge.id), sa.func.sum(Charge.amount_cents))
        .outerjoin(Provider, Provider.id == Charge.provider_id).where(*_charges_in(start, end))
        .group_by(Provider.id, Provider.name, Provider.credentials)
        .order_by(sa.func.sum(Charge.amount_cents).desc(), Provider.name)
    )
    return [Figure(f"{name}, {cred}" if cred else (name or "No provider"), int(n), Money(int(cents)))
            for name, cred, n, cents in rows]


def revenue_by_month(start: date, end: date) -> list[Figure]:
    """Charges not void in the period, per month of service ("2026-03"), in order."""
    year, month = _month(Charge.date_of_service)
    rows = db.session.execute(
        sa.select(year, month, sa.func.count(Charge.id), sa.func.sum(Charge.amount_cents))
        .where(*_charges_in(start, end)).group_by(year, month).order_by(year, month)
    )
    return [Figure(f"{int(y):04d}-{int(m):02d}", int(n), Money(int(cents))) for y, m, n, cents in rows]


@dataclass(frozen=True)
class MethodMonth:
    month: str  # "2026-03"
    method: PaymentMethod
    count: int
    amount: Money


def payments_by_method(start: date, end: date) -> list[MethodMonth]:
    """Payments received in the period, per month and method (refunds are not netted here)."""
    year, month = _month(Payment.received_date)
    rows = db.session.execute(
        sa.select(year, month, Payment.method, sa.func.count(Payment.id), sa.func.sum(Payment.amount_cents))
        .where(Payment.status.in_(RECEIVED), Payment.received_date >= start, Payment.received_date <= end)
        .group_by(year, month, Payment.method).order_by(year, month, Payment.method)
    )
    return [MethodMonth(f"{int(y):04d}-{int(m):02d}", PaymentMethod(method), int(n), Money(int(cents)))
            for y, m, method, n, cents in rows]


def method_totals(start: date, end: date) -> list[Figure]:
    """Payments received in the period per method, every method listed (in PaymentMethod order)."""
    sums = {PaymentMethod(method): (int(n), Money(int(cents))) for method, n, cents in db.session.execute(
        sa.select(Payment.method, sa.func.count(Payment.id), sa.func.sum(Payment.amount_cents))
        .where(Payment.status.in_(RECEIVED), Payment.received_date >= start, Payment.received_date <= end)
        .group_by(Payment.method)
    )}
    return [Figure(m.label, *sums.get(m, (0, Money.zero()))) for m in PaymentMethod]


@dataclass(frozen=True)
class RefundRow:
    day: date
    kind: str  # "Refund", "Return", "Dispute"
    method: PaymentMethod
    payment_id: int
    account_number: str
    patient: str
    amount: Money
    detail: str  # reason, or the dispute's status and outcome


def refunds_and_disputes(start: date, end: date) -> list[RefundRow]:
    """Refunds and returns dated in the period, and disputes opened in it, by date."""
    refunds = db.session.execute(
        sa.select(Refund.refund_date, Refund.kind, Payment.method, Payment.id, Patient.account_number,
                  Patient.last_name, Patient.first_name, Refund.amount_cents, Refund.reason)
        .join(Refund.payment).join(Payment.patient)
        .where(Refund.refund_date >= start, Refund.refund_date <= end)
    )
    disputes = db.session.execute(
        sa.select(Dispute.opened_on, Dispute.reason, Payment.method, Payment.id, Patient.account_number,
                  Patient.last_name, Patient.first_name, Dispute.amount_cents, Dispute.stripe_status,
                  Dispute.outcome, Dispute.closed_on)
        .join(Dispute.payment).join(Payment.patient)
        .where(Dispute.opened_on >= start, Dispute.opened_on <= end)
    )
    rows = [RefundRow(day, "Return" if kind == RefundKind.RETURN else "Refund", PaymentMethod(method), pid, number,
                      f"{last}, {first}", Money(int(cents)), reason)
            for day, kind, method, pid, number, last, first, cents, reason in refunds]
    for day, reason, method, pid, number, last, first, cents, status, outcome, closed in disputes:
        state = f"{outcome} on {closed:%Y-%m-%d}" if outcome else (status or "open")
        rows.append(RefundRow(day, "Dispute", PaymentMethod(method), pid, number, f"{last}, {first}",
                              Money(int(cents)), f"{reason} — {state}" if reason else state))
    return sorted(rows, key=lambda r: (r.day, r.kind, r.payment_id))


def refund_totals(start: date, end: date) -> dict[str, Money]:
    """Refunds, returns and disputes opened in the period, summed in SQL."""
    kinds = dict(db.session.execute(
        sa.select(Refund.kind, sa.func.sum(Refund.amount_cents))
        .where(Refund.refund_date >= start, Refund.refund_date <= end).group_by(Refund.kind)).all())
    disputed = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Dispute.amount_cents), 0))
        .where(Dispute.opened_on >= start, Dispute.opened_on <= end))
    return {"Refunds": Money(int(kinds.get(RefundKind.REFUND, 0) or 0)),
            "Returns": Money(int(kinds.get(RefundKind.RETURN, 0) or 0)),
            "Disputes": Money(int(disputed))}
