"""The bookkeeper in the browser: import the bank's OFX file, confirm a suggested match, and read
what is still unmatched on each side."""

from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from billing.extensions import db
from billing.models import CareCreditFunding, DepositBatch, DepositStatus, Role
from billing.services import payouts
from tests.e2e.conftest import path_is, sign_in

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
PO1, PO2 = "po_1g488RKc7MxL2vQ96St7MuWi", "po_18KhJ6Kc7MxL2vQ9OnSHIndB"


@pytest.fixture(scope="module")
def march(live_app):
    """Our side of March 2025 in the live database: Stripe's two payouts, a deposited money-order
    batch and a CareCredit funding."""
    with live_app.app_context():
        payouts.import_reconciliation_csv((SAMPLES / "stripe_payout_reconciliation_itemized.csv").read_text())
        db.session.add(DepositBatch(number="DEP-2025-0001", status=DepositStatus.DEPOSITED, total_cents=42500,
                                    deposited_on=date(2025, 3, 6), bank_reference="557130"))
        db.session.add(CareCreditFunding(reference="CCF250304A", funded_on=date(2025, 3, 4), gross_cents=217000,
                                         fee_cents=16503, net_cents=200497, source="csv"))
        db.session.commit()


def test_the_bookkeeper_imports_the_bank_file_and_confirms_a_match(page: Page, staff, march, screenshot):
    books = staff[Role.BOOKKEEPER]
    sign_in(page, books.email, books.password)
    page.goto("/books/")
    page.get_by_role("link", name="Bank statements").click()
    expect(page).to_have_url(path_is("/books/bank"))
    expect(page.get_by_role("heading", name="Bank statements", level=1)).to_be_visible()

    page.get_by_label("Bank statement file (OFX, QFX or CSV)").set_input_files(str(SAMPLES / "bank_statement.ofx"))
    page.get_by_role("button", name="Import statement").click()
    expect(page.get_by_text("Imported 15 lines from bank_statement.ofx.")).to_be_visible()
    lines = page.locator("#lines tbody tr")
    expect(lines).to_have_count(15)
    stripe = lines.filter(has_text="STRIPE TRANSFER ST-W9UZ8ZJFMLWJ")
    expect(stripe).to_contain_text(f"Stripe payout {PO1} · 2025-03-11 · $1,673.77")
    expect(lines.filter(has_text="IRS TREAS 310")).to_contain_text("No suggestion")
    expect(lines.filter(has_text="DEPOSIT ID NUMBER 557130")).to_contain_text("Deposit batch DEP-2025-0001")
    screenshot(page, "bank-01-suggestions")

    stripe.get_by_role("button", name=f"Confirm Stripe payout {PO1}").click()
    expect(page.get_by_text(f"Matched the bank line of 2025-03-11 to Stripe payout {PO1}.")).to_be_visible()
    stripe = page.locator("#lines tbody tr").filter(has_text="STRIPE TRANSFER ST-W9UZ8ZJFMLWJ")
    expect(stripe).to_contain_text("Matched")
    expect(stripe.get_by_role("button", name="Unmatch the line of 2025-03-11")).to_be_visible()

    # What is left: the bank's IRS refund and the credits not yet confirmed; our second payout.
    unmatched_bank = page.locator("#unmatched-lines")
    expect(unmatched_bank).to_contain_text("IRS TREAS 310")
    expect(unmatched_bank).not_to_contain_text("ST-W9UZ8ZJFMLWJ")
    unmatched_ours = page.locator("#unmatched-targets")
    expect(unmatched_ours).to_contain_text(f"Stripe payout {PO2}")
    expect(unmatched_ours).not_to_contain_text(PO1)
    screenshot(page, "bank-02-matched")

    page.get_by_role("link", name="← Bank statements").click()
    statement = page.locator("#statements tbody tr").first
    expect(statement).to_contain_text("bank_statement.ofx")
    expect(statement).to_contain_text("1 of 8")
    screenshot(page, "bank-03-statements")


def test_a_malformed_file_is_refused_on_the_page(page: Page, staff, tmp_path):
    books = staff[Role.ADMIN]
    broken = tmp_path / "broken.ofx"
    broken.write_bytes((SAMPLES / "bank_statement.ofx").read_bytes().replace(b"<TRNAMT>1673.77", b"<TRNAMT>1,673.77"))
    sign_in(page, books.email, books.password)
    page.goto("/books/bank")
    page.get_by_label("Bank statement file (OFX, QFX or CSV)").set_input_files(str(broken))
    page.get_by_role("button", name="Import statement").click()
    expect(page.locator("#statement_file-help")).to_contain_text(
        "Line 78 (transaction 5, FITID 2025031109100548): TRNAMT '1,673.77' is not valid")
