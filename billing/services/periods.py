"""Closing a month of the books: the bookkeeper closes it once every day is closed and every deposit
reconciled (or says why not); then nothing posts into it until an admin reopens it.

    blockers      what keeps a month from closing (days not closed, deposits not reconciled) and warnings
    close_month   close an ended month (refused with blockers unless an override reason is given)
    reopen_month  an admin opens a closed month again, with a reason
"""

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta

import sqlalchemy as sa

from billing.extensions import db
from billing.models import (
    AccountingPeriod, BankLine, BankMatchKind, CareCreditFunding, DepositBatch, DepositBatchItem,
    DepositStatus, JournalEntry, Payment, PeriodStatus, StripePayout, User,
)
from billing.models.types import utcnow
from billing.money import Money
from billing.reports import daily
from billing.services import ServiceError, audit


@dataclass(frozen=True)
class Item:
    """One thing standing in the way of a close (or worth a look before it)."""

    kind: str  # "day", "deposit", "open_batch", "payout", "funding", "earlier_month"
    text: str
    day: date | None = None
    ref_id: int | None = None


@dataclass(frozen=True)
class MonthReview:
    month: date  # first day
    status: PeriodStatus
    period: AccountingPeriod | None
    ended: bool  # the month is over, so it can be closed
    posted: bool  # something is dated in the month
    blockers: list[Item] = field(default_factory=list)
    warnings: list[Item] = field(default_factory=list)


def month_bounds(month: date) -> tuple[date, date]:
    """The first and last day of the month `month` falls in."""
    first = month.replace(day=1)
    return first, first.replace(day=calendar.monthrange(first.year, first.month)[1])


def parse_month(text: str) -> date | None:
    """"2026-03" as date(2026, 3, 1); None when it is not a month."""
    try:
        year, number = text.split("-")
        return date(int(year), int(number), 1) if len(year) == 4 and len(number) == 2 else None
    except ValueError:
        return None


def period_of(month: date) -> AccountingPeriod | None:
    return db.session.get(AccountingPeriod, month.replace(day=1))


def _unclosed_days(first: date, last: date) -> list[date]:
    """Days from `first` to `last` with payments or refunds and no close, oldest first."""
    return sorted(daily.unclosed_days(last, days=(last - first).days + 1))


def _unmatched(model, kind: BankMatchKind, on, first: date, last: date):
    matched = sa.select(BankLine.match_id).where(BankLine.match_kind == kind, BankLine.match_id.is_not(None))
    return db.session.scalars(sa.select(model).where(on.between(first, last), model.id.not_in(matched))
                              .order_by(on, model.id))


def blockers(month: date, *, today: date) -> MonthReview:
    """What keeps `month` from closing: days with payments or refunds the desk has not closed (up to
    the month's end or today); deposit batches deposited in the month that no bank line is matched to;
    open batches holding money orders received in the month. Warnings (they do not block): Stripe
    payouts and CareCredit fundings of the month without a bank line, and an earlier month with
    postings still open. Reads only."""
    first, last = month_bounds(month)
    period = period_of(first)
    status = period.status if period else PeriodStatus.OPEN
    found: list[Item] = []
    for day in _unclosed_days(first, min(last, today)):
        found.append(Item("day", f"{day:%A, %m/%d/%Y} has payments or refunds and is not closed at the desk.", day))
    for batch in _unmatched(DepositBatch, BankMatchKind.DEPOSIT_BATCH, DepositBatch.deposited_on, first, last):
        if batch.status == DepositStatus.DEPOSITED:
            found.append(Item("deposit", f"Deposit {batch.number} ({_money(batch.total_cents)}, deposited "
                                         f"{batch.deposited_on:%m/%d/%Y}) is not matched to a bank statement line.",
                              batch.deposited_on, batch.id))
    open_batches = db.session.scalars(
        sa.select(DepositBatch).where(DepositBatch.status == DepositStatus.OPEN, DepositBatch.id.in_(
            sa.select(DepositBatchItem.batch_id).join(Payment, Payment.id == DepositBatchItem.payment_id)
            .where(Payment.received_date.between(first, last))))
        .order_by(DepositBatch.id))
    for batch in open_batches:
        found.append(Item("open_batch", f"Deposit {batch.number} ({_money(batch.total_cents)}) holds money orders "
                                        f"of {first:%B} and is not marked deposited yet.", None, batch.id))
    warnings: list[Item] = []
    for payout in _unmatched(StripePayout, BankMatchKind.STRIPE_PAYOUT, StripePayout.arrival_date, first, last):
        warnings.append(Item("payout", f"Stripe payout {payout.payout_id} ({_money(payout.amount_cents)}, "
                                       f"{payout.arrival_date:%m/%d/%Y}) has no bank line matched to it.",
                             payout.arrival_date, payout.id))
    for funding in _unmatched(CareCreditFunding, BankMatchKind.CARECREDIT_FUNDING, CareCreditFunding.funded_on,
                              first, last):
        warnings.append(Item("funding", f"CareCredit funding {funding.reference} ({_money(funding.net_cents)}, "
                                        f"{funding.funded_on:%m/%d/%Y}) has no bank line matched to it.",
                             funding.funded_on, funding.id))
    if (earlier := _earlier_open_month(first)) is not None:
        warnings.append(Item("earlier_month", f"{earlier:%B %Y} has postings and is still open; months are "
                                              "usually closed in order.", earlier))
    return MonthReview(first, status, period, ended=last < today, posted=_has_postings(first, last), blockers=found,
                       warnings=warnings)


def _has_postings(first: date, last: date) -> bool:
    return db.session.scalar(sa.select(JournalEntry.id).where(JournalEntry.entry_date.between(first, last))
                             .limit(1)) is not None


def _earlier_open_month(first: date) -> date | None:
    """The month before `first`, when it has journal entries and is not closed."""
    previous = (first - timedelta(days=1)).replace(day=1)
    period = period_of(previous)
    if period is not None and period.status == PeriodStatus.CLOSED:
        return None
    return previous if _has_postings(previous, first - timedelta(days=1)) else None


def _money(cents: int) -> str:
    return str(Money(cents))


def _lock_period(month: date) -> AccountingPeriod | None:
    return db.session.scalars(sa.select(AccountingPeriod).where(AccountingPeriod.month == month).with_for_update()
                              .execution_options(populate_existing=True)).one_or_none()


def _wait_for_postings() -> None:
    """Let journal entries being written now commit before the month closes: every one that commits
    later meets the closed month (the database refuses it; migration 0007). SQLite runs one writer
    at a time anyway."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.text("LOCK TABLE journal_entries IN SHARE MODE"))


def close_month(month: date, *, today: date, override_reason: str = "") -> AccountingPeriod:
    """Close the month `month` falls in, so nothing more can be dated in it. Raises ServiceError for a
    month not over yet, one already closed, or one with blockers and no override reason (or a reason
    over 500 characters). Writes the period (closed, by whom, the reason) and a "period.close" audit
    event listing the blockers overridden."""
    first, last = month_bounds(month)
    reason = override_reason.strip()
    if len(reason) > 500:
        raise ServiceError("Keep the reason under 500 characters.", "override_reason")
    if last >= today:
        raise ServiceError(f"{first:%B %Y} is not over yet (today is {today:%m/%d/%Y}); a month is closed after "
                           "its last day.")
    _wait_for_postings()
    period = _lock_period(first)
    if period is not None and period.status == PeriodStatus.CLOSED:
        raise ServiceError(_closed_message(period))
    review = blockers(first, today=today)
    if review.blockers and not reason:
        one = len(review.blockers) == 1
        raise ServiceError(f"{first:%B %Y} cannot be closed yet: {len(review.blockers)} thing{'' if one else 's'} "
                           f"to settle first (listed on the page). Settle {'it' if one else 'them'}, or give the "
                           "reason for closing anyway.", "override_reason")
    if period is None:
        period = AccountingPeriod(month=first, status=PeriodStatus.CLOSED)
        try:
            with db.session.begin_nested():  # the month's key settles a twin close committed meanwhile
                db.session.add(period)
        except sa.exc.IntegrityError:
            raise ServiceError(f"{first:%B %Y} was closed a moment ago by someone else; reload the page.") from None
    period.status = PeriodStatus.CLOSED
    period.changed_at = utcnow()
    period.changed_by_id = audit.current_actor_id()
    period.reason = reason if review.blockers else ""
    db.session.flush()
    audit.record("period.close", period, changes={
        "month": f"{first:%Y-%m}",
        "override_reason": period.reason or None,
        "blockers_overridden": [item.text for item in review.blockers],
        "warnings": [item.text for item in review.warnings],
    })
    return period


def changed_by(month: date) -> User | None:
    """Who last closed or reopened the month (None for an open month never closed, or the system)."""
    period = period_of(month)
    return db.session.get(User, period.changed_by_id) if period and period.changed_by_id else None


def _closed_message(period: AccountingPeriod) -> str:
    who = changed_by(period.month)
    by = f" by {who.name}" if who else ""
    return f"{period.month:%B %Y} was already closed{by}; nothing was changed."


def reopen_month(month: date, reason: str) -> AccountingPeriod:
    """Open a closed month again (an admin's decision; the view checks the role), so postings can be
    dated in it. Raises ServiceError for a missing or too long reason, or a month that is not closed.
    Writes the period (open, by whom, the reason) and a "period.reopen" audit event."""
    first, _ = month_bounds(month)
    reason = reason.strip()
    if not reason:
        raise ServiceError(f"Say why {first:%B %Y} must be reopened; the reason is kept in the audit log.", "reason")
    if len(reason) > 500:
        raise ServiceError("Keep the reason under 500 characters.", "reason")
    period = _lock_period(first)
    if period is None or period.status != PeriodStatus.CLOSED:
        raise ServiceError(f"{first:%B %Y} is not closed; there is nothing to reopen.")
    closed = {"closed_at": period.changed_at.isoformat() if period.changed_at else None,
              "closed_by_id": period.changed_by_id, "close_reason": period.reason or None}
    period.status = PeriodStatus.OPEN
    period.changed_at = utcnow()
    period.changed_by_id = audit.current_actor_id()
    period.reason = reason
    db.session.flush()
    audit.record("period.reopen", period, changes={"month": f"{first:%Y-%m}", "reason": reason, **closed})
    return period


def recent_months(today: date, count: int = 12) -> list[date]:
    """The first days of the last `count` months, this month first."""
    months, month = [], today.replace(day=1)
    for _ in range(count):
        months.append(month)
        month = (month - timedelta(days=1)).replace(day=1)
    return months
