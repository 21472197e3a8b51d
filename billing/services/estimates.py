"""Good Faith Estimates (No Surprises Act) for self-pay patients, and the $400 dispute threshold."""

import calendar
from collections.abc import Sequence
from datetime import date, datetime

import sqlalchemy as sa

from billing.extensions import db
from billing.models import (
    Charge, ChargeStatus, EstimateLine, EstimateStatus, GoodFaithEstimate, Invoice, InvoiceLine, InvoiceStatus,
    Patient, Provider, Service,
)
from billing.money import Money
from billing.services import ServiceError, audit
from billing.services.charges import parse_icd10
from billing.services.numbering import format_number, next_value
from billing.services.settings import get_settings

PREFIX = "GFE"
MAX_MONTHS = 12  # a series may be covered for up to 12 months
MAX_QUANTITY = 52
DISPUTE_THRESHOLD = Money(400_00)  # billed this much or more above the estimate: the patient may dispute
GIVEN_HOW = ("in person", "email", "mail")


def add_months(day: date, months: int) -> date:
    """The same day `months` later, or the month's last day when it is shorter (Jan 31 + 1 → Feb 28)."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def last_day_of_period(start: date) -> date:
    """The last day an estimate starting on `start` may cover (12 months, inclusive)."""
    return date.fromordinal(add_months(start, MAX_MONTHS).toordinal() - 1)


def missing_identifiers(provider: Provider | None) -> list[str]:
    """What the clinic must still fill in before an estimate or superbill can go out."""
    clinic = get_settings()
    missing = []
    if not clinic.npi:
        missing.append("the clinic's NPI (Admin › Settings)")
    if not clinic.tin:
        missing.append("the clinic's TIN (Admin › Settings)")
    if provider is not None and not provider.npi:
        missing.append(f"the NPI of {provider.display_name} (Admin › Providers)")
    return missing


def create_estimate(patient: Patient, lines: Sequence[tuple[Service, int]], *, period_start: date,
                    period_end: date, provider: Provider | None = None, icd10_codes: Sequence[str] = (),
                    reason: str = "", today: date) -> GoodFaithEstimate:
    """Create a draft estimate priced from the fee schedule, numbered without gaps per year (GFE-2026-000001).

    Writes the estimate and its lines and an audit event. Raises ServiceError for an archived patient, no
    services, a service listed twice or no longer offered, a quantity outside 1–52, a period that ends
    before it starts or covers more than 12 months, an inactive provider, bad diagnosis codes, or a
    missing clinic NPI/TIN or provider NPI."""
    if patient.archived:
        raise ServiceError("This patient is archived; restore them before preparing an estimate.")
    if not lines:
        raise ServiceError("Choose at least one service and its quantity.", "lines")
    seen = set()
    for service, quantity in lines:
        if service.id in seen:
            raise ServiceError(f"{service.name} is listed twice; enter its total quantity once.", "lines")
        seen.add(service.id)
        if not service.active:
            raise ServiceError(f"{service.name} is no longer offered.", "lines")
        if not 1 <= quantity <= MAX_QUANTITY:
            raise ServiceError(f"The quantity of {service.name} must be between 1 and {MAX_QUANTITY}.", "lines")
    if period_end < period_start:
        raise ServiceError("The period must end on or after the day it starts.", "period_end")
    if period_end > last_day_of_period(period_start):
        raise ServiceError(f"An estimate covers at most {MAX_MONTHS} months: end the period by "
                           f"{last_day_of_period(period_start):%m/%d/%Y}, and prepare a new estimate "
                           "for what follows.", "period_end")
    if provider is not None and not provider.active:
        raise ServiceError(f"{provider.display_name} is no longer an active provider.", "provider")
    codes = parse_icd10(" ".join(icd10_codes))
    reason = reason.strip()
    if len(reason) > 200:
        raise ServiceError("Keep the reason under 200 characters.", "reason")
    missing = missing_identifiers(provider)
    if missing:
        raise ServiceError("An estimate must show them; fill in " + "; ".join(missing) + ".")

    estimate = GoodFaithEstimate(
        number=format_number(PREFIX, today.year, next_value(f"estimate:{today.year}")),
        patient_id=patient.id, provider_id=provider.id if provider else None, status=EstimateStatus.DRAFT,
        period_start=period_start, period_end=period_end, icd10_codes=" ".join(codes), reason=reason,
        created_by_id=audit.current_actor_id(),
    )
    estimate.lines = [
        EstimateLine(service_id=service.id, description=service.name, code=service.cpt_code, quantity=quantity,
                     unit_price_cents=service.default_price_cents,
                     amount_cents=(Money(service.default_price_cents) * quantity).cents)
        for service, quantity in lines
    ]
    estimate.total_cents = sum((Money(line.amount_cents) for line in estimate.lines), Money.zero()).cents
    db.session.add(estimate)
    db.session.flush()
    audit.record("estimate.create", estimate, changes={
        "number": estimate.number, "patient": patient.account_number, "total": Money(estimate.total_cents).plain(),
        "period": [period_start.isoformat(), period_end.isoformat()],
        "lines": [[line.code or line.description, line.quantity] for line in estimate.lines],
    })
    return estimate


def mark_given(estimate: GoodFaithEstimate, how: str, when: datetime) -> None:
    """Record that the estimate was handed or sent to the patient; the patient's estimate given before
    it is superseded (the patient's row is locked so two at once cannot both stay current).
    Raises ServiceError for an unknown way of giving or an estimate that is not a draft."""
    if how not in GIVEN_HOW:
        raise ServiceError("Say how it was given: in person, by email or by mail.", "how")
    db.session.scalars(sa.select(Patient.id).where(Patient.id == estimate.patient_id).with_for_update()).one()
    db.session.refresh(estimate)
    if estimate.status != EstimateStatus.DRAFT:
        raise ServiceError(f"{estimate.number} was already given"
                           f"{' and later replaced' if estimate.status == EstimateStatus.SUPERSEDED else ''}; "
                           "prepare a new estimate to change it.")
    previous = db.session.scalars(sa.select(GoodFaithEstimate).where(
        GoodFaithEstimate.patient_id == estimate.patient_id, GoodFaithEstimate.status == EstimateStatus.GIVEN))
    for old in previous:
        old.status = EstimateStatus.SUPERSEDED
        audit.record("estimate.supersede", old, changes={"by": estimate.number})
    estimate.status = EstimateStatus.GIVEN
    estimate.given_at = when
    estimate.given_how = how
    audit.record("estimate.give", estimate, changes={"how": how, "at": when.isoformat()})


def current_estimate(patient: Patient, on_date: date) -> GoodFaithEstimate | None:
    """The estimate given to the patient whose period covers `on_date`, if any."""
    return db.session.scalars(
        sa.select(GoodFaithEstimate).where(
            GoodFaithEstimate.patient_id == patient.id, GoodFaithEstimate.status == EstimateStatus.GIVEN,
            GoodFaithEstimate.period_start <= on_date, GoodFaithEstimate.period_end >= on_date)
        .order_by(GoodFaithEstimate.given_at.desc(), GoodFaithEstimate.id.desc())
    ).first()


def billed_in_period(patient: Patient, estimate: GoodFaithEstimate) -> Money:
    """Charges for services dated in the estimate's period: on issued, non-void invoices (as invoiced)
    plus the open charges about to be invoiced. Later adjustments do not lower what was billed."""
    in_period = sa.and_(InvoiceLine.date_of_service >= estimate.period_start,
                        InvoiceLine.date_of_service <= estimate.period_end)
    invoiced = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(InvoiceLine.amount_cents), 0)).join(Invoice)
        .where(Invoice.patient_id == patient.id, Invoice.status.in_([InvoiceStatus.OPEN, InvoiceStatus.PAID]),
               in_period))
    about_to_be = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Charge.amount_cents), 0))
        .where(Charge.patient_id == patient.id, Charge.status == ChargeStatus.OPEN,
               Charge.date_of_service >= estimate.period_start, Charge.date_of_service <= estimate.period_end))
    return Money(int(invoiced)) + Money(int(about_to_be))


def overage_if_invoiced(patient: Patient, today: date) -> Money | None:
    """How far the patient's billed charges would be above their current estimate once the open charges
    are invoiced, when that is $400 or more (the patient may then dispute the bill); otherwise None."""
    estimate = current_estimate(patient, today)
    if estimate is None:
        return None
    overage = billed_in_period(patient, estimate) - Money(estimate.total_cents)
    return overage if overage >= DISPUTE_THRESHOLD else None


def estimates_of(patient: Patient) -> list[GoodFaithEstimate]:
    """The patient's estimates, newest first."""
    return list(db.session.scalars(sa.select(GoodFaithEstimate).where(GoodFaithEstimate.patient_id == patient.id)
                                   .order_by(GoodFaithEstimate.id.desc())))
