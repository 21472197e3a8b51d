"""The Good Faith Estimate given to a self-pay patient (No Surprises Act)."""

from typing import Any

from billing.documents import Document, letterhead, render_pdf
from billing.extensions import db
from billing.models import GoodFaithEstimate, Patient, Provider
from billing.money import Money
from billing.services import ServiceError
from billing.services.estimates import DISPUTE_THRESHOLD, missing_identifiers
from billing.timeutil import to_clinic_time


def estimate_data(estimate: GoodFaithEstimate) -> dict[str, Any]:
    """The plain data of an estimate. Raises ServiceError when the clinic's NPI/TIN or the provider's
    NPI is missing (an estimate must show them)."""
    patient = db.session.get(Patient, estimate.patient_id)
    provider = db.session.get(Provider, estimate.provider_id) if estimate.provider_id else None
    missing = missing_identifiers(provider)
    if missing:
        raise ServiceError("This estimate cannot be printed yet. Missing: " + "; ".join(missing) + ".")
    clinic = letterhead()
    return {
        "number": estimate.number, "status": estimate.status.value,
        "prepared_on": to_clinic_time(estimate.created_at).date(),
        "given_on": to_clinic_time(estimate.given_at).date() if estimate.given_at else None,
        "given_how": estimate.given_how,
        "patient": {"name": patient.full_name, "date_of_birth": patient.date_of_birth,
                    "account_number": patient.account_number, "address_lines": patient.address_lines},
        "facility": {"name": clinic["name"], "npi": clinic["npi"], "tin": clinic["tin"],
                     "address_lines": clinic["address_lines"], "phone": clinic["phone"], "email": clinic["email"]},
        "provider": {"name": provider.display_name, "npi": provider.npi} if provider else None,
        "period_start": estimate.period_start, "period_end": estimate.period_end,
        "single_day": estimate.period_start == estimate.period_end,
        "diagnoses": estimate.icd10_codes.split(), "reason": estimate.reason,
        "lines": [{"description": line.description, "code": line.code, "quantity": line.quantity,
                   "unit_price": Money(line.unit_price_cents), "amount": Money(line.amount_cents)}
                  for line in estimate.lines],
        "total": Money(estimate.total_cents), "threshold": DISPUTE_THRESHOLD,
    }


def estimate_pdf(estimate: GoodFaithEstimate) -> Document:
    """The estimate as a PDF (raises ServiceError like estimate_data)."""
    pdf = render_pdf("estimate.html", document_number=estimate.number, title="Good Faith Estimate",
                     **estimate_data(estimate))
    return Document(f"good-faith-estimate-{estimate.number}.pdf", pdf)
