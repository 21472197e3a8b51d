"""The request side of card payments, shared by the front desk and the patient's pay page: the
Stripe calls that follow a committed row, in the order that makes a retry safe.

    ensure_intent   the PaymentIntent of a pending payment, created with the stored idempotency key
    refund          a refund asked of Stripe and posted when Stripe confirms
    send_refund     ask again for a refund left pending by a timeout

Both commit (they are the view's transaction boundary around a Stripe call) and raise
stripe_gateway.GatewayError with a message for the person when Stripe fails or declines.
"""

from billing.extensions import db
from billing.integrations import stripe_gateway as gateway
from billing.models import CardRefundRequest, Payment, PaymentStatus
from billing.money import Money
from billing.services import card_payments
from billing.timeutil import clinic_today


def ensure_intent(payment: Payment) -> gateway.Intent:
    """The pending payment's PaymentIntent. The first call creates it with the idempotency key that
    was committed with the payment, so a retry after a timeout gets the same intent back."""
    if payment.status not in (PaymentStatus.PENDING, PaymentStatus.FAILED):
        raise ValueError(f"payment {payment.id} is {payment.status.value}")
    if payment.card.payment_intent_id:
        return gateway.retrieve_payment_intent(payment.card.payment_intent_id)
    intent = gateway.create_payment_intent(Money(payment.amount_cents), idempotency_key=payment.card.idempotency_key,
                                           metadata=card_payments.intent_metadata(payment))
    card_payments.attach_intent(payment, intent.id)
    db.session.commit()
    return intent


def refund(payment: Payment, amount: Money, reason: str) -> CardRefundRequest:
    """Refund through Stripe: the request is committed first (it holds the amount and the idempotency
    key), then Stripe is asked, then the outcome is committed. Raises ServiceError before anything is
    written, and GatewayError when Stripe refuses (the request is then marked failed)."""
    request = card_payments.request_refund(payment, amount, reason)
    db.session.commit()
    return send_refund(request)


def send_refund(request: CardRefundRequest) -> CardRefundRequest:
    """Ask Stripe for a committed refund request (again, after no answer: its key makes it once)."""
    payment, amount = request.payment, Money(request.amount_cents)
    try:
        result = gateway.create_refund(payment.card.payment_intent_id, amount, idempotency_key=request.idempotency_key,
                                       metadata={"app_refund_request_id": str(request.id),
                                                 "app_payment_id": str(payment.id)})
    except gateway.GatewayError as error:
        if not isinstance(error, gateway.Unreachable):
            card_payments.refund_failed(request, error.message)
            db.session.commit()
        raise
    if result.status == "succeeded":
        card_payments.refund_done(request, result.id, today=clinic_today())
    elif result.status in ("failed", "canceled"):
        card_payments.refund_failed(request, f"Stripe could not refund ({result.status}).")
    else:
        card_payments.refund_in_progress(request, result.id)  # charge.refunded completes it
    db.session.commit()
    return request

