"""The trial balance, account balances and one account's movements by source, read from the month
totals (account_month_totals) for whole months and from the journal lines only for the days of a
partial month at either edge (see billing.services.journal.sums): each is one GROUP BY."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from billing.extensions import db
from billing.models import Account, AccountMonthTotal, AccountType, JournalEntry, JournalLine
from billing.models.types import month_start
from billing.money import Money
from billing.services import journal


@dataclass(frozen=True)
class TrialBalanceRow:
    code: str
    name: str
    type: AccountType
    debits: Money
    credits: Money  # positive: the sum of the credit lines' sizes

    @property
    def balance(self) -> Money:
        """Signed, debits positive (an income account's balance is negative)."""
        return self.debits - self.credits


def trial_balance(as_of: date, *, since: date | None = None) -> list[TrialBalanceRow]:
    """Every account (in code order) with the lines dated up to `as_of`, or from `since` when given
    (the movements of a period). Accounts without lines show zeros."""
    parts = journal.sums(since, as_of)
    debit = sa.func.coalesce(sa.func.sum(parts.c.debit_cents), 0)
    credit = sa.func.coalesce(sa.func.sum(parts.c.credit_cents), 0)
    rows = db.session.execute(
        sa.select(Account.code, Account.name, Account.type, debit, credit)
        .outerjoin(parts, parts.c.account_id == Account.id)
        .group_by(Account.id, Account.code, Account.name, Account.type).order_by(Account.code)
    )
    return [TrialBalanceRow(code, name, type_, Money(int(d)), Money(int(c))) for code, name, type_, d, c in rows]


def balances(as_of: date, codes: Iterable[str] | None = None) -> dict[str, Money]:
    """Signed balances (debits positive) as of the end of `as_of`, by account code: the given accounts
    (every account when None), zero for one without postings."""
    codes = None if codes is None else list(codes)
    parts = journal.sums(None, as_of, account_ids=None if codes is None else [journal.account_id(c) for c in codes])
    query = (sa.select(Account.code, sa.func.coalesce(sa.func.sum(parts.c.signed_cents), 0))
             .outerjoin(parts, parts.c.account_id == Account.id).group_by(Account.code))
    if codes is not None:
        query = query.where(Account.code.in_(codes))
    return {code: Money(int(total)) for code, total in db.session.execute(query)}


def movements(code: str, start: date, end: date) -> dict[str, Money]:
    """One account's signed movements (debits positive) dated start..end, by the source type of the
    entries (JournalEntry.source_type), in source type order; only source types that moved it."""
    parts = journal.sums(start, end, account_ids=[journal.account_id(code)])
    rows = db.session.execute(
        sa.select(parts.c.source_type, sa.func.sum(parts.c.signed_cents))
        .group_by(parts.c.source_type).order_by(parts.c.source_type))
    return {source_type: Money(int(total)) for source_type, total in rows}


def totals(rows: list[TrialBalanceRow]) -> tuple[Money, Money]:
    """(debits, credits) over all accounts: equal when every entry balances."""
    return (sum((r.debits for r in rows), Money.zero()), sum((r.credits for r in rows), Money.zero()))


# --- a guard: the stored totals against the lines ------------------------------------------------------


@dataclass(frozen=True)
class Drift:
    """A (account, month, source type) where account_month_totals and the journal lines disagree."""
    code: str
    month: date
    source_type: str
    stored_debits: Money
    stored_credits: Money
    line_debits: Money
    line_credits: Money


def totals_drift() -> list[Drift]:
    """Every (account, month, source type) whose stored totals differ from the sums of its journal lines
    (empty when the totals are exact), in key order. Entries this transaction posted and has not
    committed yet are left out (they join the totals at commit). One GROUP BY over all the lines: a
    check for tests and the bookkeeper's tools, not for a request path."""
    T, L, E = AccountMonthTotal, JournalLine, JournalEntry
    zero = sa.literal(0, sa.BigInteger)
    stored = sa.select(T.account_id, T.month.label("month"), T.source_type, T.debit_cents.label("stored_debits"),
                       T.credit_cents.label("stored_credits"), zero.label("line_debits"), zero.label("line_credits"))
    month = month_start(JournalEntry.entry_date)
    lines = (sa.select(L.account_id, month, E.source_type, zero, zero,
                       sa.case((L.amount_cents > 0, L.amount_cents), else_=0),
                       sa.case((L.amount_cents < 0, -L.amount_cents), else_=0))
             .join(E, E.id == L.entry_id))
    pending = journal.pending_entry_ids()
    if pending:
        lines = lines.where(E.id.notin_(sorted(pending)))
    both = sa.union_all(stored, lines).subquery()
    c = both.c
    sums = [sa.func.sum(c.stored_debits), sa.func.sum(c.stored_credits), sa.func.sum(c.line_debits),
            sa.func.sum(c.line_credits)]
    rows = db.session.execute(
        sa.select(Account.code, c.month, c.source_type, *sums)
        .join(Account, Account.id == c.account_id)
        .group_by(Account.code, c.month, c.source_type)
        .having(sa.or_(sums[0] != sums[2], sums[1] != sums[3]))
        .order_by(Account.code, c.month, c.source_type))
    return [Drift(code, month, source_type, *(Money(int(v)) for v in values))
            for code, month, source_type, *values in rows]
