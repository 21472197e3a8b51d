"""Stripe webhook events: each verified event is stored once and handed to the service that knows
what it means. A replayed event finds its id already stored and changes nothing; an event type we
do not handle is stored and acknowledged.

    receive     store the event (None when it was already received) and apply it
"""

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from billing.extensions import db
from billing.models import Payment, StripeEvent
from billing.services import card_payments, payouts
from billing.timeutil import clinic_today


def receive(event: dict[str, Any]) -> tuple[StripeEvent | None, Payment | None]:
    """Store a verified event and apply it in the caller's transaction. Returns (the stored event,
    or None for a replay; the card payment that succeeded with it, if one did, for its receipt).
    Raises ValueError when the event contradicts our records (the caller answers 500, so Stripe
    retries and the error is logged)."""
    obj = (event.get("data") or {}).get("object") or {}
    try:
        with db.session.begin_nested():
            stored = StripeEvent(
                event_id=event["id"], type=str(event.get("type", ""))[:80], object_id=str(obj.get("id", ""))[:64],
                stripe_created_at=datetime.fromtimestamp(int(event.get("created") or 0), UTC),
                payload=json.dumps(event, separators=(",", ":")),
            )
            db.session.add(stored)
    except sa.exc.IntegrityError:
        return None, None
    outcome, succeeded = _apply(stored.type, obj, clinic_today())
    stored.outcome = outcome[:200]
    return stored, succeeded


def _apply(kind: str, obj: dict[str, Any], today) -> tuple[str, Payment | None]:
    match kind:
        case "payment_intent.succeeded":
            return card_payments.intent_succeeded(obj, today=today)
        case "payment_intent.payment_failed":
            return card_payments.intent_failed(obj), None
        case "payment_intent.canceled":
            return card_payments.intent_canceled(obj), None
        case "charge.succeeded":
            return card_payments.charge_succeeded(obj), None
        case "charge.refunded":
            return card_payments.charge_refunded(obj, today=today), None
        case "charge.dispute.created":
            return card_payments.dispute_opened(obj, today=today), None
        case "charge.dispute.closed":
            return card_payments.dispute_closed(obj, today=today), None
        case "payout.paid":
            return payouts.payout_paid(obj), None
    return "not handled (recorded only)", None
