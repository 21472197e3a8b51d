"""The card step behind the front desk's card tab and the patient's pay link: which page a card
payment shows (Stripe's Payment Element, a wait for the webhook, a decline, no answer from Stripe),
its status for the page script, and the Stripe calls around a committed row.

The browser never marks a payment paid: the page script polls `status_response` until Stripe's
signed webhook has settled the payment (billing/services/card_payments.py).
"""

from collections.abc import Callable
from dataclasses import dataclass

from flask import Response, current_app, flash, jsonify, render_template
from flask_wtf import FlaskForm

from billing.extensions import db
from billing.integrations import stripe_gateway as gateway
from billing.models import Payment, PaymentStatus
from billing.money import Money
from billing.payments import card_flow
from billing.payments.forms import TryAnotherCardForm
from billing.security import allow_stripe_js
from billing.services import ServiceError, card_payments
from billing.timeutil import clinic_today
from billing.views import submit_once

OPEN = (PaymentStatus.PENDING, PaymentStatus.FAILED)
DECLINED = "The card payment did not go through. Nothing was charged."


@dataclass(frozen=True)
class CardUrls:
    """Where the card step's buttons and script go (the desk's pages or the pay link's)."""

    page: str  # the card page itself, absolute: Stripe returns here after 3-D Secure
    status: str
    retry: str
    another: str
    cancel: str | None = None  # only the front desk gives up on a payment,
    other_method: str | None = None  # or takes it another way


@dataclass(frozen=True)
class CardStep:
    state: str  # ready | waiting | no_answer | failed
    client_secret: str = ""
    message: str = ""


def is_open(payment: Payment) -> bool:
    """Not paid yet: the card step still applies (anything else shows the receipt)."""
    return payment.status in OPEN


def status_of(payment: Payment) -> str:
    """pending | failed | succeeded (a payment refunded or disputed later was still paid)."""
    return {PaymentStatus.PENDING: "pending", PaymentStatus.FAILED: "failed"}.get(payment.status, "succeeded")


def status_response(payment: Payment, receipt_url: str) -> Response:
    status = status_of(payment)
    response = jsonify({
        "status": status,
        "message": (payment.card.failure_message or DECLINED) if status == "failed" else "",
        "receipt_url": receipt_url if status == "succeeded" else None,
    })
    response.headers["Cache-Control"] = "no-store"
    return response


def step_of(payment: Payment) -> CardStep:
    """What the card page shows for an open payment, from our row and (read only) its PaymentIntent."""
    if payment.status == PaymentStatus.FAILED:
        return CardStep("failed", message=payment.card.failure_message or DECLINED)
    if not payment.card.payment_intent_id:
        return CardStep("no_answer")
    try:
        intent = gateway.retrieve_payment_intent(payment.card.payment_intent_id)
    except gateway.GatewayError as error:
        return CardStep("no_answer", message="" if isinstance(error, gateway.Unreachable) else error.message)
    if intent.status in ("succeeded", "processing"):
        return CardStep("waiting")  # Stripe has it; the webhook settles it
    if intent.status == "canceled":
        return CardStep("failed", message="This card payment was cancelled. Nothing was charged.")
    return CardStep("ready", client_secret=intent.client_secret)


def render_step(template: str, payment: Payment, urls: CardUrls, **context) -> str:
    """The card page; only a page that shows the Payment Element loads Stripe.js (and its CSP)."""
    step = step_of(payment)
    if step.state == "ready":
        allow_stripe_js()
    return render_template(template, payment=payment, step=step, urls=urls, another_form=TryAnotherCardForm(),
                           publishable_key=gateway.publishable_key(),
                           stripe_js_url=current_app.config["STRIPE_JS_URL"], **context)


def ask_for_intent(payment: Payment) -> bool:
    """Create (or find again) the committed payment's PaymentIntent. When Stripe fails, its message is
    flashed (unless it simply did not answer: the card page says so) and the payment stays pending
    without an intent, for a retry with the same idempotency key."""
    try:
        card_flow.ensure_intent(payment)
        return True
    except gateway.GatewayError as error:
        db.session.rollback()
        if not isinstance(error, gateway.Unreachable):
            flash(error.message, "error")
        return False


def release_intent(payment: Payment) -> None:
    """Cancel the payment's PaymentIntent at Stripe, so nothing can be paid on it any more. Raises
    ServiceError when Stripe does not answer or the payment is already going through."""
    intent_id = payment.card.payment_intent_id
    if not intent_id:
        return
    try:
        gateway.cancel_payment_intent(intent_id)
    except gateway.GatewayError as error:
        try:
            status = gateway.retrieve_payment_intent(intent_id).status
        except gateway.GatewayError:
            raise ServiceError(error.message) from error
        if status in ("succeeded", "processing"):
            raise ServiceError("Stripe says this card payment is going through, so it cannot be cancelled. "
                               "Wait a moment for Stripe's confirmation.") from error
        if status != "canceled":
            raise ServiceError(error.message) from error


def start_again(payment: Payment) -> Payment:
    """A new pending payment for what a declined (or given up) one was for, after its PaymentIntent
    is cancelled at Stripe: a PaymentIntent is not confirmed again after a decline. Raises
    ServiceError as release_intent and card_payments.start (e.g. the invoice was paid meanwhile)."""
    if not is_open(payment):
        raise ServiceError("This card payment went through; there is nothing more to pay on it.")
    try:
        release_intent(payment)
    except ServiceError:
        if payment.status == PaymentStatus.PENDING:
            raise  # it may still go through: never start a second one beside it
    if payment.status == PaymentStatus.PENDING:
        card_payments.abandon(payment, "Another card was tried.")
    return card_payments.start(payment.patient, Money(payment.amount_cents), invoice=payment.card.invoice,
                               channel=payment.card.channel, today=clinic_today())


def start_once(form: FlaskForm, start: Callable[[], Payment], card_url: Callable[[Payment], str]) -> Response | None:
    """Run a one-time form that starts a card payment: `start` writes it (once per form), the commit
    follows, then Stripe is asked for its PaymentIntent. The redirect to its card page, or None to
    show the form again with the refusal."""
    started = []

    def act() -> str:
        started.append(start())
        return card_url(started[0])

    response = submit_once(form, act)
    if response is not None and started:  # not a second send of the same form
        ask_for_intent(started[0])
    return response


def try_another(payment: Payment, card_url: Callable[[Payment], str]) -> Response | None:
    """The "Try another card" button: start_again once per form. None when it was refused (flashed)."""
    form = TryAnotherCardForm()
    if not form.validate_on_submit():
        flash("That form has expired. Reload the page and try again.", "error")
        return None
    return start_once(form, lambda: start_again(payment), card_url)
