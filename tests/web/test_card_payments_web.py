"""Card payments through the real routes, against localstripe: the desk's card tab and card page, the
status the page script polls, refunds and disputes on the payment page, and the patient's pay link.

A payment is only ever settled here the way the webhook settles it (card_payments.intent_succeeded
with the PaymentIntent), never by a page.
"""

import re
import time
from datetime import timedelta

import itsdangerous.timed
import pytest
import sqlalchemy as sa

from billing.extensions import db
from billing.models import (
    CardChannel, CardDetails, CardRefundRequest, CardRefundStatus, Payment, PaymentStatus, Refund, Role,
)
from billing.pay.links import make_pay_link
from billing.services import balances, card_payments
from billing.services.settings import get_settings
from billing.timeutil import clinic_today

JS_ORIGIN = "https://js.stripe.com"


def _token(html: str) -> str:
    return re.search(r'name="form_token" type="hidden" value="([^"]+)"', html).group(1)


def _payments() -> list[Payment]:
    return list(db.session.scalars(sa.select(Payment).order_by(Payment.id)))


def _intents(localstripe) -> list[dict]:
    return localstripe.api("GET", "/v1/payment_intents")["data"]


@pytest.fixture
def desk(login):
    client, _ = login(Role.FRONTDESK)
    return client


@pytest.fixture
def owing(make_patient, invoice_for):
    """A patient with one issued $450 infusion invoice: (patient, invoice)."""
    patient = make_patient(email="sam@example.com")
    invoice = invoice_for(patient)
    db.session.commit()
    return patient, invoice


def _tab(patient) -> str:
    return f"/payments/new/{patient.id}/card"


def _start(client, patient, invoice=None, amount="450.00"):
    """Open the card tab and send it; returns the response of the POST."""
    page = client.get(_tab(patient)).get_data(as_text=True)
    return client.post(_tab(patient), data={"form_token": _token(page), "amount": amount,
                                            "apply_to": invoice.id if invoice else 0})


def _settle(localstripe, payment: Payment) -> dict:
    """Pay the intent at localstripe (unless the browser did) and apply it as the webhook's
    payment_intent.succeeded would."""
    intent = localstripe.api("GET", f"/v1/payment_intents/{payment.card.payment_intent_id}")
    if intent["status"] != "succeeded":
        intent = localstripe.pay(payment.card.payment_intent_id)
    # Stripe's charge names the card; localstripe's leaves it out.
    intent["latest_charge"]["payment_method_details"] = {"card": {"brand": "visa", "last4": "4242"}}
    card_payments.intent_succeeded(intent, today=clinic_today())
    db.session.commit()
    return intent


# --- the desk's card tab --------------------------------------------------------------------------


def test_the_card_tab_starts_a_pending_payment_and_its_payment_intent(stripe_app, localstripe, desk, owing):
    patient, invoice = owing
    page = desk.get(_tab(patient) + f"?invoice={invoice.id}").get_data(as_text=True)
    assert 'value="450.00"' in page and "Continue to card" in page

    response = _start(desk, patient, invoice)
    [payment] = _payments()
    assert response.location.endswith(f"/payments/{payment.id}/card")
    assert payment.status == PaymentStatus.PENDING and payment.card.channel == CardChannel.DESK
    intent = localstripe.api("GET", f"/v1/payment_intents/{payment.card.payment_intent_id}")
    assert intent["amount"] == 45000 and intent["currency"] == "usd"
    assert intent["metadata"] == {"app_payment_id": str(payment.id), "patient_account": patient.account_number,
                                  "invoice_number": invoice.number}

    card = desk.get(response.location)
    html = card.get_data(as_text=True)
    assert f'data-client-secret="{intent["client_secret"]}"' in html
    assert 'data-publishable-key="pk_test_not_a_real_key"' in html
    assert '<script src="https://js.stripe.com/v3/"></script>' in html
    assert "<script>" not in html  # the secret and key go in data- attributes, never inline script
    assert balances.invoice_balance(invoice).cents == 45000  # nothing is paid until the webhook says so


def test_a_second_send_of_the_same_form_makes_no_second_payment_or_intent(stripe_app, localstripe, desk, owing):
    patient, invoice = owing
    page = desk.get(_tab(patient)).get_data(as_text=True)
    data = {"form_token": _token(page), "amount": "450.00", "apply_to": invoice.id}
    first = desk.post(_tab(patient), data=data)
    second = desk.post(_tab(patient), data=data)
    assert second.status_code == 302 and second.location == first.location
    assert len(_payments()) == 1 and len(_intents(localstripe)) == 1


@pytest.mark.parametrize("amount, message", [
    ("450.01", "A card payment can be at most what is due: $450.00."),
    ("-5", None), ("10.005", None), ("0", None), ("", "Enter the amount."),
])
def test_amounts_that_cannot_be_charged_are_refused_next_to_the_field(stripe_app, localstripe, desk, owing,
                                                                       amount, message):
    patient, invoice = owing
    response = _start(desk, patient, invoice, amount)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="amount-help" class="field-error"' in html
    if message:
        assert message in html
    assert _payments() == [] and _intents(localstripe) == []


def test_stripe_unreachable_says_nothing_was_charged_and_retry_makes_exactly_one_intent(app, localstripe, desk,
                                                                                        owing, monkeypatch):
    patient, invoice = owing  # TestingConfig points the SDK at a closed port
    response = _start(desk, patient, invoice)
    [payment] = _payments()
    assert payment.status == PaymentStatus.PENDING and payment.card.payment_intent_id is None
    html = desk.get(response.location).get_data(as_text=True)
    assert "Stripe did not answer. Nothing was charged." in html
    assert f'action="/payments/{payment.id}/card/retry"' in html and "Cancel card payment" in html
    assert "js.stripe.com" not in html

    monkeypatch.setitem(app.config, "STRIPE_API_BASE", localstripe.url)
    assert desk.post(f"/payments/{payment.id}/card/retry").location.endswith(f"/payments/{payment.id}/card")
    desk.post(f"/payments/{payment.id}/card/retry")
    db.session.refresh(payment.card)
    [intent] = _intents(localstripe)
    assert payment.card.payment_intent_id == intent["id"]
    assert intent["metadata"]["app_payment_id"] == str(payment.id)
    assert "data-client-secret" in desk.get(f"/payments/{payment.id}/card").get_data(as_text=True)


def test_without_stripe_keys_the_tab_says_cards_are_not_set_up(app, desk, owing, monkeypatch):
    patient, _ = owing
    monkeypatch.setitem(app.config, "STRIPE_SECRET_KEY", "")
    html = desk.get(_tab(patient)).get_data(as_text=True)
    assert "Card payments are not set up" in html and "STRIPE_SECRET_KEY" in html
    assert desk.post(_tab(patient), data={"amount": "450.00"}).status_code == 200
    assert _payments() == []


# --- the status the card page polls -----------------------------------------------------------------


def test_the_status_endpoint_follows_the_webhook_not_the_browser(stripe_app, localstripe, desk, owing):
    patient, invoice = owing
    _start(desk, patient, invoice)
    [payment] = _payments()
    status_url = f"/payments/{payment.id}/card/status"
    assert desk.get(status_url).json == {"status": "pending", "message": "", "receipt_url": None}

    localstripe.pay(payment.card.payment_intent_id)  # the browser confirmed; no webhook yet
    assert desk.get(status_url).json["status"] == "pending"
    waiting = desk.get(f"/payments/{payment.id}/card").get_data(as_text=True)
    assert 'data-state="waiting"' in waiting and "data-client-secret" not in waiting

    _settle(localstripe, payment)
    response = desk.get(status_url)
    assert response.json == {"status": "succeeded", "message": "", "receipt_url": f"/payments/{payment.id}/card"}
    assert response.headers["Cache-Control"] == "no-store"
    assert desk.get(f"/payments/{payment.id}/card").location.endswith(f"/payments/{payment.id}")
    receipt = desk.get(f"/payments/{payment.id}").get_data(as_text=True)
    assert "Paid: $450.00 by card. Thank you!" in receipt
    assert "Visa ending 4242" in receipt and payment.card.payment_intent_id in receipt
    assert balances.invoice_balance(invoice).cents == 0


def test_a_decline_shows_stripes_message_and_another_card_starts_a_new_payment(stripe_app, localstripe, desk,
                                                                                owing):
    patient, invoice = owing
    _start(desk, patient, invoice)
    [declined] = _payments()
    old_intent = declined.card.payment_intent_id
    localstripe.pay(old_intent, "pm_card_chargeCustomerFail")
    card_payments.intent_failed(localstripe.api("GET", f"/v1/payment_intents/{old_intent}"))
    db.session.commit()
    assert desk.get(f"/payments/{declined.id}/card/status").json == {
        "status": "failed", "message": "Your card was declined.", "receipt_url": None}
    html = desk.get(f"/payments/{declined.id}/card").get_data(as_text=True)
    assert "Your card was declined." in html and "Try another card" in html

    response = desk.post(f"/payments/{declined.id}/card/another", data={"form_token": _token(html)})
    again = desk.post(f"/payments/{declined.id}/card/another", data={"form_token": _token(html)})
    old, new = _payments()
    assert response.location.endswith(f"/payments/{new.id}/card") and again.location == response.location
    assert old.status == PaymentStatus.FAILED and new.status == PaymentStatus.PENDING
    assert (new.amount_cents, new.card.invoice_id, new.card.channel) == (45000, invoice.id, CardChannel.DESK)
    assert new.card.payment_intent_id not in (None, old_intent)
    assert localstripe.api("GET", f"/v1/payment_intents/{old_intent}")["status"] == "canceled"
    assert len(_intents(localstripe)) == 2


def test_cancel_gives_up_the_payment_and_its_intent(stripe_app, localstripe, desk, owing):
    patient, invoice = owing
    _start(desk, patient, invoice)
    [payment] = _payments()
    response = desk.post(f"/payments/{payment.id}/card/cancel")
    assert response.location.endswith(_tab(patient))
    db.session.refresh(payment)
    assert payment.status == PaymentStatus.FAILED
    assert localstripe.api("GET", f"/v1/payment_intents/{payment.card.payment_intent_id}")["status"] == "canceled"


def test_a_payment_going_through_cannot_be_cancelled(stripe_app, localstripe, desk, owing):
    patient, invoice = owing
    _start(desk, patient, invoice)
    [payment] = _payments()
    localstripe.pay(payment.card.payment_intent_id)
    desk.post(f"/payments/{payment.id}/card/cancel")
    db.session.refresh(payment)
    assert payment.status == PaymentStatus.PENDING  # the webhook settles it
    assert "cannot be cancelled" in desk.get(f"/payments/{payment.id}/card").get_data(as_text=True)


# --- refunds and disputes on the payment page -----------------------------------------------------------


@pytest.fixture
def paid(stripe_app, localstripe, desk, owing):
    """A $450 card payment taken at the desk and settled as by the webhook."""
    patient, invoice = owing
    _start(desk, patient, invoice)
    [payment] = _payments()
    _settle(localstripe, payment)
    return payment


def _refund(client, payment, amount, reason="Infusion cancelled"):
    page = client.get(f"/payments/{payment.id}/refund").get_data(as_text=True)
    return client.post(f"/payments/{payment.id}/refund",
                       data={"form_token": _token(page), "amount": amount, "reason": reason})


@pytest.mark.parametrize("amount, message", [
    ("450.01", "At most $450.00 of this payment can be refunded."), ("-1", None), ("1.001", None), ("0", None),
])
def test_refunds_above_what_remains_or_not_money_are_refused(paid, desk, localstripe, amount, message):
    response = _refund(desk, paid, amount)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="amount-help" class="field-error"' in html
    if message:
        assert message in html
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CardRefundRequest)) == 0
    assert localstripe.api("GET", "/v1/refunds")["data"] == []


def test_a_partial_then_the_full_remaining_refund_go_through_stripe(paid, desk, localstripe):
    page = desk.get(f"/payments/{paid.id}/refund").get_data(as_text=True)
    assert 'value="450.00"' in page and "Refund to the card" in page and "Visa ending 4242" in page

    response = _refund(desk, paid, "100.00")
    assert response.location.endswith(f"/payments/{paid.id}")
    assert "Refunded $100.00 to the card." in desk.get(response.location).get_data(as_text=True)
    db.session.refresh(paid)
    assert paid.status == PaymentStatus.PARTIALLY_REFUNDED
    assert card_payments.card_refundable(paid).cents == 35000

    assert "At most $350.00" in _refund(desk, paid, "350.01").get_data(as_text=True)
    _refund(desk, paid, "350.00", reason="Rest of the series cancelled")
    db.session.refresh(paid)
    assert paid.status == PaymentStatus.REFUNDED
    assert sorted(r["amount"] for r in localstripe.api("GET", "/v1/refunds")["data"]) == [10000, 35000]
    assert sorted(r.amount_cents for r in db.session.scalars(sa.select(Refund))) == [10000, 35000]
    assert all(r.status == CardRefundStatus.SUCCEEDED for r in db.session.scalars(sa.select(CardRefundRequest)))


def test_a_refund_stripe_does_not_answer_stays_pending_and_is_asked_again(paid, app, desk, localstripe,
                                                                          monkeypatch):
    monkeypatch.setitem(app.config, "STRIPE_API_BASE", "http://127.0.0.1:9")
    response = _refund(desk, paid, "50.00")
    html = desk.get(response.location).get_data(as_text=True)
    assert "Stripe did not answer, so the refund is not recorded yet." in html and "Ask Stripe again" in html
    [request] = db.session.scalars(sa.select(CardRefundRequest))
    assert request.status == CardRefundStatus.PENDING
    assert card_payments.card_refundable(paid).cents == 40000  # held while Stripe is asked

    monkeypatch.setitem(app.config, "STRIPE_API_BASE", localstripe.url)
    desk.post(f"/payments/card-refunds/{request.id}/send")
    desk.post(f"/payments/card-refunds/{request.id}/send")
    db.session.refresh(request)
    assert request.status == CardRefundStatus.SUCCEEDED
    assert len(localstripe.api("GET", "/v1/refunds")["data"]) == 1


def test_a_disputed_payment_is_flagged_on_the_payment_and_the_patient(paid, desk, localstripe):
    card_payments.dispute_opened({"id": "dp_test_1", "charge": paid.card.charge_id,
                                  "payment_intent": paid.card.payment_intent_id, "amount": 45000,
                                  "reason": "fraudulent", "status": "needs_response"}, today=clinic_today())
    db.session.commit()
    detail = desk.get(f"/payments/{paid.id}").get_data(as_text=True)
    assert "Disputed." in detail and "(fraudulent)" in detail
    assert f'href="/payments/{paid.id}/refund"' not in detail
    patient_page = desk.get(f"/patients/{paid.patient_id}").get_data(as_text=True)
    assert "Disputed card payment." in patient_page and f"payment #{paid.id}" in patient_page
    assert "is disputed" in _refund(desk, paid, "10.00").get_data(as_text=True)


# --- the Content-Security-Policy ---------------------------------------------------------------------


def test_only_the_card_page_lets_stripe_in(stripe_app, localstripe, desk, owing):
    patient, invoice = owing
    tab = desk.get(_tab(patient))
    response = _start(desk, patient, invoice)
    card = desk.get(response.location)
    policy = dict(part.strip().split(" ", 1) for part in card.headers["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == f"'self' {JS_ORIGIN}"
    assert policy["frame-src"] == f"{JS_ORIGIN} https://hooks.stripe.com"
    assert policy["connect-src"] == f"'self' {localstripe.url}"
    assert policy["default-src"] == "'self'" and policy["style-src"] == "'self'"
    for other in (tab, desk.get(f"/patients/{patient.id}"), desk.get(f"/payments/{_payments()[0].id}/card/status")):
        header = other.headers["Content-Security-Policy"]
        assert "stripe" not in header and "script-src 'self';" in header
    assert all("unsafe-inline" not in r.headers["Content-Security-Policy"] for r in (tab, card))


# --- the patient's pay link ------------------------------------------------------------------------------


def _link(app, invoice) -> str:
    with app.test_request_context():
        return make_pay_link(invoice)


def test_the_pay_link_pays_the_invoice_without_signing_in(stripe_app, localstripe, client, owing):
    patient, invoice = owing
    get_settings().name, get_settings().phone = "Hudson Valley Infusions", "(845) 555-0100"
    db.session.commit()
    url = _link(stripe_app, invoice)
    assert url.startswith("http://localhost/pay/")
    page = client.get(url)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Hudson Valley Infusions" in html and invoice.number in html and "Pay $450.00 by card" in html
    assert "stripe" not in page.headers["Content-Security-Policy"]

    response = client.post(url, data={"form_token": _token(html)})
    [payment] = _payments()
    assert payment.card.channel == CardChannel.LINK and payment.received_by_id is None
    card = client.get(response.location)
    assert card.status_code == 200 and "data-client-secret" in card.get_data(as_text=True)
    assert JS_ORIGIN in card.headers["Content-Security-Policy"]
    status_url = response.location + "/status"
    assert client.get(status_url).json["status"] == "pending"

    _settle(localstripe, payment)
    receipt_url = client.get(status_url).json["receipt_url"]
    assert receipt_url == response.location.replace("/card/", "/receipt/")
    receipt = client.get(receipt_url).get_data(as_text=True)
    number = db.session.scalar(sa.text("select number from receipts where payment_id = :p"), {"p": payment.id})
    assert number and number in receipt and "Visa ending 4242" in receipt and "Thank you" in receipt
    assert "Nothing is due on this invoice." in client.get(url).get_data(as_text=True)


def test_pressing_pay_again_resumes_the_payment_already_started(stripe_app, localstripe, client, owing):
    _, invoice = owing
    url = _link(stripe_app, invoice)
    first = client.post(url, data={"form_token": _token(client.get(url).get_data(as_text=True))})
    second = client.post(url, data={"form_token": _token(client.get(url).get_data(as_text=True))})
    assert first.location == second.location
    assert len(_payments()) == 1 and len(_intents(localstripe)) == 1


def test_a_tampered_link_is_not_found(stripe_app, client, owing):
    _, invoice = owing
    url = _link(stripe_app, invoice)
    response = client.get(url[:-3] + ("abc" if not url.endswith("abc") else "abd"))
    assert response.status_code == 404
    assert "This link has expired or is not valid" in response.get_data(as_text=True)
    assert client.get("/pay/not-a-token").status_code == 404


def test_an_expired_link_is_gone(stripe_app, client, owing, monkeypatch):
    _, invoice = owing
    days = stripe_app.config["PAY_LINK_DAYS"]
    made_at = time.time() - timedelta(days=days, minutes=1).total_seconds()
    with monkeypatch.context() as frozen:
        frozen.setattr(itsdangerous.timed.time, "time", lambda: made_at)
        url = _link(stripe_app, invoice)
    response = client.get(url)
    assert response.status_code == 410
    assert "This link has expired or is not valid" in response.get_data(as_text=True)
    assert client.post(url, data={}).status_code == 410
    assert _payments() == []


def test_a_link_reaches_only_its_own_invoices_payments(stripe_app, localstripe, client, desk, owing,
                                                       make_patient, invoice_for):
    patient, invoice = owing
    other_invoice = invoice_for(make_patient(last="Other"))
    db.session.commit()
    other_url = _link(stripe_app, other_invoice)
    client.post(other_url, data={"form_token": _token(client.get(other_url).get_data(as_text=True))})
    _start(desk, patient, invoice)  # a desk payment on the link's own invoice
    theirs, desk_payment = _payments()
    url = _link(stripe_app, invoice)
    for payment in (theirs, desk_payment):
        for path in (f"card/{payment.id}", f"card/{payment.id}/status", f"receipt/{payment.id}"):
            assert client.get(f"{url}/{path}").status_code == 404, path
        assert client.post(f"{url}/card/{payment.id}/retry").status_code == 404
    assert client.get(f"{other_url}/card/{theirs.id}").status_code == 200
    assert db.session.scalar(sa.select(CardDetails.channel).where(CardDetails.payment_id == theirs.id)) \
        == CardChannel.LINK


def test_an_emailed_invoice_carries_its_pay_link(stripe_app, desk, client, owing, monkeypatch):
    from billing.models import OutboxMessage

    patient, invoice = owing
    desk.post(f"/invoices/{invoice.id}/email")
    [message] = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "invoice"))
    [url] = re.findall(r"^(http://localhost/pay/\S+)$", message.body_text, re.MULTILINE)
    assert "Pay the $450.00 due by card here (the link works for 30 days):" in message.body_text
    assert "Pay $450.00 by card" in client.get(url).get_data(as_text=True)

    monkeypatch.setitem(stripe_app.config, "STRIPE_SECRET_KEY", "")  # no cards: no pay link
    desk.post(f"/invoices/{invoice.id}/email")
    assert "/pay/" not in db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id.desc())).first().body_text
