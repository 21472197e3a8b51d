"""The trial balance: every account's debits, credits and signed balance, in one GROUP BY."""

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from billing.extensions import db
from billing.models import Account, AccountType, JournalEntry, JournalLine
from billing.money import Money


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
    lines = (sa.select(JournalLine.account_id, JournalLine.amount_cents).join(JournalEntry)
             .where(JournalEntry.entry_date <= as_of,
                    JournalEntry.entry_date >= since if since is not None else sa.true())
             .subquery())
    debit = sa.func.coalesce(sa.func.sum(sa.case((lines.c.amount_cents > 0, lines.c.amount_cents), else_=0)), 0)
    credit = sa.func.coalesce(sa.func.sum(sa.case((lines.c.amount_cents < 0, -lines.c.amount_cents), else_=0)), 0)
    rows = db.session.execute(
        sa.select(Account.code, Account.name, Account.type, debit, credit)
        .outerjoin(lines, lines.c.account_id == Account.id)
        .group_by(Account.id, Account.code, Account.name, Account.type).order_by(Account.code)
    )
    return [TrialBalanceRow(code, name, type_, Money(int(d)), Money(int(c))) for code, name, type_, d, c in rows]


def totals(rows: list[TrialBalanceRow]) -> tuple[Money, Money]:
    """(debits, credits) over all accounts: equal when every entry balances."""
    return (sum((r.debits for r in rows), Money.zero()), sum((r.credits for r in rows), Money.zero()))
