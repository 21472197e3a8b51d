"""CareCredit fundings: the deposits CareCredit (Synchrony) makes for the CareCredit charges the
clinic ran, less the plan fees, recorded by hand or imported from the funding report, matched to our
CareCredit payments and posted once per funding (Bank + Financing fees / CareCredit receivable).

A CareCredit payment posts its gross to CareCredit receivable when it is taken
(billing.services.payments). A funding takes the gross of its charges out of that account, puts
what reached the bank in Bank and CareCredit's fees in Financing fees, so CareCredit receivable
keeps what CareCredit still owes the clinic.

    record_funding      a funding typed in from the Provider Center, with its charges
    import_funding_csv  the fundings of a funding report (CSV), all or nothing, each once
    rematch_unmatched   match lines left unmatched to payments recorded since
    summaries, line_reports, unmatched_lines, unfunded_payments, unfunded_total   the reports
"""

from dataclasses import dataclass, field
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from billing.extensions import db
from billing.integrations.carecredit_csv import (
    MAX_CODE, MAX_REFERENCE, FundingLineRow, FundingRow, MalformedFundingReport, normalise_code, parse_fundings,
)
from billing.models import (
    CareCreditDetails, CareCreditFunding, CareCreditFundingLine, Patient, Payment, PaymentMethod, PaymentStatus,
    Refund,
)
from billing.money import Money
from billing.services import ServiceError, audit, journal
from billing.services import settlement  # noqa: F401 (its flush hook keeps the payments' month-end figures)

# CareCredit payments that CareCredit owes us money for (a refunded one was taken back in full).
SETTLED = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED)
# CareCredit funds within about two business days; later than this many is flagged.
LATE_AFTER_BUSINESS_DAYS = 3


# --- input -------------------------------------------------------------------------------------------


@dataclass
class LineInput:
    authorization_code: str
    gross: Money
    fee: Money
    net: Money | None = None  # gross − fee when not given
    transaction_date: date | None = None
    promo_code: str = ""


@dataclass
class FundingInput:
    reference: str
    funded_on: date
    net: Money  # what reached the bank
    lines: list[LineInput]
    gross: Money | None = None  # the sum of the lines' when not given
    fee: Money | None = None


@dataclass
class ImportResult:
    posted: list[CareCreditFunding] = field(default_factory=list)
    already_posted: list[CareCreditFunding] = field(default_factory=list)

    def message(self) -> str:
        parts = []
        if self.posted:
            n = len(self.posted)
            parts.append(f"Posted {n} funding{'s' if n != 1 else ''}: " + ", ".join(
                f"{f.reference} ({Money(f.net_cents)})" for f in self.posted) + ".")
        if self.already_posted:
            n = len(self.already_posted)
            parts.append(f"{n} funding{'s were' if n != 1 else ' was'} already posted and left unchanged: "
                         + ", ".join(f.reference for f in self.already_posted) + ".")
        return " ".join(parts)


# --- writing -----------------------------------------------------------------------------------------


def record_funding(data: FundingInput, *, today: date) -> CareCreditFunding:
    """Record a funding typed in by the bookkeeper, match its charges to our CareCredit payments and
    post it. Raises ServiceError (naming the form field) for an empty or taken reference, a date in
    the future or in a closed month, no charges, a charge without an authorization code or amount, a
    fee larger than the charge, or totals that do not add up (net ≠ gross − fee, lines ≠ funding).
    Writes the funding, its lines (with the payment each was matched to), one journal entry dated
    the funding date and an audit event."""
    reference = data.reference.strip().upper()
    if not reference or len(reference) > MAX_REFERENCE or any(ch.isspace() for ch in reference):
        raise ServiceError(f"Enter the funding reference from the Provider Center (up to {MAX_REFERENCE} letters, "
                           "digits or dashes, no spaces).", "reference")
    _check_date(data.funded_on, today, "funded_on")
    if not data.lines:
        raise ServiceError("Enter at least one charge: its authorization code, gross amount and fee.", "lines")
    rows = []
    for n, item in enumerate(data.lines, start=1):
        code = normalise_code(item.authorization_code)
        if not code or len(code) > MAX_CODE or not code.isalnum():
            raise ServiceError(f"Charge {n}: enter the authorization code (letters and digits).", "lines")
        if item.gross.is_zero:
            raise ServiceError(f"Charge {n} ({code}): enter the gross amount charged.", "lines")
        net = item.gross - item.fee if item.net is None else item.net
        if net != item.gross - item.fee:
            raise ServiceError(f"Charge {n} ({code}): net {net} is not gross {item.gross} less fee {item.fee}.",
                               "lines")
        if item.gross.is_positive and (item.fee.is_negative or item.fee > item.gross):
            raise ServiceError(f"Charge {n} ({code}): the fee {item.fee} must be between zero and the charge.",
                               "lines")
        if any(r.authorization_code == code and r.gross.is_positive for r in rows) and item.gross.is_positive:
            raise ServiceError(f"Charge {n}: authorization code {code} is entered twice; a charge is funded once.",
                               "lines")
        rows.append(FundingLineRow(line=n, authorization_code=code, gross=item.gross, fee=item.fee, net=net,
                                   transaction_date=item.transaction_date, promo_code=item.promo_code.strip()[:20]))
    funding = FundingRow(reference, data.funded_on, 0, rows)
    gross = funding.gross if data.gross is None else data.gross
    fee = funding.fee if data.fee is None else data.fee
    if data.net != gross - fee:
        raise ServiceError(f"The deposit {data.net} is not gross {gross} less fees {fee}; check the amounts.", "net")
    if (gross, fee, data.net) != (funding.gross, funding.fee, funding.net):
        raise ServiceError(f"The charges add up to gross {funding.gross}, fees {funding.fee}, net {funding.net}, "
                           f"but the funding says gross {gross}, fees {fee}, net {data.net}.", "net")
    existing = db.session.scalar(sa.select(CareCreditFunding).where(CareCreditFunding.reference == reference))
    if existing is not None:
        raise ServiceError(f"Funding {reference} was already recorded (dated {existing.funded_on:%m/%d/%Y}, "
                           f"{Money(existing.net_cents)}); it is posted once.", "reference")
    return _write(funding, source="manual", field="reference")


def import_funding_csv(text: str, *, today: date) -> ImportResult:
    """Post the fundings of a CareCredit funding report; fundings already posted (same reference
    and figures) are left as they were. Raises ServiceError (field "report") naming the line of a
    malformed file, a funding dated in the future or in a closed month, or one whose reference we
    hold with other figures, before anything is written. Writes, per new funding, the funding, its
    lines matched to our payments, one journal entry dated the funding date and an audit event."""
    try:
        report = parse_fundings(text)
    except MalformedFundingReport as err:
        raise ServiceError(str(err), "report") from None
    known = {f.reference: f for f in db.session.scalars(
        sa.select(CareCreditFunding).where(CareCreditFunding.reference.in_([r.reference for r in report])))}
    result, to_post = ImportResult(), []
    for item in report:
        existing = known.get(item.reference)
        if existing is not None:
            theirs = (existing.funded_on, existing.gross_cents, existing.fee_cents, existing.net_cents,
                      len(existing.lines))
            ours = (item.funded_on, item.gross.cents, item.fee.cents, item.net.cents, len(item.lines))
            if theirs != ours:
                raise ServiceError(
                    f"Line {item.line}: funding {item.reference} is already posted as {existing.funded_on:%m/%d/%Y}, "
                    f"{len(existing.lines)} charges, net {Money(existing.net_cents)}; this file has "
                    f"{item.funded_on:%m/%d/%Y}, {len(item.lines)} charges, net {item.net}. Nothing was imported.",
                    "report")
            result.already_posted.append(existing)
            continue
        if item.funded_on > today:
            raise ServiceError(f"Line {item.line}: funding {item.reference} is dated {item.funded_on:%m/%d/%Y}, "
                               "in the future. Nothing was imported.", "report")
        try:
            journal.ensure_period_open(item.funded_on)
        except ServiceError as err:
            raise ServiceError(f"Line {item.line}: funding {item.reference}: {err.message} Nothing was imported.",
                               "report") from None
        to_post.append(item)
    for item in to_post:
        result.posted.append(_write(item, source="csv", field="report"))
    return result


def _check_date(day: date, today: date, field: str) -> None:
    if day > today:
        raise ServiceError("The funding date cannot be in the future.", field)
    journal.ensure_period_open(day, field)


def _write(item: FundingRow, *, source: str, field: str) -> CareCreditFunding:
    """Store a checked funding with its lines, match them and post it."""
    funding = CareCreditFunding(reference=item.reference, funded_on=item.funded_on, gross_cents=item.gross.cents,
                                fee_cents=item.fee.cents, net_cents=item.net.cents, source=source,
                                created_by_id=audit.current_actor_id())
    funding.lines = [CareCreditFundingLine(authorization_code=row.authorization_code,
                                           transaction_date=row.transaction_date, promo_code=row.promo_code,
                                           gross_cents=row.gross.cents, fee_cents=row.fee.cents,
                                           net_cents=row.net.cents) for row in item.lines]
    try:
        with db.session.begin_nested():  # the unique keys settle a race with another import
            db.session.add(funding)
            db.session.flush()
            matched = _match(funding.lines)
    except sa.exc.IntegrityError:
        raise ServiceError(f"Funding {item.reference} (or a payment in it) was recorded by someone else a moment "
                           "ago; reload and check before trying again.", field) from None
    journal.post(item.funded_on, f"CareCredit funding {item.reference}: {len(item.lines)} charges", funding, [
        (journal.BANK, item.net, None),
        (journal.FINANCING_FEES, item.fee, None),
        (journal.CARECREDIT_RECEIVABLE, -item.gross, None),
    ])
    audit.record("carecredit.funding_posted", funding, changes={
        "reference": item.reference, "gross": item.gross.plain(), "fee": item.fee.plain(), "net": item.net.plain(),
        "lines": len(item.lines), "matched": matched, "source": source})
    return funding


def rematch_unmatched() -> int:
    """Match the funding lines no payment was found for to CareCredit payments recorded since
    (the journal is unchanged: the funding was posted in full). Returns how many were matched.
    Writes the lines' payment and, when any matched, an audit event."""
    lines = list(db.session.scalars(
        sa.select(CareCreditFundingLine)
        .where(CareCreditFundingLine.payment_id.is_(None), CareCreditFundingLine.gross_cents > 0)
        .order_by(CareCreditFundingLine.id).with_for_update()))
    try:
        with db.session.begin_nested():
            matched = _match(lines)
    except sa.exc.IntegrityError:
        raise ServiceError("Another import matched the same payments a moment ago; try again.") from None
    if matched:
        audit.record("carecredit.funding_lines_matched", changes={"matched": matched, "looked_at": len(lines)})
    return matched


def _match(lines: list[CareCreditFundingLine]) -> int:
    """Set each charge's payment: our CareCredit payment with its authorization code (leading zeros
    forgiven, as spreadsheets drop them) and gross, not yet funded; the oldest first. Returns how
    many were matched."""
    matched = 0
    for line in lines:
        if line.gross_cents <= 0:
            continue  # a return or an adjustment: no payment of ours to fund
        candidates = (
            sa.select(Payment.id).join(CareCreditDetails, CareCreditDetails.payment_id == Payment.id)
            .where(Payment.method == PaymentMethod.CARECREDIT, Payment.amount_cents == line.gross_cents,
                   Payment.status.notin_((PaymentStatus.PENDING, PaymentStatus.FAILED)),
                   ~sa.exists().where(CareCreditFundingLine.payment_id == Payment.id))
            .order_by(Payment.received_date, Payment.id).limit(1)
            .with_for_update(of=Payment, key_share=True))
        payment_id = db.session.scalar(candidates.where(CareCreditDetails.authorization_code == line.authorization_code))
        if payment_id is None and line.authorization_code.lstrip("0") and line.authorization_code.isdigit():
            payment_id = db.session.scalar(candidates.where(
                sa.func.ltrim(CareCreditDetails.authorization_code, "0") == line.authorization_code.lstrip("0")))
        if payment_id is not None:
            line.payment_id = payment_id
            db.session.flush()
            matched += 1
    return matched


# --- reading: SQL that dates and fees are compared in ------------------------------------------------


class _days_between(FunctionElement):
    """Whole days from the second date to the first."""

    type = sa.Integer()
    inherit_cache = True


@compiles(_days_between)
def _days_between_default(element, compiler, **kw):
    later, earlier = list(element.clauses)
    return f"({compiler.process(later, **kw)} - {compiler.process(earlier, **kw)})"


@compiles(_days_between, "sqlite")
def _days_between_sqlite(element, compiler, **kw):
    later, earlier = list(element.clauses)
    return f"CAST(julianday({compiler.process(later, **kw)}) - julianday({compiler.process(earlier, **kw)}) AS INTEGER)"


class _weekday(FunctionElement):
    """Day of the week, 0 = Sunday … 6 = Saturday."""

    type = sa.Integer()
    inherit_cache = True


@compiles(_weekday)
def _weekday_default(element, compiler, **kw):
    return f"CAST(EXTRACT(DOW FROM {compiler.process(list(element.clauses)[0], **kw)}) AS INTEGER)"


@compiles(_weekday, "sqlite")
def _weekday_sqlite(element, compiler, **kw):
    return f"CAST(strftime('%w', {compiler.process(list(element.clauses)[0], **kw)}) AS INTEGER)"


def _late(funded_on, received_date):
    """SQL: funded more than three business days (Monday to Friday) after the payment was taken.
    The third business day after a Monday, Tuesday or Sunday is 3 calendar days on; after a
    Wednesday, Thursday or Friday 5 (a weekend in between); after a Saturday 4."""
    allowed = sa.case((_weekday(received_date).in_((3, 4, 5)), 5), (_weekday(received_date) == 6, 4), else_=3)
    return _days_between(funded_on, received_date) > allowed


def _expected_fee():
    """SQL: the payment's gross times the plan fee captured on it, rounded half-up to the cent."""
    return (Payment.amount_cents * CareCreditDetails.merchant_fee_bps + 5000) // 10000


def business_days(start: date, end: date) -> int:
    """Monday-to-Friday days after `start` up to and including `end` (for display)."""
    days, count = (end - start).days, 0
    full_weeks, rest = divmod(max(days, 0), 7)
    count = full_weeks * 5
    for offset in range(1, rest + 1):
        count += (start + timedelta(days=offset)).weekday() < 5
    return count


@dataclass(frozen=True)
class FundingSummary:
    funding: CareCreditFunding
    lines: int
    matched: int
    expected_fee: Money  # of the matched lines, from the plan fee captured on each payment
    fee_difference: Money  # actual − expected over the matched lines: positive = funded short
    late: int  # matched lines funded more than three business days after the payment


def summaries(*, ids: list[int] | None = None, limit: int = 50) -> list[FundingSummary]:
    """The most recent fundings (or those with `ids`), newest first, with their lines' totals."""
    Line = CareCreditFundingLine
    matched = Line.payment_id.is_not(None)
    query = (
        sa.select(CareCreditFunding, sa.func.count(Line.id), sa.func.count(Line.payment_id),
                  sa.func.coalesce(sa.func.sum(sa.case((matched, _expected_fee()), else_=0)), 0),
                  sa.func.coalesce(sa.func.sum(sa.case((matched, Line.fee_cents - _expected_fee()), else_=0)), 0),
                  sa.func.coalesce(sa.func.sum(sa.case((_late(CareCreditFunding.funded_on, Payment.received_date), 1),
                                                       else_=0)), 0))
        .join(Line, Line.funding_id == CareCreditFunding.id)
        .outerjoin(Payment, Payment.id == Line.payment_id)
        .outerjoin(CareCreditDetails, CareCreditDetails.payment_id == Payment.id)
        .where(CareCreditFunding.id.in_(ids) if ids is not None else sa.true())
        .group_by(CareCreditFunding.id)
        .order_by(CareCreditFunding.funded_on.desc(), CareCreditFunding.id.desc())
        .limit(limit))
    return [FundingSummary(funding, lines, matched_count, Money(int(expected)), Money(int(difference)), int(late))
            for funding, lines, matched_count, expected, difference, late in db.session.execute(query)]


@dataclass(frozen=True)
class LineReport:
    line: CareCreditFundingLine
    payment_id: int | None
    patient: str  # the patient's account number and name, "" when unmatched
    received_date: date | None
    fee_bps: int | None  # the plan fee captured on the payment
    expected_fee: Money | None
    fee_difference: Money | None  # actual − expected: positive = funded short
    late: bool
    business_days: int | None


def line_reports(funding: CareCreditFunding) -> list[LineReport]:
    """A funding's charges with the payment each was matched to, the fee its plan expected and the
    difference, and whether it came late."""
    Line = CareCreditFundingLine
    query = (
        sa.select(Line, Payment.id, Patient.account_number, Patient.first_name, Patient.last_name,
                  Payment.received_date, CareCreditDetails.merchant_fee_bps, _expected_fee(),
                  _late(CareCreditFunding.funded_on, Payment.received_date))
        .join(CareCreditFunding, CareCreditFunding.id == Line.funding_id)
        .outerjoin(Payment, Payment.id == Line.payment_id)
        .outerjoin(CareCreditDetails, CareCreditDetails.payment_id == Payment.id)
        .outerjoin(Patient, Patient.id == Payment.patient_id)
        .where(Line.funding_id == funding.id)
        .order_by(Line.id))
    reports = []
    for line, payment_id, account, first, last, received, bps, expected, late in db.session.execute(query):
        expected_fee = Money(int(expected)) if payment_id is not None else None
        reports.append(LineReport(
            line=line, payment_id=payment_id, patient=f"{account} {first} {last}" if payment_id else "",
            received_date=received, fee_bps=bps, expected_fee=expected_fee,
            fee_difference=Money(line.fee_cents) - expected_fee if expected_fee is not None else None,
            late=bool(late) if payment_id is not None else False,
            business_days=business_days(received, funding.funded_on) if received else None))
    return reports


@dataclass(frozen=True)
class UnmatchedLine:
    line: CareCreditFundingLine
    funding_id: int
    reference: str
    funded_on: date


def unmatched_lines(*, limit: int = 500) -> list[UnmatchedLine]:
    """Funding lines matched to none of our payments, oldest funding first."""
    query = (sa.select(CareCreditFundingLine, CareCreditFunding.id, CareCreditFunding.reference,
                       CareCreditFunding.funded_on)
             .join(CareCreditFunding, CareCreditFunding.id == CareCreditFundingLine.funding_id)
             .where(CareCreditFundingLine.payment_id.is_(None))
             .order_by(CareCreditFunding.funded_on, CareCreditFundingLine.id).limit(limit))
    return [UnmatchedLine(*row) for row in db.session.execute(query)]


@dataclass(frozen=True)
class UnfundedPayment:
    payment_id: int
    received_date: date
    amount: Money
    owed: Money  # the amount less what was returned on it: what CareCredit still owes
    authorization_code: str
    fee_bps: int
    patient: str
    overdue: bool  # more than three business days old as of the day asked about


def _refunded():
    return (sa.select(sa.func.coalesce(sa.func.sum(Refund.amount_cents), 0)).where(Refund.payment_id == Payment.id)
            .correlate(Payment).scalar_subquery())


def _unfunded_where():
    return (Payment.method == PaymentMethod.CARECREDIT, Payment.status.in_(SETTLED),
            ~sa.exists().where(CareCreditFundingLine.payment_id == Payment.id))


def unfunded_payments(*, today: date, limit: int = 500) -> list[UnfundedPayment]:
    """CareCredit payments taken (and not refunded in full) that no funding has paid, oldest first."""
    query = (sa.select(Payment.id, Payment.received_date, Payment.amount_cents, Payment.amount_cents - _refunded(),
                       CareCreditDetails.authorization_code,
                       CareCreditDetails.merchant_fee_bps, Patient.account_number, Patient.first_name,
                       Patient.last_name, _late(sa.literal(today, sa.Date), Payment.received_date))
             .join(CareCreditDetails, CareCreditDetails.payment_id == Payment.id)
             .join(Patient, Patient.id == Payment.patient_id)
             .where(*_unfunded_where())
             .order_by(Payment.received_date, Payment.id).limit(limit))
    return [UnfundedPayment(pid, received, Money(amount), Money(int(owed)), code, bps, f"{account} {first} {last}",
                            bool(overdue))
            for pid, received, amount, owed, code, bps, account, first, last, overdue in db.session.execute(query)]


def unfunded_total() -> tuple[int, Money]:
    """How many CareCredit payments no funding has paid yet, and what CareCredit owes on them (their
    amounts less returns): with every funding line matched, the CareCredit receivable balance."""
    count, total = db.session.execute(
        sa.select(sa.func.count(Payment.id), sa.func.coalesce(sa.func.sum(Payment.amount_cents - _refunded()), 0))
        .where(*_unfunded_where())).one()
    return int(count), Money(int(total))
