"""The double-entry journal: accounts, entries and their lines. Posted rows never change."""

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
import sqlalchemy.orm as so

from billing.extensions import db
from billing.models.types import UTCDateTime, enum_column, utcnow


class AccountType(StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    INCOME = "income"
    EXPENSE = "expense"


class Account(db.Model):
    __tablename__ = "accounts"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    code: so.Mapped[str] = so.mapped_column(sa.String(10), unique=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(100))
    type: so.Mapped[AccountType] = so.mapped_column(enum_column(AccountType, "account_type"))
    # Names in the bookkeeper's own tools, for exports (settings; defaults derive from code and name).
    beancount_name: so.Mapped[str] = so.mapped_column(sa.String(120), default="")
    quickbooks_name: so.Mapped[str] = so.mapped_column(sa.String(120), default="")


class JournalEntry(db.Model):
    """One balanced event: its lines' amounts (debits positive, credits negative) sum to zero."""

    __tablename__ = "journal_entries"
    __table_args__ = (sa.Index("ix_journal_entries_source", "source_type", "source_id"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    entry_date: so.Mapped[date] = so.mapped_column(index=True)
    posted_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    description: so.Mapped[str] = so.mapped_column(sa.String(200))
    # What the entry records, e.g. ("Charge", "42"); a reversal points at its original.
    source_type: so.Mapped[str] = so.mapped_column(sa.String(40))
    source_id: so.Mapped[str] = so.mapped_column(sa.String(40))
    reverses_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("journal_entries.id"))
    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))

    lines: so.Mapped[list["JournalLine"]] = so.relationship(back_populates="entry", lazy="selectin")


class JournalLine(db.Model):
    __tablename__ = "journal_lines"
    __table_args__ = (
        sa.CheckConstraint("amount_cents <> 0", name="nonzero"),
        sa.Index("ix_journal_lines_account_patient", "account_id", "patient_id"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    entry_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("journal_entries.id"), index=True)
    account_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("accounts.id"))
    # Set on patient-ledger lines (receivables, credits) so balances can be read per patient.
    patient_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("patients.id"), index=True)
    amount_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)

    entry: so.Mapped[JournalEntry] = so.relationship(back_populates="lines")
    account: so.Mapped[Account] = so.relationship(lazy="joined")


class AccountMonthTotal(db.Model):
    """An account's debits and credits in one month from one kind of source (JournalEntry.source_type),
    kept by journal.post as entries are written: balances and the A/R roll-forward read these instead of
    every line of history."""

    __tablename__ = "account_month_totals"

    account_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("accounts.id"), primary_key=True)
    month: so.Mapped[date] = so.mapped_column(primary_key=True)  # first day of the month
    source_type: so.Mapped[str] = so.mapped_column(sa.String(40), primary_key=True)
    debit_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)
    credit_cents: so.Mapped[int] = so.mapped_column(sa.BigInteger)  # positive: the sum of the credit lines' sizes


class PeriodStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class AccountingPeriod(db.Model):
    """A calendar month of the books; nothing posts into a closed one."""

    __tablename__ = "accounting_periods"

    month: so.Mapped[date] = so.mapped_column(primary_key=True)  # first day of the month
    status: so.Mapped[PeriodStatus] = so.mapped_column(enum_column(PeriodStatus, "period_status"))
    changed_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    changed_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    reason: so.Mapped[str] = so.mapped_column(sa.String(500), default="")


class Counter(db.Model):
    """Gap-free sequences (invoice numbers per year, account numbers), advanced under a row lock."""

    __tablename__ = "counters"

    key: so.Mapped[str] = so.mapped_column(sa.String(40), primary_key=True)
    value: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=0)
