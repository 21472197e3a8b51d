"""The patient portal in the browser, on a phone (375×812) and a desktop (1280×900): ask for a link,
open it from the email a real SMTP server on loopback received, see what is owed, download a receipt,
browse the documents."""

import re
import time
import uuid
from collections.abc import Iterator
from datetime import date

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from billing.extensions import db
from billing.models import Service
from billing.money import Money
from billing.services import charges as charge_service
from billing.services import invoices as invoice_service
from billing.services import patients as patient_service
from billing.services import payments as payment_service
from billing.services import portal as portal_service
from billing.services.settings import get_settings
from billing.timeutil import clinic_today
from tests.e2e.conftest import _close_checked, _open_context, _watch, no_horizontal_scroll, path_is
from tests.integrations.conftest import SMTPServer, _free_port

DESKTOP = {"width": 1280, "height": 900}
SIGN_IN_LINK = re.compile(r"http://127\.0\.0\.1:\d+(/portal/sign-in/[A-Za-z0-9_-]+)")


@pytest.fixture(scope="module")
def mailbox(live_app) -> Iterator[SMTPServer]:
    """A real SMTP server on loopback that the live server's outbox delivers to."""
    server = SMTPServer(_free_port())
    saved = {key: live_app.config[key] for key in ("SMTP_HOST", "SMTP_PORT", "SMTP_STARTTLS", "SMTP_SSL")}
    live_app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=server.port, SMTP_STARTTLS=False, SMTP_SSL=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        live_app.config.update(saved)


@pytest.fixture(scope="module")
def clinic(live_app):
    from billing.demo import seed_catalog

    with live_app.app_context():
        if not db.session.scalar(sa.select(Service).where(Service.code == "KET-INF")):
            seed_catalog()
        settings = get_settings()
        settings.name, settings.phone = "Lakeside Infusion Clinic", "(207) 555-0142"
        settings.npi, settings.tin = "1245319599", "12-3456789"
        db.session.commit()


@pytest.fixture
def patient_with_history(live_app, clinic):
    """A patient with portal access: a paid infusion (with its receipt) and an open invoice of $450."""
    email = f"sam.{uuid.uuid4().hex[:8]}@example.test"
    with live_app.app_context():
        today = clinic_today()
        patient = patient_service.create_patient(
            {"first_name": "Sam", "last_name": "Rivera", "date_of_birth": date(1980, 5, 17), "email": email},
            today=today)
        infusion = db.session.scalars(sa.select(Service).where(Service.code == "KET-INF")).one()
        for _ in range(2):
            charge_service.post_charge(patient, charge_service.ChargeInput(
                service=infusion, date_of_service=today, icd10_codes=["F33.2"]), today=today)
            invoice = invoice_service.issue_invoice(patient, today=today)
            if _ == 0:
                payment_service.record_money_order(
                    patient, Money.parse("450.00"), payment_service.MoneyOrderInput(
                        issuer=payment_service.MoneyOrderIssuer.USPS, serial=str(uuid.uuid4().int)[:11],
                        purchaser="Sam Rivera", id_seen=True, signed_in_front_of_staff=True,
                        security_features_checked=True),
                    received_date=today, today=today, apply_to=[(invoice.id, Money.parse("450.00"))])
        portal_service.invite(patient, email, link_for=lambda token: "not sent in this test", minutes=15)
        db.session.commit()
    return email


def _emailed_link(mailbox: SMTPServer, to: str, seen: int) -> str:
    """The sign-in link in the newest email to `to` after the first `seen` messages."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for message in mailbox.messages[seen:]:
            if message["To"] == to and "sign in" in message["Subject"].lower():
                return SIGN_IN_LINK.search(message.get_content()).group(1)
        time.sleep(0.1)
    raise AssertionError(f"no sign-in email reached {to}")


def _sign_in(page: Page, mailbox: SMTPServer, email: str, screenshot, size: str) -> str:
    page.goto("/portal/")
    expect(page).to_have_url(path_is("/portal/sign-in"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Your patient portal")
    no_horizontal_scroll(page, page.viewport_size["width"])
    screenshot(page, f"portal-sign-in-{size}")
    seen = len(mailbox.messages)
    page.get_by_label("Your email").fill(email.upper())
    page.get_by_role("button", name="Email me a sign-in link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    screenshot(page, f"portal-check-email-{size}")
    link = _emailed_link(mailbox, email, seen)
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome back")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(path_is("/portal/"))
    return link


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_a_patient_signs_in_from_the_email_and_downloads_a_receipt(browser, live_server, mailbox,
                                                                  patient_with_history, screenshot, size):
    options = ({"viewport": {"width": 375, "height": 812}, "is_mobile": True, "has_touch": True}
               if size == "phone" else {"viewport": DESKTOP})
    context, problems = _open_context(browser, live_server.url, **options)
    page = _watch(context.new_page(), problems)
    width = options["viewport"]["width"]
    try:
        link = _sign_in(page, mailbox, patient_with_history, screenshot, size)
        expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Sam")
        expect(page.locator('[data-figure="due"]')).to_have_text("$450.00")
        expect(page.get_by_text("F33.2")).to_have_count(0)
        no_horizontal_scroll(page, width)
        screenshot(page, f"portal-home-{size}")

        page.get_by_role("link", name="Documents", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Your documents")
        no_horizontal_scroll(page, width)
        screenshot(page, f"portal-documents-{size}")
        receipt = page.locator("[data-receipt]").first
        number = receipt.get_attribute("data-receipt")
        with page.expect_download() as download:
            receipt.get_by_role("button", name=re.compile("Download receipt")).click()
        assert download.value.suggested_filename == f"receipt-{number}.pdf"
        assert open(download.value.path(), "rb").read(5) == b"%PDF-"

        page.locator("[data-invoice]").first.get_by_role("link").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Invoice")
        no_horizontal_scroll(page, width)
        screenshot(page, f"portal-invoice-{size}")

        # The link that signed in cannot sign in again, even in this browser.
        page.goto(link)
        expect(page.locator("#link-refused")).to_contain_text("cannot be used")
        screenshot(page, f"portal-link-used-{size}")

        page.goto("/portal/")
        page.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(path_is("/portal/sign-in"))
    finally:
        _close_checked(context, problems)
