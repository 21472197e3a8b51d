"""The daily close and deposit pages through the real routes: close a day, review it, batch the money
orders, print the slip, mark it deposited."""

import io
import re
from datetime import timedelta
from html import unescape

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from billing.extensions import db
from billing.models import DailyClose, DepositBatch, DepositBatchItem, DepositStatus, Payment, Role
from billing.money import Money
from billing.services import journal
from billing.services import payments as payment_service
from billing.timeutil import clinic_today
from tests.services.conftest import money_order as _money_order

_serials = iter(range(77_000_001, 78_000_000))


def text(response) -> str:
    return unescape(response.get_data(as_text=True))


def token(html: str, prefix: str = "") -> str:
    return re.search(rf'name="{prefix}form_token" type="hidden" value="([^"]+)"', html).group(1)


def pdf_text(data: bytes) -> str:
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages))


@pytest.fixture
def day_of_money(make_patient, catalog):
    """Today: two money orders ($300, $150) and a CareCredit payment ($200); yesterday one money order ($40);
    all kept as the patient's credit."""
    today = clinic_today()
    patient = make_patient()
    mos = [payment_service.record_money_order(patient, Money.parse(amount), _money_order(serial=f"WB{next(_serials)}"),
                                              received_date=day, today=today, confirm_overpayment=True)
           for amount, day in (("300", today), ("150", today), ("40", today - timedelta(days=1)))]
    details = payment_service.CareCreditInput(authorization_code="ZX81", plan=catalog["12mo"], account_last4="1234",
                                              id_checked=True, receipt_signed=True)
    payment_service.record_carecredit(patient, Money.parse("200"), details, received_date=today, today=today,
                                      confirm_overpayment=True)
    db.session.commit()
    return patient, mos


def _close(client, day, counted: str, note: str = ""):
    url = f"/books/daily/{day.isoformat()}"
    return client.post(url, data={"form_token": token(client.get(url).get_data(as_text=True)), "counted": counted,
                                  "note": note})


def test_the_front_desk_closes_today_and_sees_over_short(login, day_of_money):
    client, _ = login(Role.FRONTDESK)
    today = clinic_today()
    page = text(client.get("/books/daily"))
    assert f'href="/books/daily/{today.isoformat()}"' in page
    page = text(client.get(f"/books/daily/{today.isoformat()}"))
    assert re.search(r'data-method="money_order"><td>Money order</td><td class="num">2</td><td class="num">\$450\.00', page)
    assert re.search(r'data-method="carecredit"><td>CareCredit</td><td class="num">1</td><td class="num">\$200\.00', page)
    assert 'data-figure="received">$650.00' in page
    assert 'data-figure="expected">$490.00' in page  # yesterday's money order is still in the drawer

    refused = _close(client, today, "480.00")
    assert refused.status_code == 200
    assert "The drawer is short by $10.00 (counted $480.00, expected $490.00)" in text(refused)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DailyClose)) == 0

    response = _close(client, today, "480.00", "A $10 money order was handed back for a rewrite")
    assert response.status_code == 302
    page = text(client.get(response.location))
    assert "is closed: short by $10.00." in page
    assert 'data-figure="over-short">-$10.00' in page
    assert "Waiting for the bookkeeper's review" in page
    close = db.session.scalar(sa.select(DailyClose))
    assert (close.day, close.expected_cents, close.counted_cents) == (today, 49000, 48000)
    # Not posted: the journal's drawer still holds what the books expect.
    assert journal.balance(journal.UNDEPOSITED) == Money.parse("490")


def test_a_second_close_of_the_same_day_is_refused_clearly(login, day_of_money):
    client, _ = login(Role.FRONTDESK)
    today = clinic_today()
    url = f"/books/daily/{today.isoformat()}"
    page = client.get(url).get_data(as_text=True)
    first = client.post(url, data={"form_token": token(page), "counted": "490"})
    assert first.status_code == 302
    second = client.post(url, data={"form_token": token(page).swapcase(), "counted": "490"}, follow_redirects=True)
    assert "was already closed; nothing was changed" in text(second)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DailyClose)) == 1


def test_a_closed_day_refuses_a_backdated_money_order_at_the_desk(login, day_of_money):
    client, _ = login(Role.FRONTDESK)
    patient, _ = day_of_money
    yesterday = clinic_today() - timedelta(days=1)
    assert _close(client, yesterday, "490").status_code == 302
    before = db.session.scalar(sa.select(sa.func.count()).select_from(Payment))
    url = f"/payments/new/{patient.id}/money_order"
    response = client.post(url, data={
        "form_token": token(client.get(url).get_data(as_text=True)), "amount": "25",
        "received_date": yesterday.isoformat(), "apply_to": 0, "issuer": "usps", "serial": f"WB{next(_serials)}",
        "purchaser": "Sam", "id_seen": "y", "signed_in_front_of_staff": "y", "security_features_checked": "y",
        "confirm_overpayment": "y"})
    assert response.status_code == 200
    assert re.search(rf'id="received_date-help" class="field-error">{yesterday:%m/%d/%Y} is closed: .*'
                     rf'Date this payment today \({clinic_today():%m/%d/%Y}\)', text(response))
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment)) == before


def test_only_the_bookkeeper_reviews(login, create_user, day_of_money):
    desk, _ = login(Role.FRONTDESK)
    today = clinic_today()
    _close(desk, today, "490")
    page = desk.get(f"/books/daily/{today.isoformat()}").get_data(as_text=True)
    assert "Mark reviewed" not in page
    assert desk.post(f"/books/daily/{today.isoformat()}/review", data={"form_token": "x" * 20}).status_code == 403

    books, bookkeeper = login(Role.BOOKKEEPER)
    page = books.get(f"/books/daily/{today.isoformat()}").get_data(as_text=True)
    response = books.post(f"/books/daily/{today.isoformat()}/review", data={"form_token": token(page)},
                          follow_redirects=True)
    assert "is marked reviewed" in text(response)
    db.session.expire_all()
    assert db.session.scalar(sa.select(DailyClose.reviewed_by_id)) == bookkeeper.id
    assert "Reviewed" in text(books.get("/books/daily"))


def test_the_close_prints_as_a_pdf(login, day_of_money):
    client, _ = login(Role.FRONTDESK)
    today = clinic_today()
    preview = client.get(f"/books/daily/{today.isoformat()}/close.pdf")
    assert preview.mimetype == "application/pdf" and preview.headers["Cache-Control"] == "no-store"
    assert "NOT CLOSED" in pdf_text(preview.data)
    _close(client, today, "495", "A $5 bill found in the drawer")
    response = client.get(f"/books/daily/{today.isoformat()}/close.pdf")
    assert f'filename=daily-close-{today.isoformat()}.pdf' in response.headers["Content-Disposition"]
    content = pdf_text(response.data)
    for part in ("Money order 2 $450.00", "CareCredit 1 $200.00", "Total received $650.00",
                 "Expected (on hand per the books) $490.00", "Counted $495.00", "Over $5.00"):
        assert part in content, part


def _new_batch(client, ids, form_token=None):
    page = client.get("/books/deposits/new").get_data(as_text=True)
    return client.post("/books/deposits/new", data={"form_token": form_token or token(page),
                                                    "payments": [str(i) for i in ids]})


def test_batching_printing_and_depositing(login, day_of_money):
    client, _ = login(Role.BOOKKEEPER)
    _, mos = day_of_money
    page = text(client.get("/books/deposits/new"))
    # Every money order on hand is ticked; the CareCredit payment is not on the list.
    assert len(re.findall(r'name="payments" value="\d+"[^>]*checked', page)) == 3
    response = _new_batch(client, [mos[0].id, mos[1].id])
    assert response.status_code == 302
    page = text(client.get(response.location))
    batch = db.session.scalar(sa.select(DepositBatch))
    assert f"Deposit batch {batch.number} is ready: 2 money orders, $450.00." in page
    assert re.fullmatch(rf"DEP-{clinic_today().year}-\d{{4}}", batch.number)

    slip = client.get(f"/books/deposits/{batch.id}/slip.pdf")
    assert f"deposit-slip-{batch.number}.pdf" in slip.headers["Content-Disposition"]
    content = pdf_text(slip.data)
    assert mos[0].money_order.serial in content and mos[1].money_order.serial in content
    assert mos[2].money_order.serial not in content
    assert "Total: 2 money orders $450.00" in content

    url = f"/books/deposits/{batch.id}"
    bank = journal.balance(journal.BANK)
    bad = client.post(f"{url}/deposited", data={"form_token": token(text(client.get(url))),
                                                 "deposited_on": (clinic_today() + timedelta(days=1)).isoformat(),
                                                 "bank_reference": "8841"})
    assert bad.status_code == 422
    assert 'id="deposited_on-help" class="field-error">The deposit date cannot be in the future' in text(bad)
    good = client.post(f"{url}/deposited", data={"form_token": token(text(client.get(url))),
                                                  "deposited_on": clinic_today().isoformat(), "bank_reference": "8841"})
    assert good.status_code == 302
    page = text(client.get(good.location))
    assert f"{batch.number} is deposited: $450.00 moved from Undeposited funds to Bank." in page
    assert journal.balance(journal.BANK) - bank == Money.parse("450")
    assert journal.balance(journal.UNDEPOSITED) == Money.parse("40")
    assert "Mark deposited" not in page and "Cancel this batch" not in page


def test_the_same_batch_form_sent_twice_makes_one_batch(login, day_of_money):
    client, _ = login(Role.FRONTDESK)
    _, mos = day_of_money
    form_token = token(client.get("/books/deposits/new").get_data(as_text=True))
    assert _new_batch(client, [m.id for m in mos], form_token).status_code == 302
    again = _new_batch(client, [m.id for m in mos], form_token)
    assert again.status_code == 302
    assert "already sent" in text(client.get(again.location))
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DepositBatch)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DepositBatchItem)) == 3


def test_a_money_order_already_batched_is_refused_on_the_page(login, day_of_money):
    client, _ = login(Role.FRONTDESK)
    _, mos = day_of_money
    stale = token(client.get("/books/deposits/new").get_data(as_text=True))
    assert _new_batch(client, [mos[0].id]).status_code == 302
    response = _new_batch(client, [mos[0].id, mos[1].id], stale)
    assert response.status_code == 200
    assert "is already in deposit batch DEP-" in text(response)
    nothing = _new_batch(client, [])
    assert "Choose at least one money order" in text(nothing)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DepositBatchItem)) == 1


def test_cancelling_an_open_batch_puts_its_money_orders_back(login, day_of_money):
    client, _ = login(Role.FRONTDESK)
    _, mos = day_of_money
    response = _new_batch(client, [m.id for m in mos])
    page = text(client.get(response.location))
    batch_id = int(response.location.rsplit("/", 1)[1])
    response = client.post(f"/books/deposits/{batch_id}/cancel", data={"cancel-form_token": token(page, "cancel-")},
                           follow_redirects=True)
    assert "is cancelled; its money orders are on hand again" in text(response)
    assert 'data-figure="on-hand">$490.00' in text(response)
    assert db.session.scalar(sa.select(DepositBatch.status)) == DepositStatus.CANCELLED
    # the items stay, released: the cancelled batch keeps what it held
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DepositBatchItem)
                             .where(DepositBatchItem.released_on.is_(None))) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DepositBatchItem)) == len(mos)


def test_deposited_batches_are_listed(login, day_of_money):
    client, _ = login(Role.BOOKKEEPER)
    _, mos = day_of_money
    location = _new_batch(client, [mos[2].id]).location
    url = location.replace("http://localhost", "")
    client.post(f"{url}/deposited", data={"form_token": token(text(client.get(url))),
                                          "deposited_on": clinic_today().isoformat(), "bank_reference": "REF-77"})
    page = text(client.get("/books/deposits"))
    assert re.search(r'data-table="deposited".*REF-77', page, re.S)
    assert db.session.scalar(sa.select(DepositBatch.status)) == DepositStatus.DEPOSITED
