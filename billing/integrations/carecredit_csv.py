"""CareCredit (Synchrony) funding reports, read into plain values: one row per CareCredit charge a
funding paid, amounts as exact Money.

There is no published schema, so the common shapes are accepted: header names in any case, with
spaces, dashes or underscores, under the names dental software uses (Funding Reference, Auth Code,
Gross Amount / Paid Amount, Fee / Merchant Fee / Discount, Net Amount); columns in any order; a byte
order mark, CRLF line ends, quoted values, "$" and thousands commas; dates as MM/DD/YYYY, M/D/YY or
YYYY-MM-DD; a fee written as a negative deduction; any two of gross, fee and net (the third follows).
Without a funding reference column, the lines of one funding date are one funding (CCyyyymmdd).
A totals row (a cell starting "Total" and no authorization code) is skipped.
Anything that does not fit raises MalformedFundingReport naming the line and column, before the
caller has written anything.
"""

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime

from billing.money import Money, MoneyError

MAX_REFERENCE = 40  # carecredit_fundings.reference
MAX_CODE = 20  # authorization and promo codes

# Each value we read and the header names it may come under, normalised (lower case, runs of
# spaces, dashes, dots, slashes and "#" as one underscore); the first found wins.
COLUMNS = {
    "funding_reference": ("funding_reference", "funding_ref", "funding_id", "funding_number", "funding_no",
                          "deposit_reference", "deposit_ref", "deposit_id", "batch_reference", "batch_number",
                          "batch_id", "batch"),
    "funding_date": ("funding_date", "funded_date", "funded_on", "deposit_date", "settlement_date",
                     "payment_date"),
    "transaction_date": ("transaction_date", "tran_date", "trans_date", "purchase_date", "sale_date"),
    "authorization_code": ("authorization_code", "auth_code", "authorization", "authorization_number",
                           "authorization_no", "auth_number", "auth_no", "auth", "approval_code"),
    "promo_code": ("promo_code", "tran_promo_code", "promotion_code", "promo", "plan_code"),
    "gross": ("gross_amount", "gross", "paid_amount", "transaction_amount", "purchase_amount", "sale_amount",
              "amount"),
    "fee": ("merchant_fee", "fee", "fees", "merchant_fee_amount", "fee_amount", "discount_amount",
            "merchant_discount", "discount"),
    "net": ("net_amount", "net", "net_funded", "funded_amount", "net_funding", "deposit_amount"),
}
# Shown in messages: the name the sample file uses.
SHOWN = {key: names[0] for key, names in COLUMNS.items()}

_DATE_FORMATS = ("%m/%d/%Y", "%m/%d/%y", "%Y-%m-%d", "%m-%d-%Y", "%Y/%m/%d")


class MalformedFundingReport(ValueError):
    """The file is not a CareCredit funding report we can read; the message names line and column."""


@dataclass(frozen=True)
class FundingLineRow:
    """One CareCredit charge inside a funding."""

    line: int  # in the file, for messages
    authorization_code: str
    gross: Money
    fee: Money
    net: Money
    transaction_date: date | None = None
    promo_code: str = ""


@dataclass
class FundingRow:
    """A funding (one deposit) and its charges, in file order."""

    reference: str
    funded_on: date
    line: int  # its first line in the file
    lines: list[FundingLineRow] = field(default_factory=list)

    @property
    def gross(self) -> Money:
        return sum((item.gross for item in self.lines), Money.zero())

    @property
    def fee(self) -> Money:
        return sum((item.fee for item in self.lines), Money.zero())

    @property
    def net(self) -> Money:
        return sum((item.net for item in self.lines), Money.zero())


def normalise_header(name: str) -> str:
    return re.sub(r"[\s\-./#_]+", "_", name.strip().lower()).strip("_")


def normalise_code(value: str) -> str:
    """An authorization code as we store it: trimmed, upper case."""
    return value.strip().upper()


def parse_fundings(text: str) -> list[FundingRow]:
    """The fundings in the file, in file order, each with its lines. Raises MalformedFundingReport."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        header = next(reader, None)
        if not header or not any(name.strip() for name in header):
            raise MalformedFundingReport("The file is empty; choose the funding report downloaded from the "
                                         "CareCredit Provider Center.")
        positions: dict[str, int] = {}
        for i, name in enumerate(header):
            positions.setdefault(normalise_header(name), i)
        where = {key: next((positions[n] for n in names if n in positions), None) for key, names in COLUMNS.items()}
        missing = [SHOWN[key] for key in ("funding_date", "authorization_code") if where[key] is None]
        if sum(where[key] is not None for key in ("gross", "fee", "net")) < 2:
            missing.append("two of gross_amount, merchant_fee and net_amount")
        if missing:
            raise MalformedFundingReport(
                f"Line 1: the column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                f"{'are' if len(missing) > 1 else 'is'} missing. The file needs a header row naming the funding "
                "date, the authorization code and the amounts.")
        fundings: dict[str, FundingRow] = {}
        seen: dict[str, int] = {}
        for row in reader:
            line = reader.line_num
            if not any(value.strip() for value in row):
                continue
            if len(row) > len(header) and any(value.strip() for value in row[len(header):]):
                raise MalformedFundingReport(f"Line {line}: {len(row)} values under a header of {len(header)} "
                                             "columns; check for a comma inside an unquoted amount.")
            values = {key: (row[i].strip() if i is not None and i < len(row) else "") for key, i in where.items()}
            if not values["authorization_code"] and any(v.strip().lower().startswith(("total", "grand total"))
                                                        for v in row):
                continue  # a report's totals row
            funded_on = _date(values, "funding_date", line)
            reference = values["funding_reference"] or (f"CC{funded_on:%Y%m%d}" if where["funding_reference"] is None
                                                        else _required(values, "funding_reference", line))
            if len(reference) > MAX_REFERENCE:
                raise MalformedFundingReport(f"Line {line}, column {SHOWN['funding_reference']}: "
                                             f"{reference[:60]!r} is longer than {MAX_REFERENCE} characters.")
            item = _line(values, line)
            if item.gross.is_positive and item.authorization_code in seen:
                raise MalformedFundingReport(
                    f"Line {line}, column {SHOWN['authorization_code']}: {item.authorization_code} is also on line "
                    f"{seen[item.authorization_code]}; a charge is funded once.")
            if item.gross.is_positive:
                seen[item.authorization_code] = line
            funding = fundings.get(reference)
            if funding is None:
                funding = fundings[reference] = FundingRow(reference, funded_on, line)
            elif funding.funded_on != funded_on:
                raise MalformedFundingReport(
                    f"Line {line}, column {SHOWN['funding_date']}: funding {reference} is dated "
                    f"{funding.funded_on:%m/%d/%Y} on line {funding.line}, here {funded_on:%m/%d/%Y}.")
            funding.lines.append(item)
    except csv.Error as err:
        raise MalformedFundingReport(f"Line {reader.line_num}: the file is not valid CSV ({err}).") from None
    if not fundings:
        raise MalformedFundingReport("The file has a header but no rows: no fundings to import.")
    return list(fundings.values())


def _required(values: dict[str, str], key: str, line: int) -> str:
    if not values[key]:
        raise MalformedFundingReport(f"Line {line}, column {SHOWN[key]}: the value is empty.")
    return values[key]


def _date(values: dict[str, str], key: str, line: int, *, required: bool = True) -> date | None:
    raw = _required(values, key, line) if required else values[key]
    if not raw:
        return None
    text = raw.split("T")[0].split(" ")[0]
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise MalformedFundingReport(f"Line {line}, column {SHOWN[key]}: {raw[:40]!r} is not a date like 03/04/2025 "
                                 "or 2025-03-04.")


def _amount(values: dict[str, str], key: str, line: int) -> Money | None:
    raw = values[key]
    if not raw:
        return None
    try:
        return Money.parse(raw, allow_negative=True)
    except MoneyError:
        raise MalformedFundingReport(f"Line {line}, column {SHOWN[key]}: {raw[:40]!r} is not an amount in dollars "
                                     "like 1850.00.") from None


def _line(values: dict[str, str], line: int) -> FundingLineRow:
    code = normalise_code(_required(values, "authorization_code", line))
    if len(code) > MAX_CODE or not re.fullmatch(r"[0-9A-Z]+", code):
        raise MalformedFundingReport(f"Line {line}, column {SHOWN['authorization_code']}: {code[:40]!r} is not an "
                                     "authorization code (letters and digits).")
    promo = values["promo_code"]
    if len(promo) > MAX_CODE:
        raise MalformedFundingReport(f"Line {line}, column {SHOWN['promo_code']}: {promo[:40]!r} is longer than "
                                     f"{MAX_CODE} characters.")
    gross, fee, net = (_amount(values, key, line) for key in ("gross", "fee", "net"))
    given = [key for key, value in (("gross", gross), ("fee", fee), ("net", net)) if value is not None]
    if len(given) < 2:
        empty = next(key for key in ("gross", "net", "fee") if key not in given)
        raise MalformedFundingReport(f"Line {line}, column {SHOWN[empty]}: the value is empty.")
    if gross is None:
        gross = net + fee
    elif fee is None:
        fee = gross - net
    elif net is None:
        net = gross - abs(fee) if gross.is_positive else gross - fee
        fee = gross - net
    elif net != gross - fee:
        if net == gross + fee:  # the fee written as a deduction, "-146.15"
            fee = -fee
        else:
            raise MalformedFundingReport(f"Line {line}, column {SHOWN['net']}: {net.plain()} is not gross "
                                         f"{gross.plain()} less fee {fee.plain()}.")
    if gross.is_zero:
        raise MalformedFundingReport(f"Line {line}, column {SHOWN['gross']}: the amount is zero.")
    return FundingLineRow(line=line, authorization_code=code, gross=gross, fee=fee, net=net,
                          transaction_date=_date(values, "transaction_date", line, required=False),
                          promo_code=promo.upper())
