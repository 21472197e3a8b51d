"""Superbills and Good Faith Estimates rendered for real (pypdf text), their refusals, the pages and roles."""

import io
import re
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from billing.documents.estimates import estimate_pdf
from billing.documents.superbill import additional_infusion_hours, superbill_data, superbill_pdf
from billing.extensions import db
from billing.models import AuditEvent, EstimateStatus, GoodFaithEstimate, Role, Service, ServiceCategory
from billing.money import Money
from billing.services import ServiceError
from billing.services import charges as charge_service
from billing.services import invoices as invoice_service
from billing.services.estimates import create_estimate, mark_given
from billing.services.settings import get_settings
from tests.services.conftest import TODAY, catalog, charge, invoice_for, make_patient, pay_mo  # noqa: F401  (fixtures)

EASTERN = ZoneInfo("America/New_York")
MARCH = (date(2026, 3, 1), date(2026, 3, 31))


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def at(day: date, hh: int, mm: int) -> datetime:
    return datetime.combine(day, time(hh, mm), EASTERN)


@pytest.fixture(autouse=True)
def clinic(app):
    settings = get_settings()
    settings.name = "Lakeside Infusion Clinic"
    settings.address_line1 = "200 Harbor Street, Suite 4"
    settings.city, settings.state, settings.postal_code = "Portland", "ME", "04101"
    settings.phone, settings.email = "(207) 555-0142", "billing@lakeside.test"
    settings.npi, settings.tin = "1245319599", "12-3456789"
    settings.timezone = "America/New_York"
    db.session.flush()
    return settings


@pytest.fixture
def patient(make_patient):
    return make_patient(last="Rivera", first="Sam", address_line1="18 Elm Street", city="Portland", state="ME",
                        postal_code="04102")


def visit(charge, catalog, patient, day: date, start: tuple[int, int] | None, stop: tuple[int, int] | None,
          addl_units: int = 1, codes=("F33.2",)):
    """An infusion visit: the first hour (with the times, when given) and the additional hours."""
    times = {"infusion_start": at(day, *start), "infusion_stop": at(day, *stop)} if start else {}
    charge(patient, "infusion", day=day, icd10_codes=list(codes), provider=catalog["provider"], **times)
    charge(patient, "addl", day=day, units=addl_units, provider=catalog["provider"])


# --- +96366 units ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stop, units", [
    ((10, 50), 0), ((11, 25), 0), ((11, 30), 0), ((11, 31), 1), ((12, 0), 1), ((12, 30), 1), ((12, 31), 2),
    ((12, 40), 2), ((13, 45), 3),
])
def test_additional_hours_need_more_than_30_minutes_past_the_hour(stop, units):
    assert additional_infusion_hours(at(TODAY, 10, 0), at(TODAY, *stop)) == units


def test_superbill_units_come_from_the_infusion_times_when_recorded(patient, charge, catalog):
    visit(charge, catalog, patient, date(2026, 3, 2), (10, 0), (12, 40), addl_units=1)  # charged 1, times say 2
    visit(charge, catalog, patient, date(2026, 3, 9), (10, 0), (11, 25), addl_units=1)  # times say 0
    visit(charge, catalog, patient, date(2026, 3, 12), (10, 0), (11, 31), addl_units=2)  # times say 1
    visit(charge, catalog, patient, date(2026, 3, 16), None, None, addl_units=3)  # no times: its own units

    data = superbill_data(patient, *MARCH)
    addl = {v["date"].day: [l["units"] for l in v["lines"] if l["code"] == "96366"] for v in data["visits"]}
    assert addl == {2: [2], 9: [0], 12: [1], 16: [3]}
    text = text_of(superbill_pdf(patient, *MARCH).pdf)
    assert re.search(r"96366 Infusion, each additional hour 2 F33\.2 \$150\.00", text)
    assert "Infusion 10:00–12:40 (2 h 40 min)" in text
    assert "Infusion 10:00–11:31 (1 h 31 min)" in text


# --- the superbill ---------------------------------------------------------------------------------


def test_superbill_pdf_has_everything_an_insurer_asks_for(patient, charge, catalog, pay_mo):
    visit(charge, catalog, patient, date(2026, 3, 2), (10, 0), (12, 40), addl_units=2, codes=("F33.2", "G90.512"))
    invoice_service.issue_invoice(patient, today=date(2026, 3, 2))
    pay_mo(patient, "750")  # pays the 03/02 visit in full
    visit(charge, catalog, patient, date(2026, 3, 9), (10, 0), (11, 10), addl_units=1)
    invoice_service.issue_invoice(patient, today=date(2026, 3, 9))
    pay_mo(patient, "100")
    charge(patient, "infusion", day=date(2026, 2, 27))  # outside the range

    document = superbill_pdf(patient, *MARCH)
    assert document.filename == f"superbill-{patient.account_number}-2026-03-01-to-2026-03-31.pdf"
    text = text_of(document.pdf)
    for expected in [
        "Superbill", "Sam Rivera", "Date of birth 05/17/1980", "18 Elm Street", "Portland, ME 04102",
        "Lakeside Infusion Clinic", "NPI 1245319599", "TIN 12-3456789",
        "Dana Whitfield, MD", "NPI 1234567893", "PLACE OF SERVICE", "11 – Office",
        "Services 03/01/2026 – 03/31/2026",
    ]:
        assert expected in text, expected
    assert re.search(r"03/02/2026 96365 Ketamine infusion, first hour 1 F33\.2, G90\.512 \$450\.00 \$450\.00", text)
    assert re.search(r"96366 Infusion, each additional hour 2 F33\.2, G90\.512 \$300\.00 \$300\.00", text)
    assert re.search(r"Infusion 10:00–12:40 \(2 h 40 min\) · Paid in full \$750\.00 \$750\.00", text)
    # 03/09: 10:00–11:10 supports no additional hour; $100 of $600 paid: not paid in full.
    assert re.search(r"96366 Infusion, each additional hour 0 F33\.2 \$150\.00 \$0\.00", text)
    assert re.search(r"Balance \$500\.00 \$600\.00 \$100\.00", text)
    assert "TOTAL $1,350.00 $850.00" in text and "Balance still due $500.00" in text
    assert "02/27/2026" not in text
    assert text.count("Paid in full") == 2  # the 03/02 visit, and the legend


def test_superbill_says_paid_in_full_when_everything_was(patient, charge, catalog, pay_mo):
    visit(charge, catalog, patient, date(2026, 3, 2), (10, 0), (11, 0), addl_units=1)
    invoice_service.issue_invoice(patient, today=date(2026, 3, 2))
    pay_mo(patient, "600")
    text = text_of(superbill_pdf(patient, *MARCH).pdf)
    assert "Paid in full. The patient paid Lakeside Infusion Clinic in full for every date of service" in text
    assert "Balance still due" not in text


def test_a_diagnosis_on_one_charge_covers_the_visit_and_a_drug_shows_its_ndc(patient, charge, catalog):
    drug = Service(code="KET-DRUG", name="Ketamine HCl 50 mg/mL", cpt_code="J3490", category=ServiceCategory.DRUG,
                   default_price_cents=6000, ndc="42023-0113-10")
    db.session.add(drug)
    db.session.flush()
    catalog["drug"] = drug
    visit(charge, catalog, patient, date(2026, 3, 2), None, None)
    charge(patient, "drug", day=date(2026, 3, 2), units=2)
    text = text_of(superbill_pdf(patient, *MARCH).pdf)
    assert re.search(r"J3490 Ketamine HCl 50 mg/mL\nNDC 42023-0113-10\n2 F33\.2 \$120\.00", text)


def test_superbill_refuses_naming_every_missing_field(patient, charge, catalog, clinic):
    clinic.npi = clinic.tin = ""
    catalog["provider"].npi = ""
    visit(charge, catalog, patient, date(2026, 3, 2), None, None, codes=())
    visit(charge, catalog, patient, date(2026, 3, 9), None, None, codes=("F33.2",))
    with pytest.raises(ServiceError) as info:
        superbill_pdf(patient, *MARCH)
    message = info.value.message
    assert message.startswith("This superbill cannot be produced yet. Missing:")
    assert "the clinic's NPI" in message and "the clinic's TIN" in message
    assert "the NPI of Dana Whitfield, MD" in message
    assert "a diagnosis (ICD-10) on the charges of 03/02/2026" in message and "03/09/2026" not in message


@pytest.mark.parametrize("missing", ["npi", "tin"])
def test_superbill_refuses_one_missing_clinic_id(patient, charge, catalog, clinic, missing):
    setattr(clinic, missing, "")
    visit(charge, catalog, patient, date(2026, 3, 2), None, None)
    with pytest.raises(ServiceError, match=f"Missing: the clinic's {missing.upper()} \\(Admin › Settings\\)\\.$"):
        superbill_data(patient, *MARCH)


def test_superbill_refuses_an_empty_or_reversed_range(patient, charge, catalog):
    with pytest.raises(ServiceError, match="no services between 03/01/2026 and 03/31/2026"):
        superbill_data(patient, *MARCH)
    with pytest.raises(ServiceError, match="end on or after"):
        superbill_data(patient, date(2026, 3, 31), date(2026, 3, 1))


def test_voided_charges_are_left_out(patient, charge, catalog):
    visit(charge, catalog, patient, date(2026, 3, 2), None, None)
    wrong = charge(patient, "consult", day=date(2026, 3, 2))
    charge_service.void_charge(wrong, "Posted by mistake", today=TODAY)
    text = text_of(superbill_pdf(patient, *MARCH).pdf)
    assert "99204" not in text


# --- the Good Faith Estimate ------------------------------------------------------------------------


@pytest.fixture
def estimate(patient, catalog):
    return create_estimate(
        patient, [(catalog["consult"], 1), (catalog["infusion"], 6), (catalog["addl"], 6)],
        period_start=TODAY, period_end=date(2027, 3, 15), provider=catalog["provider"], icd10_codes=["F33.2"],
        reason="Ketamine infusion series for treatment-resistant depression", today=TODAY)


def test_estimate_pdf_has_the_required_contents_and_disclaimers(estimate):
    mark_given(estimate, "in person", at(TODAY, 15, 0))
    document = estimate_pdf(estimate)
    assert document.filename == "good-faith-estimate-GFE-2026-000001.pdf"
    text = text_of(document.pdf)
    flat = " ".join(text.split())
    for expected in [
        "Good Faith Estimate", "GFE-2026-000001", "Given 03/16/2026 (in person)",
        "Sam Rivera", "Date of birth 05/17/1980", "18 Elm Street",
        "Lakeside Infusion Clinic", "NPI 1245319599", "TIN 12-3456789", "Dana Whitfield, MD", "NPI 1234567893",
        "Period of care 03/16/2026 to 03/15/2027", "Diagnosis codes F33.2",
        "Reason for care Ketamine infusion series for treatment-resistant depression",
        "Consultation 99204 1 $0.00 $0.00",
        "Ketamine infusion, first hour 96365 6 $450.00 $2,700.00",
        "Infusion, each additional hour 96366 6 $150.00 $900.00",
        "TOTAL ESTIMATED CHARGES $3,600.00",
        # the disclaimers
        "This is an estimate only, not a contract.",
        "It does not require you to obtain the items or services",
        "You have the right to dispute the bill if the billed charges are $400.00 or more above this Good Faith "
        "Estimate",
        "within 120 calendar days", "of the date on the bill",
        "How to start a dispute. First, you may contact Lakeside Infusion Clinic at (207) 555-0142",
        "Patient-Provider Dispute Resolution", "www.cms.gov/nosurprises", "1-800-985-3059",
        "Keep a copy of this Good Faith Estimate",
    ]:
        assert expected in flat, expected


def test_estimate_without_known_diagnosis_says_so(patient, catalog):
    estimate = create_estimate(patient, [(catalog["consult"], 1)], period_start=TODAY, period_end=TODAY,
                               today=TODAY)
    flat = " ".join(text_of(estimate_pdf(estimate).pdf).split())
    assert "Diagnosis codes Not known at this time" in flat and "Period of care 03/16/2026 " in flat
    assert "Prepared" in flat and "Given" not in flat.split("You are getting")[0]


def test_estimate_pdf_is_refused_when_the_clinic_ids_went_missing(estimate, clinic):
    clinic.tin = ""
    with pytest.raises(ServiceError, match="Missing: the clinic's TIN"):
        estimate_pdf(estimate)


# --- the pages: front desk yes, bookkeeper no -------------------------------------------------------------


@pytest.fixture
def on_today(monkeypatch):
    """The pages' "today" is the tests' TODAY, whatever the wall clock says."""
    for module in ("billing.estimates.routes", "billing.patients.routes"):
        monkeypatch.setattr(f"{module}.clinic_today", lambda: TODAY)


def _token(html: str) -> str:
    return re.search(r'name="form_token" type="hidden" value="([^"]+)"', html).group(1)


def test_front_desk_prepares_prints_and_gives_an_estimate(login, patient, catalog, on_today):
    db.session.commit()
    client, _ = login(Role.FRONTDESK)
    page = client.get(f"/patients/{patient.id}").get_data(as_text=True)
    assert "Prepare a Good Faith Estimate" in page and "Download superbill (PDF)" in page

    url = f"/estimates/new/{patient.id}"
    page = client.get(url).get_data(as_text=True)
    assert "Ketamine infusion, first hour" in page and 'value="2027-03-15"' in page
    data = {"form_token": _token(page), "period_start": "2026-03-16", "period_end": "2027-03-15",
            "provider": catalog["provider"].id, "icd10_codes": "f33.2", "reason": "Infusion series",
            f"qty_{catalog['infusion'].id}": "6", f"qty_{catalog['addl'].id}": "", f"qty_{catalog['consult'].id}": "1"}
    response = client.post(url, data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    estimate = db.session.scalars(sa.select(GoodFaithEstimate)).one()
    assert response.location.endswith(f"/estimates/{estimate.id}")
    assert estimate.total_cents == 270000 and estimate.icd10_codes == "F33.2"
    assert client.post(url, data=data).status_code == 302  # sent twice: one estimate
    assert db.session.scalar(sa.select(sa.func.count()).select_from(GoodFaithEstimate)) == 1

    page = client.get(response.location).get_data(as_text=True)
    assert "GFE-2026-000001" in page and "$2,700.00" in page and "Record that it was given" in page
    pdf = client.get(f"/estimates/{estimate.id}/pdf")
    assert pdf.mimetype == "application/pdf" and pdf.headers["Cache-Control"] == "no-store"
    assert "GFE-2026-000001.pdf" in pdf.headers["Content-Disposition"]
    assert "www.cms.gov/nosurprises" in text_of(pdf.data)

    response = client.post(f"/estimates/{estimate.id}/given", data={"form_token": _token(page), "how": "email"})
    assert response.status_code == 302
    db.session.expire_all()
    assert estimate.status == EstimateStatus.GIVEN and estimate.given_how == "email"
    actions = set(db.session.scalars(sa.select(AuditEvent.action)))
    assert {"estimate.create", "estimate.view", "estimate.download", "estimate.give"} <= actions


def test_the_estimate_form_shows_refusals(login, patient, catalog, on_today):
    db.session.commit()
    client, _ = login(Role.FRONTDESK)
    url = f"/estimates/new/{patient.id}"
    page = client.get(url).get_data(as_text=True)
    response = client.post(url, data={"form_token": _token(page), "period_start": "2026-03-16",
                                      "period_end": "2027-03-16", "provider": 0,
                                      f"qty_{catalog['infusion'].id}": "6"})
    assert response.status_code == 200
    assert "An estimate covers at most 12 months: end the period by 03/15/2027" in response.get_data(as_text=True)
    response = client.post(url, data={"form_token": _token(page), "period_start": "2026-03-16",
                                      "period_end": "2026-03-16", "provider": 0,
                                      f"qty_{catalog['infusion'].id}": "53"})
    assert "Between 0 and 52." in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(GoodFaithEstimate)) == 0


def test_front_desk_downloads_a_superbill_or_reads_what_is_missing(login, patient, charge, catalog, clinic):
    visit(charge, catalog, patient, date(2026, 3, 2), (10, 0), (12, 40))
    db.session.commit()
    client, _ = login(Role.FRONTDESK)
    response = client.get(f"/patients/{patient.id}/superbill?start=2026-03-01&end=2026-03-31")
    assert response.mimetype == "application/pdf", response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    assert "superbill-P000001-2026-03-01-to-2026-03-31.pdf" in response.headers["Content-Disposition"]
    assert "NPI 1245319599" in text_of(response.data)
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "superbill.download")).one()
    assert event.changes == {"start": "2026-03-01", "end": "2026-03-31"}

    clinic.npi = ""
    db.session.commit()
    response = client.get(f"/patients/{patient.id}/superbill?start=2026-03-01&end=2026-03-31")
    assert response.status_code == 302 and "start=2026-03-01" in response.location
    page = client.get(response.location).get_data(as_text=True)
    assert "Missing: the clinic&#39;s NPI (Admin › Settings)." in page
    assert 'value="2026-03-01"' in page  # the dates asked for are kept
    response = client.get(f"/patients/{patient.id}/superbill?start=&end=2026-03-31", follow_redirects=True)
    assert "Enter the first date of service." in response.get_data(as_text=True)


def test_bookkeepers_see_neither_estimates_nor_superbills(login, patient, catalog):
    estimate = create_estimate(patient, [(catalog["infusion"], 1)], period_start=TODAY, period_end=TODAY,
                               icd10_codes=["F33.2"], today=TODAY)
    db.session.commit()
    client, _ = login(Role.BOOKKEEPER)
    page = client.get(f"/patients/{patient.id}").get_data(as_text=True)
    assert "Superbill" not in page and "Good Faith" not in page and "GFE-" not in page
    for url in (f"/estimates/new/{patient.id}", f"/estimates/{estimate.id}", f"/estimates/{estimate.id}/pdf",
                f"/patients/{patient.id}/superbill?start=2026-03-01&end=2026-03-31"):
        assert client.get(url).status_code == 403, url
    assert client.post(f"/estimates/{estimate.id}/given", data={"how": "email"}).status_code == 403


# --- the $400 warning at check-out ----------------------------------------------------------------------------


@pytest.mark.parametrize("extra, warned", [("399.99", False), ("400.00", True)])
def test_checkout_warns_before_an_invoice_400_over_the_estimate(login, patient, charge, catalog, on_today, extra,
                                                             warned):
    estimate = create_estimate(patient, [(catalog["infusion"], 1)], period_start=date(2026, 3, 1),
                               period_end=date(2027, 2, 28), today=TODAY)
    mark_given(estimate, "in person", at(TODAY, 9, 0))
    charge(patient, "infusion")
    charge(patient, "addl", unit_price=Money.parse(extra), price_reason="Extended monitoring")
    db.session.commit()
    client, _ = login(Role.FRONTDESK)
    page = client.get(f"/patients/{patient.id}/checkout").get_data(as_text=True)
    assert ('data-warning="estimate-overage"' in page) is warned
    if warned:
        flat = " ".join(page.split())
        assert "are $400.00 above estimate GFE-2026-000001 ($450.00)" in flat
        assert flat.index("estimate-overage") < flat.index('value="Issue invoice"')
