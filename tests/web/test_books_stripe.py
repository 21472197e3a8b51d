"""The bookkeeper's Stripe payouts page: upload the itemized payout reconciliation CSV, see what was posted."""

import io
import re
from html import unescape
from pathlib import Path

import sqlalchemy as sa

from billing.extensions import db
from billing.models import Role, StripeBalanceTransaction, StripePayout
from billing.services import payouts

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "stripe_payout_reconciliation_itemized.csv"
PO1, PO2 = "po_1g488RKc7MxL2vQ96St7MuWi", "po_18KhJ6Kc7MxL2vQ9OnSHIndB"


def text(response) -> str:
    return unescape(response.get_data(as_text=True))


def token(page) -> str:
    return re.search(r'name="form_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def upload(client, content: bytes, name: str = "payouts.csv", form_token: str | None = None):
    form_token = form_token or token(client.get("/books/stripe-import"))
    return client.post("/books/stripe-import", data={"form_token": form_token,
                                                     "report": (io.BytesIO(content), name)})


def row(page: str, payout_id: str) -> str:
    """The table row of a payout (the first table showing it)."""
    return re.search(rf'<tr data-payout="{payout_id}">(.*?)</tr>', page, re.S).group(1)


def counts() -> tuple[int, int]:
    db.session.expire_all()
    return (db.session.scalar(sa.select(sa.func.count()).select_from(StripePayout)),
            db.session.scalar(sa.select(sa.func.count()).select_from(StripeBalanceTransaction)))


def test_the_bookkeeper_imports_the_report_and_sees_the_payouts(login):
    client, _ = login(Role.BOOKKEEPER)
    assert 'href="/books/stripe-import"' in text(client.get("/books/"))

    response = upload(client, SAMPLE.read_bytes())

    assert response.status_code == 302
    page = text(client.get(response.location))
    assert "Posted 2 payouts: po_1g488RKc7MxL2vQ96St7MuWi ($1,673.77), po_18KhJ6Kc7MxL2vQ9OnSHIndB ($1,724.13)." in page
    assert "In the file just imported" in page
    second = row(page, PO2)
    for figure in ("2025-03-18", "$1,805.00", "$80.87", "$1,724.13", "0 of 6", "CSV report", "Posted"):
        assert figure in second
    assert "$1,725.00" in row(page, PO1) and "$51.23" in row(page, PO1)
    assert counts() == (2, 10)


def test_the_same_form_sent_twice_imports_once(login):
    client, _ = login(Role.BOOKKEEPER)
    form_token = token(client.get("/books/stripe-import"))
    assert upload(client, SAMPLE.read_bytes(), form_token=form_token).status_code == 302
    again = upload(client, SAMPLE.read_bytes(), form_token=form_token)
    assert again.status_code == 302
    assert "already sent" in text(client.get(again.location))
    assert counts() == (2, 10)


def test_uploading_the_same_file_again_says_nothing_changed(login):
    client, _ = login(Role.ADMIN)
    upload(client, SAMPLE.read_bytes())
    response = upload(client, SAMPLE.read_bytes())
    page = text(client.get(response.location))
    assert "2 payouts were already posted and left unchanged" in page
    assert counts() == (2, 10)


def test_a_malformed_file_is_refused_next_to_the_field(login):
    client, _ = login(Role.BOOKKEEPER)
    broken = SAMPLE.read_bytes().replace(b'"usd","900.00"', b'"usd","9OO.00"')
    response = upload(client, broken)
    assert response.status_code == 200
    error = re.search(r'<small id="report-help" class="field-error">(.*?)</small>', text(response), re.S).group(1)
    assert error == "Line 4, column gross: '9OO.00' is not an amount in dollars like 1250.00."
    assert counts() == (0, 0)


def test_a_binary_file_is_refused(login):
    client, _ = login(Role.BOOKKEEPER)
    response = upload(client, b"\x89PNG\r\n\x1a\n\xff\xfe\x00", name="logo.png")
    assert response.status_code == 200
    assert "This is not a text CSV file" in text(response)
    assert counts() == (0, 0)


def test_the_list_shows_payouts_waiting_for_their_transactions(app, login):
    payouts.payout_paid({"id": "po_WaitingKc7MxL2vQ9", "amount": 12345, "arrival_date": 1742256000})
    db.session.commit()
    client, _ = login(Role.BOOKKEEPER)
    waiting = row(text(client.get("/books/stripe-import")), "po_WaitingKc7MxL2vQ9")
    assert "$123.45" in waiting and "Stripe API" in waiting and "Waiting for its transactions" in waiting


def test_the_front_desk_cannot_import(login):
    client, _ = login(Role.FRONTDESK)
    assert client.get("/books/stripe-import").status_code == 403
    assert client.post("/books/stripe-import", data={"report": (io.BytesIO(SAMPLE.read_bytes()), "p.csv")}
                       ).status_code == 403
    assert counts() == (0, 0)
