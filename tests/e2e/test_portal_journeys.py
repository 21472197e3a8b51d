"""The patient portal in the browser, on a phone (375×812) and a desktop (1280×900): ask for a link,
open it from the email a real SMTP server on loopback received, see what is owed, download a receipt,
browse the documents."""

import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from datetime import date

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from billing.extensions import db
from billing.models import Service
from billing.outbox.delivery import deliver_due
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


@contextmanager
def portal_page(browser, live_server, size: str) -> Iterator[Page]:
    """A page in a fresh context, phone-sized (375×812, touch) or desktop-sized, checked when closed
    like the shared `page` fixtures (no internet, no console errors)."""
    options = ({"viewport": {"width": 375, "height": 812}, "is_mobile": True, "has_touch": True}
               if size == "phone" else {"viewport": DESKTOP})
    context, problems = _open_context(browser, live_server.url, **options)
    try:
        yield _watch(context.new_page(), problems)
    finally:
        _close_checked(context, problems)


def wait_for_mail(mailbox: SMTPServer, live_app, seen: int, wanted) -> EmailMessage:
    """The first message after the first `seen` that `wanted(message)` accepts. Mail goes out right
    after the response that queued it; should the dev server hold that response open (it drains the
    browser's socket first), cron's `flask billing send-mail` is what delivers it: run it."""
    deadline = time.monotonic() + 10
    sent_by_cron = False
    while time.monotonic() < deadline:
        found = [m for m in mailbox.messages[seen:] if wanted(m)]
        if found:
            return found[0]
        if not sent_by_cron and time.monotonic() > deadline - 7:
            with live_app.app_context():
                deliver_due()
            sent_by_cron = True
        time.sleep(0.1)
    raise AssertionError("the email did not arrive")


def _emailed_link(mailbox: SMTPServer, live_app, to: str, seen: int) -> str:
    """The sign-in link in the newest email to `to` after the first `seen` messages."""
    message = wait_for_mail(mailbox, live_app, seen,
                            lambda m: m["To"] == to and "sign in" in m["Subject"].lower())
    return SIGN_IN_LINK.search(message.get_content()).group(1)


def _sign_in(page: Page, mailbox: SMTPServer, live_app, email: str, screenshot, size: str) -> str:
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
    link = _emailed_link(mailbox, live_app, email, seen)
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome back")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(path_is("/portal/"))
    return link


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_a_patient_signs_in_from_the_email_and_downloads_a_receipt(browser, live_app, live_server, mailbox,
                                                                  patient_with_history, screenshot, size):
    with portal_page(browser, live_server, size) as page:
        width = page.viewport_size["width"]
        link = _sign_in(page, mailbox, live_app, patient_with_history, screenshot, size)
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


def test_the_front_desk_invites_a_patient_who_signs_in_from_the_invitation(page, browser, live_app, live_server,
                                                                           mailbox, clinic, staff, screenshot):
    from billing.models import Role
    from tests.e2e.conftest import sign_in

    email = f"lee.{uuid.uuid4().hex[:8]}@example.test"
    with live_app.app_context():
        patient = patient_service.create_patient(
            {"first_name": "Lee", "last_name": "Okafor", "date_of_birth": date(1975, 1, 2), "email": email},
            today=clinic_today())
        db.session.commit()
        patient_id = patient.id
    desk = staff[Role.FRONTDESK]
    sign_in(page, desk.email, desk.password)
    page.goto(f"/patients/{patient_id}")
    portal = page.locator("#portal")
    expect(portal).to_contain_text("No portal access yet")
    expect(portal.get_by_label("Portal email")).to_have_value(email)
    seen = len(mailbox.messages)
    portal.get_by_role("button", name="Invite to the portal").click()
    expect(page.get_by_text(f"a sign-in link is on its way to {email}")).to_be_visible()
    expect(page.locator("#portal")).to_contain_text(f"Can sign in with {email}")
    page.locator("#portal").scroll_into_view_if_needed()
    screenshot(page, "portal-invite-desk")

    invitation = wait_for_mail(mailbox, live_app, seen, lambda m: m["To"] == email)
    assert invitation["Subject"] == "Your invitation to the patient portal"
    link = SIGN_IN_LINK.search(invitation.get_content()).group(1)

    with portal_page(browser, live_server, "phone") as phone:
        phone.goto(link)
        phone.get_by_role("button", name="Sign in").click()
        expect(phone.get_by_role("heading", level=1)).to_have_text("Hello, Lee")
        expect(phone.get_by_text("You are all paid up.")).to_be_visible()
