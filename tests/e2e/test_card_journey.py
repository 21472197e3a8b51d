"""Card payments in the browser: the front desk takes a card for an invoice, a declined card is
tried again with another, and a patient pays from the emailed link on a phone.

Stripe.js cannot load here, so this module alone serves a small stand-in for it
(tests/e2e/static/stripe_standin.js) from a loopback server that also passes Stripe API calls on to
localstripe (localstripe answers no CORS preflight for a keyed call, which the browser needs). The
app's STRIPE_JS_URL and STRIPE_API_BASE point there for these tests only; production pages always
load Stripe's own Stripe.js. The payment is settled by localstripe's signed webhook to the app's
POST /stripe/webhook, never by the page.
"""

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from billing.extensions import db
from billing.models import Invoice
from billing.pay.links import make_pay_link
from billing.services.settings import get_settings
from tests.e2e.conftest import no_horizontal_scroll
from tests.e2e.test_checkout_journeys import clinic, desk, patient_owing  # noqa: F401 (fixtures)

STANDIN = Path(__file__).parent / "static" / "stripe_standin.js"
SETTLED_MS = 15_000  # localstripe sends its webhook about a second after the charge; the page polls each second
CARD_PAGE = re.compile(r"^http://127\.0\.0\.1:\d+/payments/\d+/card$")
FORWARDED = ("Authorization", "Content-Type", "Idempotency-Key", "Stripe-Version", "User-Agent")


class StripeStandIn:
    """Stripe as the browser and the app see it in these tests: GET /v3/ is the stand-in Stripe.js;
    everything under /v1/ goes on to localstripe, with the CORS answers a browser needs."""

    def __init__(self, localstripe_url: str):
        upstream = localstripe_url

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _cors(self) -> None:
                if origin := self.headers.get("Origin"):
                    self.send_header("Access-Control-Allow-Origin", origin)
                    self.send_header("Access-Control-Allow-Headers", "Authorization, Content-Type")
                    self.send_header("Access-Control-Allow-Methods", "GET, POST, DELETE")

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self._cors()
                self.end_headers()
                self.wfile.write(body)

            def do_OPTIONS(self) -> None:
                self._send(204, "text/plain", b"")

            def do_GET(self) -> None:
                if self.path.startswith("/v3"):
                    self._send(200, "application/javascript", STANDIN.read_bytes())
                else:
                    self._forward()

            def do_POST(self) -> None:
                self._forward()

            def do_DELETE(self) -> None:
                self._forward()

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name: self.headers[name] for name in FORWARDED if self.headers.get(name)}
                answer = requests.request(self.command, upstream + self.path, data=body, headers=headers, timeout=10)
                self._send(answer.status_code, answer.headers.get("Content-Type", "application/json"), answer.content)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture(scope="module")
def stripe_standin(live_app, localstripe_server) -> Iterator[StripeStandIn]:
    """The stand-in serving, and the live app pointed at it, for this module only."""
    standin = StripeStandIn(localstripe_server.url)
    standin.thread.start()
    saved = {key: live_app.config[key] for key in ("STRIPE_API_BASE", "STRIPE_JS_URL")}
    live_app.config.update(STRIPE_API_BASE=standin.url, STRIPE_JS_URL=f"{standin.url}/v3/")
    yield standin
    live_app.config.update(saved)
    standin.server.shutdown()
    standin.thread.join(timeout=5)


@pytest.fixture
def stripe(stripe_standin, localstripe, live_server):
    """localstripe emptied, delivering its signed events to the app's webhook."""
    localstripe.register_webhook(f"{live_server.url}/stripe/webhook")
    return localstripe


def open_card_tab(page: Page, patient_id: int) -> None:
    page.goto(f"/patients/{patient_id}")
    page.get_by_role("button", name="Take a payment").click()
    page.get_by_role("navigation", name="Payment method").get_by_role("link", name="Card").click()


def pay_with(page: Page, number: str, amount: str = "$450.00") -> None:
    card = page.locator("#card-payment")
    card.get_by_label("Card number").fill(number)
    card.get_by_role("button", name=f"Pay {amount}").click()


def test_the_front_desk_takes_a_card_for_an_invoice(desk, patient_owing, stripe, screenshot):
    page = desk
    open_card_tab(page, patient_owing("Cardholder"))
    expect(page.get_by_label("Amount", exact=True)).to_have_value("450.00")
    screenshot(page, "card-01-tab")
    page.get_by_role("button", name="Continue to card").click()

    expect(page).to_have_url(CARD_PAGE)
    expect(page.get_by_role("heading", name="$450.00 by card")).to_be_visible()
    expect(page.get_by_label("Card number")).to_be_visible()
    screenshot(page, "card-02-payment-element")
    pay_with(page, "4242 4242 4242 4242")

    expect(page.get_by_role("heading", level=1)).to_have_text("Receipt", timeout=SETTLED_MS)
    expect(page.get_by_role("status")).to_have_text("Paid: $450.00 by card. Thank you!")
    receipt = page.locator(".receipt")
    expect(receipt.locator(".tag")).to_have_text("Succeeded")
    expect(receipt).to_contain_text("pi_")
    expect(page.locator('[data-figure="payment-amount"]')).to_have_text("$450.00")
    expect(page.locator('[data-figure="remaining"]')).to_have_text("$0.00")
    expect(page.get_by_role("button", name=re.compile(r"^Receipt [A-Z]+-\d{4}-\d{6} \(PDF\)$"))).to_be_visible()
    screenshot(page, "card-03-receipt")

    page.get_by_role("button", name="Refund").click()
    expect(page.get_by_label("Amount to refund")).to_have_value("450.00")
    page.get_by_label("Amount to refund").fill("100.00")
    page.get_by_label("Reason").fill("One hour shorter than booked")
    screenshot(page, "card-10-refund-form")
    page.get_by_role("button", name="Refund to the card").click()
    expect(page.get_by_role("status")).to_have_text("Refunded $100.00 to the card.")
    expect(page.locator(".receipt .tag")).to_have_text("Partially refunded")
    expect(page.locator('[data-figure="remaining"]')).to_have_text("$100.00")
    screenshot(page, "card-11-refunded")

    page.get_by_role("button", name="Done").click()
    payments = page.locator("section").filter(has=page.get_by_role("heading", name="Payments", exact=True))
    expect(payments.locator("tbody tr")).to_contain_text("Card")
    expect(payments.locator("tbody tr")).to_contain_text("$100.00")


def test_a_declined_card_shows_stripes_message_and_another_card_pays(desk, patient_owing, stripe, screenshot):
    page = desk
    open_card_tab(page, patient_owing("Declined"))
    page.get_by_role("button", name="Continue to card").click()
    first_card_page = page.url
    pay_with(page, "4000 0000 0000 0341")

    expect(page.get_by_text("Your card was declined.")).to_be_visible()
    expect(page.get_by_text("Nothing was charged. Try another card, or take another payment method.")).to_be_visible()
    screenshot(page, "card-04-declined")
    page.get_by_role("button", name="Try another card").click()

    expect(page).to_have_url(CARD_PAGE)
    assert page.url != first_card_page  # a new payment with a new PaymentIntent
    pay_with(page, "4242424242424242")
    expect(page.get_by_role("heading", level=1)).to_have_text("Receipt", timeout=SETTLED_MS)
    expect(page.locator('[data-figure="remaining"]')).to_have_text("$0.00")

    page.goto(first_card_page)  # the declined payment stays unpaid
    expect(page.get_by_text(re.compile("^Nothing was charged."))).to_be_visible()
    expect(page.get_by_role("button", name="Pay $450.00")).to_have_count(0)


def test_an_incomplete_card_number_is_said_next_to_the_card(desk, patient_owing, stripe):
    page = desk
    open_card_tab(page, patient_owing("Typo"))
    page.get_by_role("button", name="Continue to card").click()
    pay_with(page, "4242")
    expect(page.get_by_role("alert")).to_have_text("Your card number is incomplete.")
    expect(page.get_by_role("button", name="Pay $450.00")).to_be_enabled()


def test_a_patient_pays_from_the_emailed_link_on_a_phone(phone_page, patient_owing, live_app, live_server, stripe,
                                                        screenshot):
    page = phone_page
    patient_id = patient_owing("Linkpayer")
    with live_app.app_context():
        settings = get_settings()
        settings.name, settings.phone = "Hudson Valley Infusion Center", "(845) 555-0134"
        db.session.commit()
        invoice = db.session.scalars(sa.select(Invoice).where(Invoice.patient_id == patient_id)).one()
        with live_app.test_request_context(base_url=live_server.url):
            link = make_pay_link(invoice)

    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Invoice {invoice.number}")
    expect(page.get_by_text("Hudson Valley Infusion Center · for Sam L.")).to_be_visible()
    expect(page.locator('[data-figure="due"]')).to_have_text("$450.00")
    no_horizontal_scroll(page)
    screenshot(page, "card-05-pay-link-phone")
    page.get_by_role("button", name="Pay $450.00 by card").click()

    expect(page.get_by_label("Card number")).to_be_visible()
    no_horizontal_scroll(page)
    screenshot(page, "card-06-pay-link-card-phone")
    pay_with(page, "4242 4242 4242 4242")

    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you", timeout=SETTLED_MS)
    expect(page.locator('[data-figure="receipt-number"]')).to_have_text(re.compile(r"^[A-Z]+-\d{4}-\d{6}$"))
    expect(page.locator('[data-figure="due"]')).to_have_text("$0.00")
    no_horizontal_scroll(page)
    screenshot(page, "card-07-pay-link-receipt-phone")

    page.goto(link)
    expect(page.get_by_text("Nothing is due on this invoice. Thank you!")).to_be_visible()
    page.goto(link[:-4] + "abcd")
    expect(page.get_by_role("heading", level=1)).to_have_text("This link has expired or is not valid")
    no_horizontal_scroll(page)
    screenshot(page, "card-08-pay-link-invalid-phone")


def test_stripe_not_answering_says_nothing_was_charged_and_retry_carries_on(desk, patient_owing, stripe, live_app,
                                                                            stripe_standin, screenshot):
    page = desk
    open_card_tab(page, patient_owing("Offline"))
    live_app.config["STRIPE_API_BASE"] = "http://127.0.0.1:9"  # nothing listens there
    try:
        page.get_by_role("button", name="Continue to card").click()
        expect(page.get_by_text("Stripe did not answer. Nothing was charged.")).to_be_visible()
        screenshot(page, "card-09-stripe-not-answering")
    finally:
        live_app.config["STRIPE_API_BASE"] = stripe_standin.url
    page.get_by_role("button", name="Retry").click()
    pay_with(page, "4242 4242 4242 4242")
    expect(page.get_by_role("heading", level=1)).to_have_text("Receipt", timeout=SETTLED_MS)


def test_a_card_form_that_cannot_load_says_so(desk, patient_owing, stripe, live_app, stripe_standin):
    page = desk
    open_card_tab(page, patient_owing("Blocked"))
    live_app.config["STRIPE_JS_URL"] = f"{stripe_standin.url}/not-stripe.js"  # answers 404
    try:
        page.get_by_role("button", name="Continue to card").click()
        expect(page.get_by_role("alert")).to_contain_text("Stripe's card form could not load.")
    finally:
        live_app.config["STRIPE_JS_URL"] = f"{stripe_standin.url}/v3/"
    expect(page.get_by_role("button", name="Pay $450.00")).to_be_disabled()
