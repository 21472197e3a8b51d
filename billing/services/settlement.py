"""Each payment's month-end reconciliation figures, stored on the payment and kept current.

The monthly reconciliation (billing.reports.reconciliation, whose docstring defines every figure)
sums, for the payments received in a month, what `per_payment(start, end)` computes for each as of
the month's last day. Those figures are stored on the payment (the recon_* columns), and with them
`cleared_on`: None while the payment still weighs in its clearing account (as of the end of time),
else the latest day anything moved it, so that a payment in a clearing account at the end of any
day D has cleared_on None or after D.

How they are kept — nothing to call in a service:
- a payment added to the session gets its figures when it is flushed, without a query (received:
  all of it in transit and in its clearing account; a pending card payment: nothing, cleared_on its
  date);
- every flush that writes something that moves payments' settlement — a refund or return, a
  dispute, a Stripe balance transaction, a CareCredit funding line matched or unmatched, a deposit
  batch item added or released, a deposit batch deposited, a payout or funding changed, a payment's
  status, amount or date — recomputes those payments in the same flush (after_flush_postexec), from
  the one definition below, and writes the rows that changed (one executemany UPDATE);
- code that writes such rows with Core statements (not through the unit of work) calls touch(ids):
  they are recomputed at the next flush, or at the commit. refresh(ids) recomputes at once.

stale() lists the payments whose stored figures differ from a fresh computation (for tests).

The month figures. payment_month_figures holds, per month and method, the sums of the stored figures
of the payments that came in, with the reconciliation's counts (`month_figure_columns`). They are kept
like the journal's month totals (billing.services.journal): the first time a transaction changes a
payment (a new one, a flush that writes its status, amount, date or method, or a refresh that
rewrites its figures) its figures as they stood are remembered in `session.info`; when the outermost
transaction commits, ONE upsert adds each month and method's change (now − then) in key order. Until
then `pending_month_figures()` gives the transaction's own change. A writer outside the session
(billing/bulk_seed.py, a migration) fills the table with the same GROUP BY (`month_figures_query`);
month_figures_drift() lists where the table and the payments disagree.
"""

import calendar
import functools
from collections import defaultdict
from collections.abc import Iterable
from datetime import date

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.functions import FunctionElement

from billing.models import (
    CareCreditDetails, CareCreditFunding, CareCreditFundingLine, DepositBatch, DepositBatchItem, DepositStatus,
    Dispute, DisputeOutcome, Payment, PaymentMethod, PaymentMonthFigures, PaymentStatus, Refund, RefundKind,
    StripeBalanceTransaction, StripePayout,
)
from billing.models.types import month_start

# A payment that came in (a card payment still waiting for Stripe, or refused, did not).
RECEIVED = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED,
            PaymentStatus.RETURNED)
# Stripe charging the clinic for its own services: no payment's (billing.services.payouts.FEE_CATEGORIES).
FEE_CATEGORIES = ("fee", "network_cost")
END_OF_TIME = date(9999, 12, 31)  # `end` for a payment's figures once everything has happened
# The stored figures, in the order `_fresh` gives them.
COLUMNS = ("recon_refunded_cents", "recon_refund_count", "recon_settled_cents", "recon_in_transit_cents",
           "recon_fee_cents", "recon_expected_fee_cents", "recon_clearing_cents", "cleared_on")
_TOUCHED = "settlement_touched"  # the session.info key of the payment ids to recompute at the next flush
_BEFORE = "settlement_figures_before"  # session.info: (outermost transaction, {payment id: figures then})


def month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


# --- the definition ---------------------------------------------------------------------------------


class _latest(FunctionElement):
    """The latest of some dates (none of them NULL)."""

    type = sa.Date()
    inherit_cache = True


@compiles(_latest)
def _latest_default(element, compiler, **kw):
    return f"greatest({compiler.process(element.clauses, **kw)})"


@compiles(_latest, "sqlite")
def _latest_sqlite(element, compiler, **kw):
    return f"max({compiler.process(element.clauses, **kw)})"


def per_payment(start: date | None, end: date, ids=None, *, last_moved: bool = False) -> sa.Subquery:
    """SQL: one row per payment received by `end` (from `start` when given; among `ids`, a list or a
    SELECT of payment ids, when given) that came in, with what was recorded, settled, in transit, its
    fees and its weight in its clearing account, all as of `end`; with `last_moved`, also the latest day
    by `end` that anything moved it (received, refunded or returned, paid out, funded, deposited,
    disputed).

    One pass over the payments: what belongs to a payment (refunds, Stripe transactions, its funding
    line, its deposit) is looked up by its id, and only where it can exist (refunds only for a payment no
    longer simply succeeded, Stripe only for cards, ...). The lookups sit in an inner query behind
    OFFSET 0, so the figures built from them below read each lookup once."""
    P, BT, Line = Payment, StripeBalanceTransaction, CareCreditFundingLine
    in_scope = [P.received_date <= end, P.status.in_(RECEIVED)]
    if start is not None:
        in_scope.append(P.received_date >= start)
    if ids is not None:
        in_scope.append(P.id.in_(ids))
    card, money_order = P.method == PaymentMethod.CARD, P.method == PaymentMethod.MONEY_ORDER
    carecredit = P.method == PaymentMethod.CARECREDIT
    touched = P.status != PaymentStatus.SUCCEEDED  # refunded, returned or lost to a dispute

    def lookup(when, column, *where, join=None):
        query = sa.select(column)
        if join is not None:
            query = query.select_from(BT).join(*join)
        return sa.case((when, query.where(*where).correlate(P).scalar_subquery()), else_=0)

    total = lambda column: sa.func.coalesce(sa.func.sum(column), 0)  # noqa: E731
    refunds_of = (Refund.payment_id == P.id, Refund.refund_date <= end)
    paid_out = (BT.payment_id == P.id, StripePayout.arrival_date <= end)
    payout = (StripePayout, StripePayout.id == BT.payout_id)
    funded = sa.and_(Line.payment_id == P.id,
                     Line.funding_id.in_(sa.select(CareCreditFunding.id).where(CareCreditFunding.funded_on <= end)))
    deposited_by_end = sa.and_(DepositBatch.status == DepositStatus.DEPOSITED, DepositBatch.deposited_on <= end)
    dates = []
    if last_moved:
        def day(column, *where, select_from=None):
            query = sa.select(sa.func.max(column))
            if select_from is not None:
                query = query.select_from(select_from)
            return sa.func.coalesce(query.where(*where).correlate(P).scalar_subquery(), P.received_date)

        dates = [_latest(
            P.received_date,
            day(Refund.refund_date, *refunds_of),
            day(StripePayout.arrival_date, *paid_out, select_from=sa.join(BT, StripePayout, StripePayout.id == BT.payout_id)),
            day(CareCreditFunding.funded_on, Line.payment_id == P.id, CareCreditFunding.funded_on <= end,
                select_from=sa.join(Line, CareCreditFunding, CareCreditFunding.id == Line.funding_id)),
            sa.func.coalesce(sa.case((deposited_by_end, DepositBatch.deposited_on)), P.received_date),
            day(Dispute.opened_on, Dispute.payment_id == P.id, Dispute.opened_on <= end),
            day(Dispute.closed_on, Dispute.payment_id == P.id, Dispute.closed_on <= end),
        ).label("last_moved")]
    inner = (
        sa.select(
            P.id.label("payment_id"), P.method.label("method"), P.received_date.label("received"),
            P.status.label("status"), P.patient_id.label("patient_id"), P.amount_cents.label("amount"),
            lookup(touched, total(Refund.amount_cents), *refunds_of).label("refunded"),
            lookup(touched, sa.func.count(Refund.id), *refunds_of).label("refund_count"),
            lookup(sa.and_(money_order, P.status == PaymentStatus.RETURNED), total(Refund.amount_cents),
                   *refunds_of, Refund.kind == RefundKind.RETURN).label("returned"),
            lookup(card, sa.func.count(BT.id), *paid_out, BT.reporting_category == "charge",
                   join=payout).label("charges_paid"),
            lookup(card, total(BT.gross_cents), *paid_out, BT.reporting_category.notin_(FEE_CATEGORIES),
                   join=payout).label("stripe_gross"),
            lookup(card, total(BT.fee_cents), *paid_out, BT.reporting_category.notin_(FEE_CATEGORIES),
                   join=payout).label("stripe_fee"),
            lookup(sa.and_(card, touched), total(-BT.gross_cents), *paid_out, BT.reporting_category == "refund",
                   join=payout).label("refunds_paid"),
            lookup(card, total(sa.case((Dispute.opened_on <= end, Dispute.amount_cents), else_=0)
                               - sa.case((sa.and_(Dispute.closed_on <= end, Dispute.outcome == DisputeOutcome.WON),
                                          Dispute.amount_cents), else_=0)),
                   Dispute.payment_id == P.id).label("disputed"),
            sa.func.coalesce(Line.id, 0).label("funded_line"),
            sa.func.coalesce(Line.gross_cents, 0).label("funded_gross"),
            sa.func.coalesce(Line.fee_cents, 0).label("funded_fee"),
            sa.case((Line.id.is_not(None), (P.amount_cents * CareCreditDetails.merchant_fee_bps + 5000) // 10000),
                    else_=0).label("expected_fee"),
            sa.case((deposited_by_end, 1), else_=0).label("deposited"),
            DepositBatch.number.label("batch_number"), DepositBatch.status.label("batch_status"),
            *dates,
        )
        .select_from(P)
        .outerjoin(Line, sa.and_(carecredit, funded))
        .outerjoin(CareCreditDetails, sa.and_(Line.id.is_not(None), CareCreditDetails.payment_id == P.id))
        .outerjoin(DepositBatchItem, sa.and_(money_order, DepositBatchItem.payment_id == P.id,
                                             DepositBatchItem.released_on.is_(None)))
        .outerjoin(DepositBatch, DepositBatch.id == DepositBatchItem.batch_id)
        .where(*in_scope)
        .offset(0)  # a fence: the figures below read each lookup once
        .subquery("lookups")
    )
    c = inner.c
    is_card = c.method == PaymentMethod.CARD
    is_money_order = c.method == PaymentMethod.MONEY_ORDER
    settled = sa.case(
        (is_card, c.stripe_gross),
        (is_money_order, sa.case((c.deposited == 1, c.amount - c.returned), else_=0) - (c.refunded - c.returned)),
        else_=c.funded_gross)
    in_transit = sa.case(
        (is_card, sa.case((c.charges_paid > 0, 0), else_=c.amount) - (c.refunded - c.refunds_paid)),
        (is_money_order, sa.case((sa.or_(c.deposited == 1, c.returned > 0), 0), else_=c.amount)),
        else_=sa.case((c.funded_line != 0, 0), else_=c.amount - c.refunded))
    # What the payment leaves in its clearing account (the journal's postings, payment by payment).
    clearing = sa.case(
        (is_card, c.amount - c.refunded - c.stripe_gross - c.disputed),
        (is_money_order, sa.case((sa.or_(c.deposited == 1, c.returned > 0), 0), else_=c.amount)),
        else_=c.amount - c.refunded - c.funded_gross)
    return sa.select(
        c.payment_id, c.method, c.received, c.status, c.patient_id, c.amount, c.refunded, c.refund_count,
        c.returned, (c.amount - c.refunded).label("recorded"), settled.label("settled"),
        in_transit.label("in_transit"),
        sa.case((is_card, c.stripe_fee), else_=c.funded_fee).label("fees"),
        sa.cast(c.expected_fee, sa.BigInteger).label("expected_fee"),
        (c.amount - c.refunded - settled - in_transit).label("difference"),
        clearing.label("clearing"), c.disputed, c.batch_number, c.batch_status,
        *([sa.type_coerce(c.last_moved, sa.Date).label("last_moved")] if last_moved else []),
    ).subquery("per_payment")


# --- storing it -------------------------------------------------------------------------------------


def initial(payment: Payment) -> None:
    """A new payment's figures, with nothing yet moved: received, all of it is in transit and in its
    clearing account; not (yet) received, nothing. No query."""
    came_in = payment.status in RECEIVED
    for name in COLUMNS[:-1]:
        setattr(payment, name, 0)
    if came_in:
        payment.recon_in_transit_cents = payment.recon_clearing_cents = payment.amount_cents
    payment.cleared_on = None if came_in else payment.received_date


def _stored(connection, ids: list[int] | None) -> list[sa.Row]:
    P = Payment
    query = sa.select(P.id, P.received_date, P.status, *(getattr(P, name) for name in COLUMNS))
    if ids is not None:
        query = query.where(P.id.in_(ids))
    return list(connection.execute(query.order_by(P.id)))


def _fresh(connection, rows: list[sa.Row], *, restrict: bool = True) -> dict[int, tuple]:
    """What the payments of `rows` (from _stored) should hold, in COLUMNS order. With restrict=False,
    `rows` are all the payments and the queries are not limited by id."""
    zero = (0,) * (len(COLUMNS) - 1)
    fresh = {row.id: zero + (row.received_date,) for row in rows}  # not received: nothing
    received = [row for row in rows if row.status in RECEIVED]
    if not received:
        return fresh
    ids = [row.id for row in received] if restrict else None
    p = per_payment(None, END_OF_TIME, ids, last_moved=True)
    all_time = {r.payment_id: r for r in connection.execute(sa.select(p.c.payment_id, p.c.clearing, p.c.last_moved))}
    by_month = defaultdict(list)
    for row in received:
        by_month[row.received_date.replace(day=1)].append(row.id)
    for start, month_ids in sorted(by_month.items()):
        p = per_payment(start, month_end(start), month_ids if restrict else None)
        for r in connection.execute(sa.select(p.c.payment_id, p.c.refunded, p.c.refund_count, p.c.settled,
                                              p.c.in_transit, p.c.fees, p.c.expected_fee, p.c.clearing)):
            ever = all_time[r.payment_id]
            fresh[r.payment_id] = (*(int(v) for v in r[1:]), ever.last_moved if ever.clearing == 0 else None)
    return fresh


def _write(connection, session: so.Session, changed: dict[int, tuple]) -> list[int]:
    """Write the figures of the payments in `changed` (one executemany UPDATE, in id order); loaded
    payments take the new values as their committed state. Returns the ids written."""
    if not changed:
        return []
    table = Payment.__table__
    connection.execute(
        sa.update(table).where(table.c.id == sa.bindparam("_id"))
        .values({name: sa.bindparam(f"_{name}") for name in COLUMNS}),
        [{"_id": pid, **{f"_{name}": value for name, value in zip(COLUMNS, values)}} for pid, values in changed.items()])
    for pid, values in changed.items():
        payment = session.identity_map.get(so.util.identity_key(Payment, pid))
        if payment is not None:
            for name, value in zip(COLUMNS, values):
                set_committed_value(payment, name, value)
    return list(changed)


def refresh(payment_ids: Iterable[int], *, session: so.Session | None = None) -> list[int]:
    """Recompute the stored figures and cleared_on of the payments (any status); write those that
    changed. Returns the ids written."""
    from billing.extensions import db

    session = session or db.session
    ids = sorted({int(i) for i in payment_ids if i is not None})
    if not ids:
        return []
    connection = session.connection()
    rows = _stored(connection, ids)
    fresh = _fresh(connection, rows)
    changed = {row.id: fresh[row.id] for row in rows if tuple(row[3:]) != fresh[row.id]}
    _remember(session, changed)
    return _write(connection, session, changed)


def touch(payment_ids: Iterable[int], *, session: so.Session | None = None) -> None:
    """Recompute these payments at the next flush (for rows written with Core statements)."""
    from billing.extensions import db

    (session or db.session).info.setdefault(_TOUCHED, set()).update(i for i in payment_ids if i is not None)


def stale() -> list[int]:
    """The payments whose stored figures or cleared_on differ from a fresh computation (SQL over every
    payment: for tests)."""
    from billing.extensions import db

    connection = db.session.connection()
    rows = _stored(connection, None)
    fresh = _fresh(connection, rows, restrict=False)
    return [row.id for row in rows if tuple(row[3:]) != fresh[row.id]]


# --- the month figures ------------------------------------------------------------------------------


def month_figure_columns() -> dict[str, sa.ColumnElement[int]]:
    """SQL, per payment that came in: what it adds to each column of payment_month_figures."""
    P = Payment
    difference = P.amount_cents - P.recon_refunded_cents - P.recon_settled_cents - P.recon_in_transit_cents
    flag = lambda condition: sa.case((condition, 1), else_=0)  # noqa: E731
    return {
        "payment_count": sa.literal(1, sa.Integer), "received_cents": P.amount_cents,
        "refund_count": P.recon_refund_count, "refunded_cents": P.recon_refunded_cents,
        "settled_cents": P.recon_settled_cents, "in_transit_cents": P.recon_in_transit_cents,
        "fee_cents": P.recon_fee_cents, "expected_fee_cents": P.recon_expected_fee_cents,
        "unsettled_count": flag(P.recon_in_transit_cents != 0), "differing_count": flag(difference != 0),
        "fee_mismatch_count": flag(sa.and_(P.method == PaymentMethod.CARECREDIT,
                                           P.recon_fee_cents != P.recon_expected_fee_cents)),
    }


FIGURES = tuple(month_figure_columns())  # payment_month_figures' figure columns, in this order


def month_figures_query(*where) -> sa.Select:
    """SQL: the payment_month_figures rows of the payments (those that came in, and `where`):
    month, method and FIGURES, by GROUP BY."""
    month = month_start(Payment.received_date)
    return (sa.select(month.label("month"), Payment.method.label("method"),
                      *(sa.func.sum(column).label(name) for name, column in month_figure_columns().items()))
            .where(Payment.status.in_(RECEIVED), *where).group_by(month, Payment.method))


def _figures_by_id(connection, ids: list[int]) -> dict[int, tuple[tuple[date, PaymentMethod], tuple[int, ...]]]:
    """What each of the payments adds to payment_month_figures now: ((month, method), FIGURES values);
    a payment that did not come in adds nothing and is left out."""
    return {r[0]: ((r[1], PaymentMethod(r[2])), tuple(int(v) for v in r[3:]))
            for r in connection.execute(_figures_statement(), {"ids": ids})}


@functools.cache
def _figures_statement() -> sa.Select:
    P = Payment
    return (sa.select(P.id, month_start(P.received_date), P.method, *month_figure_columns().values())
            .where(P.id.in_(sa.bindparam("ids", expanding=True)), P.status.in_(RECEIVED)))


def _before(session: so.Session) -> dict[int, tuple | None]:
    """The figures the payments changed in the session's outermost transaction added before it first
    changed them (None: nothing)."""
    transaction = session.get_transaction()
    held = session.info.get(_BEFORE)
    if held is None or held[0] is not transaction:
        held = session.info[_BEFORE] = (transaction, {})
    return held[1]


def _remember(session: so.Session, ids: Iterable[int], *, new: bool = False) -> None:
    """Before the payments change: note what they add to the month figures, unless this transaction
    already has (a new payment added nothing)."""
    ids = {i for i in ids if i is not None}
    if not ids:
        return
    connection = session.connection()  # begins the transaction the figures are remembered for
    before = _before(session)
    ids = sorted(ids - before.keys())
    found = {} if new or not ids else _figures_by_id(connection, ids)
    before.update({i: found.get(i) for i in ids})


@functools.cache
def _change_statement(earlier: int) -> sa.Select:
    """SQL: each month and method's change, grouped and in key order: what the payments :ids add now
    (status and figures as they stand), plus `earlier` rows of bound values (:month_N, :method_N and
    :FIGURE_N, negated sums of what they added before). Built once per shape."""
    P = Payment
    parts = [sa.select(month_start(P.received_date).label("month"), P.method.label("method"),
                       *(column.label(name) for name, column in month_figure_columns().items()))
             .where(P.id.in_(sa.bindparam("ids", expanding=True)), P.status.in_(RECEIVED))]
    parts += [sa.select(sa.bindparam(f"month_{n}", type_=sa.Date).label("month"),
                        sa.bindparam(f"method_{n}", type_=sa.String).label("method"),
                        *(sa.bindparam(f"{name}_{n}", type_=sa.BigInteger).label(name) for name in FIGURES))
              for n in range(earlier)]
    changes = sa.union_all(*parts).subquery("changes")
    key = (changes.c.month, changes.c.method)
    return (sa.select(*key, *(sa.func.sum(changes.c[name]).label(name) for name in FIGURES))
            .group_by(*key).order_by(*key))


def _change_params(before: dict[int, tuple | None]) -> tuple[int, dict]:
    """The shape of _change_statement for the payments in `before` (what they added before summed per
    month and method here) and its parameters."""
    earlier = defaultdict(lambda: [0] * len(FIGURES))
    for entry in before.values():
        if entry is not None:
            earlier[entry[0]] = [a + b for a, b in zip(earlier[entry[0]], entry[1])]
    params = {"ids": sorted(before)}
    for n, ((month, method), figures) in enumerate(sorted(earlier.items())):
        params.update({f"month_{n}": month, f"method_{n}": method.value,
                       **{f"{name}_{n}": -value for name, value in zip(FIGURES, figures)}})
    return len(earlier), params


def _held_before(session: so.Session) -> dict[int, tuple | None]:
    held = session.info.get(_BEFORE)
    return held[1] if held is not None and held[0] is session.get_transaction() else {}


def pending_month_figures(session: so.Session | None = None) -> dict[tuple[date, PaymentMethod], list[int]]:
    """The change the session's transaction made to the month figures, not yet in payment_month_figures
    (empty once it commits): {(month, method): FIGURES values}, no zero changes."""
    from billing.extensions import db

    session = session if session is not None else db.session()
    before = _held_before(session)
    if not before:
        return {}
    earlier, params = _change_params(before)
    changes = {(r[0], PaymentMethod(r[1])): [int(v) for v in r[2:]]
               for r in session.connection().execute(_change_statement(earlier), params)}
    return {key: change for key, change in changes.items() if any(change)}


def _add_to_month_figures(session: so.Session) -> None:
    """At the outermost commit: the transaction's change added to payment_month_figures in one upsert,
    in key order (PostgreSQL locks the rows in one order: two commits wait for each other, never
    deadlock)."""
    before = _held_before(session)
    if before:
        earlier, params = _change_params(before)
        session.execute(_change_upsert(session.get_bind().dialect.name, earlier), params)
    session.info.pop(_BEFORE, None)


@functools.cache
def _change_upsert(dialect: str, earlier: int) -> sa.Insert:
    return _upsert(dialect, _change_statement(earlier))


def _upsert(dialect: str, rows: sa.Select) -> sa.Insert:
    """INSERT .. SELECT `rows` (month, method and FIGURES) into payment_month_figures, adding to the rows
    it has."""
    table = PaymentMonthFigures.__table__
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect](table)
    insert = insert.from_select(["month", "method", *FIGURES], rows)
    return insert.on_conflict_do_update(index_elements=[table.c.month, table.c.method],
                                        set_={name: table.c[name] + insert.excluded[name] for name in FIGURES})


def add_to_month_figures(session: so.Session, rows: sa.Select) -> None:
    """Add `rows`, a SELECT of month, method and FIGURES, to payment_month_figures (for writers outside
    the session's bookkeeping: billing/bulk_seed.py)."""
    session.execute(_upsert(session.get_bind().dialect.name, rows))


def month_figures_drift() -> list[tuple[date, PaymentMethod]]:
    """The months and methods where payment_month_figures (with this transaction's pending change) is not
    the GROUP BY over the payments (SQL over every payment: for tests)."""
    from billing.extensions import db

    zero = (0,) * len(FIGURES)
    computed = {(r.month, PaymentMethod(r.method)): tuple(int(v) for v in r[2:])
                for r in db.session.execute(month_figures_query())}
    stored = {(r.month, r.method): [getattr(r, name) for name in FIGURES]
              for r in db.session.scalars(sa.select(PaymentMonthFigures))}
    for key, change in pending_month_figures().items():
        stored[key] = [a + b for a, b in zip(stored.get(key, zero), change)]
    return sorted(key for key in computed.keys() | stored.keys()
                  if computed.get(key, zero) != tuple(stored.get(key, zero)))


# --- the flush hook ---------------------------------------------------------------------------------

# What moves a payment's settlement, by the row written: the payment it belongs to.
_BELONGS_TO = (Refund, Dispute, StripeBalanceTransaction, CareCreditFundingLine, DepositBatchItem)
_PAYMENT_FIELDS = ("status", "received_date", "amount_cents", "method")


def _payment_ids_of(obj, new: bool) -> set[int]:
    """The payment ids a written row refers to, now and (changed) before."""
    state = sa.inspect(obj)
    ids = {obj.payment_id}
    if not new:
        ids.update(state.attrs.payment_id.history.deleted or ())
    return ids


@sa.event.listens_for(so.Session, "before_flush")
def _before_flush(session, flush_context, instances) -> None:
    for obj in session.new:
        if isinstance(obj, Payment):
            initial(obj)
    _remember(session, [obj.id for obj in session.dirty if isinstance(obj, Payment) and any(
        sa.inspect(obj).attrs[name].history.has_changes() for name in _PAYMENT_FIELDS)])


@sa.event.listens_for(so.Session, "after_flush")
def _after_flush(session, flush_context) -> None:
    """Collect the payments this flush moved (the session still shows what it wrote)."""
    _remember(session, [obj.id for obj in session.new if isinstance(obj, Payment)], new=True)
    ids: set[int] = set()
    batches, payouts, fundings = set(), set(), set()
    for group, new in ((session.new, True), (session.dirty, False), (session.deleted, False)):
        for obj in group:
            if isinstance(obj, _BELONGS_TO):
                ids |= _payment_ids_of(obj, new)
            elif isinstance(obj, Payment):
                state = sa.inspect(obj)
                if not new and any(state.attrs[name].history.has_changes() for name in _PAYMENT_FIELDS):
                    ids.add(obj.id)
            elif not new and isinstance(obj, CareCreditDetails):  # the plan's rate (a new one: a new payment)
                ids.add(obj.payment_id)
            elif not new and isinstance(obj, DepositBatch):
                batches.add(obj.id)
            elif not new and isinstance(obj, StripePayout):
                payouts.add(obj.id)
            elif not new and isinstance(obj, CareCreditFunding):
                fundings.add(obj.id)
    connection = session.connection()
    for ids_of, where in ((batches, lambda b: sa.select(DepositBatchItem.payment_id).where(DepositBatchItem.batch_id.in_(b))),
                          (payouts, lambda b: sa.select(StripeBalanceTransaction.payment_id)
                           .where(StripeBalanceTransaction.payout_id.in_(b))),
                          (fundings, lambda b: sa.select(CareCreditFundingLine.payment_id)
                           .where(CareCreditFundingLine.funding_id.in_(b)))):
        if ids_of:
            ids.update(connection.execute(where(sorted(ids_of))).scalars())
    ids.discard(None)
    if ids:
        session.info.setdefault(_TOUCHED, set()).update(ids)


@sa.event.listens_for(so.Session, "after_flush_postexec")
def _after_flush_postexec(session, flush_context) -> None:
    ids = session.info.pop(_TOUCHED, None)
    if ids:
        refresh(ids, session=session)


@sa.event.listens_for(so.Session, "before_commit")
def _before_commit(session) -> None:
    """Payments touched since the last flush, with nothing else to flush; then, at the outermost commit
    (a savepoint's release fires this too), the month figures."""
    session.flush()
    ids = session.info.pop(_TOUCHED, None)
    if ids:
        refresh(ids, session=session)
    if not session.in_nested_transaction():
        _add_to_month_figures(session)


@sa.event.listens_for(so.Session, "after_rollback")
def _after_rollback(session) -> None:
    session.info.pop(_TOUCHED, None)


@sa.event.listens_for(so.Session, "after_transaction_end")
def _forget_before(session, transaction) -> None:
    """The outermost transaction ended: forget what its payments added before it changed them."""
    held = session.info.get(_BEFORE)
    if transaction.parent is None and held is not None and held[0] is transaction:
        del session.info[_BEFORE]

