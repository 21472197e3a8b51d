"""Posting to the double-entry journal. Every money event writes one balanced entry here."""

from collections.abc import Iterable
from datetime import date
from typing import Any

import sqlalchemy as sa
from billing.extensions import db
from billing.models import Account, AccountingPeriod, JournalEntry, JournalLine, PeriodStatus, ServiceCategory
from billing.models.types import UTCDateTime, utcnow
from billing.money import Money
from billing.services import ServiceError, audit, primary_key

# The chart of accounts (code, name, type); the first migration that needs it seeds it.
BANK = "1000"
UNDEPOSITED = "1010"
STRIPE_CLEARING = "1020"
CARECREDIT_RECEIVABLE = "1030"
DISPUTED = "1040"  # card payments held by Stripe while a dispute is open
RECEIVABLES = "1100"
PATIENT_CREDITS = "2100"
REFUNDS = "4900"
DISCOUNTS = "4910"
MERCHANT_FEES = "6100"
FINANCING_FEES = "6110"
REVENUE = {
    ServiceCategory.VISIT: "4010",
    ServiceCategory.INFUSION: "4020",
    ServiceCategory.DRUG: "4030",
    ServiceCategory.PACKAGE: "4040",
    ServiceCategory.OTHER: "4090",
}

# A journal line: (account code, signed amount — debit positive, credit negative, patient id or None).
Line = tuple[str, Money, int | None]

_account_ids: dict[str, dict[str, int]] = {}

_PERIOD_STATUS = sa.select(AccountingPeriod.status).where(AccountingPeriod.month == sa.bindparam("month"))
_INSERT_ENTRY = sa.insert(JournalEntry.__table__)
_INSERT_LINES = sa.insert(JournalLine.__table__)
# PostgreSQL: the entry and its lines in one statement, so one round trip (SQLite has no INSERT in WITH).
_INSERT_ENTRY_AND_LINES = sa.text("""
    WITH entry AS (
        INSERT INTO journal_entries (entry_date, posted_at, description, source_type, source_id, reverses_id,
                                     created_by_id)
        VALUES (:entry_date, :posted_at, :description, :source_type, :source_id, :reverses_id, :created_by_id)
        RETURNING id
    )
    INSERT INTO journal_lines (entry_id, account_id, patient_id, amount_cents)
    SELECT entry.id, line.account_id, line.patient_id, line.amount_cents
    FROM entry, unnest(CAST(:account_ids AS integer[]), CAST(:patient_ids AS integer[]),
                       CAST(:amounts AS bigint[])) WITH ORDINALITY AS line (account_id, patient_id, amount_cents, n)
    ORDER BY line.n
    RETURNING entry_id
""").bindparams(sa.bindparam("posted_at", type_=UTCDateTime))


def account_id(code: str) -> int:
    """The id of the account with this code (cached per database: the chart never changes at run time)."""
    bind = db.session.get_bind()
    ids = _account_ids.setdefault(str(getattr(bind, "engine", bind).url), {})
    if code not in ids:
        ids.update(db.session.execute(sa.select(Account.code, Account.id)).all())
    return ids[code]


def month_of(day: date) -> date:
    return day.replace(day=1)


def ensure_period_open(day: date, field: str | None = None) -> None:
    """Raise ServiceError (naming `field`, the date's form field) when `day` falls in a closed month.
    A month found open is remembered until the transaction ends."""
    month = month_of(day)
    session = db.session()
    session.connection()  # begin the transaction now, so it is the one the cache belongs to
    transaction, open_months = session.info.get("open_months", (None, set()))
    if transaction is not session.get_transaction():
        transaction, open_months = session.get_transaction(), set()
        session.info["open_months"] = (transaction, open_months)
    if month in open_months:
        return
    status = db.session.scalar(_PERIOD_STATUS, {"month": month})
    if status == PeriodStatus.CLOSED:
        raise ServiceError(
            f"The books for {day:%B %Y} are closed; nothing can be dated in that month. "
            "Use a date in an open month, or ask the bookkeeper to reopen it.", field
        )
    open_months.add(month)


@sa.event.listens_for(AccountingPeriod, "after_insert")
@sa.event.listens_for(AccountingPeriod, "after_update")
def _forget_open_months(mapper, connection, period: AccountingPeriod) -> None:
    """A month opened or closed in this transaction: check again on the next posting."""
    sa.orm.object_session(period).info.pop("open_months", None)


def post(entry_date: date, description: str, source: Any, lines: Iterable[Line],
         reverses: JournalEntry | None = None) -> int:
    """Write one balanced journal entry for `source` (a model instance); returns the entry's id.

    Zero lines are dropped. The entry and its lines are inserted at once, without the unit of
    work: posted rows never change. Raises ServiceError when the month is closed and ValueError
    when the lines do not balance or are empty (a programming error, never a user error).
    """
    ensure_period_open(entry_date)
    kept = [(code, amount, patient_id) for code, amount, patient_id in lines if amount]
    if not kept:
        raise ValueError("A journal entry needs at least one non-zero line.")
    if sum((amount for _, amount, _ in kept), Money.zero()):
        raise ValueError(f"Unbalanced journal entry for {description!r}: {kept}")
    entry = {
        "entry_date": entry_date,
        "description": description[:200],
        "source_type": type(source).__name__,
        "source_id": str(primary_key(source)),
        "reverses_id": reverses.id if reverses else None,
        "created_by_id": audit.current_actor_id(),
    }
    if db.session.get_bind().dialect.name == "postgresql":
        return db.session.execute(_INSERT_ENTRY_AND_LINES, {
            **entry, "posted_at": utcnow(),
            "account_ids": [account_id(code) for code, _, _ in kept],
            "patient_ids": [patient_id for _, _, patient_id in kept],
            "amounts": [amount.cents for _, amount, _ in kept],
        }).scalars().first()
    entry_id = db.session.execute(_INSERT_ENTRY, entry).inserted_primary_key[0]
    db.session.execute(_INSERT_LINES, [
        {"entry_id": entry_id, "account_id": account_id(code), "amount_cents": amount.cents, "patient_id": patient_id}
        for code, amount, patient_id in kept
    ])
    return entry_id


def entries_for(source: Any) -> list[JournalEntry]:
    return list(db.session.scalars(
        sa.select(JournalEntry)
        .where(JournalEntry.source_type == type(source).__name__,
               JournalEntry.source_id == str(sa.inspect(source).identity[0]))
        .order_by(JournalEntry.id)
    ))


def reverse(entry: JournalEntry, entry_date: date, description: str, source: Any) -> int:
    """Write the mirror image of `entry`, pointing at it; returns the new entry's id."""
    lines = [(line.account.code, -Money(line.amount_cents), line.patient_id) for line in entry.lines]
    return post(entry_date, description, source, lines, reverses=entry)


def balance(code: str, *, patient_id: int | None = None, as_of: date | None = None) -> Money:
    """The signed balance (debits positive) of an account, optionally for one patient or up to a date."""
    query = sa.select(sa.func.coalesce(sa.func.sum(JournalLine.amount_cents), 0)).where(
        JournalLine.account_id == account_id(code)
    )
    if patient_id is not None:
        query = query.where(JournalLine.patient_id == patient_id)
    if as_of is not None:
        query = query.join(JournalEntry).where(JournalEntry.entry_date <= as_of)
    return Money(int(db.session.scalar(query)))
