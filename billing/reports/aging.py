"""A/R aging as of any date: what each patient's issued invoices still asked for at the end of that day,
by days since the invoice date, in SQL.

An invoice's balance as of a day is its total less the allocations and adjustments booked by then.
An allocation is booked on its payment's received date; one without a payment (credit applied) or
undoing another (a refund, a void) on the clinic-local day it was written — the same rule as the
patient statement. Invoices have no due date: they are due when issued, so an invoice dated the
day itself is current. A void invoice counts until the day before its void day (voided_on) and is left
out from that day on; one with no void day (none was recorded) is left out altogether.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

import sqlalchemy as sa

from billing.extensions import db
from billing.models import Adjustment, Allocation, Invoice, InvoiceStatus, JournalEntry, JournalLine, Patient, Payment
from billing.money import Money
from billing.services import journal
from billing.timeutil import clinic_tz

# (label, the oldest age in days the bucket holds; None: no limit). Same buckets as the statement.
BUCKETS = (("Current", 0), ("1–30", 30), ("31–60", 60), ("61–90", 90), ("90+", None))


@dataclass(frozen=True)
class AgingRow:
    patient_id: int | None  # None on the total row
    account_number: str
    name: str
    buckets: tuple[Money, ...]  # in BUCKETS order
    receivable: Money  # the patient's Patient receivables balance in the journal as of the day

    @property
    def total(self) -> Money:
        return sum(self.buckets, Money.zero())

    @property
    def uninvoiced(self) -> Money:
        """Receivables not on an issued invoice (charges not yet invoiced, or on a voided one)."""
        return self.receivable - self.total


@dataclass(frozen=True)
class Aging:
    as_of: date
    rows: list[AgingRow]  # patients with something due, by name
    total: AgingRow


def _end_of_day_utc(day: date) -> datetime:
    """The UTC moment the clinic-local day after `day` begins."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=clinic_tz()).astimezone(timezone.utc)


def invoice_dues(as_of: date) -> sa.Subquery:
    """One row per issued invoice dated up to `as_of`: patient_id, bucket (index into BUCKETS), due."""
    booked = sa.case(
        (sa.and_(Payment.received_date.is_not(None), Allocation.reverses_id.is_(None)), Payment.received_date <= as_of),
        else_=Allocation.created_at < _end_of_day_utc(as_of),
    )
    settled = (sa.select(Allocation.invoice_id, sa.func.sum(Allocation.amount_cents).label("cents"))
               .outerjoin(Payment, Payment.id == Allocation.payment_id).where(booked)
               .group_by(Allocation.invoice_id).subquery())
    adjusted = (sa.select(Adjustment.invoice_id, sa.func.sum(Adjustment.amount_cents).label("cents"))
                .where(Adjustment.adjustment_date <= as_of).group_by(Adjustment.invoice_id).subquery())
    bucket = sa.case(
        *[(Invoice.issue_date >= as_of - timedelta(days=oldest), i) for i, (_, oldest) in enumerate(BUCKETS)
          if oldest is not None],
        else_=len(BUCKETS) - 1,
    )
    due = Invoice.total_cents - sa.func.coalesce(settled.c.cents, 0) - sa.func.coalesce(adjusted.c.cents, 0)
    return (sa.select(Invoice.patient_id, bucket.label("bucket"), due.label("due"))
            .outerjoin(settled, settled.c.invoice_id == Invoice.id)
            .outerjoin(adjusted, adjusted.c.invoice_id == Invoice.id)
            .where(Invoice.issue_date <= as_of,
                   sa.or_(Invoice.status.in_((InvoiceStatus.OPEN, InvoiceStatus.PAID)),
                          sa.and_(Invoice.status == InvoiceStatus.VOID, Invoice.voided_on > as_of)))
            .subquery())


def _bucket_sums(dues: sa.Subquery) -> list:
    return [sa.func.coalesce(sa.func.sum(sa.case((dues.c.bucket == i, dues.c.due), else_=0)), 0)
            for i in range(len(BUCKETS))]


def aging(as_of: date) -> Aging:
    """Open invoice balances at the end of `as_of` per patient and in total, by age bucket."""
    dues = invoice_dues(as_of)
    receivables = (sa.select(JournalLine.patient_id, sa.func.sum(JournalLine.amount_cents).label("cents"))
                   .join(JournalEntry)
                   .where(JournalLine.account_id == journal.account_id(journal.RECEIVABLES),
                          JournalEntry.entry_date <= as_of)
                   .group_by(JournalLine.patient_id).subquery())
    per_patient = (sa.select(dues.c.patient_id, *_bucket_sums(dues)).where(dues.c.due > 0)
                   .group_by(dues.c.patient_id).subquery())
    bucket_columns = [c for c in per_patient.c if c.name != "patient_id"]
    rows = db.session.execute(
        sa.select(Patient.id, Patient.account_number, Patient.last_name, Patient.first_name,
                  sa.func.coalesce(receivables.c.cents, 0), *bucket_columns)
        .join(per_patient, per_patient.c.patient_id == Patient.id)
        .outerjoin(receivables, receivables.c.patient_id == Patient.id)
        .order_by(Patient.last_name, Patient.first_name, Patient.id)
    )
    result = [
        AgingRow(pid, number, f"{last}, {first}", tuple(Money(int(c)) for c in cents), Money(int(receivable)))
        for pid, number, last, first, receivable, *cents in rows
    ]
    total_row = db.session.execute(sa.select(*_bucket_sums(dues)).where(dues.c.due > 0)).one()
    total_receivable = journal.balance(journal.RECEIVABLES, as_of=as_of)
    total = AgingRow(None, "", "Total", tuple(Money(int(c)) for c in total_row), total_receivable)
    return Aging(as_of, result, total)
