"""The journal's lines over a date range, read in batches and grouped back into entries."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from itertools import groupby

import sqlalchemy as sa

from billing.extensions import db
from billing.models import JournalEntry, JournalLine

BATCH = 1000


@dataclass(frozen=True)
class ExportEntry:
    id: int
    day: date
    description: str
    source: str  # "Charge 42"
    lines: list[tuple[int, int]]  # (account id, signed cents)


def count_entries(start: date, end: date) -> int:
    return int(db.session.scalar(sa.select(sa.func.count(JournalEntry.id))
                                 .where(JournalEntry.entry_date >= start, JournalEntry.entry_date <= end)))


def first_entry_date() -> date | None:
    return db.session.scalar(sa.select(sa.func.min(JournalEntry.entry_date)))


def entries(start: date, end: date) -> Iterator[ExportEntry]:
    """Entries dated from `start` to `end`, by date then id, streamed (constant memory: the rows are
    fetched `BATCH` at a time, a server-side cursor on PostgreSQL)."""
    result = db.session.execute(
        sa.select(JournalEntry.id, JournalEntry.entry_date, JournalEntry.description, JournalEntry.source_type,
                  JournalEntry.source_id, JournalLine.account_id, JournalLine.amount_cents)
        .join(JournalLine, JournalLine.entry_id == JournalEntry.id)
        .where(JournalEntry.entry_date >= start, JournalEntry.entry_date <= end)
        .order_by(JournalEntry.entry_date, JournalEntry.id, JournalLine.id),
        execution_options={"yield_per": BATCH},
    )
    for entry_id, rows in groupby(result, key=lambda r: r[0]):
        rows = list(rows)
        _, day, description, source_type, source_id, _, _ = rows[0]
        yield ExportEntry(entry_id, day, description, f"{source_type} {source_id}",
                          [(account_id, int(cents)) for *_, account_id, cents in rows])
