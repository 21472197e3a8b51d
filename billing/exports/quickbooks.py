"""The journal as a QuickBooks Online journal-entry import CSV (one row per line; rows with the same
Journal No make one journal entry). A line about a patient carries the patient's account number in the
Name column (QuickBooks wants a customer on lines to Accounts Receivable: the bookkeeper's customers are
the account numbers, so patients' names stay in the clinic); the others leave it empty."""

from collections.abc import Iterator
from datetime import date

import sqlalchemy as sa

from billing.exports import journal_rows
from billing.exports.beancount import amount
from billing.exports.csvstream import csv_lines
from billing.exports.names import names_by_id
from billing.extensions import db
from billing.models import JournalEntry, JournalLine, Patient

HEADER = ("Journal No", "Journal Date", "Account", "Debits", "Credits", "Description", "Name")


def _lines(start: date, end: date):
    """The lines of the entries dated from `start` to `end` with their patient's account number (one query, read
    `journal_rows.BATCH` rows at a time: a server-side cursor on PostgreSQL)."""
    return db.session.execute(
        sa.select(JournalEntry.id, JournalEntry.entry_date, JournalEntry.description, JournalEntry.source_type,
                  JournalEntry.source_id, JournalLine.account_id, JournalLine.amount_cents,
                  Patient.account_number)
        .join(JournalLine, JournalLine.entry_id == JournalEntry.id)
        .outerjoin(Patient, Patient.id == JournalLine.patient_id)
        .where(JournalEntry.entry_date >= start, JournalEntry.entry_date <= end)
        .order_by(JournalEntry.entry_date, JournalEntry.id, JournalLine.id),
        execution_options={"yield_per": journal_rows.BATCH},
    )


def _rows(start: date, end: date, progress) -> Iterator[tuple]:
    names = names_by_id()
    current = None
    for entry_id, day, text, source_type, source_id, account_id, cents, patient in _lines(start, end):
        if entry_id != current:
            if progress and current is not None:
                progress(1)
            current = entry_id
            number, posted = f"JE{entry_id}", f"{day:%m/%d/%Y}"
            description = f"{text} ({source_type} {source_id})"[:4000]
        cents = int(cents)
        debit, credit = (amount(cents), "") if cents > 0 else ("", amount(-cents))
        yield number, posted, names[account_id].quickbooks_name, debit, credit, description, patient or ""
    if progress and current is not None:
        progress(1)


def lines(start: date, end: date, *, progress=None) -> Iterator[str]:
    """The CSV, a chunk of lines at a time, for the entries dated from `start` to `end`."""
    return csv_lines(HEADER, _rows(start, end, progress))
