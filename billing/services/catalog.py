"""The fee schedule and its neighbours: services, packages, rendering providers, CareCredit plans.

Rows here are never deleted, only deactivated: charges, package purchases and CareCredit payments
point at them. Charges and CareCredit payments keep their own copy of the price or fee, so an edit
here changes what comes next, never what was already posted.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from billing.extensions import db
from billing.models import (
    CareCreditPlan, Charge, ChargeStatus, Package, PackagePurchase, Provider, Service, ServiceCategory,
)
from billing.money import Money
from billing.services import ServiceError, audit
from billing.services.balances import package_units_left
from billing.services.settings import npi_is_valid

CODE = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,19}$")
CPT_OR_HCPCS = re.compile(r"^(\d{5}|[A-Z]\d{4})$")
# The 10-digit NDC in its three labeler-product-package layouts, or the 11-digit 5-4-2 billing form
# (with or without hyphens).
NDC = re.compile(r"^(\d{4}-\d{4}-\d{2}|\d{5}-\d{3}-\d{2}|\d{5}-\d{4}-\d{1}|\d{5}-\d{4}-\d{2}|\d{11})$")
# A service is never in the package category: packages are their own rows and post to that revenue.
SERVICE_CATEGORIES = tuple(c for c in ServiceCategory if c is not ServiceCategory.PACKAGE)
PACKAGE_UNITS = (2, 50)
PLAN_MONTHS = (1, 60)
MAX_FEE_BPS = 3000  # 30 %

MSG_CODE = "Use 1–20 capital letters, digits or hyphens, like KET-INF."
MSG_CPT = ("Enter a CPT code (5 digits, like 99214) or an HCPCS code (a letter and 4 digits, like J3490), "
           "or leave it empty.")


@dataclass
class ServiceInput:
    """A fee-schedule line as the admin enters it; `code` is only read when creating."""

    name: str
    cpt_code: str
    category: ServiceCategory
    price: Money
    unit: str
    ndc: str = ""
    code: str = ""


@dataclass
class PackageInput:
    """A package as the admin enters it; `code` is only read when creating."""

    name: str
    service: Service
    units: int
    price: Money
    code: str = ""


@dataclass
class ProviderInput:
    name: str
    credentials: str = ""
    npi: str = ""


@dataclass
class PlanInput:
    name: str
    months: int
    merchant_fee_bps: int


# --- shared steps ---------------------------------------------------------------------------------


def _clean_code(code: str) -> str:
    code = (code or "").strip().upper()
    if not CODE.match(code):
        raise ServiceError(MSG_CODE, "code")
    return code


def _required(value: str, max_length: int, field: str, missing: str) -> str:
    value = " ".join((value or "").split())
    if not value:
        raise ServiceError(missing, field)
    if len(value) > max_length:
        raise ServiceError(f"At most {max_length} characters.", field)
    return value


def _write(obj, values: dict, refuse_duplicate: Callable[[], None] | None = None) -> dict:
    """Apply `values` to a new or existing row and flush it inside a savepoint; return its changes for
    the audit log. A unique-constraint race (someone saved the same code a moment ago) becomes the same
    refusal as the check before it, and leaves the row as it was."""
    try:
        # The row joins the session inside the savepoint: begin_nested() flushes what is pending first.
        with db.session.begin_nested():
            for key, value in values.items():
                setattr(obj, key, value)
            db.session.add(obj)
            changes = audit.changes_of(obj)
            db.session.flush()
    except sa.exc.IntegrityError:
        if refuse_duplicate is not None:
            refuse_duplicate()
        raise
    return changes


def _create(obj, action: str, values: dict, refuse_duplicate: Callable[[], None] | None = None) -> None:
    """Add a new row with `values`, flush it and audit it."""
    changes = _write(obj, values, refuse_duplicate)
    audit.record(action, obj, changes=changes)
    db.session.flush()


def _update(obj, action: str, values: dict, refuse_duplicate: Callable[[], None] | None = None) -> None:
    """Apply edited values, flush and audit what changed (nothing changed: no event)."""
    changes = _write(obj, values, refuse_duplicate)
    if changes:
        audit.record(action, obj, changes=changes)
        db.session.flush()


def _set_active(obj, prefix: str, active: bool) -> None:
    if obj.active != active:
        obj.active = active
        audit.record(f"{prefix}.{'reactivate' if active else 'deactivate'}", obj, changes=audit.changes_of(obj))
    db.session.flush()


# --- services -------------------------------------------------------------------------------------


def _refuse_duplicate_service_code(code: str) -> None:
    other = db.session.scalar(sa.select(Service).where(Service.code == code))
    if other is not None:
        raise ServiceError(f"The code {code} is already used by “{other.name}”.", "code")


def _service_values(data: ServiceInput) -> dict:
    name = _required(data.name, 120, "name", "Enter the service's name.")
    cpt = (data.cpt_code or "").strip().upper()
    if cpt and not CPT_OR_HCPCS.match(cpt):
        raise ServiceError(MSG_CPT, "cpt_code")
    category = data.category
    if category not in SERVICE_CATEGORIES:
        raise ServiceError("Choose a category from the list (packages are set up under Packages).", "category")
    if not isinstance(data.price, Money) or data.price.is_negative:
        raise ServiceError("Enter a price of $0.00 or more.", "price")
    unit = _required(data.unit, 20, "unit", "Enter the unit the price is for, like visit, hour or 10 mg.")
    ndc = (data.ndc or "").strip()
    if ndc and category is not ServiceCategory.DRUG:
        raise ServiceError("Only a drug has an NDC; leave it empty or choose the Drugs category.", "ndc")
    if ndc and not NDC.match(ndc):
        raise ServiceError("Enter the NDC as printed on the vial, like 0409-4755-03 or 42023-113-10.", "ndc")
    return {"name": name, "cpt_code": cpt, "category": category, "default_price_cents": data.price.cents,
            "unit": unit, "ndc": ndc}


def create_service(data: ServiceInput) -> Service:
    """Add an active service to the fee schedule and audit it. Raises ServiceError for a taken or
    malformed code, a malformed CPT/HCPCS code or NDC, a negative price or a missing name or unit."""
    code = _clean_code(data.code)
    values = _service_values(data)
    _refuse_duplicate_service_code(code)
    service = Service()
    _create(service, "service.create", {"code": code, **values, "active": True},
            lambda: _refuse_duplicate_service_code(code))
    return service


def update_service(service: Service, data: ServiceInput) -> None:
    """Save an edited service (its code stays) and audit what changed. Charges already posted keep
    their own price. Raises ServiceError like create_service."""
    _update(service, "service.update", _service_values(data))


def _prepaid_units_left(service: Service) -> int:
    """Units of this service that patients have prepaid in packages and not yet used."""
    purchases = db.session.scalars(
        sa.select(PackagePurchase).join(Package).join(Charge, Charge.id == PackagePurchase.charge_id)
        .where(Package.service_id == service.id, Charge.status != ChargeStatus.VOID)
    )
    return sum(max(package_units_left(p), 0) for p in purchases)


def deactivate_service(service: Service) -> None:
    """Stop offering a service (its row and history stay). Raises ServiceError while an active
    package draws it down or patients still hold prepaid units of it (they could not be used)."""
    packages = db.session.scalars(
        sa.select(Package).where(Package.service_id == service.id, Package.active.is_(True)).order_by(Package.code)
    ).all()
    if packages:
        codes = ", ".join(p.code for p in packages)
        raise ServiceError(f"Deactivate the package{'s' if len(packages) > 1 else ''} {codes} first: "
                           f"{'they draw' if len(packages) > 1 else 'it draws'} this service down.")
    units = _prepaid_units_left(service)
    if units:
        raise ServiceError(f"Patients still hold {units} prepaid unit{'s' if units > 1 else ''} of this service; "
                           "it must stay active until they are used or refunded.")
    _set_active(service, "service", False)


def reactivate_service(service: Service) -> None:
    """Offer a deactivated service again and audit it."""
    _set_active(service, "service", True)


# --- packages -------------------------------------------------------------------------------------


def _refuse_duplicate_package_code(code: str) -> None:
    other = db.session.scalar(sa.select(Package).where(Package.code == code))
    if other is not None:
        raise ServiceError(f"The code {code} is already used by “{other.name}”.", "code")


def _package_values(data: PackageInput, package: Package | None = None) -> dict:
    name = _required(data.name, 120, "name", "Enter the package's name.")
    service = data.service
    if service is None:
        raise ServiceError("Choose the service the package draws down.", "service")
    changing_service = package is None or package.service_id != service.id
    if changing_service and not service.active:
        raise ServiceError(f"{service.name} is no longer offered; choose an active service.", "service")
    if package is not None and changing_service and _was_sold(package):
        raise ServiceError("This package has been sold, so its service cannot change (patients' prepaid units "
                           "draw down that service). Deactivate it and create a new package instead.", "service")
    low, high = PACKAGE_UNITS
    if not isinstance(data.units, int) or not low <= data.units <= high:
        raise ServiceError(f"A package has between {low} and {high} units.", "units")
    if not isinstance(data.price, Money) or not data.price.is_positive:
        raise ServiceError("Enter a package price greater than zero.", "price")
    return {"name": name, "service_id": service.id, "units": data.units, "price_cents": data.price.cents}


def _was_sold(package: Package) -> bool:
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(PackagePurchase).where(PackagePurchase.package_id == package.id)
    ) > 0


def create_package(data: PackageInput) -> Package:
    """Add an active package and audit it. Raises ServiceError for a taken or malformed code, an
    inactive service, units outside 2–50, a price that is not positive or a missing name."""
    code = _clean_code(data.code)
    values = _package_values(data)
    _refuse_duplicate_package_code(code)
    package = Package()
    _create(package, "package.create", {"code": code, **values, "active": True},
            lambda: _refuse_duplicate_package_code(code))
    return package


def update_package(package: Package, data: PackageInput) -> None:
    """Save an edited package (its code stays) and audit what changed. Packages already sold keep
    their own units and price. Raises ServiceError like create_package, or for a new service once sold."""
    values = _package_values(data, package)
    _update(package, "package.update", values)
    db.session.expire(package, ["service"])  # service_id may have changed


def deactivate_package(package: Package) -> None:
    """Stop selling a package; patients who bought it keep drawing it down."""
    _set_active(package, "package", False)


def reactivate_package(package: Package) -> None:
    """Sell a package again. Raises ServiceError while its service is inactive."""
    if not package.service.active:
        raise ServiceError(f"Reactivate the service {package.service.code} first: this package draws it down.")
    _set_active(package, "package", True)


# --- providers -----------------------------------------------------------------------------------


def _provider_values(data: ProviderInput, provider: Provider | None = None) -> dict:
    name = _required(data.name, 120, "name", "Enter the provider's name.")
    credentials = " ".join((data.credentials or "").split())
    if len(credentials) > 40:
        raise ServiceError("At most 40 characters.", "credentials")
    npi = re.sub(r"[\s-]", "", data.npi or "")
    if npi and not npi_is_valid(npi):
        raise ServiceError("An NPI has 10 digits and a valid check digit; check it on the NPPES registry.", "npi")
    if npi:
        other = db.session.scalar(sa.select(Provider).where(Provider.npi == npi))
        if other is not None and other is not provider:
            raise ServiceError(f"{other.display_name} already has this NPI.", "npi")
    return {"name": name, "credentials": credentials, "npi": npi}


def create_provider(data: ProviderInput) -> Provider:
    """Add an active rendering provider and audit it. Raises ServiceError for a missing name or
    an invalid or already used NPI (an empty NPI is allowed; superbills need one)."""
    provider = Provider()
    _create(provider, "provider.create", {**_provider_values(data), "active": True})
    return provider


def update_provider(provider: Provider, data: ProviderInput) -> None:
    """Save an edited provider and audit what changed. Raises ServiceError like create_provider."""
    _update(provider, "provider.update", _provider_values(data, provider))


def deactivate_provider(provider: Provider) -> None:
    """Take a provider off the charge form; charges they rendered keep their name."""
    _set_active(provider, "provider", False)


def reactivate_provider(provider: Provider) -> None:
    _set_active(provider, "provider", True)


# --- CareCredit plans -------------------------------------------------------------------------------


def _refuse_duplicate_plan_name(name: str, plan: CareCreditPlan | None = None) -> None:
    other = db.session.scalar(sa.select(CareCreditPlan).where(sa.func.lower(CareCreditPlan.name) == name.lower()))
    if other is not None and other is not plan:
        raise ServiceError(f"There is already a plan named “{other.name}”.", "name")


def _plan_values(data: PlanInput, plan: CareCreditPlan | None = None) -> dict:
    name = _required(data.name, 120, "name", "Enter the plan's name, like 12 months no interest.")
    _refuse_duplicate_plan_name(name, plan)
    low, high = PLAN_MONTHS
    if not isinstance(data.months, int) or not low <= data.months <= high:
        raise ServiceError(f"Enter between {low} and {high} months.", "months")
    if type(data.merchant_fee_bps) is not int or not 0 <= data.merchant_fee_bps <= MAX_FEE_BPS:
        raise ServiceError(f"The merchant fee is between 0 and {MAX_FEE_BPS // 100} %.", "merchant_fee")
    return {"name": name, "months": data.months, "merchant_fee_bps": data.merchant_fee_bps}


def create_plan(data: PlanInput) -> CareCreditPlan:
    """Add an active CareCredit plan and audit it. Raises ServiceError for a taken or missing name,
    months outside 1–60 or a merchant fee outside 0–30 %."""
    values = _plan_values(data)
    plan = CareCreditPlan()
    _create(plan, "carecredit_plan.create", {**values, "active": True},
            lambda: _refuse_duplicate_plan_name(values["name"]))
    return plan


def update_plan(plan: CareCreditPlan, data: PlanInput) -> None:
    """Save an edited plan and audit what changed. Payments already taken keep the fee of their day.
    Raises ServiceError like create_plan."""
    values = _plan_values(data, plan)
    _update(plan, "carecredit_plan.update", values, lambda: _refuse_duplicate_plan_name(values["name"], plan))


def deactivate_plan(plan: CareCreditPlan) -> None:
    """Stop offering a plan for new payments; returns still go against it."""
    _set_active(plan, "carecredit_plan", False)


def reactivate_plan(plan: CareCreditPlan) -> None:
    _set_active(plan, "carecredit_plan", True)
