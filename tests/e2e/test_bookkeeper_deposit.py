"""The end of a day in the browser: the front desk closes it with the money orders counted, the
bookkeeper reviews the close, batches the money orders, prints the deposit slip and marks it deposited."""

import io
import re
import uuid
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect
from pypdf import PdfReader

from billing.demo import seed_catalog
from billing.extensions import db
from billing.models import CareCreditPlan, MoneyOrderIssuer, Role
from billing.money import Money
from billing.services import journal
from billing.services import patients as patient_service
from billing.services import payments as payment_service
from billing.timeutil import clinic_today
from tests.e2e.conftest import TABLET, _close_checked, _open_context, _watch, path_is, sign_in


@pytest.fixture(scope="module")
def day(live_app, staff):
    """A day at the desk: money orders of $300 (USPS) and $150 (Western Union) and a $200 CareCredit
    payment today, and a $120 MoneyGram money order from yesterday still in the drawer."""
    with live_app.app_context():
        seed_catalog()
        today = clinic_today()
        patient = patient_service.create_patient(
            {"first_name": "Jordan", "last_name": "Ellery", "date_of_birth": date(1979, 8, 2)}, today=today)
        serials = {}
        for amount, issuer, received in (("120", MoneyOrderIssuer.MONEYGRAM, today - timedelta(days=1)),
                                         ("300", MoneyOrderIssuer.USPS, today),
                                         ("150", MoneyOrderIssuer.WESTERN_UNION, today)):
            serial = str(uuid.uuid4().int)[:11]
            payment_service.record_money_order(
                patient, Money.parse(amount), payment_service.MoneyOrderInput(
                    issuer=issuer, serial=serial, purchaser="Jordan Ellery", id_seen=True,
                    signed_in_front_of_staff=True, security_features_checked=True),
                received_date=received, today=today, confirm_overpayment=True)
            serials[amount] = serial
        plan = db.session.scalars(sa.select(CareCreditPlan).order_by(CareCreditPlan.id)).first()
        payment_service.record_carecredit(patient, Money.parse("200"), payment_service.CareCreditInput(
            authorization_code="QX4471", plan=plan, account_last4="0042", id_checked=True, receipt_signed=True),
            received_date=today, today=today, confirm_overpayment=True)
        db.session.commit()
    return {"today": today, "serials": serials, "staff": staff}


def figure(page: Page, name: str):
    return page.locator(f'[data-figure="{name}"]')


def test_the_desk_closes_the_day_and_the_bookkeeper_deposits(browser, live_server, live_app, page, day,
                                                             screenshot):
    today, serials, staff = day["today"], day["serials"], day["staff"]

    # The front desk closes today: the books expect all $570 of money orders in the drawer.
    desk = staff[Role.FRONTDESK]
    sign_in(page, desk.email, desk.password)
    expect(page).to_have_url(path_is("/frontdesk/"))
    page.goto("/books/daily")
    page.get_by_role("button", name=re.compile(r"Close today")).click()
    expect(page).to_have_url(path_is(f"/books/daily/{today.isoformat()}"))
    expect(figure(page, "received")).to_have_text("$650.00")
    expect(figure(page, "expected")).to_have_text("$570.00")
    expect(page.locator('[data-method="money_order"]')).to_contain_text("$450.00")
    page.get_by_label("Money orders counted in the drawer").fill("560")
    page.get_by_role("button", name="Close the day").click()
    expect(page.locator(".field-error")).to_contain_text("The drawer is short by $10.00")
    screenshot(page, "daily-01-short-needs-note")
    page.get_by_label("Note").fill("Counted twice; the Western Union one reads $140 on the stub")
    page.get_by_role("button", name="Close the day").click()
    expect(page.get_by_role("status")).to_contain_text("is closed: short by $10.00.")
    expect(figure(page, "over-short")).to_have_text("-$10.00")
    expect(page.get_by_text("Waiting for the bookkeeper's review")).to_be_visible()
    screenshot(page, "daily-02-closed")

    # The bookkeeper reviews it from the books.
    bookkeeper = staff[Role.BOOKKEEPER]
    context, problems = _open_context(browser, live_server.url, viewport=TABLET)
    books = _watch(context.new_page(), problems)
    try:
        sign_in(books, bookkeeper.email, bookkeeper.password)
        expect(books).to_have_url(path_is("/books/"))
        books.get_by_role("link", name="Daily close").click()
        row = books.locator(f'tr[data-day="{today.isoformat()}"]')
        expect(row).to_contain_text("-$10.00")
        expect(row).to_contain_text("To review")
        screenshot(books, "daily-03-closes-list")
        row.get_by_role("link").click()
        books.get_by_role("button", name="Mark reviewed").click()
        expect(books.get_by_role("status")).to_contain_text("is marked reviewed")
        with books.expect_download() as download:
            books.get_by_role("button", name="Print (PDF)").click()
        text = pdf_text(download.value.path())
        assert "Reviewed by Boris Books" in text and "Short -$10.00" in text

        # Then batches the money orders: all are ticked; yesterday's stays for another day.
        books.goto("/books/deposits")
        expect(figure(books, "on-hand")).to_have_text("$570.00")
        books.get_by_role("button", name="New deposit batch").click()
        boxes = books.locator('input[name="payments"]')
        expect(boxes).to_have_count(3)
        for i in range(3):
            expect(boxes.nth(i)).to_be_checked()
        books.get_by_label(f"Deposit money order {serials['120']}").uncheck()
        screenshot(books, "deposit-01-pick")
        books.get_by_role("button", name="Create the deposit batch").click()
        expect(books.get_by_role("status")).to_contain_text(re.compile(
            r"Deposit batch DEP-\d{4}-\d{4} is ready: 2 money orders, \$450\.00"))
        number = re.search(r"DEP-\d{4}-\d{4}", books.get_by_role("heading", level=1).inner_text()).group(0)
        screenshot(books, "deposit-02-batch")

        with books.expect_download() as download:
            books.get_by_role("button", name="Print deposit slip (PDF)").click()
        assert download.value.suggested_filename == f"deposit-slip-{number}.pdf"
        slip = pdf_text(download.value.path())
        assert serials["300"] in slip and serials["150"] in slip and serials["120"] not in slip
        assert "Total: 2 money orders $450.00" in slip

        books.get_by_label("Deposit date (on the bank's receipt)").fill(today.isoformat())
        books.get_by_label("Bank reference").fill("DEP 20931-7")
        books.get_by_role("button", name="Mark deposited").click()
        expect(books.get_by_role("status")).to_contain_text(
            f"{number} is deposited: $450.00 moved from Undeposited funds to Bank.")
        expect(figure(books, "reference")).to_have_text("DEP 20931-7")
        expect(books.get_by_role("button", name="Mark deposited")).to_have_count(0)
        screenshot(books, "deposit-03-deposited")

        books.get_by_role("link", name="Money-order deposits").click()
        expect(books.locator(f'[data-table="deposited"] tr[data-batch="{number}"]')).to_contain_text("DEP 20931-7")
        expect(figure(books, "on-hand")).to_have_text("$120.00")
        screenshot(books, "deposit-04-list")
    finally:
        _close_checked(context, problems)

    with live_app.app_context():
        assert journal.balance(journal.BANK) == Money.parse("450")
        assert journal.balance(journal.UNDEPOSITED) == Money.parse("120")


def pdf_text(path) -> str:
    with open(path, "rb") as handle:
        reader = PdfReader(io.BytesIO(handle.read()))
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))
