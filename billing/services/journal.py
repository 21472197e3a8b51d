"""Posting to the double-entry journal. Every money event writes one balanced entry here.

Stored balances. Besides the entries and their lines, the journal keeps account_month_totals: each
account's debits and credits per month (the first day) and per kind of source (the entry's
source_type), so that balances and the trial balance read a few rows per month instead of every line
of history (see `sums`). They are kept exact like this:

- post() remembers the id of each entry it writes in `session.info` (a set, tied to the session's
  outermost transaction);
- when that outermost transaction commits (the `before_commit` session event, registered on
  sqlalchemy.orm.Session so it fires for the app's Flask-SQLAlchemy sessions and the tests' plain ones
  alike; a savepoint's release fires it too and is skipped), ONE statement adds the remembered entries'
  lines to the totals: INSERT .. SELECT .. GROUP BY (account, month, source type) ORDER BY the same key ..
  ON CONFLICT DO UPDATE adding to the stored sums (_ADD_TO_TOTALS);
- the remembered ids are forgotten when the outermost transaction ends (committed, rolled back or
  closed: the `after_transaction_end` event).

The lines are read back from journal_entries at commit, so an entry posted inside a savepoint
(`db.session.begin_nested()`) that was rolled back is simply not there any more and is not counted;
on SQLite its rowid may be given to the next entry, which is why the ids are a set. The totals' rows
are locked only at commit and always in key order, so two transactions committing at once on
PostgreSQL wait for each other instead of deadlocking, and a long transaction does not hold them.
The cost is one statement per commit that posted, none for one that did not.

Until it commits, a transaction's own entries are in the lines but not yet in the totals: `sums`
reads them from the lines (`pending_entry_ids`), so balances read mid-transaction stay exact.

Anything that writes journal_entries and journal_lines without post() (billing/bulk_seed.py, a
migration, a hand-written INSERT) must fill account_month_totals itself, with the same GROUP BY;
billing.reports.trial_balance.totals_drift() lists where the totals and the lines disagree.
"""

from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from billing.extensions import db
from billing.models import (
    Account, AccountingPeriod, AccountMonthTotal, JournalEntry, JournalLine, PeriodStatus, ServiceCategory,
)
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

# At commit: the lines of the entries this transaction posted, added to the month totals (see the module
# docstring). Sorted by key, so PostgreSQL locks the totals' rows in one order. SQLite needs the WHERE
# before ON CONFLICT (it has one) to parse an upsert from a SELECT.
_ADD_TO_TOTALS_SQL = """
    INSERT INTO account_month_totals (account_id, month, source_type, debit_cents, credit_cents)
    SELECT l.account_id, {month} AS month, e.source_type,
           coalesce(sum(CASE WHEN l.amount_cents > 0 THEN l.amount_cents END), 0),
           coalesce(sum(CASE WHEN l.amount_cents < 0 THEN -l.amount_cents END), 0)
    FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.id
    WHERE {ids}
    GROUP BY l.account_id, {month}, e.source_type
    ORDER BY l.account_id, {month}, e.source_type
    ON CONFLICT (account_id, month, source_type) DO UPDATE
    SET debit_cents = account_month_totals.debit_cents + excluded.debit_cents,
        credit_cents = account_month_totals.credit_cents + excluded.credit_cents
"""
_ADD_TO_TOTALS = {
    "postgresql": sa.text(_ADD_TO_TOTALS_SQL.format(
        month="CAST(date_trunc('month', e.entry_date) AS date)", ids="e.id = ANY(CAST(:ids AS integer[]))")),
    "sqlite": sa.text(_ADD_TO_TOTALS_SQL.format(month="date(e.entry_date, 'start of month')", ids="e.id IN :ids"))
    .bindparams(sa.bindparam("ids", expanding=True)),
}
_POSTED = "journal_posted_entry_ids"  # session.info key: (the outermost transaction, the ids of its entries)


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
        entry_id = db.session.execute(_INSERT_ENTRY_AND_LINES, {
            **entry, "posted_at": utcnow(),
            "account_ids": [account_id(code) for code, _, _ in kept],
            "patient_ids": [patient_id for _, _, patient_id in kept],
            "amounts": [amount.cents for _, amount, _ in kept],
        }).scalars().first()
    else:
        entry_id = db.session.execute(_INSERT_ENTRY, entry).inserted_primary_key[0]
        db.session.execute(_INSERT_LINES, [
            {"entry_id": entry_id, "account_id": account_id(code), "amount_cents": amount.cents,
             "patient_id": patient_id}
            for code, amount, patient_id in kept
        ])
    _remember(db.session(), entry_id)
    return entry_id


def _remember(session: sa.orm.Session, entry_id: int) -> None:
    """Note an entry posted in the session's current transaction, for the month totals at commit."""
    root = session.get_transaction()
    posted = session.info.get(_POSTED)
    if posted is None or posted[0] is not root:
        posted = session.info[_POSTED] = (root, set())
    posted[1].add(entry_id)


def pending_entry_ids(session: sa.orm.Session | None = None) -> frozenset[int]:
    """The entries posted in the session's transaction and not yet in the month totals (empty once it
    commits). Some may have been rolled back with a savepoint: they are gone from journal_entries."""
    session = session if session is not None else db.session()
    posted = session.info.get(_POSTED)
    if posted is None or posted[0] is not session.get_transaction():
        return frozenset()
    return frozenset(posted[1])


@sa.event.listens_for(sa.orm.Session, "before_commit")
def _add_posted_to_totals(session: sa.orm.Session) -> None:
    """The outermost transaction commits: add its entries' lines to the month totals (one statement)."""
    if session.in_nested_transaction():  # a savepoint released: its entries wait for the real commit
        return
    session.flush()  # whatever a flush would still post is counted too (nothing to do when clean)
    posted = session.info.get(_POSTED)
    if posted is None or posted[0] is not session.get_transaction() or not posted[1]:
        return
    ids = sorted(posted[1])
    session.execute(_ADD_TO_TOTALS[session.get_bind().dialect.name], {"ids": ids})
    posted[1].clear()  # counted: never twice, even if the commit is attempted again


@sa.event.listens_for(sa.orm.Session, "after_transaction_end")
def _forget_posted(session: sa.orm.Session, transaction: sa.orm.SessionTransaction) -> None:
    """The outermost transaction ended (committed, rolled back or closed): forget its entries. A
    savepoint that ends changes nothing here (its rolled-back entries are gone from the journal)."""
    if transaction.parent is None:
        posted = session.info.get(_POSTED)
        if posted is not None and posted[0] is transaction:
            del session.info[_POSTED]


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
    """The signed balance (debits positive) of an account, optionally for one patient or up to a date.
    Without a patient it is read from the month totals (and the lines of a partial last month); the
    totals have no patient, so a patient's balance is summed from the lines."""
    if patient_id is None:
        parts = sums(None, as_of, account_ids=[account_id(code)])
        return Money(int(db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(parts.c.signed_cents), 0)))))
    query = sa.select(sa.func.coalesce(sa.func.sum(JournalLine.amount_cents), 0)).where(
        JournalLine.account_id == account_id(code), JournalLine.patient_id == patient_id
    )
    if as_of is not None:
        query = query.join(JournalEntry).where(JournalEntry.entry_date <= as_of)
    return Money(int(db.session.scalar(query)))


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def whole_months(start: date | None, end: date | None) -> tuple[date | None, date | None, list[tuple[date, date]]]:
    """Split the days start..end (inclusive; None: unbounded) into whole months [lo, hi) (first days;
    None: unbounded; lo >= hi: none) and the days at the edges, as inclusive (first, last) ranges."""
    if start is not None and end is not None and start > end:
        return start, start, []
    lo = None if start is None else (start if start.day == 1 else _next_month(start))
    hi = None if end is None else month_of(end + timedelta(days=1))
    if lo is not None and hi is not None and lo >= hi:
        return lo, lo, [(start, end)]
    edges = []
    if start is not None and start < lo:
        edges.append((start, lo - timedelta(days=1)))
    if end is not None and hi <= end:
        edges.append((hi, end))
    return lo, hi, edges


def sums(start: date | None, end: date | None, *, account_ids: Sequence[int] | None = None) -> sa.Subquery:
    """SQL: rows (account_id, source_type, debit_cents, credit_cents, signed_cents) whose sums are the
    journal's movements dated start..end (inclusive; None: unbounded), for the given accounts (all when
    None), to aggregate as the caller needs.

    Whole months come from account_month_totals; only the days of a partial month at either edge come
    from the journal lines (a month-end `end` and a month-start or no `start` read no lines at all),
    together with the lines of entries this transaction posted and has not committed yet (not in the
    totals before the commit). One statement: on PostgreSQL it reads the totals and the lines in one
    snapshot."""
    lo, hi, edges = whole_months(start, end)
    T, L, E = AccountMonthTotal, JournalLine, JournalEntry
    in_months = []
    if lo is not None:
        in_months.append(T.month >= lo)
    if hi is not None:
        in_months.append(T.month < hi)
    if lo is not None and hi is not None and lo >= hi:
        in_months = [sa.false()]
    stored = sa.select(T.account_id, T.source_type, T.debit_cents.label("debit_cents"),
                       T.credit_cents.label("credit_cents"),
                       (T.debit_cents - T.credit_cents).label("signed_cents")).where(*in_months)
    if account_ids is not None:
        stored = stored.where(T.account_id.in_(list(account_ids)))
    line_days = [E.entry_date.between(first, last) for first, last in edges]
    pending = pending_entry_ids()
    if pending and in_months != [sa.false()]:
        # Not committed yet, so not in the totals: the ones in the whole months (the edges have them).
        days = [E.entry_date >= lo] if lo is not None else []
        days += [E.entry_date < hi] if hi is not None else []
        line_days.append(sa.and_(E.id.in_(sorted(pending)), *days))
    if not line_days:
        return stored.subquery("sums")
    lines = (sa.select(L.account_id, E.source_type,
                       sa.case((L.amount_cents > 0, L.amount_cents), else_=0).label("debit_cents"),
                       sa.case((L.amount_cents < 0, -L.amount_cents), else_=0).label("credit_cents"),
                       L.amount_cents.label("signed_cents"))
             .join(E, E.id == L.entry_id).where(sa.or_(*line_days)))
    if account_ids is not None:
        lines = lines.where(L.account_id.in_(list(account_ids)))
    return sa.union_all(stored, lines).subquery("sums")
