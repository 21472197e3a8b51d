"""Gap-free numbers: each counter row is advanced under a row lock held until commit."""

import functools
from typing import Any

import sqlalchemy as sa

from billing.extensions import db
from billing.models import ClinicSettings, Counter

_counters = Counter.__table__
_ADVANCE = (sa.update(_counters).where(_counters.c.key == sa.bindparam("counter_key"))
            .values(value=_counters.c.value + 1).returning(_counters.c.value))


def next_value(key: str) -> int:
    """Advance counter `key` and return its new value (1 for a new counter).

    The UPDATE locks the row until the transaction ends, so concurrent callers wait for each
    other; a rolled-back transaction gives its number back. Numbers are consecutive and unique.
    """
    return _advance(key, _ADVANCE)[0]


def next_number(kind: str, year: int, prefix: sa.ColumnElement[str]) -> str:
    """The next number of a document of `kind` in `year`, like INV-2026-000042: counter
    "kind:year" advanced as by next_value, with `prefix` (a ClinicSettings column) read from the
    clinic's settings in the same statement."""
    setting = _setting(prefix)
    value, text = _advance(f"{kind}:{year}", _advance_reading(setting), setting)
    return format_number(text, year, value)


@functools.cache
def _setting(column: sa.ColumnElement[str]) -> sa.ScalarSelect:
    return sa.select(column).where(ClinicSettings.id == 1).scalar_subquery()


@functools.cache
def _advance_reading(setting: sa.ScalarSelect) -> sa.Update:
    return _ADVANCE.returning(setting.label("setting"))


def format_number(prefix: str, year: int, sequence: int) -> str:
    return f"{prefix}-{year}-{sequence:06d}"


def _advance(key: str, update: sa.Update, *also: sa.ColumnElement[Any]) -> tuple[Any, ...]:
    """Run `update` (which advances the counter and returns its value, then `also`) for `key`,
    creating the counter at 1 on first use."""
    row = db.session.execute(update, {"counter_key": key}).first()
    if row is not None:
        return tuple(row)
    try:
        with db.session.begin_nested():
            db.session.add(Counter(key=key, value=1))
    except sa.exc.IntegrityError:  # another transaction created it first; it is ours after theirs
        return tuple(db.session.execute(update, {"counter_key": key}).one())
    return (1, *db.session.execute(sa.select(*also)).one()) if also else (1,)
