"""Paying a balance in the patient portal by card, on a phone and a desktop: sign in from the emailed
link, pay, wait for Stripe's signed webhook (localstripe, through the Stripe.js stand-in of
tests/e2e/test_card_journey.py), then download the receipt."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import no_horizontal_scroll, path_is
from tests.e2e.test_card_journey import SETTLED_MS, pay_with, stripe, stripe_standin  # noqa: F401 (fixtures)
from tests.e2e.test_portal_journeys import (  # noqa: F401 (fixtures)
    _sign_in, clinic, mailbox, patient_with_history, portal_page,
)


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_a_patient_pays_the_balance_by_card_and_gets_the_receipt(browser, live_app, live_server, mailbox, stripe,
                                                                 patient_with_history, screenshot, size):
    with portal_page(browser, live_server, size) as page:
        width = page.viewport_size["width"]
        _sign_in(page, mailbox, live_app, patient_with_history, lambda *args: None, size)
        expect(page.locator('[data-figure="due"]')).to_have_text("$450.00")
        page.get_by_role("button", name="Pay $450.00 by card").click()

        expect(page).to_have_url(path_is("/portal/pay"))
        no_horizontal_scroll(page, width)
        screenshot(page, f"portal-pay-{size}")
        page.get_by_role("button", name="Pay $450.00 by card").click()

        expect(page).to_have_url(re.compile(r"/portal/payments/\d+/card$"))
        expect(page.get_by_label("Card number")).to_be_visible()
        no_horizontal_scroll(page, width)
        screenshot(page, f"portal-pay-card-{size}")
        pay_with(page, "4242 4242 4242 4242")

        expect(page.get_by_role("heading", level=1)).to_have_text("Thank you", timeout=SETTLED_MS)
        expect(page).to_have_url(re.compile(r"/portal/payments/\d+$"))
        number = page.locator('[data-figure="receipt-number"]')
        expect(number).to_have_text(re.compile(r"^[A-Z]+-\d{4}-\d{6}$"))
        expect(page.locator('[data-figure="due"]')).to_have_text("$0.00")
        no_horizontal_scroll(page, width)
        screenshot(page, f"portal-paid-{size}")
        with page.expect_download() as download:
            page.get_by_role("button", name=re.compile("Download receipt")).click()
        assert download.value.suggested_filename == f"receipt-{number.text_content()}.pdf"
        assert open(download.value.path(), "rb").read(5) == b"%PDF-"

        page.get_by_role("link", name="Home", exact=True).click()
        expect(page.locator('[data-figure="due"]')).to_have_text("$0.00")
        expect(page.get_by_text("You are all paid up.")).to_be_visible()
