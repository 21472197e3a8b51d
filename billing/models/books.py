"""The bookkeeper's records: daily closes, money-order deposit batches, CareCredit fundings and
imported bank statements with the matches a person confirmed."""

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
import sqlalchemy.orm as so

from billing.extensions import db
from billing.models.types import UTCDateTime, enum_column, utcnow


class DailyClose(db.Model):
    """The front desk's end of a day: what the books say came in, the money orders counted in the
    drawer, and the bookkeeper's review. A closed day's payments no longer change."""

    __tablename__ = "daily_closes"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    day: so.Mapped[date] = so.mapped_column(unique=True)  # clinic-local
    expected_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)  # money orders on hand per the books
    counted_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)  # counted in the drawer
    note: so.Mapped[str] = so.mapped_column(sa.String(500), default="")
    closed_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    closed_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    reviewed_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    reviewed_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))

    closed_by = so.relationship("User", foreign_keys=[closed_by_id])
    reviewed_by = so.relationship("User", foreign_keys=[reviewed_by_id])


class DepositStatus(StrEnum):
    OPEN = "open"  # put together, slip printed, not yet at the bank
    DEPOSITED = "deposited"
    CANCELLED = "cancelled"  # given up before the bank; its money orders went back on hand


class DepositBatch(db.Model):
    """Money orders taken to the bank together on one deposit slip."""

    __tablename__ = "deposit_batches"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    number: so.Mapped[str] = so.mapped_column(sa.String(20), unique=True)
    status: so.Mapped[DepositStatus] = so.mapped_column(enum_column(DepositStatus, "deposit_status"))
    total_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    deposited_on: so.Mapped[date | None]
    bank_reference: so.Mapped[str] = so.mapped_column(sa.String(60), default="")
    deposited_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))

    items: so.Mapped[list["DepositBatchItem"]] = so.relationship(back_populates="batch", lazy="selectin")


class DepositBatchItem(db.Model):
    __tablename__ = "deposit_batch_items"
    __table_args__ = (  # one live batch per money order; released items stay listed in theirs
        sa.Index("uq_deposit_batch_items_live_payment", "payment_id", unique=True,
                 sqlite_where=sa.text("released_on IS NULL"), postgresql_where=sa.text("released_on IS NULL")),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    batch_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("deposit_batches.id"), index=True)
    payment_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("payments.id"))
    released_on: so.Mapped[date | None]  # taken out of the batch (or the batch cancelled) before it was deposited

    batch: so.Mapped[DepositBatch] = so.relationship(back_populates="items")
    payment = so.relationship("Payment")


class CareCreditFunding(db.Model):
    """A deposit from CareCredit (Synchrony): the gross of some CareCredit charges less the plan fees."""

    __tablename__ = "carecredit_fundings"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    reference: so.Mapped[str] = so.mapped_column(sa.String(40), unique=True)
    funded_on: so.Mapped[date] = so.mapped_column(index=True)
    gross_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    fee_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    net_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)  # what reached the bank
    source: so.Mapped[str] = so.mapped_column(sa.String(10))  # "manual" or "csv"
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))

    lines: so.Mapped[list["CareCreditFundingLine"]] = so.relationship(back_populates="funding", lazy="selectin")


class CareCreditFundingLine(db.Model):
    """One CareCredit charge inside a funding, matched to our payment by its authorization code."""

    __tablename__ = "carecredit_funding_lines"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    funding_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("carecredit_fundings.id"), index=True)
    authorization_code: so.Mapped[str] = so.mapped_column(sa.String(20), index=True)
    transaction_date: so.Mapped[date | None]
    promo_code: so.Mapped[str] = so.mapped_column(sa.String(20), default="")
    gross_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    fee_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    net_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    payment_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("payments.id"), unique=True)

    funding: so.Mapped[CareCreditFunding] = so.relationship(back_populates="lines")
    payment = so.relationship("Payment")


class BankStatement(db.Model):
    """An imported bank file (OFX or CSV), kept once (by its SHA-256)."""

    __tablename__ = "bank_statements"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    filename: so.Mapped[str] = so.mapped_column(sa.String(200))
    file_format: so.Mapped[str] = so.mapped_column(sa.String(10))  # ofx1, ofx2, csv
    sha256: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    account_ref: so.Mapped[str] = so.mapped_column(sa.String(40), default="")  # masked account number
    period_start: so.Mapped[date | None]
    period_end: so.Mapped[date | None]
    ledger_balance_cents: so.Mapped[int | None] = so.mapped_column(sa.BigInteger)
    imported_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    imported_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))

    lines: so.Mapped[list["BankLine"]] = so.relationship(back_populates="statement", lazy="selectin")


class BankMatchKind(StrEnum):
    STRIPE_PAYOUT = "stripe_payout"
    DEPOSIT_BATCH = "deposit_batch"
    CARECREDIT_FUNDING = "carecredit_funding"


class BankLine(db.Model):
    """One transaction on a bank statement; a credit can be matched (by a person) to what it settles."""

    __tablename__ = "bank_lines"
    __table_args__ = (sa.UniqueConstraint("account_ref", "fitid", name="uq_bank_lines_account_fitid"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    statement_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("bank_statements.id"), index=True)
    account_ref: so.Mapped[str] = so.mapped_column(sa.String(40), default="")
    fitid: so.Mapped[str] = so.mapped_column(sa.String(80))  # the bank's id, or a hash of the CSV row
    posted_on: so.Mapped[date] = so.mapped_column(index=True)
    amount_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)  # credits positive
    description: so.Mapped[str] = so.mapped_column(sa.String(300), default="")
    match_kind: so.Mapped[BankMatchKind | None] = so.mapped_column(enum_column(BankMatchKind, "bank_match_kind"))
    match_id: so.Mapped[int | None]  # id of the stripe_payouts / deposit_batches / carecredit_fundings row
    matched_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    matched_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))

    statement: so.Mapped[BankStatement] = so.relationship(back_populates="lines")
