"""Bank statement files read into plain rows: OFX 1.x (SGML), OFX 2.x (XML) and CSV downloads.

OFX goes through ofxtools (`OFXTree().parse()` then `.convert()`, which checks every element's type,
allowed values and the required ones). CSV may be Chase's business checking layout
(`Details,Posting Date,Description,Amount,Type,Balance,Check or Slip #`, newest first, each row with
a trailing comma) or a generic one: a date, a description, and either a signed amount or separate
debit and credit columns. Amounts are read as text into integer cents, never through float.

Anything that does not fit raises BankFileError naming the line (for OFX also the transaction and
element), before the caller has written anything.
"""

import csv
import hashlib
import io
import re
import warnings
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from billing.money import Money, MoneyError

MAX_DESCRIPTION = 300
MAX_FITID = 80
CURRENCY = "USD"


class BankFileError(ValueError):
    """The file is not a bank statement we can read; the message names the line."""


@dataclass(frozen=True)
class BankRow:
    fitid: str  # the bank's FITID, or for CSV "csv-" and a hash of the row's content and its occurrence
    posted_on: date
    amount_cents: int  # credits positive, debits negative
    description: str
    line: int  # where the transaction starts in the file, for messages

    @property
    def key(self) -> tuple[date, int, str]:
        """What tells the same transaction apart in an OFX and a CSV download of one account (a CSV row
        has no FITID): the posted date, the amount and the description, case and spacing aside."""
        return same_transaction_key(self.posted_on, self.amount_cents, self.description)


def same_transaction_key(posted_on: date, amount_cents: int, description: str) -> tuple[date, int, str]:
    return posted_on, amount_cents, " ".join(description.split()).casefold()


@dataclass(frozen=True)
class ParsedStatement:
    file_format: str  # "ofx1", "ofx2" or "csv"
    account_ref: str  # the account number masked to its last 4 digits; "" when the file has none (CSV)
    period_start: date | None
    period_end: date | None
    ledger_balance_cents: int | None
    rows: list[BankRow]


def parse_bank_file(content: bytes) -> ParsedStatement:
    """The statement in an OFX or CSV bank file (told apart by its first characters). Raises BankFileError."""
    head = content.lstrip(b"\xef\xbb\xbf \t\r\n")[:4000].upper()
    if not head:
        raise BankFileError("The file is empty; choose the statement downloaded from the bank (OFX, QFX or CSV).")
    if head.startswith((b"OFXHEADER", b"<?XML", b"<OFX")) or b"<OFX>" in head:
        return parse_ofx(content)
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = content.decode("cp1252")
        except UnicodeDecodeError:
            raise BankFileError("This is neither an OFX nor a text CSV file. Download the statement from the "
                                "bank again as OFX, QFX or CSV.") from None
    if "\x00" in text:
        raise BankFileError("This is neither an OFX nor a text CSV file. Download the statement from the bank "
                            "again as OFX, QFX or CSV.")
    return parse_csv(text)


# --- OFX ---------------------------------------------------------------------------------------


def parse_ofx(content: bytes) -> ParsedStatement:
    """One bank (or credit card) statement of an OFX 1.x or 2.x file. Raises BankFileError."""
    from ofxtools.header import OFXHeaderError
    from ofxtools.Parser import OFXTree

    text = content.decode("latin-1")  # only to find lines; ofxtools reads the bytes by its header
    tree = OFXTree()
    try:
        tree.parse(io.BytesIO(content))
    except OFXHeaderError:
        raise BankFileError("Line 1: the OFX header is malformed (it should start OFXHEADER:100 or "
                            "<?OFX OFXHEADER=\"200\" ...>). Download the statement from the bank again.") from None
    except Exception as err:  # noqa: BLE001 - ofxtools' parser raises ParseError, IndexError...
        line = _unbalanced_line(text)
        where = f"Line {line}: a closing tag does not match the element it closes" if line else (
            f"The OFX file cannot be read ({_first_line(err)})")
        raise BankFileError(f"{where}. Download the statement from the bank again.") from None
    version = str(getattr(tree.header, "version", "") or "")
    file_format = "ofx2" if version.startswith("2") else "ofx1"
    root = tree.getroot()
    transactions = list(root.iter("STMTTRN"))
    lines = _tag_lines(text, "STMTTRN")
    statements = [el for el in root.iter() if el.tag in ("STMTRS", "CCSTMTRS")]
    if not statements:
        raise BankFileError("The OFX file holds no bank statement (no STMTRS or CCSTMTRS element). Download "
                            "the account's transactions from the bank as OFX or QFX.")
    if len(statements) > 1:
        raise BankFileError(f"The OFX file holds statements for {len(statements)} accounts; download one "
                            "account at a time.")
    converted = [_check_transaction(element, root, index, lines, text) for index, element in enumerate(transactions)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ofxtools warns about NAME over 32 characters; banks send them
        try:
            ofx = tree.convert()
        except Exception as err:  # noqa: BLE001 - ofxtools raises many kinds; each becomes a message
            raise BankFileError(_locate(root, text, err)) from None
    statement = ofx.statements[0]
    currency = str(getattr(statement, "curdef", "") or "")
    if currency.upper() != CURRENCY:
        raise BankFileError(f"Line {_first_tag_line(text, 'CURDEF')}: the statement is in {currency or 'no currency'}; "
                            "only US dollar accounts are imported.")
    account = getattr(statement, "account", None)
    acctid = str(getattr(account, "acctid", "") or "")
    tranlist = statement.banktranlist
    raw = statements[0]
    parents = {child: parent for parent in root.iter() for child in parent}
    rows, seen = [], {}
    for index, element in enumerate(transactions):
        if not _inside(element, raw, parents):
            continue
        line = lines[index] if index < len(lines) else 0
        transaction = converted[index]
        fitid = str(transaction.fitid or "").strip()
        if fitid in seen:
            raise BankFileError(f"Line {line} (transaction {index + 1}): FITID {fitid} is also on line {seen[fitid]}.")
        seen[fitid] = line
        rows.append(BankRow(fitid=fitid, posted_on=_raw_date(element, "DTPOSTED", line, index),
                            amount_cents=_cents(transaction.trnamt, line, index),
                            description=_description(transaction), line=line))
    if not rows:
        raise BankFileError("The OFX statement lists no transactions; nothing to import.")
    ledger = getattr(statement, "ledgerbal", None)
    return ParsedStatement(
        file_format=file_format,
        account_ref=mask_account(acctid),
        period_start=_raw_date(raw.find("BANKTRANLIST"), "DTSTART", 0, None) if tranlist is not None else None,
        period_end=_raw_date(raw.find("BANKTRANLIST"), "DTEND", 0, None) if tranlist is not None else None,
        ledger_balance_cents=_cents(ledger.balamt, 0, None) if ledger is not None else None,
        rows=rows)


def _unbalanced_line(text: str) -> int | None:
    """The line of the first closing tag that closes something other than the open element (SGML
    leaf elements, which have a value and no closing tag, are allowed)."""
    stack: list[str] = []
    last_leaf = None
    for match in re.finditer(r"<(/?)([A-Za-z0-9.]+)>([^<]*)", text):
        closing, tag, value = match.group(1), match.group(2).upper(), match.group(3)
        if not closing:
            if value.strip():
                last_leaf = tag
            else:
                stack.append(tag)
                last_leaf = None
        elif tag == last_leaf:
            last_leaf = None
        elif stack and stack[-1] == tag:
            stack.pop()
            last_leaf = None
        else:
            return text.count("\n", 0, match.start()) + 1
    return None


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


def _tag_lines(text: str, tag: str) -> list[int]:
    """The line number of each opening <tag> in the file, in order."""
    starts = [m.start() for m in re.finditer(rf"<{tag}>", text, re.I)]
    return [text.count("\n", 0, pos) + 1 for pos in starts]


def _first_tag_line(text: str, tag: str, after: int = 0) -> int:
    match = re.compile(rf"<{tag}>", re.I).search(text, after)
    return text.count("\n", 0, match.start()) + 1 if match else 1


def _inside(element, ancestor, parents: dict) -> bool:
    while element in parents:
        element = parents[element]
        if element is ancestor:
            return True
    return False


def _convert_one(element, root, index: int, lines: list[int], text: str):
    """The ofxtools model of one STMTTRN; raises BankFileError naming its line and element."""
    from ofxtools.models.base import Aggregate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return Aggregate.from_etree(element)
        except Exception as err:  # noqa: BLE001
            raise BankFileError(_transaction_error(element, root, index, lines, text, err)) from None


def _check_transaction(element, root, index: int, lines: list[int], text: str):
    """The ofxtools model of one STMTTRN; refuses (BankFileError) one without the elements we need
    or one ofxtools cannot convert."""
    line = lines[index] if index < len(lines) else 0
    for tag in ("DTPOSTED", "TRNAMT", "FITID"):
        child = element.find(tag)
        if child is None or not (child.text or "").strip():
            raise BankFileError(f"Line {line} (transaction {index + 1}): the {tag} element is missing or empty.")
    fitid = element.find("FITID").text.strip()
    if len(fitid) > MAX_FITID:
        raise BankFileError(f"Line {line} (transaction {index + 1}): FITID is longer than {MAX_FITID} characters.")
    return _convert_one(element, root, index, lines, text)


def _transaction_error(element, root, index: int, lines: list[int], text: str, err: Exception) -> str:
    """A message naming the line, the transaction (and its FITID) and the element ofxtools refused."""
    start = lines[index] if index < len(lines) else 0
    fitid = (element.findtext("FITID") or "").strip()
    where = f"transaction {index + 1}" + (f", FITID {fitid}" if fitid else "")
    problem = _bad_leaf(element, root, text)
    if problem is not None:
        line, message = problem
        return f"Line {line} ({where}): {message}."
    return f"Line {start} ({where}): {_first_line(err)}."


def _bad_leaf(top, root, text: str) -> tuple[int, str] | None:
    """The first element under `top` (document order) whose value ofxtools refuses: its line and why."""
    import ofxtools.models

    parents = {child: parent for parent in top.iter() for child in parent}
    for leaf in top.iter():
        if len(leaf) or leaf is top:
            continue
        owner = getattr(ofxtools.models, parents[leaf].tag, None)
        descriptor = next((k.__dict__[leaf.tag.lower()] for k in getattr(owner, "__mro__", ())
                           if leaf.tag.lower() in k.__dict__), None)
        if owner is None or not hasattr(descriptor, "convert"):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                descriptor.convert(leaf.text)
        except Exception:  # noqa: BLE001
            line = _element_line(root, leaf, text)
            return line, f"{leaf.tag} {(leaf.text or '').strip()[:60]!r} is not valid{_hint(leaf.tag)}"
    return None


def _element_line(root, leaf, text: str) -> int:
    """The line of `leaf`: the k-th <TAG> in the file, where k is its place among the file's TAG elements."""
    position = next((i for i, el in enumerate(root.iter(leaf.tag)) if el is leaf), 0)
    lines = _tag_lines(text, leaf.tag)
    return lines[position] if position < len(lines) else 0


HINTS = {
    "TRNAMT": " (an amount like -1284.60, no thousands commas)",
    "DTPOSTED": " (a date like 20250311 or 20250311120000.000[-5:EST])",
    "DTUSER": " (a date like 20250311)",
    "TRNTYPE": " (CREDIT, DEBIT, DEP, POS, SRVCHG, XFER, CHECK, OTHER...)",
}


def _hint(tag: str) -> str:
    return HINTS.get(tag, "")


def _line_in(text: str, tag: str, start_line: int) -> int:
    """The line of the first <tag> at or after `start_line`."""
    offset = 0
    for _ in range(max(start_line - 1, 0)):
        offset = text.find("\n", offset) + 1
    return _first_tag_line(text, tag, offset)


def _locate(root, text: str, err: Exception) -> str:
    """An ofxtools complaint outside the transactions, with the line of the element it names."""
    problem = _bad_leaf(root, root, text)
    if problem is not None:
        return f"Line {problem[0]}: {problem[1]}."
    message = _first_line(err)
    match = re.search(r"Can't set (\w+)\.(\w+)", message)
    if match:
        aggregate, element = match.group(1), match.group(2).upper()
        start = _first_tag_line(text, aggregate)
        return f"Line {_line_in(text, element, start)}: {aggregate} {element} is not valid ({message})."
    match = re.search(r"\b([A-Z][A-Z0-9]{2,})\b", message)
    if match:
        return f"Line {_first_tag_line(text, match.group(1))}: {message}."
    return f"The OFX file is not valid: {message}."


def _raw_date(parent, tag: str, line: int, index: int | None) -> date | None:
    """The calendar date an OFX date element names, as the bank wrote it (its first 8 digits, before
    any timezone: 20250303120000.000[-5:EST] is March 3 wherever it is read)."""
    if parent is None:
        return None
    raw = (parent.findtext(tag) or "").strip()
    if not raw:
        return None
    try:
        return datetime.strptime(raw[:8], "%Y%m%d").date()
    except ValueError:
        where = f"Line {line} (transaction {index + 1})" if index is not None else f"Element {tag}"
        raise BankFileError(f"{where}: {tag} {raw[:40]!r} is not a date like 20250311.") from None


def _cents(amount: Decimal | None, line: int, index: int | None) -> int:
    if amount is None:
        raise BankFileError(f"Line {line}: an amount is missing.")
    cents = amount * 100
    if cents != cents.to_integral_value():
        where = f"Line {line} (transaction {index + 1})" if index is not None else f"Line {line}"
        raise BankFileError(f"{where}: {amount} has more than two decimal places.")
    return int(cents)


def _description(transaction) -> str:
    payee = getattr(transaction, "payee", None)
    name = transaction.name or (getattr(payee, "name", None) if payee is not None else None) or ""
    parts = [str(part).strip() for part in (name, transaction.memo) if part and str(part).strip()]
    return " ".join(parts)[:MAX_DESCRIPTION]


def mask_account(account: str) -> str:
    """An account number as stored: ****1234 (its last 4 characters); "" for none."""
    digits = account.strip()
    return f"****{digits[-4:]}" if digits else ""


# --- CSV ---------------------------------------------------------------------------------------

# What each value may be called in a bank's CSV header (lower case; first found wins).
DATE_COLUMNS = ("posting date", "posted date", "date", "transaction date", "trans. date", "effective date")
DESCRIPTION_COLUMNS = ("description", "payee", "name", "transaction description", "details")
MEMO_COLUMNS = ("memo",)
AMOUNT_COLUMNS = ("amount", "transaction amount")
DEBIT_COLUMNS = ("debit", "debits", "withdrawal", "withdrawals", "withdrawal amount", "debit amount")
CREDIT_COLUMNS = ("credit", "credits", "deposit", "deposits", "deposit amount", "credit amount")
BALANCE_COLUMNS = ("balance", "running balance", "running bal.")
DATE_FORMATS = ("%m/%d/%Y", "%Y-%m-%d", "%m/%d/%y", "%m-%d-%Y")


def parse_csv(text: str) -> ParsedStatement:
    """The rows of a bank's CSV download (Chase's layout or a generic one). Raises BankFileError."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = next(reader, None)
    while header is not None and not any(cell.strip() for cell in header):
        header = next(reader, None)
    if header is None:
        raise BankFileError("The file is empty; choose the statement downloaded from the bank (OFX, QFX or CSV).")
    names = [cell.strip().lower() for cell in header]

    def find(candidates: tuple[str, ...]) -> int | None:
        return next((names.index(n) for n in candidates if n in names), None)

    # Chase's "Details" column says DEBIT/CREDIT/DSLIP; "Description" comes first in the candidates.
    where = {"date": find(DATE_COLUMNS), "description": find(DESCRIPTION_COLUMNS),
             "memo": find(MEMO_COLUMNS), "amount": find(AMOUNT_COLUMNS), "debit": find(DEBIT_COLUMNS),
             "credit": find(CREDIT_COLUMNS), "balance": find(BALANCE_COLUMNS)}
    missing = [label for key, label in (("date", "Posting Date (or Date)"), ("description", "Description"))
               if where[key] is None]
    if where["amount"] is None and (where["debit"] is None or where["credit"] is None):
        missing.append("Amount (or Debit and Credit)")
    if missing:
        raise BankFileError(f"Line {reader.line_num}: the column{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(missing)} {'are' if len(missing) > 1 else 'is'} missing. Expected a header "
                            "like Posting Date,Description,Amount (Chase) or Date,Description,Debit,Credit.")
    needed = max(i for i in where.values() if i is not None)
    parsed: list[tuple[int, date, int, str, int | None]] = []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= needed:
            raise BankFileError(f"Line {line}: the row has {len(row)} values; the header names {len(header)}.")
        cell = {key: (row[i].strip() if i is not None else "") for key, i in where.items()}
        posted_on = _csv_date(cell["date"], line, header[where["date"]].strip())
        if where["amount"] is not None:
            amount = _csv_amount(cell["amount"], line, header[where["amount"]].strip(), required=True)
        else:
            debit = _csv_amount(cell["debit"], line, header[where["debit"]].strip())
            credit = _csv_amount(cell["credit"], line, header[where["credit"]].strip())
            if debit and credit:
                raise BankFileError(f"Line {line}: both {header[where['debit']].strip()} and "
                                    f"{header[where['credit']].strip()} have an amount; a row is one or the other.")
            if debit is None and credit is None:
                raise BankFileError(f"Line {line}: neither {header[where['debit']].strip()} nor "
                                    f"{header[where['credit']].strip()} has an amount.")
            amount = -abs(debit) if debit else abs(credit or 0)
        description = " ".join(part for part in (cell["description"], cell["memo"]) if part)
        if not description:
            raise BankFileError(f"Line {line}, column {header[where['description']].strip()}: the description is empty.")
        balance = (_csv_amount(cell["balance"], line, header[where["balance"]].strip())
                   if where["balance"] is not None else None)
        parsed.append((line, posted_on, amount, " ".join(description.split())[:MAX_DESCRIPTION], balance))
    if not parsed:
        raise BankFileError("The file has a header but no rows: no transactions to import.")
    occurrences: Counter = Counter()
    rows = []
    for line, posted_on, amount, description, _ in parsed:
        key = f"{posted_on.isoformat()}|{amount}|{description}"
        occurrences[key] += 1
        digest = hashlib.sha256(f"{key}|{occurrences[key]}".encode()).hexdigest()[:40]
        rows.append(BankRow(fitid=f"csv-{digest}", posted_on=posted_on, amount_cents=amount,
                            description=description, line=line))
    dates = [row.posted_on for row in rows]
    return ParsedStatement(file_format="csv", account_ref="", period_start=min(dates), period_end=max(dates),
                           ledger_balance_cents=_closing_balance(parsed), rows=rows)


def _csv_date(raw: str, line: int, column: str) -> date:
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(raw, fmt).date()
        except ValueError:
            continue
    raise BankFileError(f"Line {line}, column {column}: {raw[:40]!r} is not a date like 03/11/2025.")


def _csv_amount(raw: str, line: int, column: str, *, required: bool = False) -> int | None:
    if not raw:
        if required:
            raise BankFileError(f"Line {line}, column {column}: the amount is empty.")
        return None
    try:
        return Money.parse(raw, allow_negative=True).cents
    except MoneyError:
        raise BankFileError(f"Line {line}, column {column}: {raw[:40]!r} is not an amount like -1284.60.") from None


def _closing_balance(parsed: list[tuple[int, date, int, str, int | None]]) -> int | None:
    """The balance after the last transaction, when the file has a balance column and is in date
    order (newest first, as Chase writes it, or oldest first)."""
    balances = [(day, balance) for _, day, _, _, balance in parsed]
    if any(balance is None for _, balance in balances):
        return None
    days = [day for day, _ in balances]
    if days == sorted(days, reverse=True):
        return balances[0][1]
    if days == sorted(days):
        return balances[-1][1]
    return None
