"""The monthly reconciliation of March 2026, built through the services: card payments paid out with
fees (one only in April), a card refund, money orders deposited in a batch (one returned after the
deposit, one on hand, one in an open batch), CareCredit payments with a funding short by a wrong plan
fee (one not yet funded), a courtesy discount and a February balance. Every figure is checked against
numbers worked out here from the inputs, not by the report's queries."""

from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from billing.extensions import db
from billing.models import AdjustmentKind, CardChannel, Payment, PaymentMethod, StripePayout
from billing.money import Money
from billing.reports import reconciliation as rec
from billing.services import card_payments, deposits, fundings, journal, payouts
from billing.services import charges as charge_service
from billing.services import invoices as invoice_service
from billing.services import payments as payment_service
from tests.services.conftest import money_order, unbalanced_entries
from tests.stripe_support import intent_object

MARCH = date(2026, 3, 1)
CARD, MO, CC = PaymentMethod.CARD, PaymentMethod.MONEY_ORDER, PaymentMethod.CARECREDIT


def d(day: int, month: int = 3) -> date:
    return date(2026, month, day)


def cents(dollars: str) -> int:
    whole, _, frac = dollars.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


def stripe_ts(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def txn(txn_id: str, category: str, gross: int, fee: int, source: str, day: date) -> dict:
    """A balance transaction as the API lists it for a payout."""
    return {"id": txn_id, "object": "balance_transaction", "type": "charge" if category == "charge" else category,
            "reporting_category": category, "amount": gross, "fee": fee, "net": gross - fee, "currency": "usd",
            "available_on": stripe_ts(day), "source": source, "description": f"{category} {source}"}


def payout(payout_id: str, arrival: date, transactions: list[dict]) -> StripePayout:
    amount = sum(t["net"] for t in transactions)
    payouts.payout_paid({"id": payout_id, "amount": amount, "arrival_date": stripe_ts(arrival)})
    row = db.session.scalars(sa.select(StripePayout).where(StripePayout.payout_id == payout_id)).one()
    assert payouts.post_payout(row, transactions)
    return row


@dataclass
class Month:
    payments: dict[str, Payment]
    fee_txn_cents: int


@pytest.fixture
def march(catalog, make_patient):
    """The month; the payments by name."""

    def bill(dollars: str, day: date, patient=None):
        patient = patient or make_patient()
        charge_service.post_charge(patient, charge_service.ChargeInput(
            service=catalog["infusion"], date_of_service=day, unit_price=Money(cents(dollars)),
            price_reason="Agreed price"), today=day)
        return patient, invoice_service.issue_invoice(patient, today=day)

    def card(dollars: str, day: date, charge_id: str) -> Payment:
        patient, invoice = bill(dollars, day)
        payment = card_payments.start(patient, Money(cents(dollars)), invoice=invoice, channel=CardChannel.DESK,
                                      today=day)
        _, settled = card_payments.intent_succeeded(intent_object(payment.id, cents(dollars), charge=charge_id),
                                                    today=day)
        assert settled is payment
        return payment

    def mo(dollars: str, day: date) -> Payment:
        patient, _ = bill(dollars, day)
        return payment_service.record_money_order(patient, Money(cents(dollars)), money_order(), received_date=day,
                                                  today=day)

    def cc(dollars: str, day: date, plan: str, code: str) -> Payment:
        patient, _ = bill(dollars, day)
        details = payment_service.CareCreditInput(authorization_code=code, plan=catalog[plan], account_last4="4321",
                                                  id_checked=True, receipt_signed=True)
        return payment_service.record_carecredit(patient, Money(cents(dollars)), details, received_date=day,
                                                 today=day)

    # February: a $300 charge left unpaid (the opening receivables).
    bill("300.00", date(2026, 2, 10))
    p = {}
    # Card: three payments, a $50 refund, two March payouts (with a Stripe fee billed in the second) and
    # the third payment paid out only on April 2.
    p["c1"] = card("450.00", d(2), "ch_recon_c1")
    p["c2"] = card("200.00", d(5), "ch_recon_c2")
    p["c3"] = card("150.00", d(28), "ch_recon_c3")
    request = card_payments.request_refund(p["c2"], Money(5000), "Charged for a longer infusion")
    card_payments.refund_done(request, "re_recon_c2", today=d(12))
    payout("po_recon_1", d(9), [txn("txn_c1", "charge", 45000, 1335, "ch_recon_c1", d(9))])
    payout("po_recon_2", d(16), [txn("txn_c2", "charge", 20000, 610, "ch_recon_c2", d(16)),
                                 txn("txn_re2", "refund", -5000, 0, "re_recon_c2", d(16)),
                                 txn("txn_fee", "fee", -500, 0, "", d(16))])
    payout("po_recon_3", d(2, 4), [txn("txn_c3", "charge", 15000, 465, "ch_recon_c3", d(2, 4))])
    # Money orders: two deposited in one batch (the second returned after the deposit), one on hand,
    # one in a batch not yet deposited.
    p["m1"] = mo("450.00", d(3))
    p["m2"] = mo("300.00", d(4))
    batch = deposits.create_batch([p["m1"].id, p["m2"].id], today=d(6))
    deposits.mark_deposited(batch, d(6), "BR-0306", today=d(6))
    payment_service.return_money_order(p["m2"], "Counterfeit, returned by the bank", today=d(18))
    p["m3"] = mo("100.00", d(20))
    p["m5"] = mo("75.00", d(25))
    deposits.create_batch([p["m5"].id], today=d(30))
    # CareCredit: two funded on March 9 — the first at the 24-month rate (14.90 %) though taken on the
    # 12-month plan (9.90 %): $50.00 short — and one not yet funded.
    p["k1"] = cc("1000.00", d(4), "12mo", "AUTH1001")
    p["k2"] = cc("600.00", d(5), "24mo", "AUTH1002")
    p["k3"] = cc("400.00", d(27), "12mo", "AUTH1003")
    fundings.record_funding(fundings.FundingInput(
        reference="CCF-0309", funded_on=d(9), net=Money(100000 - 14900 + 60000 - 8940), lines=[
            fundings.LineInput("AUTH1001", Money(100000), Money(14900)),
            fundings.LineInput("AUTH1002", Money(60000), Money(8940))]), today=d(9))
    # A courtesy discount on an invoice left open.
    _, invoice = bill("450.00", d(10))
    payment_service.adjust_invoice(invoice, AdjustmentKind.COURTESY, Money(2500), "First visit", today=d(11))
    db.session.flush()
    assert unbalanced_entries() == []
    return Month(p, 500)


def test_each_method_recorded_settled_fees_and_difference(march):
    report = rec.reconciliation(d(17))
    assert (report.month, report.end) == (MARCH, d(31))

    card = report.method(CARD)
    assert (card.count, card.received) == (3, Money(45000 + 20000 + 15000))
    assert (card.refund_count, card.refunded, card.recorded) == (1, Money(5000), Money(80000 - 5000))
    assert card.settled == Money(45000 + 20000 - 5000)  # the April payout is not in March
    assert (card.unsettled, card.in_transit) == (1, Money(15000))
    assert (card.differing, card.difference) == (0, Money.zero())
    assert card.fees == Money(1335 + 610)
    assert card.net_to_bank == Money(60000 - 1945)

    mo = report.method(MO)
    assert (mo.count, mo.received) == (4, Money(45000 + 30000 + 10000 + 7500))
    assert (mo.refund_count, mo.refunded, mo.recorded) == (1, Money(30000), Money(92500 - 30000))
    assert mo.settled == Money(45000)  # the returned one went in and came back out of the bank
    assert (mo.unsettled, mo.in_transit) == (2, Money(10000 + 7500))
    assert (mo.difference, mo.fees) == (Money.zero(), Money.zero())

    cc = report.method(CC)
    assert (cc.count, cc.received, cc.refunded) == (3, Money(200000), Money.zero())
    assert cc.settled == Money(160000)
    assert (cc.unsettled, cc.in_transit, cc.difference) == (1, Money(40000), Money.zero())
    expected = (100000 * 990 + 5000) // 10000 + (60000 * 1490 + 5000) // 10000  # 99.00 + 89.40
    assert (cc.fees, cc.expected_fees) == (Money(14900 + 8940), Money(expected))
    assert (cc.fee_difference, cc.fee_mismatches) == (Money(5000), 1)  # funded $50.00 short
    assert cc.net_to_bank == Money(160000 - 23840)

    for m in report.methods:
        assert m.recorded - m.settled - m.in_transit == m.difference


def test_drill_downs_list_the_payments_behind_each_figure(march):
    p = march.payments
    card = rec.drill_down(MARCH, CARD)
    assert [(i.payment_id, i.in_transit, i.reasons) for i in card] == [(p["c3"].id, Money(15000), ["not yet paid out"])]
    mo = rec.drill_down(MARCH, MO)
    assert [(i.payment_id, i.in_transit) for i in mo] == [(p["m3"].id, Money(10000)), (p["m5"].id, Money(7500))]
    cc = rec.drill_down(MARCH, CC)
    assert [(i.payment_id, i.fee_difference, i.in_transit) for i in cc] == [
        (p["k1"].id, Money(5000), Money.zero()), (p["k3"].id, Money.zero(), Money(40000))]
    assert cc[0].reasons == ["funded short"] and cc[1].reasons == ["not yet funded"]


def test_a_payment_paid_out_for_another_amount_shows_as_a_difference(march, catalog, make_patient):
    """A charge Stripe paid out for $1 less than we recorded: the card difference, and its drill-down."""
    patient = make_patient()
    charge_service.post_charge(patient, charge_service.ChargeInput(service=catalog["infusion"],
                                                                   date_of_service=d(20)), today=d(20))
    invoice = invoice_service.issue_invoice(patient, today=d(20))
    payment = card_payments.start(patient, Money(45000), invoice=invoice, channel=CardChannel.DESK, today=d(20))
    card_payments.intent_succeeded(intent_object(payment.id, 45000, charge="ch_recon_odd"), today=d(20))
    payout("po_recon_odd", d(23), [txn("txn_odd", "charge", 44900, 1300, "ch_recon_odd", d(23))])
    card = rec.reconciliation(MARCH).method(CARD)
    assert (card.difference, card.differing) == (Money(100), 1)
    items = rec.drill_down(MARCH, CARD)
    assert [(i.payment_id, i.difference) for i in items if i.difference] == [(payment.id, Money(100))]
    stripe = rec.reconciliation(MARCH).account(CARD)
    assert stripe.unexplained == Money.zero() and stripe.journal_balance == Money(15000 + 100)


def test_clearing_accounts_are_explained_item_by_item_and_tie_to_the_journal(march):
    p = march.payments
    report = rec.reconciliation(MARCH)
    stripe = report.account(CARD)
    assert stripe.code == journal.STRIPE_CLEARING
    assert [(i.payment_id, i.clearing) for i in stripe.items] == [(p["c3"].id, Money(15000))]
    assert stripe.other_items == []  # the billed fee is a merchant fee, not in clearing
    assert (stripe.explained, stripe.journal_balance, stripe.unexplained) == (Money(15000), Money(15000), Money.zero())
    assert stripe.journal_balance == journal.balance(journal.STRIPE_CLEARING, as_of=d(31))

    undeposited = report.account(MO)
    assert [(i.payment_id, i.clearing, i.batch) for i in undeposited.items] == [
        (p["m3"].id, Money(10000), ""), (p["m5"].id, Money(7500), undeposited.items[1].batch)]
    assert undeposited.items[1].batch.startswith("DEP-2026-") and undeposited.items[1].batch_status == "open"
    assert undeposited.journal_balance == Money(17500) == journal.balance(journal.UNDEPOSITED, as_of=d(31))
    assert undeposited.unexplained == Money.zero()

    receivable = report.account(CC)
    assert [(i.payment_id, i.clearing) for i in receivable.items] == [(p["k3"].id, Money(40000))]
    assert receivable.journal_balance == Money(40000) == journal.balance(journal.CARECREDIT_RECEIVABLE, as_of=d(31))
    assert receivable.unexplained == Money.zero()

    # As of the end of February nothing was in any of them; at the end of April the card was paid out.
    assert all(a.journal_balance == a.explained == Money.zero() for a in rec.clearing_accounts(date(2026, 2, 1)))
    april = rec.reconciliation(date(2026, 4, 1)).account(CARD)
    assert (april.journal_balance, april.items, april.unexplained) == (Money.zero(), [], Money.zero())


def test_receivables_roll_forward_ties_to_the_journal(march):
    r = rec.ar_roll_forward(MARCH)
    assert r.opening == Money(30000)
    charged = 45000 + 20000 + 15000 + 45000 + 30000 + 10000 + 7500 + 100000 + 60000 + 40000 + 45000
    assert r.charges == Money(charged)
    assert r.payments == Money(80000 + 92500 + 200000)  # every payment applied in full
    assert r.adjustments == Money(2500)
    assert r.refunds == Money(5000 + 30000)  # the card refund and the returned money order reopen invoices
    closing = 30000 + charged - 372500 - 2500 + 35000
    assert closing == 30000 + 42500 + 5000 + 30000  # February's charge, the discounted invoice, the two reopened
    assert (r.closing, r.journal_closing, r.difference) == (Money(closing), Money(closing), Money.zero())
    assert r.journal_closing == journal.balance(journal.RECEIVABLES, as_of=d(31))
    assert {line.source_type for line in r.lines} == {"Charge", "Payment", "Adjustment", "Refund"}


def test_trial_balance_at_the_month_end(march):
    report = rec.reconciliation(MARCH)
    balances = {row.code: row.balance for row in report.trial_balance}
    bank = (45000 - 1335) + (20000 - 610 - 5000 - 500) + 75000 - 30000 + (160000 - 23840)
    assert balances[journal.BANK] == Money(bank)
    assert balances[journal.MERCHANT_FEES] == Money(1335 + 610 + march.fee_txn_cents)
    assert balances[journal.FINANCING_FEES] == Money(23840)
    assert balances[journal.DISCOUNTS] == Money(2500)
    debits, credits = report.trial_totals
    assert debits == credits and debits.is_positive


def test_csv_rows_carry_the_figures(march):
    rows = list(rec.csv_rows(rec.reconciliation(MARCH)))
    assert rec.CSV_HEADER == ("Section", "Item", "Count", "Amount", "Detail")
    assert all(len(row) == len(rec.CSV_HEADER) for row in rows)
    assert ["CareCredit", "Fees actual − expected", 1, "50.00", ""] in rows
    assert ["Card", "In transit", 1, "150.00", ""] in rows
    assert ["A/R roll-forward", "Difference", "", "0.00", ""] in rows


def test_month_parsing():
    assert rec.parse_month("2026-03") == MARCH
    assert rec.parse_month("2026-3") is None and rec.parse_month("March") is None
    assert rec.parse_month("2026-13") is None
    assert rec.month_bounds(date(2024, 2, 10)) == (date(2024, 2, 1), date(2024, 2, 29))
