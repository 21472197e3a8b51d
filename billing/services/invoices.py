"""Issuing and voiding invoices."""

from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa
import sqlalchemy.orm as so

from billing.extensions import db
from billing.models import Charge, ChargeStatus, ClinicSettings, Invoice, InvoiceLine, InvoiceStatus, Patient
from billing.models.types import utcnow
from billing.money import Money
from billing.services import ServiceError, audit, primary_key
from billing.services.numbering import next_number


# The patient's open charges, locked; with their services (the lines' descriptions), not their
# providers, and their package only for the rare charge that sells one.
_OPEN_CHARGES = (
    sa.select(Charge).where(Charge.patient_id == sa.bindparam("patient_id"), Charge.status == ChargeStatus.OPEN)
    .order_by(Charge.date_of_service, Charge.id).with_for_update(of=Charge)
    .options(so.lazyload(Charge.provider), so.lazyload(Charge.package))
)
_INSERT_LINES = sa.insert(InvoiceLine.__table__)


def issue_invoice(patient: Patient, *, today: date, charge_ids: Sequence[int] | None = None) -> Invoice:
    """Issue an invoice for the patient's open charges (all, or those chosen), numbered without gaps
    per year. The lines copy the charges as they stand; the invoice never changes after. No journal
    entry: the charges already posted to receivables. Raises ServiceError when there is nothing to
    invoice or a chosen charge is not open."""
    patient_id = primary_key(patient)
    query = _OPEN_CHARGES if charge_ids is None else _OPEN_CHARGES.where(Charge.id.in_(charge_ids))
    charges = list(db.session.scalars(query, {"patient_id": patient_id}))
    if charge_ids is not None and len(charges) != len(set(charge_ids)):
        raise ServiceError("Some of the chosen charges are already invoiced or voided; reload the page.")
    if not charges:
        raise ServiceError("There are no open charges to invoice.")
    total = sum((Money(c.amount_cents) for c in charges), Money.zero())
    invoice = Invoice(
        patient_id=patient_id,
        number=next_number("invoice", today.year, ClinicSettings.invoice_prefix),
        status=InvoiceStatus.OPEN if total else InvoiceStatus.PAID,
        issue_date=today, issued_at=utcnow(), issued_by_id=audit.current_actor_id(), total_cents=total.cents,
    )
    for charge in charges:
        charge.status = ChargeStatus.INVOICED
        charge.invoice = invoice
    db.session.add(invoice)
    db.session.flush()  # the invoice and its charges in one unit of work
    # The lines never change either: inserted without the unit of work (invoice.lines loads them).
    db.session.execute(_INSERT_LINES, [
        {"invoice_id": invoice.id, "charge_id": c.id, "date_of_service": c.date_of_service,
         "description": c.package.name if c.package_id else c.service.name,
         "code": "" if c.package_id else c.service.cpt_code, "units": c.units,
         "unit_price_cents": c.unit_price_cents, "discount_cents": c.discount_cents, "amount_cents": c.amount_cents}
        for c in charges
    ])
    audit.record("invoice.issue", invoice, changes={"number": invoice.number, "total": total.plain(),
                                                    "charges": [c.id for c in charges]})
    return invoice


def lock_invoice(invoice_id: int, *, missing_ok: bool = False) -> Invoice | None:
    """The invoice row, freshly read and locked until commit (so two payments cannot both see its
    old balance). Its lines are not reloaded: they never change."""
    query = (sa.select(Invoice).where(Invoice.id == invoice_id).with_for_update()
             .options(so.lazyload(Invoice.lines)).execution_options(populate_existing=True))
    invoice = db.session.scalars(query).one_or_none()
    if invoice is None and not missing_ok:
        raise LookupError(f"No invoice {invoice_id}")
    return invoice


def void_invoice(invoice: Invoice, reason: str, *, today: date) -> None:
    """Void an issued invoice: what was paid on it becomes patient credit, adjustments are reversed,
    and its charges are open again (to be voided or invoiced anew); `today` is kept as its void day.
    Writes one journal entry when money moves. Raises ServiceError without a reason or for an invoice already void."""
    from billing.services.payments import unapply_invoice  # payments imports this module

    if not reason.strip():
        raise ServiceError("Say why the invoice is voided.", "reason")
    invoice = lock_invoice(primary_key(invoice))
    if invoice.status == InvoiceStatus.VOID:
        raise ServiceError("This invoice is already void.")
    unapply_invoice(invoice, today=today, description=f"Void {invoice.number}: {reason.strip()}")
    invoice.status = InvoiceStatus.VOID
    invoice.void_reason = reason.strip()
    invoice.voided_on = today
    for charge in db.session.scalars(sa.select(Charge).where(Charge.invoice_id == invoice.id)):
        charge.status = ChargeStatus.OPEN
        charge.invoice_id = None
    audit.record("invoice.void", invoice, changes={"reason": reason.strip()})
