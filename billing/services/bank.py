"""Bank statements: importing the bank's file, suggesting what each credit settled (a Stripe payout,
a money-order deposit batch, a CareCredit funding: same amount, dates at most three days apart) and
recording the match a person confirms.

Matching proves that money we already posted arrived; it posts nothing to the journal.

    import_statement    store a statement file's new lines, all or nothing, each file once
    suggestions         candidates for each unmatched credit line
    confirm             a person's match of a line to a payout, batch or funding
    unmatch             undo a confirmed match (audited)
    unmatched_lines / unmatched_targets   what is still unmatched on each side
"""

import hashlib
import re
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa

from billing.extensions import db
from billing.integrations.bank_files import BankFileError, BankRow, mask_account, parse_bank_file, same_transaction_key
from billing.models import (
    BankLine, BankMatchKind, BankStatement, CareCreditFunding, DepositBatch, DepositStatus, StripePayout,
)
from billing.models.types import utcnow
from billing.money import Money
from billing.services import ServiceError, advisory_lock, audit

WINDOW_DAYS = 3  # a bank line and what it settles are at most this many days apart
FIELD = "statement_file"
ACCOUNT_FIELD = "account_last4"
_LOCK_NAMESPACE = 70_002  # first key of the per-account advisory locks of bank imports (PostgreSQL)
LISTED = 5  # skipped lines named in the message; the rest are counted


@dataclass(frozen=True)
class Skipped:
    """A line of the file already stored from an earlier file of the same account."""

    posted_on: date
    amount: Money
    description: str
    filename: str  # the earlier file it was imported from


@dataclass(frozen=True)
class ImportResult:
    statement: BankStatement
    added: int
    already: list[Skipped]  # lines already imported from an earlier file, left as they were

    @property
    def skipped(self) -> int:
        return len(self.already)

    def message(self) -> str:
        text = f"Imported {self.added} line{'s' if self.added != 1 else ''} from {self.statement.filename}."
        if self.already:
            text += " " + _skipped_message(self.already)
        return text


def _skipped_message(skipped: list[Skipped]) -> str:
    count = len(skipped)
    named = "; ".join(f"{s.posted_on.isoformat()} {s.amount} {s.description}" for s in skipped[:LISTED])
    more = f"; and {count - LISTED} more" if count > LISTED else ""
    return (f"{count} line{'s were' if count != 1 else ' was'} already imported from {_files(skipped)} and left as "
            f"{'they were' if count != 1 else 'it was'}: {named}{more}.")


def _files(skipped: list[Skipped]) -> str:
    names = list(dict.fromkeys(s.filename for s in skipped))
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def import_statement(filename: str, content: bytes, *, account_last4: str = "") -> ImportResult:
    """Store a bank file's statement and its lines not seen before. An OFX file names its account;
    a CSV file does not, so `account_last4` (the account's last 4 digits) is required for one and
    stored as its account_ref. A line is already there when its account holds its FITID, or (a CSV
    row has no FITID of the bank's) when a line of the account has the same posted date, amount and
    description: a CSV row against any stored line, an OFX line against one stored from a CSV; as
    many times as the account holds it. Raises ServiceError for a file imported before (same SHA-256,
    field "statement_file"), a malformed file (naming the line), a CSV without the account's last 4
    digits (field "account_last4"), or one whose lines were all imported already; nothing is written
    then. Writes the statement, its new lines and an audit event."""
    digest = hashlib.sha256(content).hexdigest()
    earlier = db.session.scalar(sa.select(BankStatement).where(BankStatement.sha256 == digest))
    if earlier is not None:
        raise ServiceError(f"This file was already imported on {earlier.imported_at:%Y-%m-%d} as statement "
                           f"#{earlier.id} ({earlier.filename}); nothing was imported again.", FIELD)
    try:
        parsed = parse_bank_file(content)
    except BankFileError as err:
        raise ServiceError(f"{err} Nothing was imported.", FIELD) from None
    account_ref = parsed.account_ref or _entered_account(account_last4, required=parsed.file_format == "csv")
    # One import per account at a time: the month's OFX and CSV imported at once would each find the
    # other's lines not there yet (a CSV row's FITID is ours, so no unique key catches it).
    advisory_lock(_LOCK_NAMESPACE, sa.func.hashtext(account_ref))
    new_rows, skipped = _new_rows(parsed.rows, account_ref, csv=parsed.file_format == "csv")
    if not new_rows:
        raise ServiceError(f"All {len(parsed.rows)} lines of this file were already imported from {_files(skipped)}"
                           f"{f' (account {account_ref})' if account_ref else ''}; nothing was added.", FIELD)
    statement = BankStatement(
        filename=(filename or "statement")[:200], file_format=parsed.file_format, sha256=digest,
        account_ref=account_ref, period_start=parsed.period_start, period_end=parsed.period_end,
        ledger_balance_cents=parsed.ledger_balance_cents, imported_by_id=audit.current_actor_id())
    try:
        with db.session.begin_nested():  # a twin import committed meanwhile trips the unique keys
            db.session.add(statement)
            db.session.flush()
            db.session.add_all([BankLine(statement_id=statement.id, account_ref=account_ref, fitid=row.fitid,
                                         posted_on=row.posted_on, amount_cents=row.amount_cents,
                                         description=row.description) for row in new_rows])
    except sa.exc.IntegrityError:
        raise ServiceError("This file, or some of its lines, was imported by someone else a moment ago; reload the "
                           "page to see it. Nothing was imported.", FIELD) from None
    audit.record("bank.statement_imported", statement, changes={
        "filename": statement.filename, "format": parsed.file_format, "account": account_ref,
        "lines": len(new_rows), "skipped": len(skipped), "sha256": digest})
    return ImportResult(statement, len(new_rows), skipped)


def _entered_account(last4: str, *, required: bool) -> str:
    """The account the person named for a file that does not name one, masked like an OFX account."""
    digits = (last4 or "").strip()
    if not digits and not required:
        return ""
    if not re.fullmatch(r"[0-9]{4}", digits):
        raise ServiceError("Enter the last 4 digits of the bank account this CSV file is from (a CSV file does "
                           "not name its account). Nothing was imported.", ACCOUNT_FIELD)
    return mask_account(digits)


def _new_rows(rows: list[BankRow], account_ref: str, *, csv: bool) -> tuple[list[BankRow], list[Skipped]]:
    """The file's rows the account does not hold yet, and those it does (with the file they came from)."""
    by_fitid = dict(db.session.execute(
        sa.select(BankLine.fitid, BankStatement.filename).join(BankStatement, BankStatement.id == BankLine.statement_id)
        .where(BankLine.account_ref == account_ref, BankLine.fitid.in_([row.fitid for row in rows]))).all())
    unknown = [row for row in rows if row.fitid not in by_fitid]
    stored: dict[tuple, list[str]] = {}  # a transaction's key: the files holding it, once per stored line
    if unknown:
        days = [row.posted_on for row in unknown]
        query = (sa.select(BankLine.posted_on, BankLine.amount_cents, BankLine.description, BankStatement.filename)
                 .join(BankStatement, BankStatement.id == BankLine.statement_id)
                 .where(BankLine.account_ref == account_ref, BankLine.posted_on.between(min(days), max(days)),
                        BankLine.amount_cents.in_(sorted({r.amount_cents for r in unknown})),
                        BankLine.fitid.not_in(list(by_fitid)))
                 .order_by(BankLine.id))
        if not csv:  # an OFX line is another OFX file's only by its FITID; by its content, a CSV row's
            query = query.where(BankLine.fitid.like("csv-%"))
        for posted_on, amount_cents, description, name in db.session.execute(query):
            stored.setdefault(same_transaction_key(posted_on, amount_cents, description), []).append(name)
    new_rows, skipped = [], []
    for row in rows:
        name = by_fitid.get(row.fitid)
        if name is None and stored.get(row.key):
            name = stored[row.key].pop(0)
        if name is None:
            new_rows.append(row)
        else:
            skipped.append(Skipped(row.posted_on, Money(row.amount_cents), row.description, name))
    return new_rows, skipped


def last_account_last4() -> str:
    """The last 4 digits of the account of the latest imported statement that names one ("" if none)."""
    ref = db.session.scalar(sa.select(BankStatement.account_ref).where(BankStatement.account_ref != "")
                            .order_by(BankStatement.imported_at.desc(), BankStatement.id.desc()).limit(1))
    return ref[-4:] if ref else ""


# --- what a line can be matched to -----------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A payout, deposit batch or funding as a bank line would show it."""

    kind: BankMatchKind
    id: int
    on: date
    amount: Money
    label: str


TARGETS = {
    BankMatchKind.STRIPE_PAYOUT: (StripePayout, StripePayout.arrival_date, StripePayout.amount_cents),
    BankMatchKind.DEPOSIT_BATCH: (DepositBatch, DepositBatch.deposited_on, DepositBatch.total_cents),
    BankMatchKind.CARECREDIT_FUNDING: (CareCreditFunding, CareCreditFunding.funded_on, CareCreditFunding.net_cents),
}
KIND_NAMES = {BankMatchKind.STRIPE_PAYOUT: "Stripe payout", BankMatchKind.DEPOSIT_BATCH: "Deposit batch",
              BankMatchKind.CARECREDIT_FUNDING: "CareCredit funding"}


def _label(kind: BankMatchKind, row) -> str:
    name = {BankMatchKind.STRIPE_PAYOUT: lambda r: r.payout_id, BankMatchKind.DEPOSIT_BATCH: lambda r: r.number,
            BankMatchKind.CARECREDIT_FUNDING: lambda r: r.reference}[kind](row)
    return f"{KIND_NAMES[kind]} {name}"


def _target(kind: BankMatchKind, row) -> Target:
    _, on, amount = TARGETS[kind]
    return Target(kind, row.id, getattr(row, on.key), Money(getattr(row, amount.key)), _label(kind, row))


def _matchable(kind: BankMatchKind):
    """The rows of a kind that can be matched: not matched to a line yet (and a batch deposited)."""
    model, on, _ = TARGETS[kind]
    taken = sa.select(BankLine.match_id).where(BankLine.match_kind == kind, BankLine.match_id.is_not(None))
    query = sa.select(model).where(model.id.not_in(taken), on.is_not(None))
    if kind is BankMatchKind.DEPOSIT_BATCH:
        query = query.where(DepositBatch.status == DepositStatus.DEPOSITED)
    return query


def suggestions(lines: list[BankLine]) -> dict[int, list[Target]]:
    """For each unmatched credit among `lines`, the unmatched payouts, deposited batches and fundings
    of the same amount dated within WINDOW_DAYS of it, nearest first. Reads only."""
    credits = [line for line in lines if line.match_kind is None and line.amount_cents > 0]
    found: dict[int, list[Target]] = {line.id: [] for line in credits}
    if not credits:
        return found
    amounts = {line.amount_cents for line in credits}
    first = min(line.posted_on for line in credits) - timedelta(days=WINDOW_DAYS)
    last = max(line.posted_on for line in credits) + timedelta(days=WINDOW_DAYS)
    for kind, (_, on, amount) in TARGETS.items():
        rows = db.session.scalars(_matchable(kind).where(amount.in_(amounts), on.between(first, last)))
        for target in (_target(kind, row) for row in rows):
            for line in credits:
                if target.amount.cents == line.amount_cents and abs((target.on - line.posted_on).days) <= WINDOW_DAYS:
                    found[line.id].append(target)
    for line in credits:
        found[line.id].sort(key=lambda t: (abs((t.on - line.posted_on).days), t.kind.value, t.id))
    return found


def confirm(line: BankLine, kind: BankMatchKind | str, target_id: int) -> Target:
    """Record that a person matched a bank credit to the payout, deposit batch or funding it settled.
    Raises ServiceError when the line is a debit or already matched, the target does not exist, is a
    batch not deposited, is matched to another line, differs in amount or lies more than WINDOW_DAYS
    away. Writes the line's match (who and when) and an audit event; posts nothing."""
    try:
        kind = BankMatchKind(kind)
    except ValueError:
        raise ServiceError(f"{kind!r} is not something a bank line can be matched to.") from None
    line = db.session.scalars(sa.select(BankLine).where(BankLine.id == line.id).with_for_update()
                              .execution_options(populate_existing=True)).one()
    if line.match_kind is not None:
        raise ServiceError(f"This bank line is already matched to {describe_match(line)}; unmatch it first.")
    if line.amount_cents <= 0:
        raise ServiceError("Only money coming in (a credit) is matched to payouts, deposits and fundings.")
    model, _, _ = TARGETS[kind]
    row = db.session.scalars(sa.select(model).where(model.id == target_id).with_for_update()
                             .execution_options(populate_existing=True)).one_or_none()
    if row is None:
        raise ServiceError(f"There is no {KIND_NAMES[kind].lower()} #{target_id}.")
    if kind is BankMatchKind.DEPOSIT_BATCH and (row.status != DepositStatus.DEPOSITED or row.deposited_on is None):
        raise ServiceError(f"{_label(kind, row)} is not marked deposited yet; mark it deposited, then match it.")
    target = _target(kind, row)
    other = db.session.scalar(sa.select(BankLine).where(BankLine.match_kind == kind, BankLine.match_id == row.id))
    if other is not None:
        raise ServiceError(f"{target.label} is already matched to the bank line of {other.posted_on.isoformat()} "
                           f"({Money(other.amount_cents)}, {other.description}).")
    if target.amount.cents != line.amount_cents:
        raise ServiceError(f"{target.label} is {target.amount}, but the bank line is {Money(line.amount_cents)}; "
                           "a match must be for the same amount.")
    if abs((target.on - line.posted_on).days) > WINDOW_DAYS:
        raise ServiceError(f"{target.label} is dated {target.on.isoformat()}, more than {WINDOW_DAYS} days from the "
                           f"bank line of {line.posted_on.isoformat()}.")
    line.match_kind, line.match_id = kind, row.id
    line.matched_at, line.matched_by_id = utcnow(), audit.current_actor_id()
    db.session.flush()
    audit.record("bank.line_matched", line, changes={"match": target.label, "kind": kind.value, "match_id": row.id,
                                                     "amount": target.amount.plain(),
                                                     "posted_on": line.posted_on.isoformat()})
    return target


def unmatch(line: BankLine) -> None:
    """Undo a confirmed match. Raises ServiceError when the line is not matched. Clears the line's
    match and writes an audit event naming what it was matched to, by whom and when."""
    line = db.session.scalars(sa.select(BankLine).where(BankLine.id == line.id).with_for_update()
                              .execution_options(populate_existing=True)).one()
    if line.match_kind is None:
        raise ServiceError("This bank line is not matched.")
    changes = {"was": describe_match(line), "kind": line.match_kind.value, "match_id": line.match_id,
               "matched_at": line.matched_at.isoformat() if line.matched_at else None,
               "matched_by_id": line.matched_by_id}
    line.match_kind = line.match_id = line.matched_at = line.matched_by_id = None
    db.session.flush()
    audit.record("bank.line_unmatched", line, changes=changes)


def describe_match(line: BankLine) -> str:
    """What a matched line settled, like "Stripe payout po_…" ("" when unmatched)."""
    if line.match_kind is None:
        return ""
    model = TARGETS[line.match_kind][0]
    row = db.session.get(model, line.match_id)
    return _label(line.match_kind, row) if row is not None else f"{KIND_NAMES[line.match_kind]} #{line.match_id}"


# --- lists -----------------------------------------------------------------------------------------


def statements(limit: int = 50) -> list[tuple[BankStatement, int, int, int]]:
    """Recent statements, newest first, with their line count, credits and matched credits."""
    query = (sa.select(BankStatement, sa.func.count(BankLine.id),
                       sa.func.count(BankLine.id).filter(BankLine.amount_cents > 0),
                       sa.func.count(BankLine.match_id))
             .outerjoin(BankLine, BankLine.statement_id == BankStatement.id)
             .group_by(BankStatement.id).order_by(BankStatement.imported_at.desc(), BankStatement.id.desc())
             .limit(limit))
    return [tuple(row) for row in db.session.execute(query)]


def lines_of(statement: BankStatement) -> list[BankLine]:
    return list(db.session.scalars(sa.select(BankLine).where(BankLine.statement_id == statement.id)
                                   .order_by(BankLine.posted_on, BankLine.id)))


def unmatched_lines(statement: BankStatement | None = None) -> list[BankLine]:
    """Bank credits no one has matched yet (of one statement, or all), oldest first."""
    query = sa.select(BankLine).where(BankLine.match_kind.is_(None), BankLine.amount_cents > 0)
    if statement is not None:
        query = query.where(BankLine.statement_id == statement.id)
    return list(db.session.scalars(query.order_by(BankLine.posted_on, BankLine.id)))


def unmatched_targets(start: date | None = None, end: date | None = None) -> list[Target]:
    """Payouts, deposited batches and fundings no bank line is matched to (dated within start..end
    when given), oldest first."""
    found = []
    for kind, (_, on, _) in TARGETS.items():
        query = _matchable(kind)
        if start is not None:
            query = query.where(on >= start)
        if end is not None:
            query = query.where(on <= end)
        found += [_target(kind, row) for row in db.session.scalars(query)]
    return sorted(found, key=lambda t: (t.on, t.kind.value, t.id))
