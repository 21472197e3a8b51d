"""CSV written a row at a time, for streamed downloads."""

import csv
import io
import re
from collections.abc import Iterable, Iterator

# A cell starting with one of these is read as a formula by spreadsheets: quote it as text.
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def cell(value) -> str:
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA) and not _is_number(text):
        return "'" + text
    return text


_NUMBER = re.compile(r"[-+]?\d+(\.\d+)?")


def _is_number(text: str) -> bool:
    """A plain amount like -12.50 (left as it is: a spreadsheet reads it as the number it is)."""
    return _NUMBER.fullmatch(text) is not None


def csv_lines(header: Iterable[str], rows: Iterable[Iterable]) -> Iterator[str]:
    """The header line (alone, before `rows` is read), then the rows' lines in chunks of about 8 kB
    (each cell guarded against spreadsheet formulas)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def take() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(header)
    yield take()
    for row in rows:
        writer.writerow([cell(v) for v in row])
        if buffer.tell() > 8192:
            yield take()
    if buffer.tell():
        yield take()
