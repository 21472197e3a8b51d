"""Invoices: numbered when issued, never changed after."""

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
import sqlalchemy.orm as so

from billing.extensions import db
from billing.models.types import UTCDateTime, enum_column, utcnow


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    VOID = "void"


class Invoice(db.Model):
    __tablename__ = "invoices"
    __table_args__ = (sa.Index("ix_invoices_patient_status", "patient_id", "status"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    patient_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("patients.id"))
    number: so.Mapped[str | None] = so.mapped_column(sa.String(30), unique=True)
    status: so.Mapped[InvoiceStatus] = so.mapped_column(enum_column(InvoiceStatus, "invoice_status"),
                                                        default=InvoiceStatus.DRAFT)
    issue_date: so.Mapped[date | None]
    issued_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    issued_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    total_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=0)
    void_reason: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    voided_on: so.Mapped[date | None]  # clinic day of the void
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    lines: so.Mapped[list["InvoiceLine"]] = so.relationship(
        back_populates="invoice", order_by="InvoiceLine.id", lazy="selectin"
    )
    patient = so.relationship("Patient")


class InvoiceLine(db.Model):
    """A charge as it stood when the invoice was issued."""

    __tablename__ = "invoice_lines"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    invoice_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("invoices.id"), index=True)
    charge_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("charges.id"))
    date_of_service: so.Mapped[date]
    description: so.Mapped[str] = so.mapped_column(sa.String(200))
    code: so.Mapped[str] = so.mapped_column(sa.String(10), default="")
    units: so.Mapped[int]
    unit_price_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    discount_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=0)
    amount_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)

    invoice: so.Mapped[Invoice] = so.relationship(back_populates="lines")
