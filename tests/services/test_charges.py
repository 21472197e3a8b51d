"""Posting and voiding charges; selling packages, drawing them down and refunding unused units."""

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from billing.extensions import db
from billing.models import (
    Charge, ChargeStatus, InvoiceStatus, Package, PackagePurchase, PaymentStatus, Service, ServiceCategory,
)
from billing.money import Money, MoneyError
from billing.services import balances, journal
from billing.services import charges as charge_service
from billing.services import invoices as invoice_service
from billing.services import patients as patient_service
from billing.services import payments as payment_service
from tests.services.conftest import TODAY, close_month, refused, unbalanced_entries

ChargeInput = charge_service.ChargeInput


def usd(text: str) -> Money:
    return Money.parse(text)


def post(patient, service, **kw) -> Charge:
    return charge_service.post_charge(patient, ChargeInput(service=service, date_of_service=kw.pop("day", TODAY), **kw),
                                      today=TODAY)


def entry_lines(source) -> list[set[tuple[str, int, int | None]]]:
    return [{(line.account.code, line.amount_cents, line.patient_id) for line in entry.lines}
            for entry in journal.entries_for(source)]


# --- post_charge ------------------------------------------------------------------------------


def test_a_charge_at_the_schedule_price_posts_receivables_against_revenue(make_patient, catalog):
    patient = make_patient()
    posted = post(patient, catalog["infusion"], provider=catalog["provider"], icd10_codes=["f33.2", "G90.51"])

    assert (posted.status, posted.units, posted.unit_price_cents, posted.amount_cents) == (
        ChargeStatus.OPEN, 1, 45000, 45000)
    assert posted.invoice_id is None
    assert posted.icd10_codes == "F33.2 G90.51"
    assert posted.provider_id == catalog["provider"].id
    assert entry_lines(posted) == [{("1100", 45000, patient.id), ("4020", -45000, None)}]
    assert balances.patient_receivable(patient.id) == usd("450")
    assert balances.patient_summary(patient).uninvoiced == usd("450")


def test_units_price_and_discount_make_the_amount(make_patient, catalog):
    patient = make_patient()
    posted = post(patient, catalog["addl"], units=3, unit_price=usd("140.00"), price_reason=" Loyal patient ",
                  discount=usd("20.01"))
    assert (posted.unit_price_cents, posted.discount_cents, posted.amount_cents) == (14000, 2001, 39999)
    assert posted.price_reason == "Loyal patient"
    assert entry_lines(posted) == [{("1100", 39999, patient.id), ("4020", -39999, None)}]


def test_each_category_posts_to_its_own_revenue_account(make_patient, catalog):
    patient = make_patient()
    drug = Service(code="KET-DRUG", name="Ketamine HCl", cpt_code="J3490",
                                  category=ServiceCategory.DRUG, default_price_cents=8000)
    visit = Service(code="EST", name="Established visit", cpt_code="99214",
                                   category=ServiceCategory.VISIT, default_price_cents=20000)
    db.session.add_all([drug, visit])
    db.session.flush()
    assert entry_lines(post(patient, drug))[0] == {("1100", 8000, patient.id), ("4030", -8000, None)}
    assert entry_lines(post(patient, visit))[0] == {("1100", 20000, patient.id), ("4010", -20000, None)}


def test_a_free_consultation_posts_no_journal_entry(make_patient, catalog):
    patient = make_patient()
    posted = post(patient, catalog["consult"])
    assert posted.amount_cents == 0
    assert journal.entries_for(posted) == []
    assert balances.patient_summary(patient).balance == Money.zero()


def test_a_full_discount_posts_nothing(make_patient, catalog):
    patient = make_patient()
    posted = post(patient, catalog["infusion"], discount=usd("450"))
    assert posted.amount_cents == 0
    assert journal.entries_for(posted) == []


def test_infusion_times_are_kept(make_patient, catalog):
    start = datetime(2026, 3, 16, 14, 0, tzinfo=UTC)
    posted = post(make_patient(), catalog["infusion"], infusion_start=start,
                  infusion_stop=start + timedelta(minutes=55))
    db.session.flush()
    db.session.expire(posted)
    assert posted.infusion_stop - posted.infusion_start == timedelta(minutes=55)


@pytest.mark.parametrize(("kw", "field"), [
    ({"units": 0}, "units"),
    ({"units": -1}, "units"),
    ({"units": 25}, "units"),
    ({"unit_price": Money(-1), "price_reason": "x"}, "unit_price"),
    ({"unit_price": usd("400")}, "price_reason"),
    ({"unit_price": usd("400"), "price_reason": "   "}, "price_reason"),
    ({"discount": Money(-1)}, "discount"),
    ({"discount": usd("450.01")}, "discount"),
    ({"units": 2, "discount": usd("900.01")}, "discount"),
    ({"day": TODAY + timedelta(days=1)}, "date_of_service"),
    ({"infusion_start": datetime(2026, 3, 16, 14, tzinfo=UTC)}, "infusion_stop"),
    ({"infusion_stop": datetime(2026, 3, 16, 14, tzinfo=UTC)}, "infusion_stop"),
    ({"infusion_start": datetime(2026, 3, 16, 14, tzinfo=UTC),
      "infusion_stop": datetime(2026, 3, 16, 14, tzinfo=UTC)}, "infusion_stop"),
    ({"infusion_start": datetime(2026, 3, 16, 14, tzinfo=UTC),
      "infusion_stop": datetime(2026, 3, 16, 13, tzinfo=UTC)}, "infusion_stop"),
    ({"icd10_codes": ["F33.2", "U07.1"]}, "icd10_codes"),  # U codes are not ICD-10-CM diagnoses here
    ({"icd10_codes": ["banana"]}, "icd10_codes"),
    ({"use_package": True}, "use_package"),  # none bought
], ids=lambda v: "+".join(v) if isinstance(v, dict) else f"refuses-{v}")
def test_post_charge_refusals_change_nothing(make_patient, catalog, kw, field):
    patient = make_patient()
    post(patient, catalog["addl"])
    with refused(field):
        post(patient, catalog["infusion"], **kw)


def test_an_inactive_service_is_refused(make_patient, catalog):
    patient = make_patient()
    catalog["infusion"].active = False
    with refused("service", match="no longer offered"):
        post(patient, catalog["infusion"])


def test_an_archived_patient_cannot_be_charged(make_patient, catalog):
    patient = make_patient()
    patient_service.set_archived(patient, True)
    with refused(match="archived"):
        post(patient, catalog["infusion"])


def test_a_charge_dated_in_a_closed_month_is_refused(make_patient, catalog):
    patient = make_patient()
    close_month(date(2026, 2, 1))
    with refused(match="February 2026 are closed"):
        post(patient, catalog["infusion"], day=date(2026, 2, 27))
    with refused(match="closed"):
        post(patient, catalog["consult"], day=date(2026, 2, 1))  # even a $0 charge
    assert post(patient, catalog["infusion"], day=date(2026, 3, 1)).amount_cents == 45000


# --- parse_icd10 ----------------------------------------------------------------------------------


def test_parse_icd10_splits_and_upper_cases():
    assert charge_service.parse_icd10("f33.2, G90.51;F32.A  g90.50") == ["F33.2", "G90.51", "F32.A", "G90.50"]
    assert charge_service.parse_icd10("") == []
    assert charge_service.parse_icd10(None) == []


@pytest.mark.parametrize("text", ["F33-2", "33.2", "F3", "F33.21234", "UO7.1", "F33.2 X"])
def test_parse_icd10_names_the_bad_code(text):
    with pytest.raises(charge_service.ServiceError) as info:
        charge_service.parse_icd10(text)
    assert info.value.field == "icd10_codes"


def test_parse_icd10_allows_at_most_twelve_codes():
    assert len(charge_service.parse_icd10(" ".join(["F33.2"] * 12))) == 12
    with pytest.raises(charge_service.ServiceError) as info:
        charge_service.parse_icd10(" ".join(["F33.2"] * 13))
    assert info.value.field == "icd10_codes"


def test_twelve_of_the_longest_codes_are_stored_or_refused_never_a_database_error(make_patient, catalog):
    patient = make_patient()
    text = " ".join(f"S52.52{i % 10}A" for i in range(12))  # 12 × 8 characters: longer than the column
    try:
        codes = charge_service.parse_icd10(text)
    except charge_service.ServiceError as err:
        assert err.field == "icd10_codes"
        return
    posted = post(patient, catalog["infusion"], icd10_codes=codes)
    db.session.flush()
    assert posted.icd10_codes.split() == codes


# --- void_charge ---------------------------------------------------------------------------------


def test_void_reverses_the_charge_entry(make_patient, catalog):
    patient = make_patient()
    posted = post(patient, catalog["infusion"], day=date(2026, 3, 2))
    charge_service.void_charge(posted, "  Entered twice ", today=TODAY)

    assert posted.status == ChargeStatus.VOID
    assert posted.void_reason == "Entered twice"
    original, reversal = journal.entries_for(posted)
    assert reversal.reverses_id == original.id
    assert reversal.entry_date == TODAY
    assert entry_lines(posted)[1] == {("1100", -45000, patient.id), ("4020", 45000, None)}
    assert balances.patient_receivable(patient.id) == Money.zero()
    assert balances.patient_summary(patient).balance == Money.zero()
    assert unbalanced_entries() == []


def test_void_of_a_free_charge_posts_nothing(make_patient, catalog):
    posted = post(make_patient(), catalog["consult"])
    charge_service.void_charge(posted, "No show", today=TODAY)
    assert posted.status == ChargeStatus.VOID
    assert journal.entries_for(posted) == []


def test_void_needs_a_reason(make_patient, catalog):
    posted = post(make_patient(), catalog["infusion"])
    with refused("reason"):
        charge_service.void_charge(posted, "   ", today=TODAY)
    assert posted.status == ChargeStatus.OPEN


def test_an_invoiced_charge_cannot_be_voided_until_its_invoice_is(make_patient, catalog):
    patient = make_patient()
    posted = post(patient, catalog["infusion"])
    invoice = invoice_service.issue_invoice(patient, today=TODAY)
    with refused(match="void the invoice first"):
        charge_service.void_charge(posted, "Wrong service", today=TODAY)

    invoice_service.void_invoice(invoice, "Wrong service", today=TODAY)
    charge_service.void_charge(posted, "Wrong service", today=TODAY)
    assert posted.status == ChargeStatus.VOID
    with refused():
        charge_service.void_charge(posted, "Again", today=TODAY)  # already void
    assert balances.patient_summary(patient).balance == Money.zero()


def test_void_when_today_is_in_a_closed_month_changes_nothing(make_patient, catalog):
    patient = make_patient()
    posted = post(patient, catalog["infusion"], day=date(2026, 3, 2))
    close_month(TODAY)
    with refused(match="closed"):
        charge_service.void_charge(posted, "Entered twice", today=TODAY)
    assert posted.status == ChargeStatus.OPEN


# --- packages -------------------------------------------------------------------------------------


def pay_package(patient, purchase, pay_mo) -> tuple:
    """Invoice the package charge and pay it in full by money order."""
    invoice = invoice_service.issue_invoice(patient, today=TODAY, charge_ids=[purchase.charge_id])
    payment = pay_mo(patient, Money(invoice.total_cents).plain())
    assert invoice.status == InvoiceStatus.PAID
    return invoice, payment


def test_sell_package_posts_package_revenue_and_creates_the_units(make_patient, catalog):
    patient = make_patient()
    purchase = charge_service.sell_package(patient, catalog["package"], date_of_service=TODAY, today=TODAY,
                                           provider=catalog["provider"])
    sale = db.session.get(Charge, purchase.charge_id)

    assert (purchase.units_bought, purchase.units_refunded, purchase.price_cents) == (6, 0, 240000)
    assert (sale.package_id, sale.amount_cents, sale.units, sale.status) == (
        catalog["package"].id, 240000, 1, ChargeStatus.OPEN)
    assert entry_lines(sale) == [{("1100", 240000, patient.id), ("4040", -240000, None)}]
    assert balances.patient_summary(patient).package_units == 6
    assert balances.package_units_left(purchase) == 6


def test_sell_package_refusals(make_patient, catalog):
    patient = make_patient()
    catalog["package"].active = False
    with refused("package"):
        charge_service.sell_package(patient, catalog["package"], date_of_service=TODAY, today=TODAY)
    catalog["package"].active = True
    with refused("date_of_service"):
        charge_service.sell_package(patient, catalog["package"], date_of_service=TODAY + timedelta(days=1),
                                    today=TODAY)
    close_month(date(2026, 2, 1))
    with refused(match="closed"):
        charge_service.sell_package(patient, catalog["package"], date_of_service=date(2026, 2, 3), today=TODAY)


def test_sell_package_refuses_an_archived_patient_like_post_charge(make_patient, catalog):
    patient = make_patient()
    patient_service.set_archived(patient, True)
    with refused(match="archived"):
        charge_service.sell_package(patient, catalog["package"], date_of_service=TODAY, today=TODAY)


def test_sell_package_refuses_a_service_no_longer_offered_like_post_charge(make_patient, catalog):
    patient = make_patient()
    catalog["infusion"].active = False
    with refused("service"):
        charge_service.sell_package(patient, catalog["package"], date_of_service=TODAY, today=TODAY)


def test_draw_down_six_units_at_no_charge_then_the_seventh_is_refused(make_patient, catalog):
    patient = make_patient()
    purchase = charge_service.sell_package(patient, catalog["package"], date_of_service=TODAY, today=TODAY)
    receivable = balances.patient_receivable(patient.id)

    visits = [post(patient, catalog["infusion"], use_package=True, day=TODAY - timedelta(days=6 - i))
              for i in range(6)]

    for visit in visits:
        assert (visit.amount_cents, visit.unit_price_cents, visit.package_purchase_id) == (0, 0, purchase.id)
        assert visit.price_reason == "Prepaid: Six-infusion series"
        assert journal.entries_for(visit) == []
    assert balances.package_units_left(purchase) == 0
    assert balances.patient_summary(patient).package_units == 0
    assert balances.patient_receivable(patient.id) == receivable
    with refused("use_package", match="no prepaid"):
        post(patient, catalog["infusion"], use_package=True)

    charge_service.void_charge(visits[-1], "Visit cancelled", today=TODAY)  # a voided visit gives its unit back
    assert balances.package_units_left(purchase) == 1
    post(patient, catalog["infusion"], use_package=True)
    assert balances.package_units_left(purchase) == 0


def test_a_visit_of_several_units_draws_as_many_prepaid_units(make_patient, catalog):
    patient = make_patient()
    purchase = charge_service.sell_package(patient, catalog["package"], date_of_service=TODAY, today=TODAY)
    post(patient, catalog["infusion"], use_package=True, units=5)
    assert balances.package_units_left(purchase) == 1
    with refused("use_package"):
        post(patient, catalog["infusion"], use_package=True, units=2)
    post(patient, catalog["infusion"], use_package=True)
    assert balances.package_units_left(purchase) == 0


def test_units_are_drawn_only_for_the_packaged_service(make_patient, catalog):
    patient = make_patient()
    charge_service.sell_package(patient, catalog["package"], date_of_service=TODAY, today=TODAY)
    with refused("use_package"):
        post(patient, catalog["addl"], use_package=True)


def test_draws_take_the_oldest_package_with_units_left(make_patient, catalog):
    patient = make_patient()
    first = charge_service.sell_package(patient, catalog["package"], date_of_service=TODAY, today=TODAY)
    second = charge_service.sell_package(patient, catalog["package"], date_of_service=TODAY, today=TODAY)
    draws = [post(patient, catalog["infusion"], use_package=True) for _ in range(7)]
    assert [d.package_purchase_id for d in draws] == [first.id] * 6 + [second.id]
    assert balances.patient_summary(patient).package_units == 5


def test_a_voided_package_has_no_units(make_patient, catalog):
    patient = make_patient()
    purchase = charge_service.sell_package(patient, catalog["package"], date_of_service=TODAY, today=TODAY)
    charge_service.void_charge(db.session.get(Charge, purchase.charge_id), "Sold by mistake", today=TODAY)
    assert balances.patient_summary(patient).package_units == 0
    assert balances.patient_summary(patient).balance == Money.zero()
    with refused("use_package"):
        post(patient, catalog["infusion"], use_package=True)


def test_a_package_in_use_cannot_be_voided(make_patient, catalog):
    patient = make_patient()
    purchase = charge_service.sell_package(patient, catalog["package"], date_of_service=TODAY, today=TODAY)
    post(patient, catalog["infusion"], use_package=True)
    with refused(match="already used"):
        charge_service.void_charge(db.session.get(Charge, purchase.charge_id), "Changed mind", today=TODAY)


@pytest.fixture
def odd_package(catalog):
    """Six infusions at a price that does not divide by six."""
    package = Package(code="SERIES6X", name="Six-infusion series (2025 price)", service_id=catalog["infusion"].id,
                      units=6, price_cents=240001)
    db.session.add(package)
    db.session.flush()
    return package


def test_refund_two_unused_units_pro_rata_as_credit_then_to_the_payment(make_patient, catalog, odd_package, pay_mo):
    patient = make_patient()
    purchase = charge_service.sell_package(patient, odd_package, date_of_service=TODAY, today=TODAY)
    invoice, payment = pay_package(patient, purchase, pay_mo)
    for _ in range(4):
        post(patient, catalog["infusion"], use_package=True)

    amount = charge_service.refund_package_units(purchase, 2, "Moving away", today=TODAY)

    # 2400.01 / 6: the first unit carries the extra cent, the refunded ones are the last two.
    assert amount == usd("800.00")
    assert purchase.units_refunded == 2
    assert balances.package_units_left(purchase) == 0
    assert balances.patient_credit(patient.id) == usd("800.00")
    assert entry_lines(purchase) == [{("4900", 80000, None), ("2100", -80000, patient.id)}]
    assert balances.patient_summary(patient).balance == -usd("800.00")
    with refused("units"):
        charge_service.refund_package_units(purchase, 1, "More", today=TODAY)

    refund = payment_service.refund_payment(payment, amount, "Unused units", today=TODAY, check_number="7001")
    assert refund.amount_cents == 80000
    assert payment.status == PaymentStatus.PARTIALLY_REFUNDED
    assert balances.patient_credit(patient.id) == Money.zero()
    assert invoice.status == InvoiceStatus.PAID  # the refund came out of the credit, not the invoice
    assert balances.patient_summary(patient).balance == Money.zero()
    assert journal.balance(journal.BANK) == -usd("800.00")
    assert unbalanced_entries() == []


def test_unit_refunds_add_up_to_the_price_to_the_cent(make_patient, odd_package, pay_mo):
    patient = make_patient()
    purchase = charge_service.sell_package(patient, odd_package, date_of_service=TODAY, today=TODAY)
    pay_package(patient, purchase, pay_mo)
    amounts = [charge_service.refund_package_units(purchase, n, "Stopping treatment", today=TODAY)
               for n in (1, 2, 3)]
    assert amounts == [usd("400.00"), usd("800.00"), usd("1200.01")]
    assert sum(amounts, Money.zero()) == Money(odd_package.price_cents)
    assert balances.patient_credit(patient.id) == usd("2400.01")


@pytest.mark.parametrize(("units", "reason", "field"), [(0, "x", "units"), (7, "x", "units"), (-1, "x", "units"),
                                                       (1, "  ", "reason")])
def test_refund_units_refusals(make_patient, catalog, pay_mo, units, reason, field):
    patient = make_patient()
    purchase = charge_service.sell_package(patient, catalog["package"], date_of_service=TODAY, today=TODAY)
    pay_package(patient, purchase, pay_mo)
    with refused(field):
        charge_service.refund_package_units(purchase, units, reason, today=TODAY)


def test_refund_units_of_a_package_not_paid_in_full_is_refused(make_patient, catalog, pay_mo):
    patient = make_patient()
    purchase = charge_service.sell_package(patient, catalog["package"], date_of_service=TODAY, today=TODAY)
    with refused(match="not paid in full"):  # not even invoiced
        charge_service.refund_package_units(purchase, 1, "Moving", today=TODAY)
    invoice_service.issue_invoice(patient, today=TODAY)
    pay_mo(patient, "2399.99")
    with refused(match="not paid in full"):
        charge_service.refund_package_units(purchase, 1, "Moving", today=TODAY)


def test_refund_units_when_today_is_in_a_closed_month_changes_nothing(make_patient, catalog, pay_mo):
    patient = make_patient()
    purchase = charge_service.sell_package(patient, catalog["package"], date_of_service=TODAY, today=TODAY)
    pay_package(patient, purchase, pay_mo)
    close_month(TODAY)
    with refused(match="closed"):
        charge_service.refund_package_units(purchase, 2, "Moving", today=TODAY)
    assert purchase.units_refunded == 0


def test_money_parse_refuses_what_a_charge_price_cannot_be():
    for text in ("450.001", "-450", "abc"):
        with pytest.raises(MoneyError):
            Money.parse(text)
    assert Money.parse("0") == Money.zero()  # a free consultation is a real price


def test_package_purchases_are_one_per_sale(make_patient, catalog):
    patient = make_patient()
    charge_service.sell_package(patient, catalog["package"], date_of_service=TODAY, today=TODAY)
    charge_service.sell_package(patient, catalog["package"], date_of_service=TODAY, today=TODAY)
    count = db.session.scalar(sa.select(sa.func.count()).select_from(PackagePurchase)
                              .where(PackagePurchase.patient_id == patient.id))
    assert count == 2
