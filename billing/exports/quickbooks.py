"""The journal as a QuickBooks Online journal-entry import CSV (one row per line; rows with the same
Journal No make one journal entry)."""

from collections.abc import Iterator
from datetime import date

from billing.exports import journal_rows
from billing.exports.beancount import amount
from billing.exports.csvstream import csv_lines
from billing.exports.names import names_by_id

HEADER = ("Journal No", "Journal Date", "Account", "Debits", "Credits", "Description", "Name")


def _rows(start: date, end: date, progress) -> Iterator[tuple]:
    names = names_by_id()
    for entry in journal_rows.entries(start, end):
        number, day = f"JE{entry.id}", f"{entry.day:%m/%d/%Y}"
        description = f"{entry.description} ({entry.source})"[:4000]
        for account_id, cents in entry.lines:
            debit, credit = (amount(cents), "") if cents > 0 else ("", amount(-cents))
            # Name (a QuickBooks customer or vendor) is left empty: patients are not exported.
            yield number, day, names[account_id].quickbooks_name, debit, credit, description, ""
        if progress:
            progress(1)


def lines(start: date, end: date, *, progress=None) -> Iterator[str]:
    """The CSV, a chunk of lines at a time, for the entries dated from `start` to `end`."""
    return csv_lines(HEADER, _rows(start, end, progress))
