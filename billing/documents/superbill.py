"""The superbill: what a self-pay patient sends their insurer to claim out-of-network reimbursement."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from billing.documents import Document, letterhead, render_pdf
from billing.extensions import db
from billing.models import Charge, ChargeStatus, Invoice, InvoiceStatus, Patient
from billing.money import Money
from billing.services import ServiceError
from billing.services.balances import invoice_paid
from billing.services.estimates import missing_identifiers
from billing.timeutil import to_clinic_time

ADDITIONAL_HOUR_CODE = "96366"
PLACE_OF_SERVICE = {"code": "11", "name": "Office"}


def additional_infusion_hours(start: datetime, stop: datetime) -> int:
    """Units of +96366 for an infusion: each hour after the first, where the last one counts only with
    more than 30 minutes past the hour (10:00–12:40 → 2, 10:00–11:25 → 0, 10:00–11:31 → 1)."""
    minutes_after_first_hour = int((stop - start).total_seconds()) // 60 - 60
    if minutes_after_first_hour <= 0:
        return 0
    hours, rest = divmod(minutes_after_first_hour, 60)
    return hours + (1 if rest > 30 else 0)


@dataclass(frozen=True)
class _Infusion:
    start: datetime
    stop: datetime

    @property
    def label(self) -> str:
        minutes = int((self.stop - self.start).total_seconds()) // 60
        return (f"Infusion {to_clinic_time(self.start):%H:%M}–{to_clinic_time(self.stop):%H:%M} "
                f"({minutes // 60} h {minutes % 60:02d} min)")


def _paid_by_charge(invoice_ids: set[int]) -> dict[int, Money]:
    """What was paid toward each invoiced charge: an invoice's payments cover its lines in order."""
    paid: dict[int, Money] = {}
    for invoice in db.session.scalars(sa.select(Invoice).where(Invoice.id.in_(invoice_ids))):
        left = invoice_paid(invoice.id)
        for line in invoice.lines:
            share = min(left, Money(line.amount_cents)) if left.is_positive else Money.zero()
            paid[line.charge_id] = share
            left -= share
    return paid


def superbill_data(patient: Patient, start: date, end: date) -> dict[str, Any]:
    """The plain data of a superbill for the patient's services dated start..end (inclusive).

    Raises ServiceError for an empty or reversed range, no services in it, or, naming each one, the
    fields an insurer needs that are missing: the clinic's NPI and TIN, a rendering provider's NPI, a
    diagnosis on a date of service."""
    if end < start:
        raise ServiceError("The superbill's period must end on or after the day it starts.", "end")
    charges = list(db.session.scalars(
        sa.select(Charge).where(Charge.patient_id == patient.id, Charge.status != ChargeStatus.VOID,
                                Charge.date_of_service >= start, Charge.date_of_service <= end)
        .order_by(Charge.date_of_service, Charge.id)))
    if not charges:
        raise ServiceError(f"{patient.full_name} has no services between {start:%m/%d/%Y} and {end:%m/%d/%Y}.")

    by_day: dict[date, list[Charge]] = defaultdict(list)
    for charge in charges:
        by_day[charge.date_of_service].append(charge)
    providers = {c.provider.id: c.provider for c in charges if c.provider is not None}
    missing = []
    for provider in [None, *providers.values()]:
        missing += [m for m in missing_identifiers(provider) if m not in missing]
    undiagnosed = [day for day, day_charges in by_day.items()
                   if any(c.package_id is None for c in day_charges) and not any(c.icd10_codes for c in day_charges)]
    if undiagnosed:
        missing.append("a diagnosis (ICD-10) on the charges of " + ", ".join(f"{d:%m/%d/%Y}" for d in undiagnosed))
    if missing:
        raise ServiceError("This superbill cannot be produced yet. Missing: " + "; ".join(missing) + ".")

    invoice_ids = {c.invoice_id for c in charges if c.invoice_id is not None}
    paid = _paid_by_charge(invoice_ids)
    paid_invoices = set(db.session.scalars(
        sa.select(Invoice.id).where(Invoice.id.in_(invoice_ids), Invoice.status == InvoiceStatus.PAID)))
    visits = []
    for day, day_charges in by_day.items():
        timed = next((c for c in day_charges if c.infusion_start and c.infusion_stop), None)
        infusion = _Infusion(timed.infusion_start, timed.infusion_stop) if timed else None
        diagnoses = list(dict.fromkeys(code for c in day_charges for code in c.icd10_codes.split()))
        lines = [_line(c, infusion, paid.get(c.id, Money.zero()), diagnoses) for c in day_charges]
        fee = sum((line["fee"] for line in lines), Money.zero())
        paid_for_day = sum((line["paid"] for line in lines), Money.zero())
        visits.append({
            "date": day, "diagnoses": diagnoses, "infusion": infusion.label if infusion else "",
            "providers": list(dict.fromkeys(line["provider"] for line in lines if line["provider"])),
            "lines": lines, "fee": fee, "paid": paid_for_day, "balance": fee - paid_for_day,
            "paid_in_full": all(c.invoice_id in paid_invoices for c in day_charges),
        })
    total_fee = sum((v["fee"] for v in visits), Money.zero())
    total_paid = sum((v["paid"] for v in visits), Money.zero())
    clinic = letterhead()
    return {
        "patient": {"name": patient.full_name, "date_of_birth": patient.date_of_birth,
                    "account_number": patient.account_number, "address_lines": patient.address_lines},
        "billing_provider": {"name": clinic["name"], "npi": clinic["npi"], "tin": clinic["tin"],
                             "address_lines": clinic["address_lines"], "phone": clinic["phone"]},
        "rendering_providers": [{"name": p.display_name, "npi": p.npi} for p in providers.values()],
        "place_of_service": PLACE_OF_SERVICE,
        "start": start, "end": end, "visits": visits,
        "total_fee": total_fee, "total_paid": total_paid, "balance": total_fee - total_paid,
        "all_paid_in_full": all(v["paid_in_full"] for v in visits),
    }


def _line(charge: Charge, infusion: _Infusion | None, paid: Money, visit_diagnoses: list[str]) -> dict[str, Any]:
    """One service line; a line without its own diagnosis points to the visit's."""
    service = charge.service
    code = "" if charge.package_id else service.cpt_code
    units = charge.units
    if code == ADDITIONAL_HOUR_CODE and infusion is not None:
        units = additional_infusion_hours(infusion.start, infusion.stop)
    return {
        "code": code, "units": units,
        "description": f"{charge.package.name} (prepaid package)" if charge.package_id else service.name,
        "ndc": service.ndc if not charge.package_id else "",
        "note": charge.price_reason if charge.package_purchase_id else "",
        "provider": charge.provider.display_name if charge.provider else "",
        "diagnoses": charge.icd10_codes.split() or ([] if charge.package_id else visit_diagnoses),
        "fee": Money(charge.amount_cents), "paid": paid,
    }


def superbill_pdf(patient: Patient, start: date, end: date) -> Document:
    """The superbill as a PDF (raises ServiceError like superbill_data)."""
    data = superbill_data(patient, start, end)
    pdf = render_pdf("superbill.html", document_number=patient.account_number, title="Superbill", **data)
    return Document(f"superbill-{patient.account_number}-{start.isoformat()}-to-{end.isoformat()}.pdf", pdf)
