"""The front desk's check-out through the real pages: register, charge, invoice, pay, receipt, refund."""

import re
import threading
import urllib.error
import urllib.request
import uuid
from datetime import date

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from billing.demo import seed_catalog
from billing.extensions import db
from billing.models import Role, Service
from billing.services import charges as charge_service
from billing.services import invoices as invoice_service
from billing.services import patients as patient_service
from billing.timeutil import clinic_today
from tests.e2e.conftest import no_horizontal_scroll, path_is, sign_in


@pytest.fixture(scope="module")
def clinic(live_app, staff):
    """The demo fee schedule, providers and CareCredit plans, beside one user per role (`staff`)."""
    with live_app.app_context():
        seed_catalog()
        db.session.commit()
    return staff


@pytest.fixture
def desk(page, clinic) -> Page:
    """The tablet page, signed in as the front desk."""
    person = clinic[Role.FRONTDESK]
    sign_in(page, person.email, person.password)
    expect(page).to_have_url(path_is("/frontdesk/"))
    return page


@pytest.fixture
def patient_owing(live_app, clinic):
    """Factory: a new patient with one issued $450 infusion invoice, committed; returns the patient's id."""

    def make(last_name: str) -> int:
        with live_app.app_context():
            patient = patient_service.create_patient(
                {"first_name": "Sam", "last_name": last_name, "date_of_birth": date(1980, 5, 17)},
                today=clinic_today())
            infusion = db.session.scalars(sa.select(Service).where(Service.code == "KET-INF")).one()
            charge_service.post_charge(patient, charge_service.ChargeInput(
                service=infusion, date_of_service=clinic_today()), today=clinic_today())
            invoice_service.issue_invoice(patient, today=clinic_today())
            db.session.commit()
            return patient.id

    return make


# --- helpers ---------------------------------------------------------------------------------


def serial() -> str:
    """A money-order serial no other test uses (the live database is shared by the module)."""
    return str(uuid.uuid4().int)[:11]


def figure(page: Page, name: str):
    return page.locator(f'[data-figure="{name}"]')


def payment_rows(page: Page):
    """The rows of the patient page's Payments table."""
    section = page.locator("section").filter(has=page.get_by_role("heading", name="Payments", exact=True))
    return section.locator("tbody tr")


def register(page: Page, first: str, last: str, screenshot=None) -> None:
    """From the front desk home: register a patient and land on their page."""
    page.get_by_role("button", name="Register a patient").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Register a patient")
    if screenshot:
        screenshot(page, "checkout-02-register-form")
    page.get_by_label("First name").fill(first)
    page.get_by_label("Last name").fill(last)
    page.get_by_label("Date of birth").fill("1984-02-29")
    page.get_by_label("Phone").fill("(212) 555-0143")
    page.get_by_label("Email").fill(f"{first.lower()}@example.com")
    page.get_by_role("button", name="Save patient").click()
    expect(page.get_by_role("status")).to_contain_text(f"{first} {last} is registered as")


def fill_money_order(page: Page, amount: str, number: str, purchaser: str = "Avery Quinn") -> None:
    page.get_by_label("Amount", exact=True).fill(amount)
    page.get_by_label("Issuer").select_option(label="USPS")
    page.get_by_label("Serial number").fill(number)
    page.get_by_label("Purchaser (as written)").fill(purchaser)
    page.get_by_label("I saw the payer's photo ID").check()
    page.get_by_label("It was signed in front of me").check()
    page.get_by_label("I checked the watermark and security thread").check()


# --- journeys --------------------------------------------------------------------------------


def test_a_new_patient_pays_an_infusion_half_by_money_order_half_by_carecredit(desk, clinic, screenshot):
    page = desk
    expect(page.get_by_role("search")).to_be_visible()
    screenshot(page, "checkout-01-frontdesk-home")

    register(page, "Avery", "Quinn", screenshot)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Avery Quinn")
    expect(figure(page, "due")).to_have_text("$0.00")
    screenshot(page, "checkout-03-patient-registered")

    page.get_by_role("navigation", name="Patient actions").get_by_role("button", name="Check out").click()
    expect(page.get_by_role("heading", name="Add a charge")).to_be_visible()
    expect(page.locator(".steps [aria-current=step]")).to_have_text("1. Charges")
    screenshot(page, "checkout-04-checkout-empty")

    # Adding without choosing a service says so next to the field.
    page.get_by_role("button", name="Add charge").click()
    expect(page.locator("#service-help")).to_have_text("Choose a service.")
    # The fee-schedule search narrows the list; one match is chosen for you.
    page.get_by_label("Find a service by name or code").fill("ket-inf")
    expect(page.get_by_label("Service", exact=True).locator("option:checked")).to_have_text(
        "Ketamine infusion, first hour · 96365 · $450.00")
    page.get_by_label("Rendering provider").select_option(label="Dana Whitfield, MD")
    page.get_by_label("Diagnosis codes (ICD-10)").fill("F33.2")
    screenshot(page, "checkout-05-charge-filled")
    page.get_by_role("button", name="Add charge").click()

    expect(page.get_by_role("status")).to_have_text("Charge added.")
    cart = page.locator("article").filter(has=page.get_by_role("heading", name="To invoice"))
    expect(cart.get_by_role("row").filter(has_text="Ketamine infusion, first hour")).to_contain_text("$450.00")
    expect(figure(page, "cart-total")).to_have_text("$450.00")
    expect(figure(page, "uninvoiced")).to_have_text("$450.00")
    screenshot(page, "checkout-06-charge-added")

    page.get_by_role("button", name="Issue invoice").click()
    expect(page.get_by_role("status")).to_contain_text(re.compile(r"Invoice INV-\d{4}-\d{6} issued\."))
    tabs = page.get_by_role("navigation", name="Payment method")
    expect(tabs.get_by_role("link", name="Money order")).to_have_attribute("aria-current", "page")
    expect(page.get_by_label("Amount", exact=True)).to_have_value("450.00")
    expect(figure(page, "due")).to_have_text("$450.00")
    screenshot(page, "checkout-07-payment-money-order")

    mo_serial = serial()
    fill_money_order(page, "225.00", mo_serial)
    screenshot(page, "checkout-08-money-order-filled")
    page.get_by_role("button", name="Record money order").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Receipt")
    expect(page.get_by_role("status")).to_have_text("$225.00 received. Thank you!")
    expect(page.locator(".receipt")).to_contain_text(f"USPS serial ending {mo_serial[-4:]}")
    expect(page.locator(".receipt")).not_to_contain_text(mo_serial)
    expect(figure(page, "payment-amount")).to_have_text("$225.00")
    expect(figure(page, "remaining")).to_have_text("$225.00")
    screenshot(page, "checkout-09-money-order-receipt")

    page.locator(".receipt").get_by_role("link", name=re.compile(r"^INV-")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Invoice INV-")
    expect(figure(page, "invoice-balance")).to_have_text("$225.00")
    screenshot(page, "checkout-10-invoice-part-paid")

    page.get_by_role("button", name="Take payment").click()
    page.get_by_role("navigation", name="Payment method").get_by_role("link", name="Card").click()
    expect(page.get_by_role("button", name="Continue to card")).to_be_visible()
    screenshot(page, "checkout-11-card-tab")
    page.get_by_role("navigation", name="Payment method").get_by_role("link", name="CareCredit").click()
    expect(page.get_by_role("navigation", name="Payment method").get_by_role("link", name="CareCredit")) \
        .to_have_attribute("aria-current", "page")
    expect(page.get_by_label("Amount", exact=True)).to_have_value("225.00")
    page.get_by_label("Authorization code").fill("a7k2p9")
    page.get_by_label("Promotional plan").select_option(label="12 months no interest")
    page.get_by_label("Last 4 digits of the CareCredit account").fill("4321")
    page.get_by_label("I checked the cardholder's photo ID").check()
    page.get_by_label("The cardholder signed the CareCredit receipt").check()
    screenshot(page, "checkout-12-carecredit-filled")
    page.get_by_role("button", name="Record CareCredit payment").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Receipt")
    receipt = page.locator(".receipt")
    expect(receipt).to_contain_text("12 months no interest")
    expect(receipt).to_contain_text("authorization A7K2P9")
    expect(receipt).to_contain_text("account ending 4321")
    expect(figure(page, "payment-amount")).to_have_text("$225.00")
    expect(figure(page, "remaining")).to_have_text("$0.00")
    screenshot(page, "checkout-13-carecredit-receipt")

    page.emulate_media(media="print")
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
    expect(page.get_by_role("button", name="Print")).to_be_hidden()
    expect(page.locator(".steps")).to_be_hidden()
    expect(receipt).to_be_visible()
    screenshot(page, "checkout-14-carecredit-receipt-print")
    page.emulate_media(media="screen")

    page.get_by_role("button", name="Done").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Avery Quinn")
    expect(figure(page, "due")).to_have_text("$0.00")
    invoices = page.locator("section").filter(has=page.get_by_role("heading", name="Invoices", exact=True))
    expect(invoices.locator("tbody tr")).to_have_count(1)
    expect(invoices.locator("tbody tr")).to_contain_text("Paid")
    expect(payment_rows(page)).to_have_count(2)
    charges = page.locator("section").filter(has=page.get_by_role("heading", name="Charges", exact=True))
    expect(charges.locator("tbody tr")).to_contain_text("F33.2")
    screenshot(page, "checkout-15-patient-paid")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Front desk").click()
    page.get_by_role("searchbox", name="Find a patient").fill("quinn")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Patients")
    result = page.get_by_role("row").filter(has_text="Quinn, Avery")
    expect(result).to_contain_text("02/29/1984")
    screenshot(page, "checkout-16-search-results")
    result.get_by_role("link", name="Quinn, Avery").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Avery Quinn")
    patient_url = page.url

    page.get_by_role("navigation", name="Main").locator("summary", has_text="Frances Desk").click()
    page.get_by_role("button", name="Sign out").click()
    books = clinic[Role.BOOKKEEPER]
    sign_in(page, books.email, books.password)
    expect(page).to_have_url(path_is("/books/"))
    page.goto(patient_url)
    expect(figure(page, "due")).to_have_text("$0.00")
    expect(payment_rows(page)).to_have_count(2)
    expect(page.get_by_role("main")).to_contain_text("$450.00")
    expect(page.get_by_role("main")).not_to_contain_text("F33.2")
    expect(page.get_by_role("navigation", name="Patient actions")).to_have_count(0)
    screenshot(page, "checkout-17-bookkeeper-patient")


def test_a_duplicate_money_order_serial_is_refused_next_to_the_field(desk, patient_owing, screenshot):
    page = desk
    patient_id = patient_owing("Duplicate")
    mo_serial = serial()
    page.goto(f"/patients/{patient_id}")
    page.get_by_role("button", name="Take a payment").click()
    fill_money_order(page, "100.00", mo_serial)
    page.get_by_role("button", name="Record money order").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Receipt")

    page.goto(f"/patients/{patient_id}")
    expect(payment_rows(page)).to_have_count(1)
    page.get_by_role("button", name="Take a payment").click()
    fill_money_order(page, "100.00", mo_serial, purchaser="Somebody Else")
    page.get_by_role("button", name="Record money order").click()

    serial_field = page.get_by_label("Serial number")
    expect(serial_field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#serial-help")).to_have_class(re.compile(r"\bfield-error\b"))
    expect(page.locator("#serial-help")).to_contain_text(f"USPS money order {mo_serial} was already recorded")
    expect(serial_field).to_have_attribute("aria-describedby", "serial-help")
    expect(serial_field).to_have_value(mo_serial)
    expect(page.get_by_label("Purchaser (as written)")).to_have_value("Somebody Else")
    screenshot(page, "checkout-duplicate-serial")

    page.goto(f"/patients/{patient_id}")
    expect(payment_rows(page)).to_have_count(1)
    expect(figure(page, "due")).to_have_text("$350.00")


def test_an_overpaid_money_order_is_confirmed_then_refunded_by_check(desk, patient_owing, screenshot):
    page = desk
    patient_id = patient_owing("Overpaid")
    page.goto(f"/patients/{patient_id}")
    page.get_by_role("button", name="Take a payment").click()
    fill_money_order(page, "500.00", serial())
    page.get_by_role("button", name="Record money order").click()

    confirm = page.get_by_label("Keep what is more than the balance as the patient's credit")
    expect(page.locator(".confirm-box")).to_contain_text("This is $50.00 more than what is applied to invoices")
    expect(confirm).to_be_visible()
    expect(confirm).not_to_be_checked()
    expect(page.get_by_label("Amount", exact=True)).to_have_value("500.00")
    screenshot(page, "refund-01-confirm-overpayment")

    confirm.check()
    page.get_by_role("button", name="Record money order").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Receipt")
    expect(figure(page, "payment-amount")).to_have_text("$500.00")
    expect(figure(page, "remaining")).to_have_text("$0.00")
    expect(figure(page, "credit")).to_have_text("$50.00")
    screenshot(page, "refund-02-overpaid-receipt")

    page.get_by_role("button", name="Refund").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Refund payment #")
    expect(page.get_by_label("Amount to refund")).to_have_value("50.00")
    page.get_by_label("Reason").fill("Overpaid")
    page.get_by_label("Clinic check number").fill("1042")
    screenshot(page, "refund-03-refund-form")
    page.get_by_role("button", name="Refund", exact=True).click()

    expect(page.get_by_role("status")).to_have_text("Refunded $50.00.")
    receipt = page.locator(".receipt")
    expect(receipt.get_by_role("row").filter(has_text="by check 1042")).to_contain_text("-$50.00")
    expect(receipt).to_contain_text("Partially refunded")
    expect(figure(page, "credit")).to_have_text("$0.00")
    expect(figure(page, "remaining")).to_have_text("$0.00")
    screenshot(page, "refund-04-receipt-after-refund")

    page.get_by_role("button", name="Done").click()
    expect(payment_rows(page)).to_have_count(1)
    expect(payment_rows(page)).to_contain_text("$50.00")
    expect(figure(page, "credit")).to_have_text("$0.00")
    screenshot(page, "refund-05-patient")


def test_a_double_click_records_one_money_order(desk, patient_owing, screenshot):
    page = desk
    patient_id = patient_owing("Doubleclick")
    page.goto(f"/payments/new/{patient_id}/money_order")
    fill_money_order(page, "450.00", serial())
    page.get_by_role("button", name="Record money order").dblclick()

    expect(page.get_by_role("heading", level=1)).to_have_text("Receipt")
    screenshot(page, "double-click-receipt")
    page.goto(f"/patients/{patient_id}")
    expect(payment_rows(page)).to_have_count(1)
    expect(payment_rows(page)).to_contain_text("$450.00")
    expect(figure(page, "due")).to_have_text("$0.00")
    screenshot(page, "double-click-patient")


def test_the_checkout_and_payment_pages_fit_a_phone(phone_page, clinic, screenshot):
    page = phone_page
    person = clinic[Role.FRONTDESK]
    sign_in(page, person.email, person.password)
    expect(page).to_have_url(path_is("/frontdesk/"))
    no_horizontal_scroll(page)
    screenshot(page, "phone-frontdesk-home")

    register(page, "Robin", "Phoneham")
    page.get_by_role("button", name="Check out").tap()
    page.get_by_label("Service", exact=True).select_option(label="Ketamine infusion, first hour · 96365 · $450.00")
    page.get_by_label("Diagnosis codes (ICD-10)").fill("F33.2")
    page.get_by_role("button", name="Add charge").tap()
    expect(figure(page, "cart-total")).to_have_text("$450.00")
    no_horizontal_scroll(page)
    screenshot(page, "phone-checkout")

    page.get_by_label("Service", exact=True).select_option(label="Ondansetron injection, 1 mg · J2405 · $5.00")
    page.get_by_role("button", name="Add charge").tap()
    expect(figure(page, "cart-total")).to_have_text("$455.00")
    mistake = page.locator(".cart tbody tr").filter(has_text="Ondansetron")
    mistake.locator("summary", has_text="Void").tap()
    mistake.get_by_label("Reason").fill("Not given")
    no_horizontal_scroll(page)
    screenshot(page, "phone-checkout-void")
    mistake.get_by_role("button", name="Void charge").tap()
    expect(page.get_by_role("status")).to_have_text("Charge voided.")
    expect(page.locator(".cart tbody tr")).to_have_count(1)
    expect(figure(page, "cart-total")).to_have_text("$450.00")

    page.get_by_role("button", name="Issue invoice").tap()
    expect(page.get_by_label("Amount", exact=True)).to_have_value("450.00")
    no_horizontal_scroll(page)
    screenshot(page, "phone-payment")

    fill_money_order(page, "450.00", serial(), purchaser="Robin Phoneham")
    page.get_by_role("button", name="Record money order").tap()
    expect(figure(page, "remaining")).to_have_text("$0.00")
    no_horizontal_scroll(page)
    screenshot(page, "phone-receipt")


def test_the_same_payment_form_sent_three_times_at_once_records_one(page, clinic, patient_owing, live_app,
                                                                   live_server, request):
    """What a double click does when no script holds it back (or a flaky network resends): the same
    filled form reaches the server several times at once; one is recorded, all show its receipt."""
    person = clinic[Role.FRONTDESK]
    sign_in(page, person.email, person.password)
    expect(page).to_have_url(path_is("/frontdesk/"))
    patient_id = patient_owing("Twins")
    page.goto(f"/payments/new/{patient_id}/money_order")
    fill_money_order(page, "450.00", serial())
    body = page.evaluate("() => new URLSearchParams(new FormData(document.querySelector('main form'))).toString()")
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())

    answers = send_at_once(f"{live_server.url}/payments/new/{patient_id}/money_order", body, cookies, times=3)

    assert [status for status, _ in answers] == [302, 302, 302], answers
    assert len({location for _, location in answers}) == 1, answers
    page.goto(f"/patients/{patient_id}")
    expect(payment_rows(page)).to_have_count(1)
    expect(figure(page, "due")).to_have_text("$0.00")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def send_at_once(url: str, body: str, cookies: str, times: int) -> list[tuple[int, str | None]]:
    """POST the same form body `times` times in parallel; (status, Location) of each answer."""
    opener = urllib.request.build_opener(_NoRedirects)
    start = threading.Barrier(times)
    answers: list[tuple[int, str | None]] = []

    def send() -> None:
        post = urllib.request.Request(url, data=body.encode(), headers={
            "Cookie": cookies, "Content-Type": "application/x-www-form-urlencoded"})
        start.wait()
        try:
            with opener.open(post, timeout=10) as response:
                answers.append((response.status, response.headers.get("Location")))
        except urllib.error.HTTPError as answer:
            answers.append((answer.code, answer.headers.get("Location")))

    threads = [threading.Thread(target=send) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=15)
    return answers
