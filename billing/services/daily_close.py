"""The front desk's daily close and the bookkeeper's review of it.

Closing a day records the money orders counted in the drawer against those the books say are on
hand (over/short is shown, never posted). After that no payment can be dated that day: a
correction is dated a later day. A payment being recorded for a day and the close of that day
wait for each other (a per-day lock), so none slips in behind a close.
"""

from datetime import date

import sqlalchemy as sa

from billing.extensions import db
from billing.models import DailyClose
from billing.models.types import utcnow
from billing.money import Money
from billing.reports.money_orders import on_hand_total
from billing.services import ServiceError, advisory_lock, audit

_LOCK_NAMESPACE = 70_001  # first key of the per-day advisory locks (PostgreSQL)


def _lock_day(day: date, *, shared: bool) -> None:
    """Take the day's lock until the transaction ends: shared by payments dated that day, exclusive
    for its close."""
    advisory_lock(_LOCK_NAMESPACE, day.toordinal(), shared=shared)


def ensure_day_open(day: date, today: date, field: str | None = None) -> None:
    """Raise ServiceError (naming `field`) when the front desk already closed `day`; a payment dated
    that day would change figures that were counted and signed off."""
    _lock_day(day, shared=True)  # its own statement: a later one then sees a close committed meanwhile
    closed = db.session.scalar(sa.select(DailyClose).where(DailyClose.day == day))
    if closed is None:
        return
    if day == today:
        raise ServiceError(f"Today ({day:%m/%d/%Y}) was already closed at the desk, so nothing more can be "
                           "dated today. Record this payment tomorrow, with tomorrow's date.", field)
    raise ServiceError(f"{day:%m/%d/%Y} is closed: that day's payments were counted and can no longer change. "
                       f"Date this payment today ({today:%m/%d/%Y}).", field)


def close_day(day: date, counted: Money | None, note: str, *, today: date) -> DailyClose:
    """Close `day` (today or an earlier day not yet closed) with the money orders counted in the drawer;
    expected is what the books say is on hand now. Raises ServiceError for a future day, a day already
    closed, a missing or negative count, or a difference (over/short) without a note. Writes the close
    and an audit event."""
    if day > today:
        raise ServiceError(f"{day:%m/%d/%Y} has not happened yet; close today ({today:%m/%d/%Y}) or an earlier day.",
                           "day")
    if counted is None:
        raise ServiceError("Enter the total of the money orders counted in the drawer (0.00 when there are none).",
                           "counted")
    if counted.is_negative:
        raise ServiceError("The counted amount cannot be negative.", "counted")
    note = note.strip()
    if len(note) > 500:
        raise ServiceError("Keep the note under 500 characters.", "note")
    _lock_day(day, shared=False)
    _refuse_closed(day)
    expected = on_hand_total()
    difference = counted - expected
    if difference and not note:
        over_short = f"over by {difference}" if difference.is_positive else f"short by {-difference}"
        raise ServiceError(f"The drawer is {over_short} (counted {counted}, expected {expected}). Count again, or "
                           "say in the note what explains the difference.", "note")
    close = DailyClose(day=day, expected_cents=expected.cents, counted_cents=counted.cents, note=note,
                       closed_by_id=audit.current_actor_id())
    try:
        with db.session.begin_nested():  # the unique day settles a race the lock does not cover (SQLite)
            db.session.add(close)
    except sa.exc.IntegrityError:
        _refuse_closed(day)
        raise
    audit.record("day.close", close, changes={"day": day.isoformat(), "expected": expected.plain(),
                                              "counted": counted.plain(), "over_short": difference.plain()})
    return close


def _refuse_closed(day: date) -> None:
    existing = db.session.scalar(sa.select(DailyClose).where(DailyClose.day == day))
    if existing is not None:
        who = f" by {existing.closed_by.name}" if existing.closed_by else ""
        raise ServiceError(f"{day:%m/%d/%Y} was already closed{who}; a day is closed once. Open it to see "
                           "its figures.", "day")


def review_close(close: DailyClose) -> DailyClose:
    """The bookkeeper signs off a closed day. Raises ServiceError when it was already reviewed.
    Writes the review and an audit event."""
    close = db.session.scalars(sa.select(DailyClose).where(DailyClose.id == close.id).with_for_update()
                               .execution_options(populate_existing=True)).one()
    if close.reviewed_at is not None:
        who = f" by {close.reviewed_by.name}" if close.reviewed_by else ""
        raise ServiceError(f"{close.day:%m/%d/%Y} was already reviewed{who}.")
    close.reviewed_at = utcnow()
    close.reviewed_by_id = audit.current_actor_id()
    audit.record("day.review", close, changes={"day": close.day.isoformat()})
    return close


def over_short(close: DailyClose) -> Money:
    """Counted less expected: positive over, negative short."""
    return Money(close.counted_cents - close.expected_cents)
