"""Stripe's webhook: every signed event is stored once and applied, in one transaction.

It answers fast: no Stripe API call inside the request. A succeeded card payment's receipt email is
queued in the same transaction (sent after the response, like all mail); a paid-out payout's
balance transactions are fetched from Stripe and posted after the response.
"""

from collections.abc import Callable

from flask import Flask, Response, current_app, g, jsonify, request

from billing.access import public
from billing.documents.receipts import receipt_pdf
from billing.extensions import csrf, db, limiter
from billing.integrations import stripe_gateway as gateway
from billing.models import Patient, Payment
from billing import stripe_payouts
from billing.services import ServiceError, stripe_events
from billing.services import receipts as receipt_service
from billing.views import queue_document_email
from billing.webhooks import bp


@bp.route("/webhook", methods=["POST"])
@public
@csrf.exempt
@limiter.exempt
def stripe_webhook():
    """Verify the signature over the raw body (400, nothing stored, when it fails), store and apply
    the event, commit. A replay answers 200 and changes nothing; an event that contradicts our
    records rolls back and answers 500, so Stripe sends it again later."""
    try:
        event = gateway.verified_event(request.get_data(), request.headers.get("Stripe-Signature"))
    except gateway.BadSignature as err:
        current_app.logger.warning("Stripe webhook refused: %s", err)
        return Response("Invalid signature.", status=400, mimetype="text/plain")
    g.audit_actor = "stripe-webhook"
    try:
        stored, succeeded = stripe_events.receive(event)
        if succeeded is not None:
            _queue_receipt_email(succeeded)
        db.session.commit()
    except (ValueError, ServiceError):
        db.session.rollback()
        current_app.logger.exception("Stripe event %s (%s) not applied; Stripe will send it again",
                                     event["id"], event.get("type"))
        return jsonify(received=False), 500
    if stored is None:
        return jsonify(received=True, duplicate=True)
    response = jsonify(received=True)
    if stored.type == "payout.paid":
        _after_response(response, stripe_payouts.fetch_unposted)
    return response


def _queue_receipt_email(payment: Payment) -> None:
    """Queue the receipt of a payment that just succeeded to the patient's email, when there is one.
    A missing or unusable address, or a receipt that fails to render, leaves the payment recorded
    and is logged: staff can email the receipt from the payment's page."""
    patient = db.session.get(Patient, payment.patient_id)
    receipt = receipt_service.receipt_of_payment(payment.id)
    if not patient.email or receipt is None:
        return
    try:
        with db.session.begin_nested():
            document = receipt_pdf(receipt)
            receipt_service.record_rendering(receipt, document.pdf)
            queue_document_email(patient, document, kind="receipt", what=f"receipt {receipt.number}", about=receipt)
    except ServiceError as err:
        current_app.logger.warning("Receipt %s not emailed: %s", receipt.number, err.message)
    except Exception:  # noqa: BLE001 - the payment is recorded; a receipt can be emailed again by hand
        current_app.logger.exception("Receipt %s could not be rendered for email", receipt.number)


def _after_response(response: Response, work: Callable[[], object]) -> None:
    """Run `work` in an app context of its own once the response has gone out; failures are logged
    (the CLI runs the same workers again)."""
    app = current_app._get_current_object()

    def run(app: Flask = app) -> None:
        try:
            with app.app_context():
                work()
        except Exception:  # noqa: BLE001 - Stripe already has its answer
            app.logger.exception("Work after the Stripe webhook's response failed")

    response.call_on_close(run)
