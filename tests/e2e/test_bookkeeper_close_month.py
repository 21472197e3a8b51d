"""Closing last month in the browser: the bookkeeper reads the month's reconciliation, finds a day the desk has not closed, is refused
a close without a reason, the desk closes that day, the bookkeeper closes the month; the admin reopens it."""

import re
import uuid
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from billing.extensions import db
from billing.models import MoneyOrderIssuer, PeriodStatus, Role
from billing.money import Money
from billing.services import patients as patient_service
from billing.services import payments as payment_service
from billing.services import periods
from billing.timeutil import clinic_today
from tests.e2e.conftest import TABLET, _close_checked, _open_context, _watch, path_is, sign_in


@pytest.fixture(scope="module")
def month(live_app, staff):
    """A $80 money order received on the 12th of last month; the desk never closed that day."""
    with live_app.app_context():
        today = clinic_today()
        first = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
        patient = patient_service.create_patient(
            {"first_name": "Morgan", "last_name": "Tate", "date_of_birth": date(1984, 4, 9)}, today=today)
        payment_service.record_money_order(
            patient, Money.parse("80"), payment_service.MoneyOrderInput(
                issuer=MoneyOrderIssuer.USPS, serial=str(uuid.uuid4().int)[:11], purchaser="Morgan Tate",
                id_seen=True, signed_in_front_of_staff=True, security_features_checked=True),
            received_date=first.replace(day=12), today=today, confirm_overpayment=True)
        db.session.commit()
    return {"first": first, "day": first.replace(day=12), "key": f"{first:%Y-%m}", "label": f"{first:%B %Y}",
            "staff": staff}


def test_the_bookkeeper_closes_last_month(browser, live_server, live_app, page, month, screenshot):
    staff, label, key, day = month["staff"], month["label"], month["key"], month["day"]

    # The bookkeeper reads last month's reconciliation first: the money order is recorded and still
    # on its way to the bank (not deposited), and the drill-down shows the payment behind it.
    bookkeeper = staff[Role.BOOKKEEPER]
    sign_in(page, bookkeeper.email, bookkeeper.password)
    expect(page).to_have_url(path_is("/books/"))
    page.get_by_role("link", name="Monthly reconciliation").click()
    page.goto(f"/books/reconciliation?month={key}")
    row = page.locator('#method-figures tr[data-method="money_order"]')
    expect(row.locator("td").nth(2)).to_have_text("$80.00")  # recorded
    expect(row.locator("td").nth(4)).to_have_text("$80.00")  # in transit
    expect(row.locator('[data-figure="difference"]')).to_have_text("$0.00")
    expect(page.locator('[data-figure="ar-difference"]')).to_have_text("$0.00")
    screenshot(page, "period-00-reconciliation")
    row.get_by_role("link", name="1 in transit").click()
    expect(page.locator("main")).to_contain_text("$80.00")
    page.goto("/books/")

    # Then opens the month close and finds last month blocked by one day.
    page.get_by_role("link", name="Month close").click()
    row = page.locator(f'tr[data-month="{key}"]')
    expect(row).to_contain_text("1 blocker")
    screenshot(page, "period-01-months")
    row.get_by_role("link", name=label).click()
    expect(page).to_have_url(path_is(f"/books/periods/{key}"))
    blocker = page.locator('[data-list="blockers"] li')
    expect(blocker).to_have_count(1)
    expect(blocker).to_contain_text(f"{day:%A, %m/%d/%Y} has payments or refunds and is not closed at the desk.")

    # Closing anyway needs a reason.
    page.get_by_role("button", name=f"Close {label} anyway").click()
    expect(page.locator(".field-error")).to_contain_text(f"{label} cannot be closed yet: 1 thing to settle first")
    screenshot(page, "period-02-blocked")

    # The front desk closes that day.
    desk = staff[Role.FRONTDESK]
    context, problems = _open_context(browser, live_server.url, viewport=TABLET)
    front = _watch(context.new_page(), problems)
    try:
        sign_in(front, desk.email, desk.password)
        expect(front).to_have_url(path_is("/frontdesk/"))
        front.goto(f"/books/daily/{day.isoformat()}")
        expect(front.locator('[data-figure="expected"]')).to_have_text("$80.00")
        front.get_by_label("Money orders counted in the drawer").fill("80")
        front.get_by_role("button", name="Close the day").click()
        expect(front.get_by_role("status")).to_contain_text("is closed: the count matches.")
    finally:
        _close_checked(context, problems)

    # Nothing blocks any more: the bookkeeper closes the month without a reason.
    page.goto(f"/books/periods/{key}")
    expect(page.locator('[data-list="blockers"]')).to_contain_text("Nothing blocks the close")
    expect(page.get_by_label("Reason for closing anyway")).to_have_count(0)
    screenshot(page, "period-03-ready")
    page.get_by_role("button", name=f"Close {label}").click()
    expect(page.get_by_role("status")).to_contain_text(f"{label} is closed. Nothing more can be dated in it.")
    expect(page.locator('[data-figure="status"]')).to_have_text("Closed")
    expect(page.get_by_role("button", name=re.compile("Close"))).to_have_count(0)
    screenshot(page, "period-04-closed")
    page.get_by_role("link", name="All months").click()
    expect(page.locator(f'tr[data-month="{key}"]')).to_contain_text("Closed")
    screenshot(page, "period-05-months-closed")

    with live_app.app_context():
        period = periods.period_of(month["first"])
        assert period.status == PeriodStatus.CLOSED and period.reason == ""

    # The admin reopens it with a reason.
    admin = staff[Role.ADMIN]
    context, problems = _open_context(browser, live_server.url, viewport=TABLET)
    boss = _watch(context.new_page(), problems)
    try:
        sign_in(boss, admin.email, admin.password)
        boss.goto(f"/books/periods/{key}")
        boss.get_by_role("button", name="Reopen…").click()
        expect(boss).to_have_url(path_is(f"/admin/periods/{key}/reopen"))
        boss.get_by_label("Why it must be reopened").fill("A charge of the 12th was entered on the wrong patient")
        screenshot(boss, "period-06-reopen")
        boss.get_by_role("button", name=f"Reopen {label}").click()
        expect(boss.get_by_role("status")).to_contain_text(f"{label} is open again")
        expect(boss.locator('[data-figure="reason"]')).to_contain_text("wrong patient")
        screenshot(boss, "period-07-reopened")
    finally:
        _close_checked(context, problems)

    with live_app.app_context():
        assert periods.period_of(month["first"]).status == PeriodStatus.OPEN
