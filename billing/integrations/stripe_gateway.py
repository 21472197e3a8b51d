"""The one place that talks to Stripe, through the official SDK.

Callers get plain values (ids, cents, dicts) and two kinds of error: `CardDeclined` (the card was
refused; nothing was charged) and `GatewayError` (Stripe could not be reached, timed out or refused
the request; its `message` says what the person can do). Every POST carries an idempotency key the
caller stored with its own row before the call, so a retry after a timeout cannot charge or refund
twice. Webhook payloads are verified here and handed on as plain dicts.
"""

import json
from dataclasses import dataclass
from typing import Any

import stripe
from flask import current_app

from billing.money import Money

CURRENCY = "usd"


class GatewayError(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class CardDeclined(GatewayError):
    pass


class NotConfigured(GatewayError):
    pass


class Unreachable(GatewayError):
    """No answer (connection failed or timed out): Stripe may or may not have acted; retry with the same key."""


class BadSignature(Exception):
    """A webhook whose signature does not verify (forged, altered, stale or unsigned)."""


@dataclass(frozen=True)
class Intent:
    id: str
    status: str
    amount_cents: int
    client_secret: str


@dataclass(frozen=True)
class RefundResult:
    id: str
    status: str  # succeeded | pending | failed | canceled
    amount_cents: int


def to_stripe_amount(amount: Money) -> int:
    """Money in Stripe's smallest unit (cents for USD); Stripe rejects zero and negatives, so do we."""
    if not amount.is_positive:
        raise ValueError(f"Stripe amounts must be positive, not {amount}")
    return amount.cents


def from_stripe_amount(value: int) -> Money:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"Stripe amounts are whole cents, not {value!r}")
    return Money(value)


def is_configured() -> bool:
    return bool(current_app.config["STRIPE_SECRET_KEY"] and current_app.config["STRIPE_PUBLISHABLE_KEY"])


def publishable_key() -> str:
    return current_app.config["STRIPE_PUBLISHABLE_KEY"]


def _client() -> stripe.StripeClient:
    config = current_app.config
    if not config["STRIPE_SECRET_KEY"]:
        raise NotConfigured("Card payments are not set up: the clinic's Stripe keys are missing (see README).")
    return stripe.StripeClient(
        config["STRIPE_SECRET_KEY"],
        base_addresses={"api": config["STRIPE_API_BASE"]},
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=config["STRIPE_TIMEOUT"]),
    )


def _call(function, *args, **kwargs):
    """Call the SDK and turn its errors into ours."""
    try:
        return function(*args, **kwargs)
    except stripe.CardError as error:
        raise CardDeclined(error.user_message or "The card was declined. Try another card.") from error
    except stripe.APIConnectionError as error:
        raise Unreachable("Stripe did not answer, so nothing is recorded as paid or refunded. Check the "
                          "internet connection and try again: Stripe never charges or refunds twice for a retry.") from error
    except stripe.RateLimitError as error:
        raise GatewayError("Stripe is busy. Wait a moment and try again.") from error
    except stripe.AuthenticationError as error:
        raise GatewayError("Stripe refused the clinic's API key. An admin must check the Stripe settings.") from error
    except stripe.StripeError as error:
        detail = error.user_message or getattr(error, "_message", None) or str(error)
        raise GatewayError(f"Stripe refused the request: {detail}") from error


def _intent(pi) -> Intent:
    return Intent(id=pi.id, status=pi.status, amount_cents=pi.amount, client_secret=pi.client_secret or "")


def create_payment_intent(amount: Money, *, idempotency_key: str, metadata: dict[str, str]) -> Intent:
    """A PaymentIntent for `amount`, card only, with our ids in its metadata."""
    pi = _call(_client().v1.payment_intents.create, params={
        "amount": to_stripe_amount(amount),
        "currency": CURRENCY,
        "payment_method_types": ["card"],
        "metadata": metadata,
    }, options={"idempotency_key": idempotency_key})
    return _intent(pi)


def retrieve_payment_intent(intent_id: str) -> Intent:
    return _intent(_call(_client().v1.payment_intents.retrieve, intent_id))


def cancel_payment_intent(intent_id: str) -> Intent:
    return _intent(_call(_client().v1.payment_intents.cancel, intent_id))


def create_refund(intent_id: str, amount: Money, *, idempotency_key: str, metadata: dict[str, str]) -> RefundResult:
    refund = _call(_client().v1.refunds.create, params={
        "payment_intent": intent_id,
        "amount": to_stripe_amount(amount),
        "metadata": metadata,
    }, options={"idempotency_key": idempotency_key})
    return RefundResult(id=refund.id, status=refund.status, amount_cents=refund.amount)


def payout(payout_id: str) -> dict[str, Any]:
    return _call(_client().v1.payouts.retrieve, payout_id).to_dict()


def payout_balance_transactions(payout_id: str) -> list[dict[str, Any]]:
    """Every balance transaction the payout settled (the payout's own included), as plain dicts."""
    page = _call(_client().v1.balance_transactions.list, params={"payout": payout_id, "limit": 100})
    return [item.to_dict() for item in _call(lambda: list(page.auto_paging_iter()))]


def verified_event(payload: bytes, signature: str | None) -> dict[str, Any]:
    """The event in a webhook body, after checking its Stripe-Signature against the endpoint secret.
    Raises BadSignature for anything that does not verify."""
    secret = current_app.config["STRIPE_WEBHOOK_SECRET"]
    if not secret:
        raise BadSignature("STRIPE_WEBHOOK_SECRET is not set")
    try:
        stripe.WebhookSignature.verify_header(payload.decode("utf-8"), signature or "", secret,
                                              stripe.Webhook.DEFAULT_TOLERANCE)
        event = json.loads(payload)
    except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError) as error:
        raise BadSignature(str(error)) from error
    if not isinstance(event, dict) or not event.get("id") or not isinstance(event.get("data"), dict):
        raise BadSignature("not a Stripe event")
    return event
