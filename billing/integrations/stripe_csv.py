"""Stripe's itemized payout reconciliation report (`payout_reconciliation.itemized.5`), read into
plain values: one row per balance transaction a payout settled, amounts as exact Money.

The report's columns may come in any order and most are optional; the file may start with a byte
order mark, end lines with CRLF, and quote values or not. Amounts are decimal strings in dollars and
are parsed as text, never through float. Anything that does not fit raises MalformedReport naming
the line and column, before the caller has written anything.
"""

import csv
import io
from dataclasses import dataclass
from datetime import date

from billing.money import Money, MoneyError

CURRENCY = "usd"
MAX_ID = 64  # our id columns' width; Stripe's ids are shorter

# Each value we read and the column names it may come under (first found wins); `_utc` first,
# because Stripe's dates are calendar dates in UTC (the plain column follows the report's timezone).
COLUMNS = {
    "payout_id": ("automatic_payout_id",),
    "payout_date": ("automatic_payout_effective_at_utc", "automatic_payout_effective_at"),
    "transaction_id": ("balance_transaction_id",),
    "currency": ("currency",),
    "gross": ("gross",),
    "fee": ("fee",),
    "net": ("net",),
    "reporting_category": ("reporting_category",),
    "type": ("type",),
    "available_on": ("available_on_utc", "available_on"),
    "description": ("description",),
    "source_id": ("source_id",),
    "charge_id": ("charge_id",),
    "payment_intent_id": ("payment_intent_id",),
    "app_payment_id": ("payment_metadata[app_payment_id]",),
}
REQUIRED = ("payout_id", "payout_date", "transaction_id", "currency", "gross", "fee", "net", "reporting_category")


class MalformedReport(ValueError):
    """The file is not a payout reconciliation report we can read; the message names line and column."""


@dataclass(frozen=True)
class SettledTransaction:
    """One balance transaction a payout settled, from the report or from the API."""

    transaction_id: str
    type: str  # the API's type ("charge", "refund", "adjustment"...); "" from the report, which has none
    reporting_category: str
    gross: Money
    fee: Money
    net: Money
    available_on: date
    description: str = ""
    source_id: str = ""
    charge_id: str = ""
    payment_intent_id: str = ""
    app_payment_id: str = ""  # the payment id we put in the PaymentIntent's metadata


@dataclass(frozen=True)
class ReportPayout:
    payout_id: str
    arrival_date: date
    line: int  # the payout's first line in the file, for messages
    transactions: list[SettledTransaction]


def parse_itemized(text: str) -> list[ReportPayout]:
    """The payouts in the report, in file order, each with its rows. Raises MalformedReport."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = next(reader, None)
    if not header or not any(name.strip() for name in header):
        raise MalformedReport("The file is empty; choose the itemized payout reconciliation CSV from Stripe.")
    positions = {name.strip().lower(): i for i, name in reversed(list(enumerate(header)))}
    where = {key: next((positions[n] for n in names if n in positions), None) for key, names in COLUMNS.items()}
    missing = [COLUMNS[key][-1] for key in REQUIRED if where[key] is None]
    if missing:
        raise MalformedReport(f"Line 1: the column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                              f"{'are' if len(missing) > 1 else 'is'} missing. Download Stripe's itemized payout "
                              "reconciliation report with its default columns.")
    payouts: dict[str, ReportPayout] = {}
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if not any(value.strip() for value in row):
            continue
        values = {key: (row[i].strip() if i is not None and i < len(row) else "") for key, i in where.items()}
        payout = payouts.get(values["payout_id"])
        transaction = _transaction(values, line, payout.arrival_date if payout else None)
        if transaction.transaction_id in seen:
            raise MalformedReport(f"Line {line}, column balance_transaction_id: {transaction.transaction_id} is "
                                  f"also on line {seen[transaction.transaction_id]}.")
        seen[transaction.transaction_id] = line
        if payout is None:
            payout = payouts[values["payout_id"]] = ReportPayout(
                values["payout_id"], _date(values, "payout_date", line), line, [])
        elif _date(values, "payout_date", line) != payout.arrival_date:
            raise MalformedReport(f"Line {line}, column {_column('payout_date')}: payout {payout.payout_id} "
                                  f"is dated {payout.arrival_date} on line {payout.line}.")
        payout.transactions.append(transaction)
    if not payouts:
        raise MalformedReport("The file has a header but no rows: no payouts to import.")
    return list(payouts.values())


def _column(key: str) -> str:
    return COLUMNS[key][-1]


def _required(values: dict[str, str], key: str, line: int) -> str:
    if not values[key]:
        raise MalformedReport(f"Line {line}, column {_column(key)}: the value is empty.")
    return values[key]


def _id(values: dict[str, str], key: str, line: int, *, required: bool = False) -> str:
    value = _required(values, key, line) if required else values[key]
    if len(value) > MAX_ID or any(ch.isspace() for ch in value):
        raise MalformedReport(f"Line {line}, column {_column(key)}: {value[:80]!r} is not a Stripe id.")
    return value


def _amount(values: dict[str, str], key: str, line: int) -> Money:
    raw = _required(values, key, line)
    try:
        return Money.parse(raw, allow_negative=True)
    except MoneyError:
        raise MalformedReport(f"Line {line}, column {key}: {raw!r} is not an amount in dollars like 1250.00.") from None


def _date(values: dict[str, str], key: str, line: int) -> date:
    raw = _required(values, key, line)
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        raise MalformedReport(f"Line {line}, column {_column(key)}: {raw!r} is not a date like 2025-03-18.") from None


def _transaction(values: dict[str, str], line: int, payout_date: date | None) -> SettledTransaction:
    _id(values, "payout_id", line, required=True)
    transaction_id = _id(values, "transaction_id", line, required=True)
    currency = _required(values, "currency", line)
    if currency.lower() != CURRENCY:
        raise MalformedReport(f"Line {line}, column currency: {currency!r}; only US dollar (usd) payouts are "
                              "imported.")
    gross, fee, net = (_amount(values, key, line) for key in ("gross", "fee", "net"))
    if net != gross - fee:
        raise MalformedReport(f"Line {line}, column net: {net.plain()} is not gross {gross.plain()} less fee "
                              f"{fee.plain()}.")
    available_on = (_date(values, "available_on", line) if values["available_on"]
                    else payout_date or _date(values, "payout_date", line))
    return SettledTransaction(
        transaction_id=transaction_id, type=values["type"][:40],
        reporting_category=_required(values, "reporting_category", line)[:40],
        gross=gross, fee=fee, net=net, available_on=available_on, description=values["description"][:200],
        source_id=_id(values, "source_id", line), charge_id=_id(values, "charge_id", line),
        payment_intent_id=_id(values, "payment_intent_id", line), app_payment_id=values["app_payment_id"])
