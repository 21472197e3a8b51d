"""The Stripe webhook, end to end.

Against localstripe: the app runs on a free loopback port (`live_server`), localstripe delivers its
signed events there, and the test polls the database until the webhook has acted. Events localstripe
never sends (charge.refunded, charge.dispute.*), and the ones a test must control (duplicates,
forgeries, out of order), are built from Stripe's documented shapes, signed as Stripe signs, and
posted through the test client.
"""

import json
import os
import threading
import time
from collections.abc import Callable

import pytest
import requests
import sqlalchemy as sa

from billing.extensions import db
from billing.models import (
    Allocation, AuditEvent, CardChannel, Dispute, DisputeOutcome, Invoice, InvoiceStatus, OutboxMessage, Payment,
    PaymentStatus, Refund, Service, StripeEvent, StripePayout,
)
from billing.money import Money
from billing.payments import card_flow
from billing.services import ServiceError, card_payments, journal, receipts
from billing.services import charges as charge_service
from billing.services import invoices as invoice_service
from billing.services import patients as patient_service
from billing import stripe_payouts
from billing.timeutil import clinic_today
from tests.services.conftest import (  # noqa: F401  (fixtures used below)
    TODAY, catalog, charge, invoice_for, ledger_snapshot, make_patient,
)
from tests.services.test_concurrency import infusion_id  # noqa: F401  (a fixture)
from tests.services.test_payments import entry_lines
from tests.stripe_support import (
    charge_object, dispute_object, intent_object, refund_object, signed_event,
)

URL = "/stripe/webhook"
ON_POSTGRESQL = os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql")


def allocated(payment_id: int) -> int:
    return int(db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(Allocation.amount_cents), 0))
                                 .where(Allocation.payment_id == payment_id)))


def events_stored() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(StripeEvent))


# --- signed events through the test client ---------------------------------------------------------------


def deliver(client, event_type: str, obj: dict, **kw):
    """Post a signed event as Stripe would; the test's session then reads what the request committed."""
    body, headers = signed_event(event_type, obj, **kw)
    response = client.post(URL, data=body, headers=headers)
    db.session.expire_all()
    return response


@pytest.fixture
def card_payment(make_patient, invoice_for):
    """Factory: a committed pending $450 card payment on a new invoice and its PaymentIntent, as it
    stands once the desk created the intent: (payment, invoice, intent)."""

    def make(email: str | None = "sam.rivera@example.test") -> tuple[Payment, Invoice, dict]:
        patient = make_patient(**({"email": email} if email else {}))
        invoice = invoice_for(patient)
        payment = card_payments.start(patient, Money(45000), invoice=invoice, channel=CardChannel.PORTAL, today=TODAY)
        intent = intent_object(payment.id, payment.amount_cents)
        card_payments.attach_intent(payment, intent["id"])
        db.session.commit()
        return payment, invoice, intent

    return make


@pytest.fixture
def paid(client, card_payment):
    """A card payment the webhook marked succeeded: (payment, invoice, intent)."""
    payment, invoice, intent = card_payment()
    assert deliver(client, "payment_intent.succeeded", intent).status_code == 200
    assert payment.status == PaymentStatus.SUCCEEDED
    return payment, invoice, intent


def test_a_signed_success_settles_the_payment_and_queues_the_receipt_email(client, card_payment):
    payment, invoice, intent = card_payment()

    response = deliver(client, "payment_intent.succeeded", intent, event_id="evt_1Success")

    assert (response.status_code, response.get_json()) == (200, {"received": True})
    assert payment.status == PaymentStatus.SUCCEEDED and invoice.status == InvoiceStatus.PAID
    assert entry_lines(payment) == [{("1020", 45000, None), ("1100", -45000, payment.patient_id)}]
    receipt = receipts.receipt_of_payment(payment.id)
    message = db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.kind == "receipt"))
    assert (message.to_address, message.patient_id, message.attachment_name) == (
        "sam.rivera@example.test", payment.patient_id, f"receipt-{receipt.number}.pdf")
    assert receipt.sha256 is not None  # the emailed rendering is the one later downloads are checked against
    assert "/portal/d/" in message.body_text  # the receipt opens from the email without signing in
    stored = db.session.scalar(sa.select(StripeEvent).where(StripeEvent.event_id == "evt_1Success"))
    assert (stored.type, stored.object_id, stored.outcome) == (
        "payment_intent.succeeded", intent["id"], f"payment #{payment.id} succeeded")
    assert json.loads(stored.payload)["data"]["object"]["id"] == intent["id"]
    actors = set(db.session.scalars(sa.select(AuditEvent.actor_label).where(AuditEvent.action == "payment.card")))
    assert actors == {"stripe-webhook"}


def test_a_patient_without_email_gets_no_receipt_email_and_the_payment_still_succeeds(client, card_payment):
    payment, invoice, intent = card_payment(email=None)

    response = deliver(client, "payment_intent.succeeded", intent)

    assert response.status_code == 200 and payment.status == PaymentStatus.SUCCEEDED
    assert receipts.receipt_of_payment(payment.id) is not None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0


@pytest.mark.parametrize("tamper", ["wrong secret", "altered body", "no header", "made-up signature", "stale"])
def test_an_event_that_does_not_verify_is_refused_and_nothing_is_stored(client, card_payment, tamper):
    payment, invoice, intent = card_payment()
    if tamper == "wrong secret":
        body, headers = signed_event("payment_intent.succeeded", intent, secret="whsec_someone_else")
    elif tamper == "stale":
        body, headers = signed_event("payment_intent.succeeded", intent, created=int(time.time()) - 3600)
    else:
        body, headers = signed_event("payment_intent.succeeded", intent)
    if tamper == "altered body":
        body = body.replace(b'"amount": 45000', b'"amount": 1')
        assert b'"amount": 1,' in body
    elif tamper == "no header":
        del headers["Stripe-Signature"]
    elif tamper == "made-up signature":
        headers["Stripe-Signature"] = f"t={int(time.time())},v1={'ab' * 32}"
    before = ledger_snapshot()

    response = client.post(URL, data=body, headers=headers)
    db.session.expire_all()

    assert (response.status_code, response.mimetype, response.get_data(as_text=True)) == (
        400, "text/plain", "Invalid signature.")
    assert events_stored() == 0 and ledger_snapshot() == before
    assert payment.status == PaymentStatus.PENDING


def test_a_replayed_event_is_acknowledged_and_changes_nothing(client, card_payment):
    payment, invoice, intent = card_payment()
    body, headers = signed_event("payment_intent.succeeded", intent, event_id="evt_1Replayed")
    assert client.post(URL, data=body, headers=headers).status_code == 200
    db.session.expire_all()
    before = ledger_snapshot()

    response = client.post(URL, data=body, headers=headers)
    db.session.expire_all()

    assert (response.status_code, response.get_json()) == (200, {"received": True, "duplicate": True})
    assert ledger_snapshot() == before and events_stored() == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 1


def test_success_delivered_twice_under_different_event_ids_allocates_once(client, paid):
    payment, invoice, intent = paid
    before = ledger_snapshot()

    response = deliver(client, "payment_intent.succeeded", intent)

    assert (response.status_code, response.get_json()) == (200, {"received": True})
    assert ledger_snapshot() == before and allocated(payment.id) == 45000
    assert events_stored() == 2
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 1


def test_a_failure_after_success_is_recorded_and_ignored(client, paid):
    payment, invoice, intent = paid
    failed = {**intent, "status": "requires_payment_method",
              "last_payment_error": {"type": "card_error", "message": "Your card was declined."}}
    before = ledger_snapshot()

    response = deliver(client, "payment_intent.payment_failed", failed, event_id="evt_1LateFailure")

    assert response.status_code == 200 and ledger_snapshot() == before
    assert (payment.status, payment.card.failure_message) == (PaymentStatus.SUCCEEDED, "")
    assert db.session.scalar(sa.select(StripeEvent.outcome).where(StripeEvent.event_id == "evt_1LateFailure")) == (
        f"payment #{payment.id} already succeeded; failure ignored")


def test_an_unknown_event_type_is_recorded_and_acknowledged(client):
    customer = {"id": "cus_NffrFeUfNV2Hib", "object": "customer", "email": "jennyrosen@example.com"}

    response = deliver(client, "customer.created", customer, event_id="evt_1Unknown")

    assert (response.status_code, response.get_json()) == (200, {"received": True})
    stored = db.session.scalar(sa.select(StripeEvent).where(StripeEvent.event_id == "evt_1Unknown"))
    assert (stored.type, stored.object_id, stored.outcome) == (
        "customer.created", "cus_NffrFeUfNV2Hib", "not handled (recorded only)")


def test_a_contradicting_event_answers_500_stores_nothing_and_succeeds_when_stripe_retries(client, card_payment):
    payment, invoice, intent = card_payment()
    dispute = dispute_object(intent)
    body, headers = signed_event("charge.dispute.created", dispute, event_id="evt_1EarlyDispute")

    early = client.post(URL, data=body, headers=headers)  # before we know the payment succeeded
    db.session.expire_all()
    assert early.status_code == 500 and early.get_json() == {"received": False}
    assert events_stored() == 0 and card_payments.open_dispute(payment.id) is None

    deliver(client, "payment_intent.succeeded", intent)
    retry = client.post(URL, data=body, headers=headers)  # Stripe's retry: the same event, same id
    db.session.expire_all()

    assert (retry.status_code, retry.get_json()) == (200, {"received": True})
    assert card_payments.open_dispute(payment.id).dispute_id == dispute["id"]
    assert journal.balance(journal.DISPUTED) == Money(45000)


def test_a_dashboard_refund_with_the_refund_list_is_posted_once(client, paid):
    payment, invoice, intent = paid
    refund = refund_object(charge_object(intent), 15000, refund_id="re_3DashboardPartial")
    charge = charge_object(intent, refunds=[refund])

    first = deliver(client, "charge.refunded", charge)
    again = deliver(client, "charge.refunded", charge)  # the same state in another event

    assert first.status_code == again.status_code == 200
    rows = db.session.execute(sa.select(Refund.amount_cents, Refund.stripe_refund_id, Refund.reason)
                              .where(Refund.payment_id == payment.id)).all()
    assert [tuple(r) for r in rows] == [(15000, "re_3DashboardPartial", card_payments.DASHBOARD_REFUND_REASON)]
    assert payment.status == PaymentStatus.PARTIALLY_REFUNDED and invoice.status == InvoiceStatus.OPEN
    assert journal.balance(journal.STRIPE_CLEARING) == Money(30000)
    assert journal.balance(journal.RECEIVABLES, patient_id=payment.patient_id) == Money(15000)


def test_a_dashboard_refund_without_the_refund_list_is_posted_from_the_total_once(client, paid):
    payment, invoice, intent = paid
    charge = charge_object(intent, with_refund_list=False, amount_refunded=45000)

    deliver(client, "charge.refunded", charge)
    deliver(client, "charge.refunded", charge)

    assert db.session.scalars(sa.select(Refund.amount_cents).where(Refund.payment_id == payment.id)).all() == [45000]
    assert payment.status == PaymentStatus.REFUNDED and invoice.status == InvoiceStatus.OPEN
    assert journal.balance(journal.STRIPE_CLEARING) == Money.zero()


def test_a_dispute_holds_the_amount_and_a_won_one_gives_it_back(client, paid):
    payment, invoice, intent = paid
    dispute = dispute_object(intent, reason="product_not_received")

    deliver(client, "charge.dispute.created", dispute)
    assert card_payments.open_dispute(payment.id).amount_cents == 45000
    assert journal.balance(journal.DISPUTED) == Money(45000)
    assert journal.balance(journal.STRIPE_CLEARING) == Money.zero()

    deliver(client, "charge.dispute.closed", {**dispute, "status": "won"})

    assert card_payments.open_dispute(payment.id) is None
    assert journal.balance(journal.DISPUTED) == Money.zero()
    assert journal.balance(journal.STRIPE_CLEARING) == Money(45000)
    assert payment.status == PaymentStatus.SUCCEEDED and invoice.status == InvoiceStatus.PAID


def test_a_lost_dispute_reopens_the_invoice(client, paid):
    payment, invoice, intent = paid
    dispute = dispute_object(intent)
    deliver(client, "charge.dispute.created", dispute)

    deliver(client, "charge.dispute.closed", {**dispute, "status": "lost"})

    assert db.session.scalar(sa.select(Dispute.outcome).where(Dispute.dispute_id == dispute["id"])) == (
        DisputeOutcome.LOST)
    assert payment.status == PaymentStatus.RETURNED and invoice.status == InvoiceStatus.OPEN
    assert journal.balance(journal.RECEIVABLES, patient_id=payment.patient_id) == Money(45000)
    assert journal.balance(journal.DISPUTED) == journal.balance(journal.STRIPE_CLEARING) == Money.zero()


def test_a_dispute_closed_before_its_creation_arrives_is_posted_once(client, paid):
    payment, invoice, intent = paid
    dispute = dispute_object(intent)

    deliver(client, "charge.dispute.closed", {**dispute, "status": "won"})
    before = ledger_snapshot()
    late = deliver(client, "charge.dispute.created", dispute)

    assert late.status_code == 200 and ledger_snapshot() == before
    record = db.session.scalar(sa.select(Dispute).where(Dispute.dispute_id == dispute["id"]))
    assert record.outcome == DisputeOutcome.WON and len(journal.entries_for(record)) == 2
    assert journal.balance(journal.DISPUTED) == Money.zero()
    assert journal.balance(journal.STRIPE_CLEARING) == Money(45000)


def test_payout_paid_is_recorded_and_fetched_only_after_the_response(client, monkeypatch):
    calls = []
    monkeypatch.setattr(stripe_payouts, "fetch_unposted", lambda: calls.append("fetched"))
    payout = {"id": "po_1OaFDbEcg9tTZuTg", "object": "payout", "amount": 125000, "arrival_date": 1774137600,
              "currency": "usd", "status": "paid", "method": "standard", "type": "bank_account"}

    response = deliver(client, "payout.paid", payout)

    assert response.status_code == 200 and calls == []
    response.close()  # the server closes the response once it is sent
    assert calls == ["fetched"]
    recorded = db.session.scalar(sa.select(StripePayout).where(StripePayout.payout_id == payout["id"]))
    assert (recorded.amount_cents, recorded.posted, recorded.source) == (125000, False, "api")


# --- localstripe: the app on a free port receives what Stripe's fake sends -----------------------------------


@pytest.fixture
def live_stripe(live_app, live_server, localstripe):
    """The live app talking to localstripe, which delivers its webhooks to the live server."""
    live_app.config["STRIPE_API_BASE"] = localstripe.url
    localstripe.register_webhook(f"{live_server.url}{URL}")
    yield live_app
    live_app.config["STRIPE_API_BASE"] = "http://127.0.0.1:9"


def start_card_payment(app, infusion_id: int, *, email: str = "casey@example.test") -> tuple[int, int]:
    """A patient with a $450 invoice and a committed pending card payment on it: (payment id, invoice id)."""
    with app.app_context():
        patient = patient_service.create_patient(
            {"first_name": "Casey", "last_name": "Nguyen", "date_of_birth": TODAY.replace(year=1985), "email": email},
            today=TODAY)
        charge_service.post_charge(patient, charge_service.ChargeInput(
            service=db.session.get(Service, infusion_id), date_of_service=TODAY), today=TODAY)
        invoice = invoice_service.issue_invoice(patient, today=TODAY)
        payment = card_payments.start(patient, Money(45000), invoice=invoice, channel=CardChannel.DESK,
                                      today=clinic_today())
        db.session.commit()
        return payment.id, invoice.id


def wait_until(app, check: Callable[[], object], seconds: float = 8) -> object:
    """Poll the database (a new app context each time) until check() is truthy."""
    deadline = time.monotonic() + seconds
    while True:
        with app.app_context():
            result = check()
        if result or time.monotonic() > deadline:
            assert result, "the webhook did not arrive in time"
            return result
        time.sleep(0.1)


def pay_through_localstripe(app, localstripe, payment_id: int, card: str = "pm_card_visa") -> str:
    with app.app_context():
        intent = card_flow.ensure_intent(db.session.get(Payment, payment_id))
    localstripe.pay(intent.id, card)
    return intent.id


def test_a_card_payment_succeeds_end_to_end(live_stripe, localstripe, infusion_id):
    payment_id, invoice_id = start_card_payment(live_stripe, infusion_id)

    intent_id = pay_through_localstripe(live_stripe, localstripe, payment_id)
    wait_until(live_stripe, lambda: db.session.get(Payment, payment_id).status == PaymentStatus.SUCCEEDED)

    with live_stripe.app_context():
        payment = db.session.get(Payment, payment_id)
        assert payment.card.payment_intent_id == intent_id and payment.card.charge_id.startswith("ch_")
        assert db.session.get(Invoice, invoice_id).status == InvoiceStatus.PAID
        assert entry_lines(payment) == [{("1020", 45000, None), ("1100", -45000, payment.patient_id)}]
        assert journal.balance(journal.RECEIVABLES, patient_id=payment.patient_id) == Money.zero()
        receipt = receipts.receipt_of_payment(payment_id)
        message = db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.patient_id == payment.patient_id))
        assert (message.kind, message.to_address, message.attachment_name) == (
            "receipt", "casey@example.test", f"receipt-{receipt.number}.pdf")
        assert db.session.scalar(sa.select(StripeEvent.outcome).where(
            StripeEvent.type == "payment_intent.succeeded", StripeEvent.object_id == intent_id)) == (
            f"payment #{payment_id} succeeded")


def test_a_declined_card_fails_cleanly(live_stripe, localstripe, infusion_id):
    payment_id, invoice_id = start_card_payment(live_stripe, infusion_id)

    pay_through_localstripe(live_stripe, localstripe, payment_id, "pm_card_chargeCustomerFail")
    wait_until(live_stripe, lambda: db.session.get(Payment, payment_id).status == PaymentStatus.FAILED)

    with live_stripe.app_context():
        payment = db.session.get(Payment, payment_id)
        assert payment.card.failure_message == "Your card was declined."
        assert allocated(payment_id) == 0 and journal.entries_for(payment) == []
        assert receipts.receipt_of_payment(payment_id) is None
        assert db.session.get(Invoice, invoice_id).status == InvoiceStatus.OPEN
        assert journal.balance(journal.RECEIVABLES, patient_id=payment.patient_id) == Money(45000)


def test_a_partial_then_a_full_refund_through_stripe(live_stripe, localstripe, infusion_id):
    payment_id, invoice_id = start_card_payment(live_stripe, infusion_id)
    intent_id = pay_through_localstripe(live_stripe, localstripe, payment_id)
    wait_until(live_stripe, lambda: db.session.get(Payment, payment_id).status == PaymentStatus.SUCCEEDED)

    def stripe_refunded() -> int:
        intent = localstripe.api("GET", f"/v1/payment_intents/{intent_id}")
        return localstripe.api("GET", f"/v1/charges/{intent['latest_charge']['id']}")["amount_refunded"]

    with live_stripe.app_context():
        payment = db.session.get(Payment, payment_id)
        partial = card_flow.refund(payment, Money(10000), "Second hour not given")
        with pytest.raises(ServiceError, match=r"At most \$350\.00"):
            card_flow.refund(db.session.get(Payment, payment_id), Money(35001), "Too much")
        assert stripe_refunded() == 10000  # refused before Stripe was asked
        full = card_flow.refund(db.session.get(Payment, payment_id), Money(35000), "Series cancelled")
        with pytest.raises(ServiceError, match="Only a completed payment"):
            card_flow.refund(db.session.get(Payment, payment_id), Money(1), "Once more")

    assert stripe_refunded() == 45000
    with live_stripe.app_context():
        payment = db.session.get(Payment, payment_id)
        refunds = db.session.scalars(sa.select(Refund).where(Refund.payment_id == payment_id).order_by(Refund.id)).all()
        assert [(r.amount_cents, r.stripe_refund_id) for r in refunds] == [
            (10000, db.session.merge(partial).stripe_refund_id), (35000, db.session.merge(full).stripe_refund_id)]
        assert all(r.stripe_refund_id.startswith("re_") for r in refunds)
        assert [entry_lines(r) for r in refunds] == [
            [{("1100", 10000, payment.patient_id), ("1020", -10000, None)}],
            [{("1100", 35000, payment.patient_id), ("1020", -35000, None)}],
        ]
        assert payment.status == PaymentStatus.REFUNDED
        assert db.session.get(Invoice, invoice_id).status == InvoiceStatus.OPEN
        assert journal.balance(journal.RECEIVABLES, patient_id=payment.patient_id) == Money(45000)
        assert card_payments.card_refundable(payment) == Money.zero()


@pytest.mark.skipif(not ON_POSTGRESQL, reason="row locks and concurrent transactions need PostgreSQL")
def test_success_arriving_before_our_record_is_committed_allocates_once(live_app, live_server, infusion_id):
    payment_id, invoice_id = start_card_payment(live_app, infusion_id)
    intent = intent_object(payment_id, 45000)
    locked, release, errors = threading.Event(), threading.Event(), []

    def desk_request() -> None:
        """The request that created the intent, still holding the payment's row lock, commits late."""
        try:
            with live_app.app_context():
                payment = db.session.scalars(sa.select(Payment).where(Payment.id == payment_id)
                                             .with_for_update(of=Payment)).one()
                card_payments.attach_intent(payment, intent["id"])
                locked.set()
                release.wait(timeout=20)
                db.session.commit()
        except BaseException as err:  # reported in the test's thread
            errors.append(err)
            locked.set()

    responses: list[requests.Response] = []

    def stripe_delivers() -> None:
        body, headers = signed_event("payment_intent.succeeded", intent)
        responses.append(requests.post(f"{live_server.url}{URL}", data=body, headers=headers, timeout=30))

    desk = threading.Thread(target=desk_request)
    desk.start()
    assert locked.wait(timeout=10) and errors == []
    deliveries = [threading.Thread(target=stripe_delivers) for _ in range(2)]  # two events, different ids
    for thread in deliveries:
        thread.start()
    time.sleep(1.0)
    assert all(thread.is_alive() for thread in deliveries), "the webhook did not wait for the payment's lock"
    release.set()
    for thread in [desk, *deliveries]:
        thread.join(timeout=30)

    assert errors == [] and sorted(r.status_code for r in responses) == [200, 200]
    with live_app.app_context():
        payment = db.session.get(Payment, payment_id)
        assert payment.status == PaymentStatus.SUCCEEDED and payment.card.payment_intent_id == intent["id"]
        assert allocated(payment_id) == 45000 and len(journal.entries_for(payment)) == 1
        assert db.session.get(Invoice, invoice_id).status == InvoiceStatus.PAID
        outcomes = sorted(db.session.scalars(sa.select(StripeEvent.outcome).where(StripeEvent.object_id == intent["id"])))
        assert outcomes == [f"payment #{payment_id} already succeeded", f"payment #{payment_id} succeeded"]
