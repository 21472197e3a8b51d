"""The fee schedule in the admin area, through its real routes: services, packages, providers, CareCredit plans."""

import re
from html import unescape

import pytest
import sqlalchemy as sa

from billing.extensions import db
from billing.models import CareCreditPlan, Charge, Package, Provider, Role, Service, ServiceCategory
from billing.money import Money
from billing.services import ServiceError
from billing.services import catalog as catalog_service
from billing.services import charges as charge_service
from tests.services.conftest import TODAY
from tests.web.test_admin import audit_count, field_error, flashes, html, last_event, reload

VALID_NPI = "1245319599"
OTHER_VALID_NPI = "1558444216"
CPT_MESSAGE = catalog_service.MSG_CPT
DUPLICATE_CODE = "The code KET-INF is already used by “Ketamine infusion, first hour”."


@pytest.fixture
def admin(login):
    return login(Role.ADMIN)


@pytest.fixture
def fees(catalog):
    """The shared small fee schedule, committed so the requests see it."""
    db.session.commit()
    return catalog


def service_data(**overrides) -> dict[str, str]:
    data = {"code": "ket-crps", "name": "CRPS infusion, first hour", "cpt_code": "96365", "category": "infusion",
            "price": "650.00", "unit": "visit", "ndc": ""}
    data.update(overrides)
    return data


def package_data(drawn: Service, **overrides) -> dict:
    data = {"code": "series-4", "name": "Four-infusion series", "service": drawn.id, "units": "4",
            "price": "1,600.00"}
    data.update(overrides)
    return data


def provider_data(**overrides) -> dict[str, str]:
    data = {"name": "Ruth Adeyemi", "credentials": "NP", "npi": VALID_NPI}
    data.update(overrides)
    return data


def plan_data(**overrides) -> dict[str, str]:
    data = {"name": "36 months reduced APR", "months": "36", "merchant_fee": "9.90"}
    data.update(overrides)
    return data


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def one(model, **where):
    return db.session.scalars(sa.select(model).filter_by(**where)).one()


def row_text(response, needle: str) -> str:
    """The text of the table row that contains `needle`, tags stripped."""
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", response.get_data(as_text=True), re.S):
        text = " ".join(unescape(re.sub(r"<[^>]+>", " ", row)).split())
        if needle in text:
            return text
    raise AssertionError(f"no row with {needle!r}")


# --- services ------------------------------------------------------------------------------------


def test_services_are_listed_by_category_with_codes_and_prices(admin, fees):
    client, _ = admin
    response = client.get("/admin/fee-schedule/services")
    assert response.status_code == 200
    page = html(response)
    assert page.index("Visits and consultations") < page.index("Infusions")
    assert row_text(response, "KET-INF") == "KET-INF 96365 Ketamine infusion, first hour visit $450.00 Active"
    assert row_text(response, "KET-ADD") == "KET-ADD 96366 Infusion, each additional hour hour $150.00 Active"
    assert "Fee schedule" in page and "CareCredit plans" in page
    assert 'aria-current="page">Fee schedule' in page


def test_admin_adds_a_service(admin):
    client, _ = admin
    before = audit_count()
    response = client.post("/admin/fee-schedule/services/new", data=service_data())

    assert response.status_code == 302
    assert response.location == "/admin/fee-schedule/services"
    service = one(Service, code="KET-CRPS")
    assert (service.name, service.cpt_code, service.category, service.default_price_cents, service.unit,
            service.active) == ("CRPS infusion, first hour", "96365", ServiceCategory.INFUSION, 65000, "visit", True)
    assert audit_count() == before + 1
    event = last_event()
    assert (event.action, event.entity_type, event.entity_id) == ("service.create", "Service", str(service.id))
    assert event.changes["code"] == [None, "KET-CRPS"]
    assert event.changes["default_price_cents"] == [None, 65000]
    listing = client.get(response.location)
    assert "CRPS infusion, first hour is on the fee schedule as KET-CRPS." in flashes(listing, "success")
    assert row_text(listing, "KET-CRPS") == "KET-CRPS 96365 CRPS infusion, first hour visit $650.00 Active"


def test_a_free_consultation_needs_no_cpt_code(admin):
    client, _ = admin
    response = client.post("/admin/fee-schedule/services/new", data=service_data(
        code="CONSULT", name="Phone consultation", cpt_code="", category="visit", price="0"))
    assert response.status_code == 302
    service = one(Service, code="CONSULT")
    assert (service.cpt_code, service.default_price_cents) == ("", 0)


def test_a_drug_keeps_its_hcpcs_code_and_ndc(admin):
    client, _ = admin
    response = client.post("/admin/fee-schedule/services/new", data=service_data(
        code="KET-DRUG", name="Ketamine HCl (per 10 mg)", cpt_code="j3490", category="drug", price="15",
        unit="10 mg", ndc="42023-113-10"))
    assert response.status_code == 302
    service = one(Service, code="KET-DRUG")
    assert (service.cpt_code, service.ndc, service.unit) == ("J3490", "42023-113-10", "10 mg")


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        pytest.param({"code": "KET-INF"}, "code", DUPLICATE_CODE, id="duplicate-code"),
        pytest.param({"code": "ket-inf"}, "code", DUPLICATE_CODE, id="duplicate-code-lowercase"),
        pytest.param({"code": "KET INF"}, "code", catalog_service.MSG_CODE, id="code-with-space"),
        pytest.param({"cpt_code": "9636"}, "cpt_code", CPT_MESSAGE, id="cpt-4-digits"),
        pytest.param({"cpt_code": "963651"}, "cpt_code", CPT_MESSAGE, id="cpt-6-digits"),
        pytest.param({"cpt_code": "JJ349"}, "cpt_code", CPT_MESSAGE, id="hcpcs-2-letters"),
        pytest.param({"cpt_code": "J349"}, "cpt_code", CPT_MESSAGE, id="hcpcs-3-digits"),
        pytest.param({"price": "-10.00"}, "price", "The amount cannot be negative.", id="negative-price"),
        pytest.param({"price": "12.345"}, "price", "Enter an amount with at most two decimal places, like 450.00.",
                     id="three-decimals"),
        pytest.param({"price": ""}, "price", "Enter the price, like 450.00 (0.00 for free).", id="no-price"),
        pytest.param({"name": "  "}, "name", "Enter the service's name.", id="no-name"),
        pytest.param({"unit": ""}, "unit", "Enter the unit the price is for.", id="no-unit"),
        pytest.param({"category": "package"}, "category", "Not a valid choice.", id="package-category"),
        pytest.param({"ndc": "0409-4755-03"}, "ndc",
                     "Only a drug has an NDC; leave it empty or choose the Drugs category.", id="ndc-on-infusion"),
        pytest.param({"category": "drug", "ndc": "0409-47"}, "ndc",
                     "Enter the NDC as printed on the vial, like 0409-4755-03 or 42023-113-10.", id="bad-ndc"),
    ],
)
def test_a_bad_service_is_refused_next_to_the_field(admin, fees, overrides, field, message):
    client, _ = admin
    services, events = count(Service), audit_count()

    response = client.post("/admin/fee-schedule/services/new", data=service_data(**overrides))

    assert response.status_code == 200
    assert field_error(response, field) == message
    assert count(Service) == services
    assert audit_count() == events


def test_edit_shows_the_service_and_saves_a_new_price_without_touching_posted_charges(admin, fees, make_patient,
                                                                                      charge):
    client, _ = admin
    infusion = fees["infusion"]
    posted = charge(make_patient())
    db.session.commit()

    page = client.get(f"/admin/fee-schedule/services/{infusion.id}")
    assert page.status_code == 200
    text = html(page)
    assert 'value="450.00"' in text and 'value="Ketamine infusion, first hour"' in text
    assert "Charges already posted keep the price they were posted at" in text

    before = audit_count()
    response = client.post(f"/admin/fee-schedule/services/{infusion.id}", data=service_data(
        code="IGNORED", name="Ketamine infusion, first hour", price="475"))

    assert response.status_code == 302
    reload(infusion)
    assert infusion.code == "KET-INF"  # the code never changes
    assert infusion.default_price_cents == 47500
    assert db.session.get(Charge, posted.id).unit_price_cents == 45000
    assert db.session.get(Charge, posted.id).amount_cents == 45000
    assert audit_count() == before + 1
    event = last_event()
    assert event.action == "service.update"
    assert event.changes == {"default_price_cents": [45000, 47500]}


def test_saving_an_unchanged_service_writes_no_audit_event(admin, fees):
    client, _ = admin
    before = audit_count()
    response = client.post(f"/admin/fee-schedule/services/{fees['infusion'].id}", data=service_data(
        name="Ketamine infusion, first hour", price="450.00"))
    assert response.status_code == 302
    assert audit_count() == before


def test_a_refused_edit_changes_nothing(admin, fees):
    client, _ = admin
    infusion = fees["infusion"]
    before = audit_count()
    response = client.post(f"/admin/fee-schedule/services/{infusion.id}", data=service_data(
        name="Renamed", price="500", cpt_code="123"))

    assert response.status_code == 200
    assert field_error(response, "cpt_code") == CPT_MESSAGE
    assert 'value="Renamed"' in response.get_data(as_text=True)  # what was typed stays
    reload(infusion)
    assert (infusion.name, infusion.default_price_cents, infusion.cpt_code) == (
        "Ketamine infusion, first hour", 45000, "96365")
    assert audit_count() == before


def test_deactivate_and_reactivate_a_service(admin, fees):
    client, _ = admin
    consult = fees["consult"]

    response = client.post(f"/admin/fee-schedule/services/{consult.id}/active", follow_redirects=True)
    assert flashes(response, "success") == ["Consultation is no longer offered."]
    assert "This service is not offered" in html(response)
    assert not reload(consult).active
    assert last_event().action == "service.deactivate"
    assert last_event().changes == {"active": [True, False]}
    assert "Not offered" in row_text(client.get("/admin/fee-schedule/services"), "CONSULT")

    response = client.post(f"/admin/fee-schedule/services/{consult.id}/active", follow_redirects=True)
    assert flashes(response, "success") == ["Consultation is offered again."]
    assert reload(consult).active
    assert last_event().action == "service.reactivate"
    assert db.session.get(Service, consult.id) is not None  # never deleted


def test_a_service_an_active_package_draws_down_cannot_be_deactivated(admin, fees):
    client, _ = admin
    before = audit_count()
    response = client.post(f"/admin/fee-schedule/services/{fees['infusion'].id}/active", follow_redirects=True)

    assert flashes(response) == ["Deactivate the package SERIES6 first: it draws this service down."]
    assert reload(fees["infusion"]).active
    assert audit_count() == before


def test_a_service_with_prepaid_units_left_cannot_be_deactivated(admin, fees, make_patient):
    client, _ = admin
    charge_service.sell_package(make_patient(), fees["package"], date_of_service=TODAY, today=TODAY)
    fees["package"].active = False
    db.session.commit()
    before = audit_count()

    response = client.post(f"/admin/fee-schedule/services/{fees['infusion'].id}/active", follow_redirects=True)

    assert flashes(response) == [
        "Patients still hold 6 prepaid units of this service; it must stay active until they are used or refunded."]
    assert reload(fees["infusion"]).active
    assert audit_count() == before


def test_a_duplicate_code_saved_at_the_same_moment_is_refused_the_same_way(app, fees, monkeypatch):
    """The check before the insert can miss a code saved by another request; the unique index catches it."""
    real = catalog_service._refuse_duplicate_service_code
    calls = []

    def misses_the_first_time(code):
        calls.append(code)
        if len(calls) > 1:
            real(code)

    monkeypatch.setattr(catalog_service, "_refuse_duplicate_service_code", misses_the_first_time)
    with pytest.raises(ServiceError) as info:
        catalog_service.create_service(catalog_service.ServiceInput(
            code="KET-INF", name="Copy", cpt_code="", category=ServiceCategory.OTHER, price=Money(100), unit="visit"))
    assert info.value.field == "code"
    assert len(calls) == 2
    db.session.rollback()
    assert db.session.scalars(sa.select(Service).where(Service.name == "Copy")).all() == []


# --- packages ------------------------------------------------------------------------------------


def test_admin_adds_a_package(admin, fees):
    client, _ = admin
    page = html(client.get("/admin/fee-schedule/packages/new"))
    assert "Ketamine infusion, first hour · KET-INF · $450.00 per visit" in page
    before = audit_count()

    response = client.post("/admin/fee-schedule/packages/new", data=package_data(fees["infusion"]))

    assert response.status_code == 302
    assert response.location == "/admin/fee-schedule/packages"
    package = one(Package, code="SERIES-4")
    assert (package.name, package.service_id, package.units, package.price_cents, package.active) == (
        "Four-infusion series", fees["infusion"].id, 4, 160000, True)
    assert audit_count() == before + 1
    assert last_event().action == "package.create"
    assert last_event().changes["units"] == [None, 4]
    assert row_text(client.get(response.location), "SERIES-4") == (
        "SERIES-4 Four-infusion series Ketamine infusion, first hour KET-INF 4 $1,600.00 Active")


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        pytest.param({"code": "SERIES6"}, "code", "The code SERIES6 is already used by “Six-infusion series”.",
                     id="duplicate-code"),
        pytest.param({"units": "1"}, "units", "A package has between 2 and 50 units.", id="one-unit"),
        pytest.param({"units": "51"}, "units", "A package has between 2 and 50 units.", id="51-units"),
        pytest.param({"price": "0"}, "price", "Enter an amount greater than zero.", id="free"),
        pytest.param({"price": "-5"}, "price", "The amount cannot be negative.", id="negative"),
        pytest.param({"service": "0"}, "service", "Choose the service the package draws down.", id="no-service"),
        pytest.param({"service": "999999"}, "service", "Choose the service the package draws down.",
                     id="unknown-service"),
        pytest.param({"service": "inactive"}, "service",
                     "Consultation is no longer offered; choose an active service.", id="inactive-service"),
    ],
)
def test_a_bad_package_is_refused_next_to_the_field(admin, fees, overrides, field, message):
    client, _ = admin
    if overrides.get("service") == "inactive":
        fees["consult"].active = False
        db.session.commit()
        overrides = {**overrides, "service": fees["consult"].id}
    packages, events = count(Package), audit_count()

    response = client.post("/admin/fee-schedule/packages/new", data=package_data(fees["infusion"], **overrides))

    assert response.status_code == 200
    assert field_error(response, field) == message
    assert count(Package) == packages
    assert audit_count() == events


def test_inactive_services_are_not_offered_for_a_new_package(admin, fees):
    client, _ = admin
    fees["consult"].active = False
    db.session.commit()
    page = html(client.get("/admin/fee-schedule/packages/new"))
    assert "Ketamine infusion, first hour" in page
    assert "Consultation" not in page


def test_edit_a_package(admin, fees):
    client, _ = admin
    package = fees["package"]
    page = html(client.get(f"/admin/fee-schedule/packages/{package.id}"))
    assert 'value="2400.00"' in page and 'value="6"' in page
    assert "Packages already sold keep the units and price they were sold with." in page

    response = client.post(f"/admin/fee-schedule/packages/{package.id}", data=package_data(
        fees["addl"], name="Six hours", units="8", price="2,000"))

    assert response.status_code == 302
    reload(package)
    assert (package.code, package.name, package.service_id, package.units, package.price_cents) == (
        "SERIES6", "Six hours", fees["addl"].id, 8, 200000)
    assert package.service.code == "KET-ADD"
    assert last_event().action == "package.update"
    assert last_event().changes["price_cents"] == [240000, 200000]


def test_a_sold_package_keeps_its_service(admin, fees, make_patient):
    client, _ = admin
    package = fees["package"]
    purchase = charge_service.sell_package(make_patient(), package, date_of_service=TODAY, today=TODAY)
    db.session.commit()
    before = audit_count()

    response = client.post(f"/admin/fee-schedule/packages/{package.id}", data=package_data(
        fees["addl"], name="Six-infusion series", units="6", price="2400"))
    assert response.status_code == 200
    assert field_error(response, "service").startswith("This package has been sold, so its service cannot change")
    assert reload(package).service_id == fees["infusion"].id
    assert audit_count() == before

    # Its price can change; the purchase keeps what was paid.
    response = client.post(f"/admin/fee-schedule/packages/{package.id}", data=package_data(
        fees["infusion"], name="Six-infusion series", units="6", price="2,600"))
    assert response.status_code == 302
    assert reload(package).price_cents == 260000
    assert purchase.price_cents == 240000 and purchase.units_bought == 6


def test_deactivate_and_reactivate_a_package(admin, fees):
    client, _ = admin
    package = fees["package"]
    response = client.post(f"/admin/fee-schedule/packages/{package.id}/active", follow_redirects=True)
    assert flashes(response, "success") == [
        "Six-infusion series is no longer sold; patients who bought it keep their units."]
    assert not reload(package).active
    assert last_event().action == "package.deactivate"

    response = client.post(f"/admin/fee-schedule/packages/{package.id}/active", follow_redirects=True)
    assert flashes(response, "success") == ["Six-infusion series can be sold again."]
    assert reload(package).active
    assert last_event().action == "package.reactivate"


def test_a_package_of_an_inactive_service_cannot_be_reactivated(admin, fees):
    client, _ = admin
    fees["package"].active = False
    fees["infusion"].active = False
    db.session.commit()
    before = audit_count()

    response = client.post(f"/admin/fee-schedule/packages/{fees['package'].id}/active", follow_redirects=True)

    assert flashes(response) == ["Reactivate the service KET-INF first: this package draws it down."]
    assert not reload(fees["package"]).active
    assert audit_count() == before


# --- providers -----------------------------------------------------------------------------------


def test_admin_adds_a_provider(admin):
    client, _ = admin
    response = client.post("/admin/fee-schedule/providers/new", data=provider_data(npi="1245-319-599"))

    assert response.status_code == 302
    assert response.location == "/admin/fee-schedule/providers"
    provider = one(Provider, name="Ruth Adeyemi")
    assert (provider.credentials, provider.npi, provider.active) == ("NP", VALID_NPI, True)
    assert last_event().action == "provider.create"
    assert row_text(client.get(response.location), "Ruth Adeyemi") == f"Ruth Adeyemi NP {VALID_NPI} Active"


def test_a_provider_without_npi_is_allowed_with_a_warning(admin):
    client, _ = admin
    response = client.post("/admin/fee-schedule/providers/new", data=provider_data(npi=""))
    assert response.status_code == 302
    listing = client.get("/admin/fee-schedule/providers")
    assert "1 active provider has no NPI. Superbills need the rendering provider's NPI." in html(listing)
    assert row_text(listing, "Ruth Adeyemi") == "Ruth Adeyemi NP Missing: superbills need it Active"


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        pytest.param({"npi": "1234567890"}, "npi",
                     "An NPI has 10 digits and a valid check digit; check it on the NPPES registry.", id="check-digit"),
        pytest.param({"npi": "12345"}, "npi",
                     "An NPI has 10 digits and a valid check digit; check it on the NPPES registry.", id="short"),
        pytest.param({"npi": "1234567893"}, "npi", "Dana Whitfield, MD already has this NPI.", id="taken"),
        pytest.param({"name": ""}, "name", "Enter the provider's name.", id="no-name"),
    ],
)
def test_a_bad_provider_is_refused_next_to_the_field(admin, fees, overrides, field, message):
    client, _ = admin
    providers, events = count(Provider), audit_count()

    response = client.post("/admin/fee-schedule/providers/new", data=provider_data(**overrides))

    assert response.status_code == 200
    assert field_error(response, field) == message
    assert count(Provider) == providers
    assert audit_count() == events


def test_edit_and_deactivate_a_provider(admin, fees):
    client, _ = admin
    provider = fees["provider"]
    assert 'value="1234567893"' in html(client.get(f"/admin/fee-schedule/providers/{provider.id}"))

    response = client.post(f"/admin/fee-schedule/providers/{provider.id}", data=provider_data(
        name="Dana Whitfield", credentials="DO", npi="1234567893"), follow_redirects=True)
    assert flashes(response, "success") == ["Saved Dana Whitfield, DO."]
    assert reload(provider).credentials == "DO"
    assert last_event().changes == {"credentials": ["MD", "DO"]}

    response = client.post(f"/admin/fee-schedule/providers/{provider.id}/active", follow_redirects=True)
    assert flashes(response, "success") == ["Dana Whitfield, DO can no longer be chosen on charges."]
    assert not reload(provider).active
    assert last_event().action == "provider.deactivate"


# --- CareCredit plans -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "bps"),
    [("9.90", 990), ("9.9", 990), ("9.9 %", 990), ("12", 1200), ("0", 0), ("30", 3000), ("0.05", 5), ("7.8%", 780)],
)
def test_admin_adds_a_plan_with_its_fee_in_basis_points(admin, typed, bps):
    client, _ = admin
    response = client.post("/admin/fee-schedule/carecredit-plans/new", data=plan_data(merchant_fee=typed))

    assert response.status_code == 302
    assert response.location == "/admin/fee-schedule/carecredit-plans"
    plan = one(CareCreditPlan, name="36 months reduced APR")
    assert (plan.months, plan.merchant_fee_bps, plan.active) == (36, bps, True)
    assert last_event().action == "carecredit_plan.create"
    assert last_event().changes["merchant_fee_bps"] == [None, bps]
    shown = f"{bps // 100}.{bps % 100:02d} %"
    assert row_text(client.get(response.location), "36 months") == f"36 months reduced APR 36 {shown} Active"


PERCENT_MESSAGE = "Enter the fee as a percentage with at most two decimals, like 9.90."


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        pytest.param({"merchant_fee": "9.999"}, "merchant_fee", PERCENT_MESSAGE, id="three-decimals"),
        pytest.param({"merchant_fee": "nine"}, "merchant_fee", PERCENT_MESSAGE, id="letters"),
        pytest.param({"merchant_fee": "-1"}, "merchant_fee", PERCENT_MESSAGE, id="negative"),
        pytest.param({"merchant_fee": "1e1"}, "merchant_fee", PERCENT_MESSAGE, id="exponent"),
        pytest.param({"merchant_fee": "30.01"}, "merchant_fee", "The merchant fee is between 0 and 30 %.",
                     id="above-30"),
        pytest.param({"merchant_fee": ""}, "merchant_fee", "Enter the merchant fee, like 9.90.", id="empty"),
        pytest.param({"months": "0"}, "months", "Enter between 1 and 60 months.", id="0-months"),
        pytest.param({"months": "61"}, "months", "Enter between 1 and 60 months.", id="61-months"),
        pytest.param({"name": "12 months no interest"}, "name",
                     "There is already a plan named “12 months no interest”.", id="duplicate-name"),
        pytest.param({"name": "12 MONTHS NO INTEREST"}, "name",
                     "There is already a plan named “12 months no interest”.", id="duplicate-name-any-case"),
    ],
)
def test_a_bad_plan_is_refused_next_to_the_field(admin, fees, overrides, field, message):
    client, _ = admin
    plans, events = count(CareCreditPlan), audit_count()

    response = client.post("/admin/fee-schedule/carecredit-plans/new", data=plan_data(**overrides))

    assert response.status_code == 200
    assert field_error(response, field) == message
    assert count(CareCreditPlan) == plans
    assert audit_count() == events


def test_edit_a_plans_fee(admin, fees):
    client, _ = admin
    plan = fees["12mo"]
    page = html(client.get(f"/admin/fee-schedule/carecredit-plans/{plan.id}"))
    assert 'value="9.90"' in page
    assert "Payments already taken keep the fee of their day." in page

    response = client.post(f"/admin/fee-schedule/carecredit-plans/{plan.id}", data=plan_data(
        name="12 months no interest", months="12", merchant_fee="10.25"))
    assert response.status_code == 302
    assert reload(plan).merchant_fee_bps == 1025
    assert last_event().action == "carecredit_plan.update"
    assert last_event().changes == {"merchant_fee_bps": [990, 1025]}


def test_a_plan_cannot_take_another_plans_name(admin, fees):
    client, _ = admin
    plan = fees["12mo"]
    before = audit_count()
    response = client.post(f"/admin/fee-schedule/carecredit-plans/{plan.id}", data=plan_data(
        name="24 months reduced APR", months="12", merchant_fee="9.90"))
    assert response.status_code == 200
    assert field_error(response, "name") == "There is already a plan named “24 months reduced APR”."
    assert reload(plan).name == "12 months no interest"
    assert audit_count() == before


def test_deactivate_and_reactivate_a_plan(admin, fees):
    client, _ = admin
    plan = fees["24mo"]
    response = client.post(f"/admin/fee-schedule/carecredit-plans/{plan.id}/active", follow_redirects=True)
    assert flashes(response, "success") == ["“24 months reduced APR” can no longer be chosen for new payments."]
    assert not reload(plan).active
    assert last_event().action == "carecredit_plan.deactivate"

    response = client.post(f"/admin/fee-schedule/carecredit-plans/{plan.id}/active", follow_redirects=True)
    assert flashes(response, "success") == ["“24 months reduced APR” can be chosen again."]
    assert reload(plan).active
    assert last_event().action == "carecredit_plan.reactivate"


# --- one audit event per write, admins only ---------------------------------------------------------------

WRITES = [
    ("/admin/fee-schedule/services/new", lambda f: service_data(), "service.create"),
    ("/admin/fee-schedule/services/{infusion}", lambda f: service_data(name="Renamed"), "service.update"),
    ("/admin/fee-schedule/services/{consult}/active", lambda f: {}, "service.deactivate"),
    ("/admin/fee-schedule/packages/new", lambda f: package_data(f["infusion"]), "package.create"),
    ("/admin/fee-schedule/packages/{package}", lambda f: package_data(f["infusion"], units="5"), "package.update"),
    ("/admin/fee-schedule/packages/{package}/active", lambda f: {}, "package.deactivate"),
    ("/admin/fee-schedule/providers/new", lambda f: provider_data(), "provider.create"),
    ("/admin/fee-schedule/providers/{provider}", lambda f: provider_data(npi=OTHER_VALID_NPI), "provider.update"),
    ("/admin/fee-schedule/providers/{provider}/active", lambda f: {}, "provider.deactivate"),
    ("/admin/fee-schedule/carecredit-plans/new", lambda f: plan_data(), "carecredit_plan.create"),
    ("/admin/fee-schedule/carecredit-plans/{plan}", lambda f: plan_data(), "carecredit_plan.update"),
    ("/admin/fee-schedule/carecredit-plans/{plan}/active", lambda f: {}, "carecredit_plan.deactivate"),
]


def _url(template: str, fees) -> str:
    return template.format(infusion=fees["infusion"].id, consult=fees["consult"].id, package=fees["package"].id,
                           provider=fees["provider"].id, plan=fees["12mo"].id)


@pytest.mark.parametrize(("url", "data", "action"), WRITES, ids=[w[2] for w in WRITES])
def test_each_catalog_write_produces_exactly_one_audit_event(admin, fees, url, data, action):
    client, me = admin
    before = audit_count()

    response = client.post(_url(url, fees), data=data(fees))

    assert response.status_code == 302, response.data
    assert audit_count() == before + 1
    event = last_event()
    assert event.action == action
    assert event.actor_id == me.id
    assert event.ip == "127.0.0.1"
    assert event.changes


@pytest.mark.parametrize("role", [Role.FRONTDESK, Role.BOOKKEEPER], ids=lambda r: r.value)
def test_only_admins_manage_the_fee_schedule(login, fees, role):
    client, _ = login(role)
    before = audit_count()
    pages = ["/admin/fee-schedule/services", "/admin/fee-schedule/packages", "/admin/fee-schedule/providers",
             "/admin/fee-schedule/carecredit-plans"]
    for url in pages + [_url(u, fees) for u, _, _ in WRITES if "/active" not in u]:
        assert client.get(url).status_code == 403, url
    for url, data, _ in WRITES:
        assert client.post(_url(url, fees), data=data(fees)).status_code == 403, url
    assert audit_count() == before
    assert reload(fees["consult"]).active and fees["12mo"].merchant_fee_bps == 990
