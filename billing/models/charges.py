"""Charges for services rendered, and prepaid packages."""

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
import sqlalchemy.orm as so

from billing.extensions import db
from billing.models.types import UTCDateTime, enum_column, utcnow


class ChargeStatus(StrEnum):
    OPEN = "open"  # posted, not yet on an issued invoice
    INVOICED = "invoiced"
    VOID = "void"


class Charge(db.Model):
    __tablename__ = "charges"
    __table_args__ = (
        sa.CheckConstraint("units > 0", name="units_positive"),
        sa.CheckConstraint("unit_price_cents >= 0 AND discount_cents >= 0 AND amount_cents >= 0",
                           name="amounts_not_negative"),
        sa.Index("ix_charges_patient_status", "patient_id", "status"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    patient_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("patients.id"))
    service_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("services.id"))
    provider_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("providers.id"))
    date_of_service: so.Mapped[date]
    units: so.Mapped[int] = so.mapped_column(default=1)
    unit_price_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    price_reason: so.Mapped[str] = so.mapped_column(sa.String(200), default="")  # when not the schedule price
    discount_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=0)
    amount_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)  # units × unit price − discount
    icd10_codes: so.Mapped[str] = so.mapped_column(sa.String(100), default="")  # space-separated
    infusion_start: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    infusion_stop: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    # Set on the charge that sells a package.
    package_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("packages.id"))
    # Set when the visit draws a unit from a prepaid package (amount is then zero).
    package_purchase_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("package_purchases.id"))
    status: so.Mapped[ChargeStatus] = so.mapped_column(enum_column(ChargeStatus, "charge_status"),
                                                       default=ChargeStatus.OPEN)
    invoice_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("invoices.id"), index=True)
    void_reason: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))

    service = so.relationship("Service", lazy="joined")
    package = so.relationship("Package", lazy="joined")
    provider = so.relationship("Provider", lazy="joined")
    patient = so.relationship("Patient")
    invoice = so.relationship("Invoice")


class PackagePurchase(db.Model):
    """Prepaid units of a service bought as a package; visits draw them down."""

    __tablename__ = "package_purchases"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    patient_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("patients.id"), index=True)
    package_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("packages.id"))
    charge_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("charges.id", use_alter=True))
    units_bought: so.Mapped[int]
    units_refunded: so.Mapped[int] = so.mapped_column(default=0)
    price_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    package = so.relationship("Package", lazy="joined")
