"""Posting and voiding charges; selling packages and drawing them down."""

import re
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa

from billing.extensions import db
from billing.models import (
    Charge, ChargeStatus, Invoice, InvoiceStatus, Package, PackagePurchase, Patient, Provider, Service,
    ServiceCategory,
)
from billing.money import Money
from billing.services import ServiceError, audit, journal, primary_key
from billing.services.balances import invoice_adjusted, invoice_balance, package_units_left

ICD10 = re.compile(r"^[A-TV-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")
MAX_UNITS = 24
ICD10_COLUMN_LENGTH = Charge.icd10_codes.property.columns[0].type.length  # space-separated codes


@dataclass
class ChargeInput:
    """What the front desk enters for one line of service."""

    service: Service
    date_of_service: date
    units: int = 1
    unit_price: Money | None = None  # None: the fee-schedule price
    price_reason: str = ""
    discount: Money = field(default_factory=Money.zero)
    icd10_codes: list[str] = field(default_factory=list)
    provider: Provider | None = None
    infusion_start: datetime | None = None
    infusion_stop: datetime | None = None
    use_package: bool = False


def parse_icd10(text: str) -> list[str]:
    """Split and check ICD-10-CM codes ("F33.2, G90.51"). Raises ServiceError naming a bad one."""
    codes = [c.upper() for c in re.split(r"[\s,;]+", text or "") if c]
    for code in codes:
        if not ICD10.match(code):
            raise ServiceError(f"{code} is not an ICD-10 code (like F33.2).", "icd10_codes")
    if len(codes) > 12:
        raise ServiceError("At most 12 diagnosis codes.", "icd10_codes")
    if len(" ".join(codes)) > ICD10_COLUMN_LENGTH:
        raise ServiceError("These diagnosis codes are too long to store together; keep the main ones.",
                           "icd10_codes")
    return codes


def post_charge(patient: Patient, data: ChargeInput, *, today: date) -> Charge:
    """Post a charge for a service and its journal entry (receivables / revenue), or draw a unit from a
    prepaid package at no charge. Raises ServiceError for an inactive service, bad units, a price
    change without reason, a discount above the line, a future or closed-month date, bad codes or
    infusion times, or no package units left."""
    service = data.service
    if not service.active:
        raise ServiceError(f"{service.name} is no longer offered.", "service")
    if patient.archived:
        raise ServiceError("This patient is archived; restore them before posting charges.")
    if data.date_of_service > today:
        raise ServiceError("The date of service cannot be in the future.", "date_of_service")
    if not 1 <= data.units <= MAX_UNITS:
        raise ServiceError(f"Units must be between 1 and {MAX_UNITS}.", "units")
    schedule_price = Money(service.default_price_cents)
    unit_price = schedule_price if data.unit_price is None else data.unit_price
    if unit_price.is_negative:
        raise ServiceError("The price cannot be negative.", "unit_price")
    if unit_price != schedule_price and not data.price_reason.strip():
        raise ServiceError(f"Say why the price differs from the fee schedule ({schedule_price}).", "price_reason")
    gross = unit_price * data.units
    if data.discount.is_negative or data.discount > gross:
        raise ServiceError(f"The discount must be between $0.00 and {gross}.", "discount")
    if (data.infusion_start is None) != (data.infusion_stop is None):
        raise ServiceError("Enter both the infusion start and stop times, or neither.", "infusion_stop")
    if data.infusion_start and data.infusion_stop <= data.infusion_start:
        raise ServiceError("The infusion must stop after it starts.", "infusion_stop")
    codes = parse_icd10(" ".join(data.icd10_codes))
    journal.ensure_period_open(data.date_of_service, "date_of_service")

    charge = Charge(
        patient_id=patient.id, service_id=service.id, provider_id=primary_key(data.provider) if data.provider else None,
        date_of_service=data.date_of_service, units=data.units, unit_price_cents=unit_price.cents,
        price_reason=data.price_reason.strip(), discount_cents=data.discount.cents,
        amount_cents=(gross - data.discount).cents, icd10_codes=" ".join(codes),
        infusion_start=data.infusion_start, infusion_stop=data.infusion_stop,
        created_by_id=audit.current_actor_id(),
    )
    if data.use_package:
        purchase = _purchase_with_units_left(patient, service, data.units)
        charge.package_purchase_id = purchase.id
        charge.unit_price_cents = charge.discount_cents = charge.amount_cents = 0
        charge.price_reason = f"Prepaid: {purchase.package.name}"
    db.session.add(charge)
    db.session.flush()
    if charge.amount_cents:
        amount = Money(charge.amount_cents)
        journal.post(data.date_of_service, f"Charge {service.code} for {patient.account_number}", charge, [
            (journal.RECEIVABLES, amount, patient.id),
            (journal.REVENUE[service.category], -amount, None),
        ])
    audit.record("charge.post", charge, changes={
        "patient": patient.account_number, "service": service.code, "units": data.units,
        "amount": Money(charge.amount_cents).plain(), "package_purchase_id": charge.package_purchase_id,
    })
    return charge


def _purchase_with_units_left(patient: Patient, service: Service, units: int = 1) -> PackagePurchase:
    purchases = db.session.scalars(
        sa.select(PackagePurchase).join(Package)
        .where(PackagePurchase.patient_id == patient.id, Package.service_id == service.id)
        .order_by(PackagePurchase.id).with_for_update(of=PackagePurchase)
    )
    for purchase in purchases:
        live = db.session.get(Charge, purchase.charge_id).status != ChargeStatus.VOID
        if live and package_units_left(purchase) >= units:
            return purchase
    raise ServiceError(f"{patient.full_name} has no prepaid {service.name} units left.", "use_package")


def void_charge(charge: Charge, reason: str, *, today: date) -> None:
    """Void a charge that is not on an issued invoice, reversing its journal entry.
    Raises ServiceError without a reason, once invoiced, or when a sold package is already in use."""
    if not reason.strip():
        raise ServiceError("Say why the charge is voided.", "reason")
    if charge.status != ChargeStatus.OPEN:
        raise ServiceError("Only a charge that is not on an invoice can be voided; void the invoice first.")
    if charge.package_id is not None:
        purchase = db.session.scalar(sa.select(PackagePurchase).where(PackagePurchase.charge_id == charge.id))
        if package_units_left(purchase) != purchase.units_bought:
            raise ServiceError("Units of this package were already used; it can no longer be voided.")
    entries = journal.entries_for(charge)
    if entries:
        journal.ensure_period_open(today)
    charge.status = ChargeStatus.VOID
    charge.void_reason = reason.strip()
    for entry in entries:
        journal.reverse(entry, today, f"Void charge #{charge.id}: {reason.strip()}", charge)
    audit.record("charge.void", charge, changes={"reason": reason.strip()})


def sell_package(patient: Patient, package: Package, *, date_of_service: date, today: date,
                 provider: Provider | None = None) -> PackagePurchase:
    """Post the package's charge (revenue: packages) and create its prepaid units.
    Raises ServiceError like post_charge, or for an inactive package."""
    if not package.active:
        raise ServiceError(f"{package.name} is no longer offered.", "package")
    if not package.service.active:
        raise ServiceError(f"{package.service.name} is no longer offered.", "service")
    if patient.archived:
        raise ServiceError("This patient is archived; restore them before posting charges.")
    if date_of_service > today:
        raise ServiceError("The date of service cannot be in the future.", "date_of_service")
    journal.ensure_period_open(date_of_service, "date_of_service")
    price = Money(package.price_cents)
    charge = Charge(
        patient_id=patient.id, service_id=package.service_id, package_id=package.id,
        provider_id=primary_key(provider) if provider else None, date_of_service=date_of_service, units=1,
        unit_price_cents=price.cents, amount_cents=price.cents, created_by_id=audit.current_actor_id(),
    )
    db.session.add(charge)
    db.session.flush()
    purchase = PackagePurchase(patient_id=patient.id, package_id=package.id, charge_id=charge.id,
                               units_bought=package.units, price_cents=price.cents)
    db.session.add(purchase)
    journal.post(date_of_service, f"Package {package.code} for {patient.account_number}", charge, [
        (journal.RECEIVABLES, price, patient.id),
        (journal.REVENUE[ServiceCategory.PACKAGE], -price, None),
    ])
    audit.record("package.sell", purchase, changes={"package": package.code, "price": price.plain()})
    return purchase


def refund_package_units(purchase: PackagePurchase, units: int, reason: str, *, today: date) -> Money:
    """Turn unused prepaid units into patient credit, pro rata to the package price (the credit can then
    be refunded to the payment). Returns the amount. Raises ServiceError for more units than are left,
    no reason, or a package invoice that is not paid in full."""
    purchase = db.session.scalars(
        sa.select(PackagePurchase).where(PackagePurchase.id == purchase.id).with_for_update(of=PackagePurchase)
    ).one()
    left = package_units_left(purchase)
    if not 1 <= units <= left:
        raise ServiceError(f"Between 1 and {left} unused units can be refunded.", "units")
    if not reason.strip():
        raise ServiceError("Say why the units are refunded.", "reason")
    charge = db.session.get(Charge, purchase.charge_id)
    invoice = db.session.get(Invoice, charge.invoice_id) if charge.invoice_id else None
    if invoice is None or invoice.status != InvoiceStatus.PAID or invoice_balance(invoice):
        raise ServiceError("The package invoice is not paid in full; void or adjust it instead.")
    if invoice_adjusted(invoice.id):
        raise ServiceError("The package invoice was discounted or written off, so the units were not all paid "
                           "for; ask the bookkeeper to work out the refund.")
    journal.ensure_period_open(today)
    # Unit i is worth price.split(units_bought)[i]; refunded units are the last ones, so the
    # credits for every unit add up exactly to the price.
    parts = Money(purchase.price_cents).split(purchase.units_bought)
    start = purchase.units_bought - purchase.units_refunded - units
    amount = sum(parts[start:start + units], Money.zero())
    purchase.units_refunded += units
    journal.post(today, f"Refund {units} unused unit(s) of {purchase.package.code}", purchase, [
        (journal.REFUNDS, amount, None),
        (journal.PATIENT_CREDITS, -amount, purchase.patient_id),
    ])
    audit.record("package.refund_units", purchase, changes={"units": units, "amount": amount.plain(),
                                                            "reason": reason.strip()})
    return amount
