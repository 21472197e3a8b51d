"""Clinic settings: the letterhead and numbering used by every document."""

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from billing.extensions import db
from billing.models.types import UTCDateTime, utcnow


class ClinicSettings(db.Model):
    """One row (id 1) holding the clinic's identity and document settings."""

    __tablename__ = "clinic_settings"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    address_line1: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    address_line2: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    city: so.Mapped[str] = so.mapped_column(sa.String(100), default="")
    state: so.Mapped[str] = so.mapped_column(sa.String(2), default="")
    postal_code: so.Mapped[str] = so.mapped_column(sa.String(10), default="")
    phone: so.Mapped[str] = so.mapped_column(sa.String(30), default="")
    email: so.Mapped[str] = so.mapped_column(sa.String(254), default="")
    tin: so.Mapped[str] = so.mapped_column(sa.String(10), default="")
    npi: so.Mapped[str] = so.mapped_column(sa.String(10), default="")
    timezone: so.Mapped[str] = so.mapped_column(sa.String(64), default="America/New_York")
    invoice_prefix: so.Mapped[str] = so.mapped_column(sa.String(10), default="INV")
    receipt_prefix: so.Mapped[str] = so.mapped_column(sa.String(10), default="RCT")
    logo: so.Mapped[bytes | None] = so.mapped_column(sa.LargeBinary, deferred=True)
    logo_mime: so.Mapped[str | None] = so.mapped_column(sa.String(32))
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def address_lines(self) -> list[str]:
        city_line = " ".join(p for p in (f"{self.city}," if self.city else "", self.state, self.postal_code) if p)
        return [line for line in (self.address_line1, self.address_line2, city_line) if line]
