"""Each payment's month-end figures and cleared_on, kept by the services (billing.services.settlement):
every flow of the reconciliation's March leaves none stale, later events leave March as it was, and
earlier months' payments still in a clearing account are explained in a later month."""

import importlib.util
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from billing.extensions import db
from billing.models import (
    CardChannel, CareCreditDetails, DepositBatchItem, Payment, PaymentMethod, PaymentMonthFigures, PaymentStatus,
)
from billing.money import Money
from billing.reports import reconciliation as rec
from billing.services import card_payments, deposits, fundings, journal, settlement
from billing.services import invoices as invoice_service
from billing.services import payments as payment_service
from tests.services.conftest import money_order
from tests.services.test_reconciliation import MARCH, d, march, payout, txn  # noqa: F401 (the fixture)
from tests.stripe_support import intent_object

APRIL = date(2026, 4, 1)
CARD, MO, CC = PaymentMethod.CARD, PaymentMethod.MONEY_ORDER, PaymentMethod.CARECREDIT


def stored(payment: Payment) -> dict:
    row = db.session.execute(sa.select(*(getattr(Payment, c) for c in settlement.COLUMNS))
                             .where(Payment.id == payment.id)).one()
    return dict(zip((c.removeprefix("recon_").removesuffix("_cents") for c in settlement.COLUMNS), row))


def live_figures(month: date) -> dict:
    """The month's per-method sums computed from the definition as of the month's end (not stored)."""
    start, end = rec.month_bounds(month)
    p = rec._per_payment(start, end)
    return {row.method: tuple(int(v) for v in row[1:]) for row in db.session.execute(
        sa.select(p.c.method, sa.func.count(), sa.func.sum(p.c.refunded), sa.func.sum(p.c.settled),
                  sa.func.sum(p.c.in_transit), sa.func.sum(p.c.fees), sa.func.sum(p.c.expected_fee))
        .group_by(p.c.method))}


def report_figures(month: date) -> dict:
    return {m.method: (m.count, m.refunded.cents, m.settled.cents, m.in_transit.cents, m.fees.cents,
                       m.expected_fees.cents) for m in rec.method_figures(month) if m.count}


def test_every_flow_of_the_month_leaves_the_stored_figures_fresh(march):
    p = march.payments
    db.session.flush()
    assert settlement.stale() == []
    assert report_figures(MARCH) == live_figures(MARCH)
    # Paid out in March, with its fee; nothing left in Stripe clearing since the payout of March 9.
    assert stored(p["c1"]) == dict(refunded=0, refund_count=0, settled=45000, in_transit=0, fee=1335,
                                   expected_fee=0, clearing=0, cleared_on=d(9))
    # Paid out on April 2: in transit at March's end, cleared in April.
    assert stored(p["c3"]) == dict(refunded=0, refund_count=0, settled=0, in_transit=15000, fee=0, expected_fee=0,
                                   clearing=15000, cleared_on=d(2, 4))
    # Deposited, then returned on the 18th: out of Undeposited funds since the deposit.
    assert stored(p["m2"])["cleared_on"] == d(18) and stored(p["m2"])["refunded"] == 30000
    assert stored(p["m5"])["cleared_on"] is None  # in an open batch
    assert (stored(p["k1"])["fee"], stored(p["k1"])["expected_fee"]) == (14900, 9900)
    assert stored(p["k3"])["clearing"] == 40000 and stored(p["k3"])["cleared_on"] is None


def test_a_money_order_taken_at_the_desk_gets_its_figures_without_a_query(march, make_patient, catalog):
    patient = make_patient()
    statements = []
    listener = lambda conn, cursor, statement, *rest: statements.append(statement)  # noqa: E731
    sa.event.listen(db.engine, "before_cursor_execute", listener)
    try:
        payment = payment_service.record_money_order(patient, Money(12000), money_order(), received_date=d(16),
                                                     today=d(16), confirm_overpayment=True)
        db.session.flush()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", listener)
    assert not [s for s in statements if "per_payment" in s or "recon_" in s and s.lstrip().startswith("UPDATE")]
    assert stored(payment) == dict(refunded=0, refund_count=0, settled=0, in_transit=12000, fee=0, expected_fee=0,
                                   clearing=12000, cleared_on=None)
    assert settlement.stale() == []


def test_a_pending_card_payment_counts_once_it_succeeds(march, make_patient, charge, catalog):
    patient = make_patient()
    charge(patient, day=d(12))
    invoice = invoice_service.issue_invoice(patient, today=d(20))
    payment = card_payments.start(patient, Money(45000), invoice=invoice, channel=CardChannel.DESK, today=d(20))
    assert stored(payment)["in_transit"] == 0 and stored(payment)["cleared_on"] == d(20)
    card_payments.intent_succeeded(intent_object(payment.id, 45000, charge="ch_settle_new"), today=d(21))
    db.session.flush()
    assert payment.received_date == d(21) and payment.recon_in_transit_cents == 45000  # the loaded row too
    assert stored(payment)["cleared_on"] is None and settlement.stale() == []
    assert settlement.month_figures_drift() == []  # counted from its success, in March
    # A dispute opened and won: out of Stripe clearing and back in it; finally paid out.
    card_payments.dispute_opened({"id": "dp_settle", "charge": "ch_settle_new", "amount": 45000}, today=d(23))
    assert stored(payment)["clearing"] == 0 and settlement.stale() == []
    card_payments.dispute_closed({"id": "dp_settle", "status": "won"}, today=d(26))
    assert stored(payment)["clearing"] == 45000 and settlement.stale() == []
    payout("po_settle", d(27), [txn("txn_settle", "charge", 45000, 1335, "ch_settle_new", d(27))])
    assert (stored(payment)["clearing"], stored(payment)["cleared_on"]) == (0, d(27))
    assert settlement.stale() == [] and settlement.month_figures_drift() == []


def test_later_events_leave_the_month_as_it_was_and_earlier_payments_are_explained_later(march):
    p = march.payments
    before = report_figures(MARCH)
    # April: a refund of a March card payment, the open batch cancelled and its money order deposited
    # with the one on hand, the last CareCredit payment funded.
    request = card_payments.request_refund(p["c1"], Money(5000), "Goodwill")
    card_payments.refund_done(request, "re_settle_c1", today=d(3, 4))
    open_batch = db.session.scalar(sa.select(DepositBatchItem).where(DepositBatchItem.payment_id == p["m5"].id)).batch
    deposits.cancel_batch(open_batch, today=d(6, 4))
    batch = deposits.create_batch([p["m3"].id, p["m5"].id], today=d(6, 4))
    deposits.mark_deposited(batch, d(6, 4), "BR-0406", today=d(6, 4))
    fundings.record_funding(fundings.FundingInput(reference="CCF-0406", funded_on=d(6, 4), net=Money(40000 - 3960),
                                                  lines=[fundings.LineInput("AUTH1003", Money(40000), Money(3960))]),
                            today=d(6, 4))
    db.session.flush()
    assert settlement.stale() == []
    assert report_figures(MARCH) == before == live_figures(MARCH)
    assert stored(p["m5"])["cleared_on"] == d(6, 4) and stored(p["k3"])["cleared_on"] == d(6, 4)

    # At April's end the March refund of c1 is still in Stripe clearing (no payout took it yet).
    april = rec.clearing_accounts(APRIL)
    stripe = next(a for a in april if a.method == CARD)
    assert [(i.payment_id, i.clearing) for i in stripe.items] == [(p["c1"].id, Money(-5000))]
    assert stripe.journal_balance == Money(-5000) == journal.balance(journal.STRIPE_CLEARING, as_of=d(30, 4))
    assert all(a.unexplained == Money.zero() for a in april)
    assert next(a for a in april if a.method == MO).items == []
    # March, reconciled after all this, still explains its month's end.
    march_accounts = {a.method: a for a in rec.clearing_accounts(MARCH)}
    assert [i.payment_id for i in march_accounts[MO].items] == [p["m3"].id, p["m5"].id]
    assert [i.payment_id for i in march_accounts[CC].items] == [p["k3"].id]
    assert all(a.unexplained == Money.zero() for a in march_accounts.values())


def test_a_deposit_dated_back_into_the_month_moves_its_figures(march):
    p = march.payments
    batch = deposits.create_batch([p["m3"].id], today=d(2, 4))
    deposits.mark_deposited(batch, d(31), "BR-0331", today=d(2, 4))
    mo = rec.reconciliation(MARCH).method(MO)
    assert (mo.unsettled, mo.in_transit, mo.settled) == (1, Money(7500), Money(45000 + 10000))
    assert settlement.stale() == []


def test_an_unmatched_funding_line_matched_later_moves_the_payment(march, make_patient, pay_cc):
    fundings.record_funding(fundings.FundingInput(reference="CCF-EARLY", funded_on=d(20), net=Money(25000 - 2475),
                                                  lines=[fundings.LineInput("AUTH9999", Money(25000), Money(2475))]),
                            today=d(20))
    patient = make_patient()
    payment = pay_cc(patient, "250.00", confirm=True)
    db.session.execute(sa.update(CareCreditDetails).where(CareCreditDetails.payment_id == payment.id)
                       .values(authorization_code="AUTH9999"))
    assert stored(payment)["clearing"] == 25000
    assert fundings.rematch_unmatched() == 1
    assert stored(payment)["clearing"] == 0 and stored(payment)["fee"] == 2475
    assert settlement.stale() == []


def test_stale_finds_a_payment_written_behind_the_services_back(march):
    p = march.payments
    db.session.execute(sa.update(Payment).where(Payment.id == p["c3"].id).values(recon_in_transit_cents=1))
    assert settlement.stale() == [p["c3"].id]
    settlement.touch([p["c3"].id])
    db.session.commit()
    assert settlement.stale() == []
    assert db.session.get(Payment, p["c3"].id).status == PaymentStatus.SUCCEEDED


def test_the_month_figures_are_added_at_each_commit(march, make_patient):
    """payment_month_figures: a transaction's change is pending until it commits, then stored; what a
    savepoint gave up adds nothing; a row changed behind the services' back is found."""
    def rows():
        return {(r.month, r.method): (r.payment_count, r.received_cents, r.in_transit_cents)
                for r in db.session.scalars(sa.select(PaymentMonthFigures))}

    live = live_figures(MARCH)
    assert rows() == {} and (MARCH, MO) in settlement.pending_month_figures()
    assert settlement.month_figures_drift() == [] and report_figures(MARCH) == live
    db.session.commit()
    assert settlement.pending_month_figures() == {} and settlement.month_figures_drift() == []
    money_orders = rows()[(MARCH, MO)]
    assert money_orders[0] == live[MO][0] == 4 and report_figures(MARCH) == live  # now from the stored rows

    patient = make_patient()
    with db.session.begin_nested() as savepoint:
        payment_service.record_money_order(patient, Money(12000), money_order(), received_date=d(16), today=d(16),
                                           confirm_overpayment=True)
        db.session.flush()
        assert settlement.pending_month_figures()[(MARCH, MO)][:2] == [1, 12000]
        savepoint.rollback()
    payment_service.record_money_order(patient, Money(9000), money_order(), received_date=d(17), today=d(17),
                                       confirm_overpayment=True)
    db.session.commit()
    assert rows()[(MARCH, MO)] == (money_orders[0] + 1, money_orders[1] + 9000, money_orders[2] + 9000)
    assert settlement.month_figures_drift() == [] and report_figures(MARCH) == live_figures(MARCH)

    db.session.execute(sa.update(PaymentMonthFigures).where(PaymentMonthFigures.month == MARCH,
                                                            PaymentMonthFigures.method == CARD)
                       .values(settled_cents=PaymentMonthFigures.settled_cents + 1))
    assert settlement.month_figures_drift() == [(MARCH, CARD)]


def load_migration(name: str):
    """A revision's module from migrations/versions, for its frozen SQL."""
    path = Path(__file__).resolve().parents[2] / "migrations" / "versions" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"migration_{name}", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    return migration


@pytest.mark.parametrize("month", [date(2026, 2, 1), MARCH, APRIL])
def test_the_stored_month_figures_are_the_live_ones(march, month):
    assert report_figures(month) == live_figures(month)


def test_the_migration_fills_the_figures_of_existing_payments_as_the_services_keep_them(march):
    """Migration 0008's frozen SQL, run over the built month with every stored figure wiped."""
    migration = load_migration("0008_stored_balances")
    db.session.flush()
    wiped = {name: (0 if name.startswith("recon_") else None) for name in settlement.COLUMNS}
    db.session.execute(sa.update(Payment.__table__).values(wiped))
    assert len(settlement.stale()) == db.session.scalar(sa.select(sa.func.count()).select_from(Payment))
    for statement in migration.settlement_backfill(db.engine.dialect.name):
        db.session.execute(sa.text(statement))
    assert settlement.stale() == []


def test_the_migration_fills_the_month_figures_as_the_commits_keep_them(march):
    """Migration 0010's frozen GROUP BY, run over the built month once its rows are cleared."""
    migration = load_migration("0010_payment_month_figures")
    db.session.commit()
    kept = db.session.execute(sa.select(PaymentMonthFigures.__table__).order_by("month", "method")).all()
    assert {row.month for row in kept} == {MARCH} and len(kept) == 3
    db.session.execute(sa.delete(PaymentMonthFigures))
    db.session.execute(sa.text(migration.month_figures_fill(db.engine.dialect.name)))
    assert db.session.execute(sa.select(PaymentMonthFigures.__table__).order_by("month", "method")).all() == kept


def test_clearing_items_are_limited_per_account_and_the_totals_cover_every_payment(march):
    p = march.payments
    accounts = {a.method: a for a in rec.clearing_accounts(MARCH, limit=1)}
    undeposited = accounts[MO]
    assert [i.payment_id for i in undeposited.items] == [p["m3"].id]
    assert (undeposited.payments, undeposited.payment_count, undeposited.unexplained) == (Money(17500), 2, Money.zero())
    assert [i.payment_id for i in accounts[CARD].items] == [p["c3"].id]
    assert [i.payment_id for i in accounts[CC].items] == [p["k3"].id]


def test_a_later_month_lists_earlier_payments_still_in_clearing_before_its_own(march, make_patient):
    p = march.payments
    april_mo = payment_service.record_money_order(make_patient(), Money(6000), money_order(), received_date=d(20, 4),
                                                  today=d(20, 4), confirm_overpayment=True)
    db.session.flush()
    undeposited = {a.method: a for a in rec.clearing_accounts(APRIL)}[MO]
    assert [i.payment_id for i in undeposited.items] == [p["m3"].id, p["m5"].id, april_mo.id]
    assert undeposited.payments == Money(17500 + 6000) and undeposited.unexplained == Money.zero()
    # The limit takes the oldest; the totals still cover all three.
    limited = {a.method: a for a in rec.clearing_accounts(APRIL, limit=2)}[MO]
    assert [i.payment_id for i in limited.items] == [p["m3"].id, p["m5"].id]
    assert (limited.payments, limited.payment_count) == (Money(23500), 3)
    just_one = {a.method: a for a in rec.clearing_accounts(APRIL, limit=1)}[MO]
    assert [i.payment_id for i in just_one.items] == [p["m3"].id]
