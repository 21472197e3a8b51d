"""The monthly reconciliation: for each payment method what was recorded, what reached the bank, the
fees and the difference; the clearing accounts explained item by item; the A/R roll-forward; the
trial balance. Every figure is a SQL aggregate, never a Python loop over rows: the per-method sums
are kept per month in payment_month_figures (billing.services.settlement, at each commit), the rest
is a handful of GROUP BY queries.

A month's payments (received in it, of any status but pending or failed) are followed to the end of
the month, per payment:

    recorded     its amount less its refunds and returns (all dated in the month, as it was received in it)
    settled      what reached the bank for it by the month's end: card — the gross of its Stripe balance
                 transactions in payouts that arrived (charge, refunds, disputes); money order — its amount
                 when its deposit batch was deposited, less returns after the deposit and refund checks;
                 CareCredit — the gross of the funding line matched to it
    in transit   not yet paid out (card: the charge, less refunds not yet paid out), not yet deposited
                 (money orders on hand or in an open batch), not yet funded (CareCredit, less returns)
    fees         Stripe's fees on its balance transactions; CareCredit's fee on its funding line (with the
                 fee its plan expected: the plan rate captured on the payment, rounded half up)
    difference   recorded − settled − in transit: zero unless something was paid out, deposited or
                 funded for another amount than recorded (the drill-down lists the payments behind it)
"""

import calendar
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa

from billing.extensions import db
from billing.models import (
    Account, CareCreditFunding, CareCreditFundingLine, DepositBatch, DepositBatchItem, Dispute, DisputeOutcome,
    Patient, Payment, PaymentMethod, PaymentMonthFigures, PaymentStatus, Refund, StripeBalanceTransaction,
    StripePayout,
)
from billing.money import Money
from billing.reports.trial_balance import TrialBalanceRow, movements, totals, trial_balance
from billing.reports.trial_balance import balances as account_balances
from billing.services import journal, settlement
from billing.services.settlement import FEE_CATEGORIES

# A payment that came in (a card payment still waiting for Stripe, or refused, did not).
RECEIVED = settlement.RECEIVED
ITEM_LIMIT = 500  # rows listed per drill-down or clearing account (the totals always cover every row)

# The A/R roll-forward's terms, by the source of the journal entry that moved Receivables.
TERMS = {
    "Charge": "charges",  # charges and package sales; a voided charge's reversal counts against them
    "Payment": "payments",
    "Invoice": "payments",  # patient credit applied to an invoice (and given back when it is voided)
    "Adjustment": "adjustments",
    "Refund": "refunds",  # refunds and returned money orders reopen what the payment had paid
    "Dispute": "refunds",  # a lost dispute reopens what the payment had paid
}
SOURCE_LABELS = {
    "Charge": "Charges (voided charges less)", "Payment": "Payments applied", "Invoice": "Credit applied, net of voided invoices",
    "Adjustment": "Courtesy discounts and write-offs", "Refund": "Refunds and returns reopening invoices",
    "Dispute": "Lost disputes reopening invoices",
}
CLEARING_ACCOUNTS = {
    PaymentMethod.CARD: journal.STRIPE_CLEARING,
    PaymentMethod.MONEY_ORDER: journal.UNDEPOSITED,
    PaymentMethod.CARECREDIT: journal.CARECREDIT_RECEIVABLE,
}


def month_bounds(month: date) -> tuple[date, date]:
    """The first and last day of the month `month` falls in."""
    start = month.replace(day=1)
    return start, start.replace(day=calendar.monthrange(start.year, start.month)[1])


def parse_month(text: str) -> date | None:
    """The first day of a month written YYYY-MM, or None when it is not one."""
    try:
        year, month = (int(part) for part in text.strip().split("-"))
        if len(text.strip()) != 7:
            return None
        return date(year, month, 1)
    except ValueError:
        return None


# --- per payment: one SQL row each, aggregated by the queries below ----------------------------------

# The one definition of a payment's figures as of a day (billing.services.settlement, which also keeps
# them stored on each payment as of the end of the month it was received in).
_per_payment = settlement.per_payment


@contextmanager
def _without_jit():
    """PostgreSQL: no JIT compilation for the queries run inside. The per-payment lookups are correlated
    subqueries, so the planner's cost for a few thousand payments is high enough to JIT-compile them,
    which takes a second or two for a query that runs in milliseconds. The setting is restored after."""
    if db.session.get_bind().dialect.name != "postgresql":
        yield
        return
    previous = db.session.scalar(sa.text("SELECT current_setting('jit')"))
    db.session.execute(sa.text("SELECT set_config('jit', 'off', true)"))
    try:
        yield
    finally:
        db.session.execute(sa.text("SELECT set_config('jit', :value, true)"), {"value": previous})


# --- the methods ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MethodFigures:
    method: PaymentMethod
    count: int  # payments received in the month
    received: Money
    refund_count: int  # refunds and returns of those payments (dated in the month)
    refunded: Money
    settled: Money
    in_transit: Money
    fees: Money
    expected_fees: Money  # CareCredit: what the plans' rates ask on what was funded
    difference: Money
    unsettled: int  # payments with money still in transit
    differing: int  # payments with a difference
    fee_mismatches: int  # CareCredit payments funded with another fee than their plan's
    earlier_refund_count: int  # refunds dated in the month of payments received before it (not in the figures)
    earlier_refunded: Money

    @property
    def recorded(self) -> Money:
        return self.received - self.refunded

    @property
    def fee_difference(self) -> Money:
        """Actual − expected fees: positive when the funding came short."""
        return self.fees - self.expected_fees

    @property
    def net_to_bank(self) -> Money:
        return self.settled - self.fees

    @property
    def items(self) -> int:
        return self.unsettled + self.differing + self.fee_mismatches


def method_figures(month: date) -> list[MethodFigures]:
    """Each method's figures for the month (one row per method, zero rows included): the month's rows of
    payment_month_figures, the sums of the figures stored on each payment as of the month's end (kept
    by billing.services.settlement; with this transaction's change not yet committed), and one GROUP BY
    over the month's refunds of earlier months' payments."""
    start, end = month_bounds(month)
    columns = PaymentMonthFigures.__table__.c
    sums = {method: [0] * len(settlement.FIGURES) for method in PaymentMethod}
    for method, *values in db.session.execute(sa.select(columns.method, *(columns[name] for name in settlement.FIGURES))
                                              .where(columns.month == start)):
        sums[PaymentMethod(method)] = values
    for (when, method), change in settlement.pending_month_figures().items():
        if when == start:
            sums[method] = [a + b for a, b in zip(sums[method], change)]
    earlier = {method: (count, total) for method, count, total in db.session.execute(
        sa.select(Payment.method, sa.func.count(Refund.id), sa.func.sum(Refund.amount_cents))
        .join(Payment, Payment.id == Refund.payment_id)
        .where(Refund.refund_date.between(start, end), Payment.received_date < start)
        .group_by(Payment.method))}
    figures = []
    for method in PaymentMethod:
        v = dict(zip(settlement.FIGURES, (int(value) for value in sums[method])))
        difference = v["received_cents"] - v["refunded_cents"] - v["settled_cents"] - v["in_transit_cents"]
        earlier_count, earlier_total = earlier.get(method, (0, 0))
        figures.append(MethodFigures(
            method, v["payment_count"], Money(v["received_cents"]), v["refund_count"], Money(v["refunded_cents"]),
            Money(v["settled_cents"]), Money(v["in_transit_cents"]), Money(v["fee_cents"]),
            Money(v["expected_fee_cents"]), Money(difference), v["unsettled_count"], v["differing_count"],
            v["fee_mismatch_count"], int(earlier_count), Money(int(earlier_total or 0))))
    return figures


@dataclass(frozen=True)
class PaymentItem:
    payment_id: int
    method: PaymentMethod
    received: date
    status: PaymentStatus
    account: str
    patient: str
    amount: Money
    refunded: Money
    recorded: Money
    settled: Money
    in_transit: Money
    fees: Money
    expected_fee: Money
    difference: Money
    clearing: Money  # what it leaves in its clearing account at the month's end
    disputed: Money
    batch: str  # money orders: the deposit batch it is in ("" on hand)
    batch_status: str

    @property
    def fee_difference(self) -> Money:
        return self.fees - self.expected_fee

    @property
    def reasons(self) -> list[str]:
        """Why the payment is listed, in words."""
        out = []
        if self.in_transit:
            out.append({PaymentMethod.CARD: "not yet paid out", PaymentMethod.MONEY_ORDER: "not yet deposited",
                        PaymentMethod.CARECREDIT: "not yet funded"}[self.method])
        if self.difference:
            out.append("settled for another amount")
        if self.method == PaymentMethod.CARECREDIT and self.fee_difference:
            out.append("funded short" if self.fee_difference.is_positive else "funded over")
        if self.disputed:
            out.append("disputed")
        return out


def _item(r) -> PaymentItem:
    """A row of per-payment figures (with the patient's account number and name) as a PaymentItem."""
    return PaymentItem(
        r.payment_id, PaymentMethod(r.method), r.received, PaymentStatus(r.status), r.account_number,
        f"{r.first_name} {r.last_name}", Money(r.amount), Money(int(r.refunded)), Money(int(r.recorded)),
        Money(int(r.settled)), Money(int(r.in_transit)), Money(int(r.fees)), Money(int(r.expected_fee)),
        Money(int(r.difference)), Money(int(r.clearing)), Money(int(r.disputed)), r.batch_number or "",
        str(r.batch_status.value if hasattr(r.batch_status, "value") else r.batch_status or ""))


def _items(p: sa.Subquery, where, limit: int) -> list[PaymentItem]:
    query = (sa.select(p, Patient.account_number, Patient.first_name, Patient.last_name)
             .join(Patient, Patient.id == p.c.patient_id).where(where)
             .order_by(p.c.method, p.c.received, p.c.payment_id).limit(limit))
    return [_item(r) for r in db.session.execute(query)]


def drill_down(month: date, method: PaymentMethod, *, limit: int = ITEM_LIMIT) -> list[PaymentItem]:
    """The month's payments of `method` behind its difference: not yet settled, settled for another
    amount, or (CareCredit) funded with another fee than their plan's. Oldest first."""
    start, end = month_bounds(month)
    p = _per_payment(start, end)
    listed = sa.or_(p.c.in_transit != 0, p.c.difference != 0,
                    sa.and_(p.c.method == PaymentMethod.CARECREDIT, p.c.fees != p.c.expected_fee))
    with _without_jit():
        return _items(p, sa.and_(p.c.method == method, listed), limit)


# --- the clearing accounts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OtherItem:
    """What sits in a clearing account without a payment of ours: a Stripe balance transaction or a
    CareCredit funding line matched to none."""

    day: date
    reference: str
    description: str
    amount: Money  # its weight in the account


@dataclass(frozen=True)
class ClearingAccount:
    method: PaymentMethod
    code: str
    name: str
    payments: Money  # the payments' weight in it
    payment_count: int
    others: Money
    other_count: int
    journal_balance: Money
    items: list[PaymentItem]  # at most ITEM_LIMIT
    other_items: list[OtherItem]

    @property
    def explained(self) -> Money:
        return self.payments + self.others

    @property
    def unexplained(self) -> Money:
        """Journal balance − the items: zero in a consistent ledger."""
        return self.journal_balance - self.explained


def _not_cleared(end: date, *where) -> sa.CompoundSelect:
    """SQL: the ids of the payments received by `end` that may still weigh in their clearing account
    at `end`: not cleared by then (settlement.cleared_on), found by the index on (cleared_on,
    received_date, id) without reading the payments. No status test: a payment that did not come in
    has cleared_on its own date, so it is never among them."""
    P = Payment
    scope = (P.received_date <= end, *where)
    return sa.union_all(sa.select(P.id).where(P.cleared_on.is_(None), *scope),
                        sa.select(P.id).where(P.cleared_on > end, *scope))


def _disputed(end: date) -> sa.ColumnElement[int]:
    """SQL, correlated to Payment: what open disputes hold of a card payment at `end`."""
    won = sa.and_(Dispute.closed_on <= end, Dispute.outcome == DisputeOutcome.WON)
    held = (sa.case((Dispute.opened_on <= end, Dispute.amount_cents), else_=0)
            - sa.case((won, Dispute.amount_cents), else_=0))
    return sa.case((Payment.method == PaymentMethod.CARD, sa.select(sa.func.coalesce(sa.func.sum(held), 0))
                    .where(Dispute.payment_id == Payment.id).correlate(Payment).scalar_subquery()), else_=0)


def _month_in_clearing(start: date, end: date, *where) -> sa.Select:
    """SQL: the month's payments its end left in their clearing account, by the figures stored on
    them as of that day (the columns _item reads), found by the partial index
    ix_payments_in_clearing (method, received_date, id) in that order. No status test: a payment
    that did not come in stores nothing."""
    P = Payment
    return (
        sa.select(P.id.label("payment_id"), P.method.label("method"), P.received_date.label("received"),
                  P.status.label("status"), P.patient_id.label("patient_id"), P.amount_cents.label("amount"),
                  P.recon_refunded_cents.label("refunded"), (P.amount_cents - P.recon_refunded_cents).label("recorded"),
                  P.recon_settled_cents.label("settled"), P.recon_in_transit_cents.label("in_transit"),
                  P.recon_fee_cents.label("fees"), P.recon_expected_fee_cents.label("expected_fee"),
                  (P.amount_cents - P.recon_refunded_cents - P.recon_settled_cents - P.recon_in_transit_cents)
                  .label("difference"), P.recon_clearing_cents.label("clearing"), _disputed(end).label("disputed"),
                  DepositBatch.number.label("batch_number"), DepositBatch.status.label("batch_status"))
        .outerjoin(DepositBatchItem, sa.and_(P.method == PaymentMethod.MONEY_ORDER, DepositBatchItem.payment_id == P.id,
                                             DepositBatchItem.released_on.is_(None)))
        .outerjoin(DepositBatch, DepositBatch.id == DepositBatchItem.batch_id)
        .where(P.recon_clearing_cents != 0, P.received_date.between(start, end), *where)
    )


def _with_patient(rows: sa.Subquery) -> sa.Select:
    return (sa.select(rows, Patient.account_number, Patient.first_name, Patient.last_name)
            .join(Patient, Patient.id == rows.c.patient_id))


def clearing_accounts(month: date, *, limit: int = ITEM_LIMIT) -> list[ClearingAccount]:
    """Stripe clearing, Undeposited funds and CareCredit receivable at the month's end, each explained
    payment by payment (and by the Stripe transactions and CareCredit funding lines that are no
    payment's) next to its journal balance. Payments oldest first: earlier months' payments not
    cleared by the month's end (computed), then the month's own (by their stored figures)."""
    start, end = month_bounds(month)
    P = Payment
    methods = list(CLEARING_ACCOUNTS)
    sums = {method: (0, 0) for method in methods}
    lists = {method: [] for method in methods}
    with _without_jit():
        # Earlier months' payments still in a clearing account: each method's total and count on every
        # row, its first `limit` rows listed (one windowed pass; few rows in a reconciled ledger).
        p = _per_payment(None, end, _not_cleared(end, P.received_date < start))
        weights = sa.select(p).where(p.c.clearing != 0).subquery("earlier")
        ranked = sa.select(
            weights, sa.func.sum(weights.c.clearing).over(partition_by=weights.c.method).label("total"),
            sa.func.count().over(partition_by=weights.c.method).label("count"),
            sa.func.row_number().over(partition_by=weights.c.method,
                                      order_by=(weights.c.received, weights.c.payment_id)).label("rank"),
        ).subquery("ranked")
        for r in db.session.execute(_with_patient(ranked).where(ranked.c.rank <= limit)
                                    .order_by(ranked.c.method, ranked.c.received, ranked.c.payment_id)):
            sums[PaymentMethod(r.method)] = (int(r.total), int(r.count))
            lists[PaymentMethod(r.method)].append(_item(r))
        # The month's own: totals from the partial index, and each method's oldest up to the limit.
        for method, total, count in db.session.execute(
                sa.select(P.method, sa.func.sum(P.recon_clearing_cents), sa.func.count())
                .where(P.method.in_(methods), P.recon_clearing_cents != 0, P.received_date.between(start, end))
                .group_by(P.method)):
            earlier_total, earlier_count = sums[PaymentMethod(method)]
            sums[PaymentMethod(method)] = (earlier_total + int(total), earlier_count + int(count))
        rooms = {method: limit - len(lists[method]) for method in methods
                 if len(lists[method]) < min(limit, sums[method][1])}
        if rooms:  # one statement: each method's rows in index order, up to its room
            rows = sa.union_all(*(
                sa.select(_month_in_clearing(start, end, P.method == method).order_by(P.received_date, P.id)
                          .limit(room).subquery()) for method, room in rooms.items())).subquery("month")
            for r in db.session.execute(_with_patient(rows).order_by(rows.c.method, rows.c.received, rows.c.payment_id)):
                lists[PaymentMethod(r.method)].append(_item(r))
    BT, Line = StripeBalanceTransaction, CareCreditFundingLine
    stripe_others = (sa.select(StripePayout.arrival_date, BT.transaction_id, BT.description, -BT.gross_cents)
                     .join(StripePayout, StripePayout.id == BT.payout_id)
                     .where(StripePayout.arrival_date <= end, BT.payment_id.is_(None),
                            BT.reporting_category.notin_(FEE_CATEGORIES)))
    funding_others = (sa.select(CareCreditFunding.funded_on, CareCreditFunding.reference,
                                Line.authorization_code, -Line.gross_cents)
                      .join(CareCreditFunding, CareCreditFunding.id == Line.funding_id)
                      .where(CareCreditFunding.funded_on <= end, Line.payment_id.is_(None)))
    others = {PaymentMethod.CARD: stripe_others, PaymentMethod.CARECREDIT: funding_others}
    names = dict(db.session.execute(sa.select(Account.code, Account.name)).all())
    balances = account_balances(end, CLEARING_ACCOUNTS.values())
    accounts = []
    for method, code in CLEARING_ACCOUNTS.items():
        other_total, other_count, other_items = 0, 0, []
        if method in others:
            rows = others[method].subquery()
            amount = list(rows.c)[3]
            other_total, other_count = db.session.execute(
                sa.select(sa.func.coalesce(sa.func.sum(amount), 0), sa.func.count())).one()
            other_items = [OtherItem(day, ref, text or "", Money(int(value))) for day, ref, text, value
                           in db.session.execute(others[method].order_by(list(others[method].selected_columns)[0])
                                                 .limit(limit))]
        total, count = sums[method]
        accounts.append(ClearingAccount(
            method, code, names.get(code, code), Money(total), count, Money(int(other_total)), int(other_count),
            balances.get(code, Money.zero()), lists[method], other_items))
    return accounts


# --- A/R roll-forward ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RollForwardLine:
    source_type: str
    label: str
    term: str  # charges, payments, adjustments, refunds or other
    amount: Money  # signed as posted to Receivables (debits positive)


@dataclass(frozen=True)
class RollForward:
    start: date
    end: date
    opening: Money
    lines: list[RollForwardLine]
    journal_closing: Money  # journal.balance(RECEIVABLES, as_of=end)

    def _term(self, term: str) -> Money:
        return sum((line.amount for line in self.lines if line.term == term), Money.zero())

    @property
    def charges(self) -> Money:
        return self._term("charges")

    @property
    def payments(self) -> Money:
        """Payments and credit applied, as a positive amount subtracted."""
        return -self._term("payments")

    @property
    def adjustments(self) -> Money:
        return -self._term("adjustments")

    @property
    def refunds(self) -> Money:
        return self._term("refunds")

    @property
    def other(self) -> Money:
        return self._term("other")

    @property
    def closing(self) -> Money:
        return self.opening + self.charges - self.payments - self.adjustments + self.refunds + self.other

    @property
    def difference(self) -> Money:
        """Journal closing − computed closing: zero when every posting to Receivables is in a term."""
        return self.journal_closing - self.closing


def ar_roll_forward(month: date) -> RollForward:
    """Receivables from the day before the month to its last day, by the source of the entries that
    moved it, with the journal's own closing balance to tie to (the stored month totals)."""
    start, end = month_bounds(month)
    lines = [RollForwardLine(source, SOURCE_LABELS.get(source, source), TERMS.get(source, "other"), amount)
             for source, amount in movements(journal.RECEIVABLES, start, end).items()]
    opening = account_balances(start - timedelta(days=1), [journal.RECEIVABLES])[journal.RECEIVABLES]
    closing = account_balances(end, [journal.RECEIVABLES])[journal.RECEIVABLES]
    return RollForward(start, end, opening, lines, closing)


# --- the whole report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reconciliation:
    month: date
    end: date
    methods: list[MethodFigures]
    clearing: list[ClearingAccount]
    receivables: RollForward
    trial_balance: list[TrialBalanceRow]

    @property
    def trial_totals(self) -> tuple[Money, Money]:
        return totals(self.trial_balance)

    @property
    def carecredit(self) -> MethodFigures:
        return self.method(PaymentMethod.CARECREDIT)

    def method(self, method: PaymentMethod) -> MethodFigures:
        return next(m for m in self.methods if m.method == method)

    def account(self, method: PaymentMethod) -> ClearingAccount:
        return next(a for a in self.clearing if a.method == method)


def reconciliation(month: date) -> Reconciliation:
    """The month's reconciliation (`month`: any day in it)."""
    start, end = month_bounds(month)
    return Reconciliation(start, end, method_figures(start), clearing_accounts(start), ar_roll_forward(start),
                          trial_balance(end))


CSV_HEADER = ("Section", "Item", "Count", "Amount", "Detail")


def csv_rows(report: Reconciliation):
    """The report as CSV rows under CSV_HEADER (amounts in dollars), in the page's order."""
    for m in report.methods:
        label = m.method.label
        yield [label, "Received", m.count, m.received.plain(), ""]
        yield [label, "Refunds and returns", m.refund_count, (-m.refunded).plain(), ""]
        yield [label, "Recorded", "", m.recorded.plain(), ""]
        yield [label, "Settled", "", m.settled.plain(), ""]
        yield [label, "In transit", m.unsettled, m.in_transit.plain(), ""]
        yield [label, "Difference", m.differing, m.difference.plain(), ""]
        yield [label, "Fees", "", m.fees.plain(), ""]
        if m.method == PaymentMethod.CARECREDIT:
            yield [label, "Fees expected by the plans", "", m.expected_fees.plain(), ""]
            yield [label, "Fees actual − expected", m.fee_mismatches, m.fee_difference.plain(), ""]
        yield [label, "Net to the bank", "", m.net_to_bank.plain(), ""]
        if m.earlier_refund_count:
            yield [label, "Refunds of earlier months' payments", m.earlier_refund_count,
                   (-m.earlier_refunded).plain(), "not in the figures above"]
    for a in report.clearing:
        section = f"{a.code} {a.name}"
        for item in a.items:
            yield [section, f"Payment #{item.payment_id}", "", item.clearing.plain(),
                   f"{item.received.isoformat()} {item.account} {item.patient}; {', '.join(item.reasons)}"]
        for other in a.other_items:
            yield [section, other.reference, "", other.amount.plain(), f"{other.day.isoformat()} {other.description}"]
        yield [section, "Payments", a.payment_count, a.payments.plain(), ""]
        yield [section, "Not a payment of ours", a.other_count, a.others.plain(), ""]
        yield [section, "Explained", "", a.explained.plain(), ""]
        yield [section, "Journal balance", "", a.journal_balance.plain(), ""]
        yield [section, "Unexplained", "", a.unexplained.plain(), ""]
    r = report.receivables
    yield ["A/R roll-forward", "Opening", "", r.opening.plain(), f"as of {(r.start - timedelta(days=1)).isoformat()}"]
    for line in r.lines:
        yield ["A/R roll-forward", line.label, "", line.amount.plain(), f"{line.term} ({line.source_type})"]
    yield ["A/R roll-forward", "Charges", "", r.charges.plain(), ""]
    yield ["A/R roll-forward", "Payments", "", (-r.payments).plain(), ""]
    yield ["A/R roll-forward", "Adjustments", "", (-r.adjustments).plain(), ""]
    yield ["A/R roll-forward", "Refunds and reopens", "", r.refunds.plain(), ""]
    if r.other:
        yield ["A/R roll-forward", "Other", "", r.other.plain(), ""]
    yield ["A/R roll-forward", "Closing", "", r.closing.plain(), f"as of {r.end.isoformat()}"]
    yield ["A/R roll-forward", "Journal closing", "", r.journal_closing.plain(), ""]
    yield ["A/R roll-forward", "Difference", "", r.difference.plain(), ""]
    for row in report.trial_balance:
        yield ["Trial balance", f"{row.code} {row.name}", "", row.balance.plain(),
               f"debits {row.debits.plain()} credits {row.credits.plain()}"]
    debits, credits = report.trial_totals
    yield ["Trial balance", "Total", "", (debits - credits).plain(), f"debits {debits.plain()} credits {credits.plain()}"]
