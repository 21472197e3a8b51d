"""Numbered receipts, Good Faith Estimates and the email outbox."""

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
import sqlalchemy.orm as so

from billing.extensions import db
from billing.models.types import UTCDateTime, enum_column, utcnow


class Receipt(db.Model):
    """The numbered receipt of one payment or one refund. Its first rendering's SHA-256 is kept, so
    a later rendering that differs is noticed."""

    __tablename__ = "receipts"
    __table_args__ = (sa.CheckConstraint("(payment_id IS NULL) <> (refund_id IS NULL)", name="one_source"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    number: so.Mapped[str] = so.mapped_column(sa.String(30), unique=True)
    payment_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("payments.id"), unique=True)
    refund_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("refunds.id"), unique=True)
    issued_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    sha256: so.Mapped[str | None] = so.mapped_column(sa.String(64))  # of the first rendering

    payment = so.relationship("Payment")
    refund = so.relationship("Refund")


class EstimateStatus(StrEnum):
    DRAFT = "draft"
    GIVEN = "given"  # handed or sent to the patient
    SUPERSEDED = "superseded"


class GoodFaithEstimate(db.Model):
    """A No Surprises Act Good Faith Estimate for a self-pay patient: a planned service or series."""

    __tablename__ = "good_faith_estimates"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    number: so.Mapped[str] = so.mapped_column(sa.String(30), unique=True)
    patient_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("patients.id"), index=True)
    provider_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("providers.id"))
    status: so.Mapped[EstimateStatus] = so.mapped_column(enum_column(EstimateStatus, "estimate_status"),
                                                         default=EstimateStatus.DRAFT)
    # The period the estimate covers: a single visit or a series of up to 12 months.
    period_start: so.Mapped[date]
    period_end: so.Mapped[date]
    icd10_codes: so.Mapped[str] = so.mapped_column(sa.String(100), default="")
    reason: so.Mapped[str] = so.mapped_column(sa.String(200), default="")  # e.g. treatment-resistant depression
    total_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=0)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    given_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    given_how: so.Mapped[str] = so.mapped_column(sa.String(40), default="")  # in person, email, mail

    lines: so.Mapped[list["EstimateLine"]] = so.relationship(
        back_populates="estimate", order_by="EstimateLine.id", lazy="selectin")
    patient = so.relationship("Patient")
    provider = so.relationship("Provider")


class EstimateLine(db.Model):
    __tablename__ = "estimate_lines"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    estimate_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("good_faith_estimates.id"), index=True)
    service_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("services.id"))
    description: so.Mapped[str] = so.mapped_column(sa.String(200))
    code: so.Mapped[str] = so.mapped_column(sa.String(10), default="")
    quantity: so.Mapped[int]  # visits or units over the period
    unit_price_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    amount_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)

    estimate: so.Mapped[GoodFaithEstimate] = so.relationship(back_populates="lines")


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # gave up after the last retry; can be retried by hand


class OutboxMessage(db.Model):
    """An email written in the transaction of the action that asks for it, delivered after commit."""

    __tablename__ = "email_outbox"
    __table_args__ = (sa.Index("ix_email_outbox_status_next", "status", "next_attempt_at"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    to_address: so.Mapped[str] = so.mapped_column(sa.String(254))
    subject: so.Mapped[str] = so.mapped_column(sa.String(200))
    body_text: so.Mapped[str] = so.mapped_column(sa.Text)
    attachment_name: so.Mapped[str | None] = so.mapped_column(sa.String(120))
    attachment: so.Mapped[bytes | None] = so.mapped_column(sa.LargeBinary, deferred=True)
    patient_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("patients.id"), index=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(40), default="")  # receipt, invoice, statement, ...
    status: so.Mapped[OutboxStatus] = so.mapped_column(enum_column(OutboxStatus, "outbox_status"),
                                                       default=OutboxStatus.PENDING)
    attempts: so.Mapped[int] = so.mapped_column(default=0)
    last_error: so.Mapped[str] = so.mapped_column(sa.String(500), default="")
    next_attempt_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    sent_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
