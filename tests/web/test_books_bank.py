"""The bookkeeper's bank pages: upload a statement, confirm a suggested match, undo it, see what is unmatched."""

import io
import re
from datetime import date
from html import unescape
from pathlib import Path

import sqlalchemy as sa

from billing.extensions import db
from billing.models import AuditEvent, BankLine, BankMatchKind, BankStatement, CareCreditFunding, Role, StripePayout
from billing.services import payouts

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
OFX = SAMPLES / "bank_statement.ofx"
CSV = SAMPLES / "bank_statement.csv"
PO1 = "po_1g488RKc7MxL2vQ96St7MuWi"


def text(response) -> str:
    return unescape(response.get_data(as_text=True))


def tokens(page: str) -> list[str]:
    return re.findall(r'name="form_token" type="hidden" value="([^"]+)"', page)


def csrf(page: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def upload(client, content: bytes, name: str = "march.ofx", form_token: str | None = None, account: str = ""):
    form_token = form_token or tokens(text(client.get("/books/bank")))[0]
    return client.post("/books/bank", data={"form_token": form_token, "account_last4": account,
                                            "statement_file": (io.BytesIO(content), name)})


def field_error(response, name: str) -> str:
    found = re.search(rf'<small id="{name}-help" class="field-error">(.*?)</small>', text(response), re.S)
    return found.group(1) if found else ""


def line_row(page: str, posted: str, amount: str) -> str:
    for row in re.findall(r'<tr id="line-\d+" data-line="\d+">(.*?)</tr>', page, re.S):
        if posted in row and amount in row:
            return row
    raise AssertionError(f"no line {posted} {amount}")


def counts() -> tuple[int, int]:
    db.session.expire_all()
    return (db.session.scalar(sa.select(sa.func.count()).select_from(BankStatement)),
            db.session.scalar(sa.select(sa.func.count()).select_from(BankLine)))


def our_side(app):
    payouts.import_reconciliation_csv((SAMPLES / "stripe_payout_reconciliation_itemized.csv").read_text())
    db.session.add(CareCreditFunding(reference="CCF250304A", funded_on=date(2025, 3, 4), gross_cents=217000,
                                     fee_cents=16503, net_cents=200497, source="csv"))
    db.session.commit()


def test_the_bookkeeper_imports_a_statement_and_confirms_a_suggested_match(app, login):
    our_side(app)
    client, user = login(Role.BOOKKEEPER)
    assert 'href="/books/bank"' in text(client.get("/books/"))

    response = upload(client, OFX.read_bytes())
    assert response.status_code == 302
    page = text(client.get(response.location))
    assert "Imported 15 lines from march.ofx." in page
    assert "Closing balance per the bank: <strong>$31,019.52</strong>" in page
    stripe = line_row(page, "2025-03-11", "$1,673.77")
    assert f"Stripe payout {PO1} · 2025-03-11 · $1,673.77" in stripe and "Confirm" in stripe
    assert "No suggestion" in line_row(page, "2025-03-20", "$8,742.30")  # the IRS refund
    assert "Money out" in line_row(page, "2025-03-03", "-$6,500.00")

    form = re.search(r'<form method="post" action="(/books/bank/lines/\d+/match)"[^>]*>(.*?)</form>', stripe, re.S)
    fields = dict(re.findall(r'name="(\w+)" type="hidden" value="([^"]*)"', form.group(2)))
    assert fields["kind"] == "stripe_payout"
    done = client.post(form.group(1), data=fields)
    assert done.status_code == 302
    page = text(client.get(done.location))
    assert f"Matched the bank line of 2025-03-11 to Stripe payout {PO1}." in page
    again = client.post(form.group(1), data=fields)  # the same form sent twice
    assert "already sent" in text(client.get(again.location))
    matched = line_row(page, "2025-03-11", "$1,673.77")
    assert "Matched" in matched and "Unmatch" in matched
    payout = db.session.scalar(sa.select(StripePayout).where(StripePayout.payout_id == PO1))
    line = db.session.scalar(sa.select(BankLine).where(BankLine.amount_cents == 167377))
    assert (line.match_kind, line.match_id, line.matched_by_id) == (BankMatchKind.STRIPE_PAYOUT, payout.id, user.id)

    # Unmatched on both sides: the other Stripe payout is ours and not yet seen; the IRS refund is the bank's.
    unmatched_ours = re.search(r'id="unmatched-targets">(.*?)</table>', page, re.S).group(1)
    assert "po_18KhJ6Kc7MxL2vQ9OnSHIndB" in unmatched_ours and PO1 not in unmatched_ours
    unmatched_bank = re.search(r'id="unmatched-lines">(.*?)</table>', page, re.S).group(1)
    assert "IRS TREAS 310" in unmatched_bank and "STRIPE TRANSFER ST-W9UZ8ZJFMLWJ" not in unmatched_bank

    listing = text(client.get("/books/bank"))
    assert re.search(r"march\.ofx</a>.*?<td>\*\*\*\*9377</td>.*?<td class=\"num\">15</td>\s*"
                     r"<td class=\"num\">1 of 8</td>", listing, re.S)

    # Undo it.
    unmatch = re.search(r'<form method="post" action="(/books/bank/lines/\d+/unmatch)"[^>]*>(.*?)</form>', matched, re.S)
    response = client.post(unmatch.group(1), data=dict(re.findall(r'name="(\w+)" type="hidden" value="([^"]*)"',
                                                                  unmatch.group(2))))
    assert f"no longer matched to Stripe payout {PO1}" in text(client.get(response.location))
    db.session.expire_all()
    assert db.session.get(BankLine, line.id).match_kind is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action.in_(["bank.line_matched", "bank.line_unmatched"]))) == 2


def test_a_refused_match_shows_why_and_changes_nothing(app, login):
    our_side(app)
    client, _ = login(Role.ADMIN)
    page = text(client.get(upload(client, OFX.read_bytes()).location))
    stripe = line_row(page, "2025-03-11", "$1,673.77")
    form = re.search(r'action="(/books/bank/lines/\d+/match)"[^>]*>(.*?)</form>', stripe, re.S)
    fields = dict(re.findall(r'name="(\w+)" type="hidden" value="([^"]*)"', form.group(2)))
    funding = db.session.scalar(sa.select(CareCreditFunding))
    fields.update(kind="carecredit_funding", target=str(funding.id))
    response = client.post(form.group(1), data=fields)
    assert "is $2,004.97, but the bank line is $1,673.77" in text(client.get(response.location))
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(BankLine).where(BankLine.match_id.is_not(None))) == 0


def test_the_same_file_again_is_refused_next_to_the_field(login):
    client, _ = login(Role.BOOKKEEPER)
    upload(client, OFX.read_bytes())
    response = upload(client, OFX.read_bytes(), name="again.ofx")
    assert response.status_code == 200
    error = re.search(r'<small id="statement_file-help" class="field-error">(.*?)</small>', text(response), re.S)
    assert "This file was already imported on" in error.group(1)
    assert counts() == (1, 15)


def test_a_malformed_file_is_refused_naming_the_line(login):
    client, _ = login(Role.BOOKKEEPER)
    broken = OFX.read_bytes().replace(b"<TRNAMT>1673.77", b"<TRNAMT>16O3.77")
    response = upload(client, broken)
    assert response.status_code == 200
    error = re.search(r'<small id="statement_file-help" class="field-error">(.*?)</small>', text(response), re.S)
    assert error.group(1).startswith("Line 78 (transaction 5, FITID 2025031109100548): TRNAMT '16O3.77' is not valid")
    assert counts() == (0, 0)


def test_the_chase_csv_imports_too(login):
    client, _ = login(Role.BOOKKEEPER)
    page = text(client.get(upload(client, CSV.read_bytes(), "chase.csv", account="9377").location))
    assert "Imported 15 lines from chase.csv." in page and "No suggestion" in page
    assert counts() == (1, 15)
    assert db.session.scalar(sa.select(BankStatement.account_ref)) == "****9377"


def test_a_csv_asks_for_its_account_prefilled_with_the_last_statements(login):
    client, _ = login(Role.BOOKKEEPER)
    page = text(client.get("/books/bank"))
    assert re.search(r'<label for="account_last4">Account \(last 4 digits\)</label>\s*<input[^>]*'
                     r'id="account_last4"[^>]*value=""', page)
    response = upload(client, CSV.read_bytes(), "chase.csv")
    assert response.status_code == 200
    assert field_error(response, "account_last4").startswith("Enter the last 4 digits of the bank account")
    assert counts() == (0, 0)
    response = upload(client, CSV.read_bytes(), "chase.csv", account="93x7")
    assert field_error(response, "account_last4") == "Enter the last 4 digits of the account number."
    assert counts() == (0, 0)

    upload(client, OFX.read_bytes())
    assert re.search(r'id="account_last4"[^>]*value="9377"', text(client.get("/books/bank")))


def test_the_csv_after_the_ofx_of_the_same_month_stores_nothing_twice(login):
    client, _ = login(Role.BOOKKEEPER)
    upload(client, OFX.read_bytes())
    response = upload(client, CSV.read_bytes(), "chase.csv", account="9377")
    assert response.status_code == 200
    assert field_error(response, "statement_file") == (
        "All 15 lines of this file were already imported from march.ofx (account ****9377); nothing was added.")
    assert counts() == (1, 15)


def test_the_ofx_after_part_of_the_month_as_csv_adds_the_rest_and_lists_what_was_there(login):
    client, _ = login(Role.BOOKKEEPER)
    header, *rows = CSV.read_text().splitlines(keepends=True)
    upload(client, "".join([header, *rows[:3]]).encode(), "end-of-march.csv", account="9377")  # March 28 and 31
    assert counts() == (1, 3)
    page = text(client.get(upload(client, OFX.read_bytes()).location))
    assert ("Imported 12 lines from march.ofx. 3 lines were already imported from end-of-march.csv and left as they "
            "were: 2025-03-28 -$18,390.10 GUSTO NET 250328 LAKESIDE INFUSION CLINIC; 2025-03-28 -$5,198.77 GUSTO TAX "
            "250328 LAKESIDE INFUSION CLINIC; 2025-03-31 -$30.00 MONTHLY SERVICE FEE.") in page
    assert counts() == (2, 15)


def test_the_front_desk_cannot_use_the_bank_pages(login):
    client, _ = login(Role.FRONTDESK)
    assert client.get("/books/bank").status_code == 403
    assert client.post("/books/bank", data={"statement_file": (io.BytesIO(OFX.read_bytes()), "m.ofx")}
                       ).status_code == 403
    assert client.post("/books/bank/lines/1/match", data={"kind": "stripe_payout", "target": "1"}).status_code == 403
    assert counts() == (0, 0)
