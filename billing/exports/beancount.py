"""The journal as a Beancount file: open directives, one transaction per journal entry, and balance
assertions with the app's trial balance, so `bean-check` itself proves the export ties to the books."""

from collections.abc import Iterator
from datetime import date, timedelta

from billing.exports import journal_rows
from billing.exports.names import names_by_id
from billing.reports.trial_balance import trial_balance


def amount(cents: int) -> str:
    """Signed dollars with two decimals, like "-1250.50"."""
    dollars, rest = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}{dollars}.{rest:02d}"


def quote(text: str) -> str:
    return '"' + " ".join(text.split()).replace("\\", "\\\\").replace('"', '\\"') + '"'


def lines(start: date, end: date, *, opening_balances: bool = False, title: str = "",
          progress=None) -> Iterator[str]:
    """The file, line by line, for the entries dated from `start` to `end`.

    With `opening_balances`, one transaction the day before `start` brings every account to its balance
    then (it balances: so does the journal), and the file's balances equal the trial balance at `end`;
    without, they equal the period's movements. `progress(n)` is called after each entry."""
    yield f"; Journal {start:%Y-%m-%d} to {end:%Y-%m-%d}, exported from the billing app\n"
    names = names_by_id()
    by_code = {n.code: n for n in names.values()}
    opened = start - timedelta(days=1)
    yield 'option "operating_currency" "USD"\n'
    if title:
        yield f"option \"title\" {quote(title)}\n"
    yield "\n"
    for n in sorted(names.values(), key=lambda n: n.beancount_name):
        yield f"{opened:%Y-%m-%d} open {n.beancount_name} USD\n"
    yield "\n"
    if opening_balances:
        before = [r for r in trial_balance(opened) if r.balance]
        if before:
            yield f"{opened:%Y-%m-%d} * \"Opening balances\"\n"
            for r in before:
                yield f"  {by_code[r.code].beancount_name}  {amount(r.balance.cents)} USD\n"
            yield "\n"
    for entry in journal_rows.entries(start, end):
        yield f"{entry.day:%Y-%m-%d} * {quote(entry.description)}\n"
        yield f"  journal-entry: \"{entry.id}\"\n  source: {quote(entry.source)}\n"
        for account_id, cents in entry.lines:
            yield f"  {names[account_id].beancount_name}  {amount(cents)} USD\n"
        yield "\n"
        if progress:
            progress(1)
    closing = trial_balance(end, since=None if opening_balances else start)
    checked = end + timedelta(days=1)
    yield f"; The app's trial balance {'at' if opening_balances else 'movements to'} {end:%Y-%m-%d}\n"
    for r in closing:
        yield f"{checked:%Y-%m-%d} balance {by_code[r.code].beancount_name}  {amount(r.balance.cents)} USD\n"
