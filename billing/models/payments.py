"""Payments of every method, their method details, allocations, refunds and adjustments."""

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
import sqlalchemy.orm as so

from billing.extensions import db
from billing.models.types import UTCDateTime, enum_column, utcnow


class PaymentMethod(StrEnum):
    CARD = "card"
    MONEY_ORDER = "money_order"
    CARECREDIT = "carecredit"

    @property
    def label(self) -> str:
        return {"card": "Card", "money_order": "Money order", "carecredit": "CareCredit"}[self.value]


class PaymentStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"
    RETURNED = "returned"


class Payment(db.Model):
    __tablename__ = "payments"
    __table_args__ = (
        sa.CheckConstraint("amount_cents > 0", name="amount_positive"),
        # The reconciliation's clearing accounts: earlier months' payments not cleared by a month's end
        # (read from the index alone), and the month's own that its end left in a clearing account.
        sa.Index("ix_payments_cleared_on", "cleared_on", "received_date", "id"),
        sa.Index("ix_payments_in_clearing", "method", "received_date", "id", "recon_clearing_cents",
                 sqlite_where=sa.text("recon_clearing_cents != 0"),
                 postgresql_where=sa.text("recon_clearing_cents != 0")),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    patient_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("patients.id"), index=True)
    method: so.Mapped[PaymentMethod] = so.mapped_column(enum_column(PaymentMethod, "payment_method"))
    status: so.Mapped[PaymentStatus] = so.mapped_column(enum_column(PaymentStatus, "payment_status"))
    amount_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    received_date: so.Mapped[date] = so.mapped_column(index=True)  # clinic-local accounting date
    received_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    note: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    # Its figures as of the last day of the month it was received in, as the monthly reconciliation sums
    # them (kept by services/settlement.py whenever something moves the payment): refunds and returns dated
    # in that month, what reached the bank, what was still on its way, the fees taken and (CareCredit) the
    # fee its plan expected, and what it left in its clearing account.
    recon_refunded_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=0, server_default="0")
    recon_refund_count: so.Mapped[int] = so.mapped_column(default=0, server_default="0")
    recon_settled_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=0, server_default="0")
    recon_in_transit_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=0, server_default="0")
    recon_fee_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=0, server_default="0")
    recon_expected_fee_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=0, server_default="0")
    recon_clearing_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=0, server_default="0")
    # The last day anything moved it, once its clearing account holds nothing of it (None while it does):
    # a payment in a clearing account at a month's end has cleared_on None or after that day.
    cleared_on: so.Mapped[date | None] = so.mapped_column()

    money_order: so.Mapped["MoneyOrderDetails | None"] = so.relationship(lazy="joined")
    carecredit: so.Mapped["CareCreditDetails | None"] = so.relationship(lazy="joined")
    card: so.Mapped["CardDetails | None"] = so.relationship(lazy="joined")
    patient = so.relationship("Patient")
    received_by = so.relationship("User")


class PaymentMonthFigures(db.Model):
    """One method's payments received in one month that came in, their stored figures (recon_*) summed,
    with the counts the reconciliation shows: kept by billing.services.settlement at each commit, so a
    month's per-method figures are read from three rows (settlement.month_figures_drift() checks them
    against the GROUP BY over the payments)."""

    __tablename__ = "payment_month_figures"

    month: so.Mapped[date] = so.mapped_column(primary_key=True)  # first day of the month
    method: so.Mapped[PaymentMethod] = so.mapped_column(enum_column(PaymentMethod, "payment_method"), primary_key=True)
    payment_count: so.Mapped[int]
    received_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    refund_count: so.Mapped[int]
    refunded_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    settled_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    in_transit_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    fee_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    expected_fee_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    unsettled_count: so.Mapped[int]  # payments with money still in transit
    differing_count: so.Mapped[int]  # payments with a difference
    fee_mismatch_count: so.Mapped[int]  # CareCredit payments funded with another fee than their plan's


class MoneyOrderIssuer(StrEnum):
    USPS = "usps"
    WESTERN_UNION = "western_union"
    MONEYGRAM = "moneygram"
    BANK = "bank"
    OTHER = "other"

    @property
    def label(self) -> str:
        return {"usps": "USPS", "western_union": "Western Union", "moneygram": "MoneyGram",
                "bank": "Bank", "other": "Other"}[self.value]


class MoneyOrderDetails(db.Model):
    __tablename__ = "money_order_details"
    __table_args__ = (sa.UniqueConstraint("issuer", "serial", name="uq_money_order_details_issuer_serial"),)

    payment_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("payments.id"), primary_key=True)
    issuer: so.Mapped[MoneyOrderIssuer] = so.mapped_column(enum_column(MoneyOrderIssuer, "money_order_issuer"))
    serial: so.Mapped[str] = so.mapped_column(sa.String(30))
    purchaser: so.Mapped[str] = so.mapped_column(sa.String(120))
    id_seen: so.Mapped[bool]
    signed_in_front_of_staff: so.Mapped[bool]
    security_features_checked: so.Mapped[bool]


class CareCreditDetails(db.Model):
    __tablename__ = "carecredit_details"

    payment_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("payments.id"), primary_key=True)
    authorization_code: so.Mapped[str] = so.mapped_column(sa.String(20), index=True)
    plan_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("carecredit_plans.id"))
    merchant_fee_bps: so.Mapped[int]  # the plan's rate when the payment was taken
    account_last4: so.Mapped[str] = so.mapped_column(sa.String(4))
    id_checked: so.Mapped[bool]
    receipt_signed: so.Mapped[bool]

    plan = so.relationship("CareCreditPlan", lazy="joined")


class Allocation(db.Model):
    """Money applied to an invoice: from a payment as it was taken, or (payment_id NULL)
    from the patient's credit. Undoing one appends a negative row."""

    __tablename__ = "allocations"
    __table_args__ = (sa.CheckConstraint("amount_cents <> 0", name="nonzero"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    patient_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("patients.id"), index=True)
    payment_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("payments.id"), index=True)
    invoice_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("invoices.id"), index=True)
    amount_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    reverses_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("allocations.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    invoice = so.relationship("Invoice")


class RefundKind(StrEnum):
    REFUND = "refund"  # money given back to the patient
    RETURN = "return"  # the payment came back (bounced or counterfeit money order)


class Refund(db.Model):
    __tablename__ = "refunds"
    __table_args__ = (sa.CheckConstraint("amount_cents > 0", name="amount_positive"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    payment_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("payments.id"), index=True)
    kind: so.Mapped[RefundKind] = so.mapped_column(enum_column(RefundKind, "refund_kind"))
    amount_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    refund_date: so.Mapped[date] = so.mapped_column(index=True)  # the reconciliation finds a month's refunds by it
    reason: so.Mapped[str] = so.mapped_column(sa.String(200))
    check_number: so.Mapped[str] = so.mapped_column(sa.String(20), default="")  # money order refunds
    return_reference: so.Mapped[str] = so.mapped_column(sa.String(40), default="")  # CareCredit returns
    stripe_refund_id: so.Mapped[str | None] = so.mapped_column(sa.String(64), unique=True, index=True)  # card refunds
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))

    payment = so.relationship("Payment")


class AdjustmentKind(StrEnum):
    COURTESY = "courtesy"
    WRITE_OFF = "write_off"

    @property
    def label(self) -> str:
        return {"courtesy": "Courtesy discount", "write_off": "Write-off"}[self.value]


class Adjustment(db.Model):
    """A reduction of what an invoice asks for, with its reason."""

    __tablename__ = "adjustments"
    __table_args__ = (sa.CheckConstraint("amount_cents > 0", name="amount_positive"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    invoice_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("invoices.id"), index=True)
    kind: so.Mapped[AdjustmentKind] = so.mapped_column(enum_column(AdjustmentKind, "adjustment_kind"))
    amount_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    adjustment_date: so.Mapped[date]
    reason: so.Mapped[str] = so.mapped_column(sa.String(200))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))


class FormSubmission(db.Model):
    """A one-time form token, spent in the transaction of the action it started."""

    __tablename__ = "form_submissions"

    token: so.Mapped[str] = so.mapped_column(sa.String(64), primary_key=True)
    result_url: so.Mapped[str] = so.mapped_column(sa.String(300), default="")
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
