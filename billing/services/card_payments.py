"""Card payments through Stripe: the pending payment before Stripe is asked, what Stripe's signed
webhook events say happened, refunds asked of Stripe, and disputes.

A card payment is only ever marked succeeded from a verified `payment_intent.succeeded` event,
never from the browser. Everything here is safe to call again with the same event: the payment row
is locked and its state decides, so a replayed, duplicated or late event changes nothing.

    start            the pending payment and its idempotency key, before the PaymentIntent exists
    attach_intent    remember the PaymentIntent Stripe created
    abandon          the desk gives up on a pending payment
    intent_succeeded / intent_failed / intent_canceled         from payment_intent.* events
    request_refund / refund_done / refund_failed              refunds asked from the payment page
    charge_refunded                                            from charge.refunded (also dashboard refunds)
    dispute_opened / dispute_closed                            from charge.dispute.*
"""

import uuid
from datetime import date
from typing import Any

import sqlalchemy as sa

from billing.extensions import db
from billing.models import (
    CardChannel, CardDetails, CardRefundRequest, CardRefundStatus, Dispute, DisputeOutcome, Invoice,
    InvoiceStatus, Patient, Payment, PaymentMethod, PaymentStatus, Refund,
)
from billing.money import Money
from billing.services import ServiceError, audit, journal
from billing.services.balances import invoice_balance, open_invoices, payment_refunded
from billing.services.payments import (
    SETTLED, _lock_patient, _lock_payment, check_refund, post_refund, settle_payment, take_back,
)

DASHBOARD_REFUND_REASON = "Refunded in the Stripe Dashboard"


def start(patient: Patient, amount: Money, *, invoice: Invoice | None, channel: CardChannel, today: date) -> Payment:
    """A pending card payment for `amount` (on `invoice`, or the oldest open invoices first), with the
    idempotency key its PaymentIntent will be created with. Raises ServiceError for an amount that is
    not positive, an invoice that is not the patient's open invoice, or more than is due (a card
    payment never leaves credit behind on purpose). Writes the payment, its card details, an audit event."""
    if not amount.is_positive:
        raise ServiceError("Enter an amount greater than zero.", "amount")
    if invoice is not None:
        if invoice.patient_id != patient.id or invoice.status != InvoiceStatus.OPEN:
            raise ServiceError("Only this patient's open invoices can be paid.", "invoice")
        due = invoice_balance(invoice)
    else:
        due = sum((invoice_balance(i) for i in open_invoices(patient.id)), Money.zero())
    if amount > due:
        raise ServiceError(f"A card payment can be at most what is due: {due}." if due.is_positive
                           else "Nothing is due, so there is nothing to pay by card.", "amount")
    journal.ensure_period_open(today, "amount")
    payment = Payment(patient_id=patient.id, method=PaymentMethod.CARD, status=PaymentStatus.PENDING,
                      amount_cents=amount.cents, received_date=today, received_by_id=audit.current_actor_id(),
                      card=CardDetails(idempotency_key=f"pi-{uuid.uuid4().hex}", channel=channel,
                                       invoice_id=invoice.id if invoice else None))
    db.session.add(payment)
    db.session.flush()
    audit.record("payment.card_started", payment, changes={"amount": amount.plain(), "channel": channel.value})
    return payment


def intent_metadata(payment: Payment) -> dict[str, str]:
    """Our ids, stored on the PaymentIntent so Stripe's records point back to ours."""
    metadata = {"app_payment_id": str(payment.id), "patient_account": payment.patient.account_number}
    if payment.card.invoice is not None:
        metadata["invoice_number"] = payment.card.invoice.number
    return metadata


def attach_intent(payment: Payment, intent_id: str) -> None:
    """Remember the PaymentIntent created for a pending payment (the webhook may have done it first)."""
    card = payment.card
    if card.payment_intent_id not in (None, intent_id):
        raise ValueError(f"payment {payment.id} already has PaymentIntent {card.payment_intent_id}")
    card.payment_intent_id = intent_id
    db.session.flush()


def abandon(payment: Payment, reason: str) -> None:
    """Give up on a card payment that has not succeeded (the desk cancelled it). Raises ServiceError
    once it succeeded."""
    payment = _lock_payment(payment)
    if payment.status not in (PaymentStatus.PENDING, PaymentStatus.FAILED):
        raise ServiceError("This card payment went through; refund it instead.")
    payment.status = PaymentStatus.FAILED
    payment.card.failure_message = reason[:300]
    audit.record("payment.card_abandoned", payment, changes={"reason": reason})


# --- PaymentIntent events ---------------------------------------------------------------------------


def _payment_for_intent(intent: dict[str, Any]) -> Payment | None:
    """Our payment for a PaymentIntent, by its id or by the payment id we put in its metadata,
    locked (after its patient). None when the intent is not ours."""
    payment_id = db.session.scalar(sa.select(CardDetails.payment_id).where(CardDetails.payment_intent_id == intent["id"]))
    if payment_id is None:
        raw = (intent.get("metadata") or {}).get("app_payment_id", "")
        if not str(raw).isdigit():
            return None
        payment_id = int(raw)
    payment = db.session.get(Payment, payment_id)
    if payment is None or payment.method != PaymentMethod.CARD:
        return None
    _lock_patient(payment.patient_id)
    payment = _lock_payment(payment)
    if payment.card.payment_intent_id not in (None, intent["id"]):
        return None  # metadata that names a payment of another intent: not trusted
    return payment


def _card_facts(payment: Payment, intent: dict[str, Any]) -> None:
    """Brand, last 4 and charge id from the intent's latest charge, when the event carries them."""
    payment.card.payment_intent_id = intent["id"]
    charge = intent.get("latest_charge")
    if isinstance(charge, dict):
        _charge_facts(payment, charge)
    elif isinstance(charge, str):
        payment.card.charge_id = charge


def _charge_facts(payment: Payment, charge: dict[str, Any]) -> None:
    payment.card.charge_id = charge.get("id")
    card = (charge.get("payment_method_details") or {}).get("card") or {}
    if card.get("last4"):
        payment.card.brand = (card.get("brand") or "")[:20]
        payment.card.last4 = str(card["last4"])[:4]


def charge_succeeded(charge: dict[str, Any]) -> str:
    """The charge behind a card payment: keep its id, the card's brand and last 4 (Stripe's
    payment_intent events name the charge only by id). Moves no money."""
    payment = _payment_for_charge(charge)
    if payment is None:
        return "not a payment of this app"
    _charge_facts(payment, charge)
    return f"payment #{payment.id}: card {payment.card.brand} {payment.card.last4}".rstrip()


def intent_succeeded(intent: dict[str, Any], *, today: date) -> tuple[str, Payment | None]:
    """Stripe took the money: apply the payment (to its invoice, else oldest first; what no longer
    fits becomes credit) and post it (Stripe clearing / receivables). Returns (outcome, the payment
    when it was settled now). A second delivery, or an intent that is not ours, changes nothing."""
    payment = _payment_for_intent(intent)
    if payment is None:
        return "not a payment of this app", None
    if payment.status not in (PaymentStatus.PENDING, PaymentStatus.FAILED):
        return f"payment #{payment.id} already {payment.status.value}", None
    received = Money(intent.get("amount_received") or intent.get("amount") or 0)
    if received != Money(payment.amount_cents):
        raise ValueError(f"PaymentIntent {intent['id']} received {received}, payment #{payment.id} is for "
                         f"{Money(payment.amount_cents)}")
    _card_facts(payment, intent)
    payment.received_date = today
    payment.card.failure_message = ""
    apply_to = None
    invoice = payment.card.invoice
    if invoice is not None and invoice.status == InvoiceStatus.OPEN:
        apply_to = [(invoice.id, min(received, invoice_balance(invoice)))]
    settle_payment(payment, apply_to=apply_to, confirm_overpayment=True)
    audit.record("payment.card", payment, changes={"amount": received.plain(), "payment_intent": intent["id"],
                                                    "card": f"{payment.card.brand} {payment.card.last4}".strip()})
    return f"payment #{payment.id} succeeded", payment


def intent_failed(intent: dict[str, Any]) -> str:
    """A card was declined or failed: the payment stays unpaid with Stripe's message (the patient may
    still try another card on the same intent)."""
    payment = _payment_for_intent(intent)
    if payment is None:
        return "not a payment of this app"
    if payment.status not in (PaymentStatus.PENDING, PaymentStatus.FAILED):
        return f"payment #{payment.id} already {payment.status.value}; failure ignored"
    error = intent.get("last_payment_error") or {}
    payment.status = PaymentStatus.FAILED
    payment.card.payment_intent_id = intent["id"]
    payment.card.failure_message = (error.get("message") or "The card payment failed.")[:300]
    audit.record("payment.card_failed", payment, changes={"message": payment.card.failure_message})
    return f"payment #{payment.id} failed"


def intent_canceled(intent: dict[str, Any]) -> str:
    payment = _payment_for_intent(intent)
    if payment is None:
        return "not a payment of this app"
    if payment.status not in (PaymentStatus.PENDING, PaymentStatus.FAILED):
        return f"payment #{payment.id} already {payment.status.value}; cancellation ignored"
    payment.status = PaymentStatus.FAILED
    payment.card.failure_message = "The payment was cancelled in Stripe."
    audit.record("payment.card_canceled", payment, changes={"payment_intent": intent["id"]})
    return f"payment #{payment.id} canceled"


# --- refunds ---------------------------------------------------------------------------------------


def _pending_refunds(payment_id: int) -> Money:
    return Money(int(db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(CardRefundRequest.amount_cents), 0))
        .where(CardRefundRequest.payment_id == payment_id, CardRefundRequest.status == CardRefundStatus.PENDING)
    )))


def card_refundable(payment: Payment) -> Money:
    """What may still be refunded: the amount less refunds made and refunds asked of Stripe."""
    return Money(payment.amount_cents) - payment_refunded(payment.id) - _pending_refunds(payment.id)


def request_refund(payment: Payment, amount: Money, reason: str) -> CardRefundRequest:
    """A refund to ask of Stripe, written before Stripe is called so a retry reuses its idempotency
    key and a second request cannot refund the same money. Raises ServiceError as
    payments.check_refund, and for a payment that is disputed."""
    _lock_patient(payment.patient_id)
    payment = _lock_payment(payment)
    if payment.method != PaymentMethod.CARD or payment.card.payment_intent_id is None:
        raise ServiceError("Only a card payment taken through Stripe is refunded here.")
    if open_dispute(payment.id) is not None:
        raise ServiceError("This payment is disputed; Stripe holds the money until the dispute closes.")
    check_refund(payment, amount, reason, refundable=card_refundable(payment))
    request = CardRefundRequest(payment_id=payment.id, amount_cents=amount.cents, reason=reason.strip(),
                                idempotency_key=f"re-{uuid.uuid4().hex}", status=CardRefundStatus.PENDING,
                                created_by_id=audit.current_actor_id())
    db.session.add(request)
    db.session.flush()
    audit.record("payment.card_refund_requested", payment, changes={"amount": amount.plain(), "reason": reason.strip()})
    return request


def refund_done(request: CardRefundRequest, stripe_refund_id: str | None, *, today: date) -> Refund:
    """Stripe refunded: post the refund (receivables/credits / Stripe clearing; Stripe keeps its fee).
    Safe to call again, and from the webhook: an already posted refund is returned as it is."""
    _lock_patient(request.payment.patient_id)
    payment = _lock_payment(request.payment)
    request = db.session.scalars(sa.select(CardRefundRequest).where(CardRefundRequest.id == request.id)
                                 .with_for_update().execution_options(populate_existing=True)).one()
    existing = (db.session.scalar(sa.select(Refund).where(Refund.stripe_refund_id == stripe_refund_id))
                if stripe_refund_id else None)
    if request.refund_id is not None or existing is not None:
        request.refund_id = request.refund_id or existing.id
        request.status = CardRefundStatus.SUCCEEDED
        request.stripe_refund_id = request.stripe_refund_id or stripe_refund_id
        return existing or db.session.get(Refund, request.refund_id)
    request.status = CardRefundStatus.SUCCEEDED
    request.stripe_refund_id = request.stripe_refund_id or stripe_refund_id
    refund = post_refund(payment, Money(request.amount_cents), request.reason, today=today,
                         stripe_refund_id=stripe_refund_id)
    request.refund_id = refund.id
    return refund


def refund_in_progress(request: CardRefundRequest, stripe_refund_id: str) -> None:
    """Stripe accepted the refund but has not finished it; charge.refunded completes it."""
    request.stripe_refund_id = stripe_refund_id


def refund_failed(request: CardRefundRequest, message: str) -> None:
    """Stripe refused the refund; nothing was refunded and the amount is refundable again."""
    request.status = CardRefundStatus.FAILED
    request.failure_message = message[:300]
    audit.record("payment.card_refund_failed", request.payment, changes={"message": message})


def charge_refunded(charge: dict[str, Any], *, today: date) -> str:
    """Bring our refunds up to what Stripe says was refunded on the charge: requests of ours still
    pending are completed, anything else (a refund made in the Stripe Dashboard) is recorded as such.
    Idempotent: only the difference is ever posted, and never beyond the charge's amount_refunded.
    Raises ValueError when Stripe refunded more than is refundable here or a payment not settled."""
    payment = _payment_for_charge(charge)
    if payment is None:
        return "not a payment of this app"
    total = Money(charge.get("amount_refunded") or 0)
    refunds = [r for r in ((charge.get("refunds") or {}).get("data") or []) if r.get("status") == "succeeded"]
    posted = []
    for item in sorted(refunds, key=lambda r: r.get("created", 0)):
        if db.session.scalar(sa.select(Refund.id).where(Refund.stripe_refund_id == item["id"])) is not None:
            continue
        request = _request_for_refund(payment, item)
        if request is not None:
            posted.append(refund_done(request, item["id"], today=today))
        elif payment_refunded(payment.id) + Money(item["amount"]) <= total:
            # Not already posted without its id by an earlier event that carried only the total.
            posted.append(_dashboard_refund(payment, Money(item["amount"]), today, item["id"]))
    # Events without the refund list (current API versions): post what the total says is missing.
    missing = total - payment_refunded(payment.id)
    if missing.is_positive:
        for request in _pending_requests(payment.id):
            if Money(request.amount_cents) <= missing:
                posted.append(refund_done(request, request.stripe_refund_id, today=today))
                missing -= Money(request.amount_cents)
        if missing.is_positive:
            posted.append(_dashboard_refund(payment, missing, today, None))
    return f"payment #{payment.id}: {len(posted)} refund(s) posted" if posted else f"payment #{payment.id}: up to date"


def _payment_for_charge(charge: dict[str, Any]) -> Payment | None:
    intent_id = charge.get("payment_intent")
    if isinstance(intent_id, str):
        return _payment_for_intent({"id": intent_id, "metadata": charge.get("metadata") or {}})
    payment_id = db.session.scalar(sa.select(CardDetails.payment_id).where(CardDetails.charge_id == charge.get("id")))
    if payment_id is None:
        return None
    payment = db.session.get(Payment, payment_id)
    _lock_patient(payment.patient_id)
    return _lock_payment(payment)


def _pending_requests(payment_id: int) -> list[CardRefundRequest]:
    return list(db.session.scalars(
        sa.select(CardRefundRequest).where(CardRefundRequest.payment_id == payment_id,
                                           CardRefundRequest.status == CardRefundStatus.PENDING)
        .order_by(CardRefundRequest.id)
    ))


def _request_for_refund(payment: Payment, item: dict[str, Any]) -> CardRefundRequest | None:
    by_id = db.session.scalar(sa.select(CardRefundRequest).where(CardRefundRequest.stripe_refund_id == item["id"]))
    if by_id is not None:
        return by_id
    raw = (item.get("metadata") or {}).get("app_refund_request_id", "")
    request = db.session.get(CardRefundRequest, int(raw)) if str(raw).isdigit() else None
    if request is not None and request.payment_id == payment.id and request.refund_id is None:
        return request
    return None


def _dashboard_refund(payment: Payment, amount: Money, today: date, stripe_refund_id: str | None) -> Refund:
    refundable = Money(payment.amount_cents) - payment_refunded(payment.id)
    if amount > refundable or payment.status not in SETTLED:
        raise ValueError(f"Stripe refunded {amount} on payment #{payment.id}, which has {refundable} refundable")
    return post_refund(payment, amount, DASHBOARD_REFUND_REASON, today=today, stripe_refund_id=stripe_refund_id)


# --- disputes --------------------------------------------------------------------------------------


def open_dispute(payment_id: int) -> Dispute | None:
    return db.session.scalar(sa.select(Dispute).where(Dispute.payment_id == payment_id, Dispute.closed_on.is_(None)))


def dispute_opened(dispute: dict[str, Any], *, today: date) -> str:
    """The cardholder disputed a payment: Stripe holds the amount (Disputed card payments / Stripe
    clearing). The payment is flagged until the dispute closes. Raises ValueError for a payment whose
    success we have not recorded yet (the event is refused, and Stripe sends it again). Writes the
    Dispute, its journal entry, an audit event."""
    payment = _payment_for_charge({"id": dispute.get("charge"), "payment_intent": dispute.get("payment_intent")})
    if payment is None:
        return "not a payment of this app"
    record = db.session.scalar(sa.select(Dispute).where(Dispute.dispute_id == dispute["id"]))
    if record is not None:
        return f"dispute {dispute['id']} already recorded"
    if payment.status in (PaymentStatus.PENDING, PaymentStatus.FAILED):
        raise ValueError(f"dispute {dispute['id']} on payment #{payment.id}, which has not succeeded here yet")
    amount = Money(dispute["amount"])
    record = Dispute(dispute_id=dispute["id"], payment_id=payment.id, amount_cents=amount.cents,
                     reason=(dispute.get("reason") or "")[:60], stripe_status=dispute.get("status") or "",
                     opened_on=today)
    db.session.add(record)
    journal.post(today, f"Dispute {dispute['id']} on card payment #{payment.id}", record, [
        (journal.DISPUTED, amount, None),
        (journal.STRIPE_CLEARING, -amount, None),
    ])
    audit.record("payment.dispute_opened", payment, changes={"amount": amount.plain(), "reason": record.reason})
    return f"payment #{payment.id} disputed"


def dispute_closed(dispute: dict[str, Any], *, today: date) -> str:
    """The dispute closed. Won: Stripe returns the held amount (Stripe clearing / Disputed). Lost: the
    money went back to the cardholder, so what the payment paid is reopened (receivables/credits /
    Disputed) and the payment is marked returned. An event for a dispute we never saw open opens it first."""
    record = db.session.scalar(sa.select(Dispute).where(Dispute.dispute_id == dispute["id"]))
    if record is None:
        outcome = dispute_opened(dispute, today=today)
        record = db.session.scalar(sa.select(Dispute).where(Dispute.dispute_id == dispute["id"]))
        if record is None:
            return outcome
    _lock_patient(record.payment.patient_id)
    payment = _lock_payment(record.payment)
    record = db.session.scalars(sa.select(Dispute).where(Dispute.id == record.id).with_for_update()
                                .execution_options(populate_existing=True)).one()
    if record.closed_on is not None:
        return f"dispute {record.dispute_id} already closed"
    status = dispute.get("status") or ""
    won = status in ("won", "warning_closed")
    amount = Money(record.amount_cents)
    record.stripe_status, record.closed_on = status, today
    record.outcome = DisputeOutcome.WON if won else DisputeOutcome.LOST
    if won:
        journal.post(today, f"Dispute {record.dispute_id} won", record, [
            (journal.STRIPE_CLEARING, amount, None),
            (journal.DISPUTED, -amount, None),
        ])
    else:
        reopened = take_back(payment, amount)
        payment.status = PaymentStatus.RETURNED
        journal.post(today, f"Dispute {record.dispute_id} lost", record, [
            (journal.RECEIVABLES, reopened, payment.patient_id),
            (journal.PATIENT_CREDITS, amount - reopened, payment.patient_id),
            (journal.DISPUTED, -amount, None),
        ])
    audit.record("payment.dispute_closed", payment, changes={"outcome": record.outcome.value, "amount": amount.plain()})
    return f"dispute {record.dispute_id} {record.outcome.value}"
