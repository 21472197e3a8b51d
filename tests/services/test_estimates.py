"""Good Faith Estimates: priced from the fee schedule, numbered, given, superseded, and the $400 rule."""

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from billing.extensions import db
from billing.models import AuditEvent, Charge, EstimateStatus, GoodFaithEstimate, Provider
from billing.money import Money
from billing.services import ServiceError
from billing.services import charges as charge_service
from billing.services import invoices as invoice_service
from billing.services.estimates import (
    add_months, create_estimate, current_estimate, last_day_of_period, mark_given, overage_if_invoiced,
)
from billing.services.settings import get_settings
from tests.services.conftest import TODAY, refused

GIVEN_AT = datetime(2026, 3, 16, 15, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clinic_ids(app):
    settings = get_settings()
    settings.npi, settings.tin = "1234567893", "12-3456789"
    db.session.flush()
    return settings


@pytest.fixture
def estimate_for(catalog):
    """Factory: estimate_for(patient, infusion=6, ...) -> a draft estimate over TODAY..+6 months."""

    def make(patient, *, given: bool = False, start: date = TODAY, end: date | None = None, provider=None,
             codes=("F33.2",), **quantities):
        lines = [(catalog[name], qty) for name, qty in (quantities or {"infusion": 1}).items()]
        estimate = create_estimate(patient, lines, period_start=start, period_end=end or add_months(start, 6),
                                   provider=provider or catalog["provider"], icd10_codes=codes,
                                   reason="Ketamine infusion series", today=TODAY)
        if given:
            mark_given(estimate, "in person", GIVEN_AT)
        return estimate

    return make


# --- creating -------------------------------------------------------------------------------------


def test_estimate_is_priced_from_the_fee_schedule_and_numbered_without_gaps(make_patient, catalog, estimate_for):
    patient = make_patient()
    first = estimate_for(patient, infusion=6, addl=6, consult=1)
    second = estimate_for(patient, infusion=1)

    assert (first.number, second.number) == ("GFE-2026-000001", "GFE-2026-000002")
    assert first.status == EstimateStatus.DRAFT and first.given_at is None
    assert [(l.code, l.quantity, l.unit_price_cents, l.amount_cents) for l in first.lines] == [
        ("96365", 6, 45000, 270000), ("96366", 6, 15000, 90000), ("99204", 1, 0, 0)]
    assert first.total_cents == 360000
    assert first.icd10_codes == "F33.2" and first.provider_id == catalog["provider"].id
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "estimate.create")).first()
    assert event.changes["number"] == "GFE-2026-000001" and "F33.2" not in str(event.changes)


def test_a_price_change_later_does_not_change_an_estimate(make_patient, catalog, estimate_for):
    estimate = estimate_for(make_patient(), infusion=2)
    catalog["infusion"].default_price_cents = 50000
    db.session.flush()
    db.session.expire_all()
    assert estimate.total_cents == 90000


@pytest.mark.parametrize("end, ok", [
    (date(2027, 3, 15), True),  # 12 months to the day
    (date(2027, 3, 16), False),
    (date(2028, 1, 1), False),
    (TODAY, True),  # a single visit
])
def test_the_period_covers_at_most_12_months(make_patient, estimate_for, end, ok):
    patient = make_patient()
    if ok:
        assert estimate_for(patient, end=end).period_end == end
    else:
        with refused("period_end", r"at most 12 months: end the period by 03/15/2027"):
            estimate_for(patient, end=end)


def test_last_day_of_period_handles_short_months():
    assert last_day_of_period(date(2026, 3, 16)) == date(2027, 3, 15)
    assert last_day_of_period(date(2024, 2, 29)) == date(2025, 2, 27)
    assert last_day_of_period(date(2026, 1, 31)) == date(2027, 1, 30)
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)


def test_a_period_ending_before_it_starts_is_refused(make_patient, estimate_for):
    patient = make_patient()
    with refused("period_end", "end on or after"):
        estimate_for(patient, start=TODAY, end=date(2026, 3, 15))


@pytest.mark.parametrize("quantity, ok", [(0, False), (1, True), (52, True), (53, False), (-1, False)])
def test_quantities_are_1_to_52(make_patient, estimate_for, quantity, ok):
    patient = make_patient()
    if ok:
        assert estimate_for(patient, infusion=quantity).lines[0].quantity == quantity
    else:
        with refused("lines", "between 1 and 52"):
            estimate_for(patient, infusion=quantity)


def test_refusals_name_the_problem_and_use_no_number(make_patient, catalog):
    patient = make_patient()
    kwargs = {"period_start": TODAY, "period_end": TODAY, "today": TODAY}
    with refused("lines", "at least one service"):
        create_estimate(patient, [], **kwargs)
    with refused("lines", "listed twice"):
        create_estimate(patient, [(catalog["infusion"], 1), (catalog["infusion"], 2)], **kwargs)
    with refused("icd10_codes", "XYZ is not an ICD-10 code"):
        create_estimate(patient, [(catalog["infusion"], 1)], icd10_codes=["XYZ"], **kwargs)
    catalog["addl"].active = False
    with refused("lines", "no longer offered"):
        create_estimate(patient, [(catalog["addl"], 1)], **kwargs)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(GoodFaithEstimate)) == 0


def test_an_estimate_needs_the_clinic_npi_and_tin_and_the_provider_npi(make_patient, catalog, clinic_ids):
    clinic_ids.npi = clinic_ids.tin = ""
    nameless = Provider(name="Lee Park", credentials="CRNA", npi="")
    db.session.add(nameless)
    patient = make_patient()
    with refused(None) as info:
        create_estimate(patient, [(catalog["infusion"], 1)], period_start=TODAY, period_end=TODAY,
                        provider=nameless, today=TODAY)
    message = info.value.message
    assert "the clinic's NPI" in message and "the clinic's TIN" in message
    assert "the NPI of Lee Park, CRNA" in message


def test_an_archived_patient_gets_no_estimate(make_patient, estimate_for):
    patient = make_patient()
    patient.archived = True
    with refused(None, "archived"):
        estimate_for(patient)


# --- giving, superseding, the current estimate -----------------------------------------------------


def test_giving_an_estimate_records_how_and_when_and_supersedes_the_previous_one(make_patient, estimate_for):
    patient = make_patient()
    old = estimate_for(patient, given=True)
    new = estimate_for(patient, infusion=6)
    assert current_estimate(patient, TODAY) == old  # a draft is not current

    mark_given(new, "email", GIVEN_AT)
    assert (new.status, new.given_how, new.given_at) == (EstimateStatus.GIVEN, "email", GIVEN_AT)
    assert old.status == EstimateStatus.SUPERSEDED
    assert current_estimate(patient, TODAY) == new
    actions = db.session.scalars(sa.select(AuditEvent.action).where(AuditEvent.action.like("estimate.%"))).all()
    assert actions.count("estimate.give") == 2 and "estimate.supersede" in actions


def test_an_estimate_is_given_once(make_patient, estimate_for):
    estimate = estimate_for(make_patient(), given=True)
    with pytest.raises(ServiceError, match="already given"):
        mark_given(estimate, "mail", GIVEN_AT)
    with pytest.raises(ServiceError, match="in person, by email or by mail") as info:
        mark_given(estimate_for(make_patient()), "fax", GIVEN_AT)
    assert info.value.field == "how"


def test_the_current_estimate_is_the_one_whose_period_covers_the_day(make_patient, estimate_for):
    patient = make_patient()
    estimate = estimate_for(patient, given=True, start=date(2026, 3, 1), end=date(2026, 3, 31))
    assert current_estimate(patient, date(2026, 3, 1)) == estimate
    assert current_estimate(patient, date(2026, 3, 31)) == estimate
    assert current_estimate(patient, date(2026, 4, 1)) is None
    assert current_estimate(make_patient(), TODAY) is None


# --- the $400 rule -------------------------------------------------------------------------------------


def _bill_extra(charge, patient, dollars: str):
    charge(patient, "addl", unit_price=Money.parse(dollars), price_reason="Extended monitoring")


def test_no_warning_at_399_99_over_the_estimate(make_patient, charge, estimate_for):
    patient = make_patient()
    estimate_for(patient, given=True, infusion=1)  # $450.00
    charge(patient, "infusion")
    _bill_extra(charge, patient, "399.99")
    assert overage_if_invoiced(patient, TODAY) is None


def test_warning_at_400_00_over_the_estimate(make_patient, charge, estimate_for):
    patient = make_patient()
    estimate_for(patient, given=True, infusion=1)
    charge(patient, "infusion")
    _bill_extra(charge, patient, "400.00")
    assert overage_if_invoiced(patient, TODAY) == Money(400_00)


def test_issued_invoices_count_void_ones_and_charges_outside_the_period_do_not(make_patient, charge, invoice_for,
                                                                              estimate_for):
    patient = make_patient()
    charge(patient, "infusion", day=date(2026, 3, 2))  # before the period: not covered by the estimate
    estimate_for(patient, given=True, start=date(2026, 3, 9), infusion=1)
    invoice_for(patient, "infusion", day=date(2026, 3, 9))  # $450, issued: with the $450 before, both invoiced
    voided = invoice_for(patient, "infusion", day=date(2026, 3, 10))
    invoice_service.void_invoice(voided, "Posted twice", today=TODAY)
    for line in voided.lines:
        charge_service.void_charge(db.session.get(Charge, line.charge_id), "Posted twice", today=TODAY)
    assert overage_if_invoiced(patient, TODAY) is None  # billed in the period: $450 = the estimate

    charge(patient, "infusion")  # about to be invoiced: $900 billed, $450 over
    assert overage_if_invoiced(patient, TODAY) == Money(450_00)
    invoice_service.issue_invoice(patient, today=TODAY)
    assert overage_if_invoiced(patient, TODAY) == Money(450_00)  # still over once issued


def test_no_current_estimate_no_warning(make_patient, charge, estimate_for):
    patient = make_patient()
    estimate_for(patient, infusion=1)  # a draft, never given
    for _ in range(3):
        charge(patient, "infusion")
    assert overage_if_invoiced(patient, TODAY) is None
