"""The fee schedule (services and packages), rendering providers and CareCredit plans."""

from enum import StrEnum

import sqlalchemy as sa
import sqlalchemy.orm as so

from billing.extensions import db
from billing.models.types import enum_column


class ServiceCategory(StrEnum):
    """Each category posts its revenue to its own account."""

    VISIT = "visit"
    INFUSION = "infusion"
    DRUG = "drug"
    PACKAGE = "package"
    OTHER = "other"

    @property
    def label(self) -> str:
        return {"visit": "Visits and consultations", "infusion": "Infusions", "drug": "Drugs",
                "package": "Packages", "other": "Other"}[self.value]


class Service(db.Model):
    __tablename__ = "services"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    code: so.Mapped[str] = so.mapped_column(sa.String(20), unique=True)  # internal code, e.g. KET-INF
    name: so.Mapped[str] = so.mapped_column(sa.String(120))
    cpt_code: so.Mapped[str] = so.mapped_column(sa.String(10), default="")  # CPT or HCPCS
    category: so.Mapped[ServiceCategory] = so.mapped_column(enum_column(ServiceCategory, "service_category"))
    default_price_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    unit: so.Mapped[str] = so.mapped_column(sa.String(20), default="visit")
    # Drugs: NDC and dose are printed on the superbill.
    ndc: so.Mapped[str] = so.mapped_column(sa.String(20), default="")
    active: so.Mapped[bool] = so.mapped_column(default=True)


class Package(db.Model):
    """Several units of a service sold together at a package price, drawn down per visit."""

    __tablename__ = "packages"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    code: so.Mapped[str] = so.mapped_column(sa.String(20), unique=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(120))
    service_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("services.id"))
    units: so.Mapped[int]
    price_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    active: so.Mapped[bool] = so.mapped_column(default=True)

    service: so.Mapped[Service] = so.relationship(lazy="joined")


class Provider(db.Model):
    """A rendering provider, printed with their NPI on superbills."""

    __tablename__ = "providers"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(120))
    credentials: so.Mapped[str] = so.mapped_column(sa.String(40), default="")  # MD, DO, CRNA, NP
    npi: so.Mapped[str] = so.mapped_column(sa.String(10), default="")
    active: so.Mapped[bool] = so.mapped_column(default=True)

    @property
    def display_name(self) -> str:
        return f"{self.name}, {self.credentials}" if self.credentials else self.name


class CareCreditPlan(db.Model):
    """A CareCredit promotional plan and the merchant fee the clinic pays on it."""

    __tablename__ = "carecredit_plans"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(120), unique=True)
    months: so.Mapped[int]
    merchant_fee_bps: so.Mapped[int]  # 990 = 9.90 %
    active: so.Mapped[bool] = so.mapped_column(default=True)
