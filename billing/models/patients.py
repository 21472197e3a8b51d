"""Patients."""

from datetime import date, datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from billing.extensions import db
from billing.models.types import UTCDateTime, utcnow


def search_key(last_name: str, first_name: str) -> str:
    """The lower-case 'last first' string that name search matches by prefix."""
    return f"{last_name.strip()} {first_name.strip()}".lower()


class Patient(db.Model):
    __tablename__ = "patients"
    __table_args__ = (
        sa.Index("ix_patients_search_name", "search_name", postgresql_ops={"search_name": "text_pattern_ops"}),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    account_number: so.Mapped[str] = so.mapped_column(sa.String(20), unique=True)
    first_name: so.Mapped[str] = so.mapped_column(sa.String(80))
    last_name: so.Mapped[str] = so.mapped_column(sa.String(80))
    search_name: so.Mapped[str] = so.mapped_column(sa.String(161))
    date_of_birth: so.Mapped[date] = so.mapped_column(index=True)
    email: so.Mapped[str] = so.mapped_column(sa.String(254), default="")
    phone: so.Mapped[str] = so.mapped_column(sa.String(30), default="")
    address_line1: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    address_line2: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    city: so.Mapped[str] = so.mapped_column(sa.String(100), default="")
    state: so.Mapped[str] = so.mapped_column(sa.String(2), default="")
    postal_code: so.Mapped[str] = so.mapped_column(sa.String(10), default="")
    archived: so.Mapped[bool] = so.mapped_column(default=False)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def address_lines(self) -> list[str]:
        city_line = " ".join(p for p in (f"{self.city}," if self.city else "", self.state, self.postal_code) if p)
        return [line for line in (self.address_line1, self.address_line2, city_line) if line]
