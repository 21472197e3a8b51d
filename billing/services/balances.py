"""What is owed and what is held: read-only sums used by the services and the pages."""

from dataclasses import dataclass

import sqlalchemy as sa

from billing.extensions import db
from billing.models import (
    Adjustment, Allocation, Charge, ChargeStatus, Invoice, InvoiceStatus, PackagePurchase, Patient, Refund,
)
from billing.money import Money
from billing.services import journal


def invoice_paid(invoice_id: int) -> Money:
    return Money(int(db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Allocation.amount_cents), 0)).where(Allocation.invoice_id == invoice_id)
    )))


def invoice_adjusted(invoice_id: int) -> Money:
    return Money(int(db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Adjustment.amount_cents), 0)).where(Adjustment.invoice_id == invoice_id)
    )))


_PAID_AND_ADJUSTED = sa.select(
    sa.select(sa.func.coalesce(sa.func.sum(Allocation.amount_cents), 0))
    .where(Allocation.invoice_id == sa.bindparam("invoice_id")).scalar_subquery()
    + sa.select(sa.func.coalesce(sa.func.sum(Adjustment.amount_cents), 0))
    .where(Adjustment.invoice_id == sa.bindparam("invoice_id")).scalar_subquery()
)


def invoice_balance(invoice: Invoice) -> Money:
    """What is still due on an issued invoice (zero for void ones)."""
    if invoice.status in (InvoiceStatus.VOID, InvoiceStatus.DRAFT):
        return Money.zero()
    paid_and_adjusted = db.session.scalar(_PAID_AND_ADJUSTED, {"invoice_id": invoice.id})
    return Money(invoice.total_cents) - Money(int(paid_and_adjusted))


def payment_refunded(payment_id: int) -> Money:
    return Money(int(db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Refund.amount_cents), 0)).where(Refund.payment_id == payment_id)
    )))


def patient_credit(patient_id: int) -> Money:
    """Money the clinic holds for the patient that is not applied to any invoice."""
    return -journal.balance(journal.PATIENT_CREDITS, patient_id=patient_id)


def patient_receivable(patient_id: int) -> Money:
    """Charges posted and not yet paid or adjusted, invoiced or not."""
    return journal.balance(journal.RECEIVABLES, patient_id=patient_id)


def open_invoices(patient_id: int) -> list[Invoice]:
    """The patient's open invoices, oldest first (the default order payments are applied in)."""
    return list(db.session.scalars(
        sa.select(Invoice).where(Invoice.patient_id == patient_id, Invoice.status == InvoiceStatus.OPEN)
        .order_by(Invoice.issue_date, Invoice.id)
    ))


def uninvoiced_charges(patient_id: int) -> list[Charge]:
    return list(db.session.scalars(
        sa.select(Charge).where(Charge.patient_id == patient_id, Charge.status == ChargeStatus.OPEN)
        .order_by(Charge.date_of_service, Charge.id)
    ))


def package_units_used(purchase_id: int) -> int:
    """Units drawn by visits that are not void (a visit of several units draws as many)."""
    return int(db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Charge.units), 0))
        .where(Charge.package_purchase_id == purchase_id, Charge.status != ChargeStatus.VOID)
    ))


def package_units_left(purchase: PackagePurchase) -> int:
    return purchase.units_bought - purchase.units_refunded - package_units_used(purchase.id)


@dataclass(frozen=True)
class PatientSummary:
    due: Money  # on issued invoices
    uninvoiced: Money  # posted charges not yet on an invoice
    credit: Money
    package_units: int

    @property
    def balance(self) -> Money:
        """What the patient owes overall, less credit (negative: the clinic owes them)."""
        return self.due + self.uninvoiced - self.credit


def patient_summary(patient: Patient) -> PatientSummary:
    due = sum((invoice_balance(i) for i in open_invoices(patient.id)), Money.zero())
    uninvoiced = sum((Money(c.amount_cents) for c in uninvoiced_charges(patient.id)), Money.zero())
    purchases = db.session.scalars(sa.select(PackagePurchase).where(PackagePurchase.patient_id == patient.id))
    units = sum(package_units_left(p) for p in purchases if _purchase_live(p))
    return PatientSummary(due=due, uninvoiced=uninvoiced, credit=patient_credit(patient.id), package_units=units)


def _purchase_live(purchase: PackagePurchase) -> bool:
    return db.session.get(Charge, purchase.charge_id).status != ChargeStatus.VOID
