"""What Stripe tells us: card payment details, webhook events, refunds asked of Stripe, disputes,
payouts and the balance transactions each payout settled."""

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
import sqlalchemy.orm as so

from billing.extensions import db
from billing.models.types import UTCDateTime, enum_column, utcnow


class CardChannel(StrEnum):
    DESK = "desk"  # taken at the front desk
    LINK = "link"  # the patient paid from a link in an emailed invoice
    PORTAL = "portal"  # the patient paid in the portal


class CardDetails(db.Model):
    """A card payment's Stripe side. Created with the pending payment, before Stripe is called, so
    the idempotency key is stored first and a retry can never create a second PaymentIntent."""

    __tablename__ = "card_details"

    payment_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("payments.id"), primary_key=True)
    idempotency_key: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    payment_intent_id: so.Mapped[str | None] = so.mapped_column(sa.String(64), unique=True)
    charge_id: so.Mapped[str | None] = so.mapped_column(sa.String(64), index=True)
    invoice_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("invoices.id"))  # None: oldest first
    channel: so.Mapped[CardChannel] = so.mapped_column(enum_column(CardChannel, "card_channel"))
    brand: so.Mapped[str] = so.mapped_column(sa.String(20), default="")
    last4: so.Mapped[str] = so.mapped_column(sa.String(4), default="")
    failure_message: so.Mapped[str] = so.mapped_column(sa.String(300), default="")

    invoice = so.relationship("Invoice")


class StripeEvent(db.Model):
    """Every verified webhook event, stored once: a replay finds its id here and changes nothing."""

    __tablename__ = "stripe_events"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    event_id: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    type: so.Mapped[str] = so.mapped_column(sa.String(80), index=True)
    object_id: so.Mapped[str] = so.mapped_column(sa.String(64), default="")
    stripe_created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime)
    received_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    outcome: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    payload: so.Mapped[str] = so.mapped_column(sa.Text)


class CardRefundStatus(StrEnum):
    PENDING = "pending"  # asked of Stripe, answer not yet known
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class CardRefundRequest(db.Model):
    """A refund asked of Stripe from the payment page. Written (with its idempotency key) before
    Stripe is called, so a pending request counts against what remains refundable and a retry
    cannot refund twice. The Refund row and its journal entry come when Stripe confirms."""

    __tablename__ = "card_refund_requests"
    __table_args__ = (sa.CheckConstraint("amount_cents > 0", name="amount_positive"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    payment_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("payments.id"), index=True)
    amount_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    reason: so.Mapped[str] = so.mapped_column(sa.String(200))
    idempotency_key: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    status: so.Mapped[CardRefundStatus] = so.mapped_column(enum_column(CardRefundStatus, "card_refund_status"))
    stripe_refund_id: so.Mapped[str | None] = so.mapped_column(sa.String(64), unique=True)
    failure_message: so.Mapped[str] = so.mapped_column(sa.String(300), default="")
    refund_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("refunds.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))

    payment = so.relationship("Payment")


class DisputeOutcome(StrEnum):
    WON = "won"
    LOST = "lost"


class Dispute(db.Model):
    """A card payment the cardholder disputed. While open its amount is held by Stripe (the Disputed
    card payments account); when it closes the outcome is posted."""

    __tablename__ = "disputes"
    __table_args__ = (sa.CheckConstraint("amount_cents > 0", name="amount_positive"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    dispute_id: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    payment_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("payments.id"), index=True)
    amount_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    reason: so.Mapped[str] = so.mapped_column(sa.String(60), default="")
    stripe_status: so.Mapped[str] = so.mapped_column(sa.String(40), default="")
    opened_on: so.Mapped[date]
    closed_on: so.Mapped[date | None]
    outcome: so.Mapped[DisputeOutcome | None] = so.mapped_column(enum_column(DisputeOutcome, "dispute_outcome"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    payment = so.relationship("Payment")


class StripePayout(db.Model):
    """A payout from Stripe to the clinic's bank, posted once with the fees of what it settled."""

    __tablename__ = "stripe_payouts"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    payout_id: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    amount_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)  # what reached the bank
    fee_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=0)  # Stripe's fees in it
    arrival_date: so.Mapped[date] = so.mapped_column(index=True)
    source: so.Mapped[str] = so.mapped_column(sa.String(10))  # "api" or "csv"
    posted: so.Mapped[bool] = so.mapped_column(default=False)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)


class StripeBalanceTransaction(db.Model):
    """One line of a payout: a charge, refund, dispute or fee, with Stripe's own fee (never recomputed)."""

    __tablename__ = "stripe_balance_transactions"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    transaction_id: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    payout_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("stripe_payouts.id"), index=True)
    payment_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("payments.id"), index=True)
    type: so.Mapped[str] = so.mapped_column(sa.String(40))
    reporting_category: so.Mapped[str] = so.mapped_column(sa.String(40))
    source_id: so.Mapped[str] = so.mapped_column(sa.String(64), default="")
    charge_id: so.Mapped[str] = so.mapped_column(sa.String(64), default="")
    payment_intent_id: so.Mapped[str] = so.mapped_column(sa.String(64), default="")
    gross_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    fee_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    net_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    available_on: so.Mapped[date]
    description: so.Mapped[str] = so.mapped_column(sa.String(200), default="")

    payout = so.relationship("StripePayout")
