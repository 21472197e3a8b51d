"""Stripe payouts posted from the itemized payout reconciliation CSV and from the API's balance
transactions, with the samples in tests/samples (their README gives the expected totals)."""

import csv
import io
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from billing.extensions import db
from billing.integrations import stripe_gateway
from billing.models import CardChannel, JournalEntry, JournalLine, Payment, StripeBalanceTransaction, StripePayout
from billing.money import Money
from billing import stripe_payouts
from billing.services import card_payments, journal, payouts
from billing.services import invoices as invoice_service
from tests.services.conftest import close_month, refused, unbalanced_entries

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
CSV_TEXT = (SAMPLES / "stripe_payout_reconciliation_itemized.csv").read_text(encoding="utf-8")
EXPECTED = json.loads((SAMPLES / "stripe_payout_reconciliation_itemized.expected.json").read_text())
API_LIST = json.loads((SAMPLES / "stripe_balance_transactions_payout.json").read_text())
PO1, PO2 = "po_1g488RKc7MxL2vQ96St7MuWi", "po_18KhJ6Kc7MxL2vQ9OnSHIndB"
CSV_ROWS = list(csv.DictReader(io.StringIO(CSV_TEXT)))

# The February charge disputed in March, and the February payout that paid it (not in the samples).
FEB_CHARGE = {"payment_intent_id": "pi_3wrMaBKc7MxL2vQ9QqxbLhDQ", "charge_id": "ch_3wrMaBKc7MxL2vQ9QqxbLhDQ",
              "gross": "275.00", "day": date(2025, 2, 20)}
FEB_PAYOUT_CSV = (
    "automatic_payout_id,automatic_payout_effective_at,balance_transaction_id,currency,gross,fee,net,"
    "reporting_category,charge_id\n"
    "po_FebruaryKc7MxL2vQ9,2025-02-25 00:00:00,txn_FebruaryKc7MxL2vQ9,usd,275.00,8.28,266.72,charge,"
    "ch_3wrMaBKc7MxL2vQ9QqxbLhDQ\n")
# A charge taken after the last payout: Stripe still owes it.
UNPAID = {"payment_intent_id": "pi_UnpaidKc7MxL2vQ9", "charge_id": "ch_UnpaidKc7MxL2vQ9", "gross": "95.00",
          "day": date(2025, 3, 20)}


def dollars(text: str) -> Money:
    """An amount from the samples, computed apart from the code under test (Decimal, never float)."""
    return Money(int(Decimal(text) * 100))


def total(column: str, payout_id: str | None = None) -> Money:
    return sum((dollars(r[column]) for r in CSV_ROWS if payout_id in (None, r["automatic_payout_id"])), Money.zero())


def lines_of(payout: StripePayout) -> dict[str, Money]:
    entries = journal.entries_for(payout)
    assert len(entries) == 1
    return {line.account.code: Money(line.amount_cents) for line in entries[0].lines}


def counts() -> tuple[int, int, int]:
    return tuple(db.session.scalar(sa.select(sa.func.count()).select_from(model))
                 for model in (StripePayout, StripeBalanceTransaction, JournalEntry))


def csv_of(rows: list[dict[str, str]], columns: list[str] | None = None, **writer) -> str:
    out = io.StringIO()
    writer.setdefault("quoting", csv.QUOTE_ALL)
    w = csv.DictWriter(out, fieldnames=columns or list(rows[0]), extrasaction="ignore", **writer)
    w.writeheader()
    w.writerows(rows)
    return out.getvalue()


def with_row(line: int, **changes) -> str:
    """The sample CSV with one data row (by its line number in the file) changed."""
    rows = [dict(r) for r in CSV_ROWS]
    rows[line - 2].update(changes)
    return csv_of(rows)


def api_payout(amount_cents: int = 172413, payout_id: str = PO2) -> StripePayout:
    payouts.payout_paid({"id": payout_id, "amount": amount_cents, "arrival_date": 1742256000})
    return db.session.scalars(sa.select(StripePayout).where(StripePayout.payout_id == payout_id)).one()


# --- card payments for the sample's charges ----------------------------------------------------------


@pytest.fixture
def card_payment(make_patient, charge):
    """Factory: a succeeded card payment whose PaymentIntent and charge ids are Stripe's in the samples."""

    def make(gross: str, payment_intent_id: str, charge_id: str, day: date) -> Payment:
        patient = make_patient()
        charge(patient, "infusion", day=day, unit_price=Money.parse(gross), price_reason="Sample charge")
        invoice = invoice_service.issue_invoice(patient, today=day)
        payment = card_payments.start(patient, Money.parse(gross), invoice=invoice, channel=CardChannel.DESK,
                                      today=day)
        outcome, settled = card_payments.intent_succeeded(
            {"id": payment_intent_id, "amount_received": Money.parse(gross).cents,
             "latest_charge": {"id": charge_id, "payment_method_details": {"card": {"brand": "visa", "last4": "4242"}}},
             "metadata": {"app_payment_id": str(payment.id)}}, today=day)
        assert settled is payment, outcome
        return payment

    return make


def sample_charges() -> list[dict]:
    return [{"payment_intent_id": r["payment_intent_id"], "charge_id": r["charge_id"], "gross": r["gross"],
             "day": date.fromisoformat(r["created"][:10])} for r in CSV_ROWS if r["reporting_category"] == "charge"]


@pytest.fixture
def clinic_month(card_payment):
    """Everything card_payments posted in February and March 2025: the sample's charges, the refund,
    the dispute, the February charge it disputes and a charge not yet paid out. Returns the payments
    by charge id."""
    paid = {c["charge_id"]: card_payment(c["gross"], c["payment_intent_id"], c["charge_id"], c["day"])
            for c in [FEB_CHARGE, *sample_charges(), UNPAID]}
    refund_row = next(r for r in CSV_ROWS if r["reporting_category"] == "refund")
    request = card_payments.request_refund(paid[refund_row["charge_id"]], -dollars(refund_row["gross"]),
                                           "Patient cancelled the second infusion")
    card_payments.refund_done(request, refund_row["source_id"], today=date(2025, 3, 11))
    dispute_row = next(r for r in CSV_ROWS if r["reporting_category"] == "dispute")
    outcome = card_payments.dispute_opened(
        {"id": dispute_row["source_id"], "charge": dispute_row["charge_id"],
         "payment_intent": dispute_row["payment_intent_id"], "amount": (-dollars(dispute_row["gross"])).cents,
         "reason": dispute_row["dispute_reason"], "status": "needs_response"}, today=date(2025, 3, 12))
    assert outcome.endswith("disputed"), outcome
    return paid


# --- the CSV -------------------------------------------------------------------------------------------


def test_the_sample_csv_posts_two_payouts_with_the_readme_totals(app):
    result = payouts.import_reconciliation_csv(CSV_TEXT)

    assert [p.payout_id for p in result.posted] == [PO1, PO2]
    assert result.already_posted == []
    for payout, expected in zip(result.posted, EXPECTED["payouts"], strict=True):
        assert payout.source == "csv" and payout.posted
        assert payout.arrival_date == date.fromisoformat(expected["expected_bank_deposit"]["date"])
        assert Money(payout.amount_cents) == dollars(expected["net"])
        assert Money(payout.fee_cents) == dollars(expected["fee"])
        assert lines_of(payout) == {journal.MERCHANT_FEES: dollars(expected["fee"]),
                                    journal.BANK: dollars(expected["net"]),
                                    journal.STRIPE_CLEARING: -dollars(expected["gross"])}
        assert journal.entries_for(payout)[0].entry_date == payout.arrival_date
        stored = db.session.scalars(sa.select(StripeBalanceTransaction)
                                    .where(StripeBalanceTransaction.payout_id == payout.id)).all()
        assert len(stored) == expected["row_count"]
    assert journal.balance(journal.MERCHANT_FEES) == dollars("132.10") == total("fee")
    assert journal.balance(journal.BANK) == dollars("3397.90") == total("net")
    assert journal.balance(journal.STRIPE_CLEARING) == -dollars("3530.00") == -total("gross")
    assert unbalanced_entries() == []


def test_a_stored_transaction_keeps_what_stripe_said(app):
    payouts.import_reconciliation_csv(CSV_TEXT)
    dispute = db.session.scalars(sa.select(StripeBalanceTransaction)
                                 .where(StripeBalanceTransaction.transaction_id == "txn_1WGPOUKc7MxL2vQ9rNg84wfq")).one()
    assert (dispute.gross_cents, dispute.fee_cents, dispute.net_cents) == (-27500, 1500, -29000)
    assert dispute.reporting_category == "dispute"
    assert dispute.source_id == "dp_1J9EMmKc7MxL2vQ9IjPTyTXY"
    assert dispute.charge_id == "ch_3wrMaBKc7MxL2vQ9QqxbLhDQ"
    assert dispute.payment_intent_id == "pi_3wrMaBKc7MxL2vQ9QqxbLhDQ"
    assert dispute.available_on == date(2025, 3, 14)
    assert dispute.description == "Chargeback withdrawal for ch_3wrMaBKc7MxL2vQ9QqxbLhDQ"
    assert dispute.payment_id is None  # no such payment in this database


def test_stripe_clearing_ends_at_what_stripe_still_owes(app, clinic_month):
    charged = sum((dollars(c["gross"]) for c in [FEB_CHARGE, *sample_charges(), UNPAID]), Money.zero())
    refunded, disputed = dollars("150.00"), dollars("275.00")
    assert journal.balance(journal.STRIPE_CLEARING) == charged - refunded - disputed

    february = payouts.import_reconciliation_csv(FEB_PAYOUT_CSV)
    march = payouts.import_reconciliation_csv(CSV_TEXT)

    # Every charge but the one taken after the last payout has been paid out, the refund and the
    # dispute included: Stripe owes the clinic that one charge.
    assert journal.balance(journal.STRIPE_CLEARING) == dollars(UNPAID["gross"])
    assert journal.balance(journal.MERCHANT_FEES) == dollars("8.28") + dollars("132.10")
    assert journal.balance(journal.BANK) == dollars("266.72") + dollars("3397.90")
    assert journal.balance(journal.DISPUTED) == dollars("275.00")  # held until the dispute closes
    assert unbalanced_entries() == []
    # Every transaction found its payment: by charge id, refund id and dispute id.
    summaries = {s.payout.payout_id: s for s in payouts.summaries()}
    assert [(summaries[p.payout_id].matched, summaries[p.payout_id].transactions)
            for p in february.posted + march.posted] == [(1, 1), (4, 4), (6, 6)]
    refund_txn = db.session.scalars(sa.select(StripeBalanceTransaction)
                                    .where(StripeBalanceTransaction.reporting_category == "refund")).one()
    assert refund_txn.payment_id == clinic_month["ch_3DdjbsKc7MxL2vQ9onfAEYU9"].id


def posted_payout(payout_id: str) -> tuple[dict[str, Money], date, dict[str, tuple]]:
    """A posted payout as the journal and the stored transactions show it."""
    payout = db.session.scalars(sa.select(StripePayout).where(StripePayout.payout_id == payout_id)).one()
    transactions = {t.transaction_id: (t.gross_cents, t.fee_cents, t.net_cents, t.available_on, t.source_id,
                                       t.payment_id is not None)
                    for t in db.session.scalars(sa.select(StripeBalanceTransaction)
                                                .where(StripeBalanceTransaction.payout_id == payout.id))}
    return lines_of(payout), journal.entries_for(payout)[0].entry_date, transactions


@pytest.mark.parametrize("source", ["csv", "api"])
def test_the_api_list_posts_the_same_as_the_csv(app, clinic_month, source):
    """The CSV's rows for the second payout, or payout.paid and then the balance transactions the API
    lists for it (its own transaction included, newest first), post the same."""
    if source == "csv":
        payouts.import_reconciliation_csv(csv_of([r for r in CSV_ROWS if r["automatic_payout_id"] == PO2]))
    else:
        assert payouts.post_payout(api_payout(), API_LIST["data"]) is True

    expected = EXPECTED["payouts"][1]
    rows = [r for r in CSV_ROWS if r["automatic_payout_id"] == PO2]
    assert posted_payout(PO2) == (
        {journal.MERCHANT_FEES: dollars(expected["fee"]), journal.BANK: dollars(expected["net"]),
         journal.STRIPE_CLEARING: -dollars(expected["gross"])},
        date(2025, 3, 18),
        {r["balance_transaction_id"]: (dollars(r["gross"]).cents, dollars(r["fee"]).cents, dollars(r["net"]).cents,
                                       date.fromisoformat(r["available_on"][:10]), r["source_id"], True)
         for r in rows})


def test_a_payout_from_the_webhook_is_posted_by_the_csv_and_not_again(app):
    payout = api_payout()
    result = payouts.import_reconciliation_csv(CSV_TEXT)
    assert [p.payout_id for p in result.posted] == [PO1, PO2]
    assert result.posted[1] is payout and payout.source == "api"
    assert payouts.post_payout(payout, API_LIST["data"]) is False
    assert counts() == (2, 10, 2)


def test_reimporting_the_same_file_changes_nothing_and_says_so(app):
    payouts.import_reconciliation_csv(CSV_TEXT)
    before = counts(), journal.balance(journal.STRIPE_CLEARING)

    again = payouts.import_reconciliation_csv(CSV_TEXT)

    assert again.posted == []
    assert [p.payout_id for p in again.already_posted] == [PO1, PO2]
    assert "already posted" in again.message() and "Posted" not in again.message()
    assert (counts(), journal.balance(journal.STRIPE_CLEARING)) == before


@pytest.mark.parametrize("variant", ["reordered", "required-only", "bom-crlf-bare-upper", "blank-lines"])
def test_common_variants_of_the_file_import_the_same(app, variant):
    rows = [dict(r) for r in CSV_ROWS]
    if variant == "reordered":
        text = csv_of(rows, list(reversed(list(rows[0]))))
    elif variant == "required-only":
        text = csv_of(rows, ["balance_transaction_id", "automatic_payout_id", "automatic_payout_effective_at",
                             "currency", "gross", "fee", "net", "reporting_category"])
    elif variant == "bom-crlf-bare-upper":
        for r in rows:
            r["currency"] = "USD"
        text = "\ufeff" + csv_of(rows, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    else:
        text = CSV_TEXT.replace("\n", "\n\n") + "\n,,,\n"
    result = payouts.import_reconciliation_csv(text)
    assert [(p.payout_id, Money(p.amount_cents), Money(p.fee_cents)) for p in result.posted] == [
        (e["automatic_payout_id"], dollars(e["net"]), dollars(e["fee"])) for e in EXPECTED["payouts"]]
    assert journal.balance(journal.STRIPE_CLEARING) == -dollars("3530.00")


def test_the_utc_columns_are_preferred(app):
    rows = [dict(r, automatic_payout_effective_at="2025-03-10 20:00:00",
                 automatic_payout_effective_at_utc=r["automatic_payout_effective_at"]) for r in CSV_ROWS]
    result = payouts.import_reconciliation_csv(csv_of(rows))
    assert [p.arrival_date for p in result.posted] == [date(2025, 3, 11), date(2025, 3, 18)]


@pytest.mark.parametrize(("text", "message"), [
    (csv_of(CSV_ROWS, [c for c in CSV_ROWS[0] if c != "fee"]), r"^Line 1: the column fee is missing"),
    (with_row(4, gross="9OO.00"), r"^Line 4, column gross: '9OO.00' is not an amount"),
    (with_row(3, fee="6.8.3"), r"^Line 3, column fee"),
    (with_row(6, net="1164.00"), r"^Line 6, column net: 1164.00 is not gross 1200.00 less fee 35.10"),
    (with_row(11, currency="eur"), r"^Line 11, column currency: 'eur'"),
    (with_row(5, balance_transaction_id=""), r"^Line 5, column balance_transaction_id: the value is empty"),
    (with_row(6, automatic_payout_effective_at="next week"), r"^Line 6, column automatic_payout_effective_at"),
    (with_row(3, automatic_payout_effective_at="2025-03-12 00:00:00"), r"^Line 3, .* dated 2025-03-11 on line 2"),
    (with_row(3, balance_transaction_id="txn_37247PKc7MxL2vQ9mUMV46Gm"), r"^Line 3, .* also on line 2"),
    ("", r"empty"),
    (CSV_TEXT.splitlines()[0] + "\n", r"no rows"),
], ids=["missing-column", "letters", "two-points", "net", "currency", "empty-id", "date", "two-dates", "twice",
        "empty", "header-only"])
def test_a_malformed_file_is_refused_naming_line_and_column_and_nothing_is_written(app, text, message):
    """The bad row is last in its payout or in a later payout: the payouts before it are not written either."""
    with refused("report", message):
        payouts.import_reconciliation_csv(text)
    assert counts() == (0, 0, 0)


def test_nets_that_do_not_make_the_payout_are_refused(app):
    """Without the payout's own transaction, the settled nets are checked against the webhook's amount."""
    payout = api_payout(amount_cents=172400)
    with refused(None, r"Payout po_18Kh\S+ is \$1,724\.00, but the transactions it settled net \$1,724\.13"):
        payouts.post_payout(payout, API_LIST["data"][1:])
    assert counts() == (1, 0, 0) and not payout.posted


def test_a_missing_transaction_is_refused(app):
    payout = api_payout()
    with refused(None, r"\$1,724\.13, but the transactions it settled net \$1,141\.83; nothing was posted"):
        payouts.post_payout(payout, [t for t in API_LIST["data"] if t["id"] != "txn_3RsB6OKc7MxL2vQ9e713mwye"])
    assert counts() == (1, 0, 0)


def test_a_payout_whose_own_transaction_disagrees_is_refused(app):
    payout = api_payout()
    own = dict(API_LIST["data"][0], net=-172400, amount=-172400)
    with refused(None, r"its own balance transaction txn_1Wch\S+ takes \$1,724\.00"):
        payouts.post_payout(payout, [own, *API_LIST["data"][1:]])


def test_a_file_disagreeing_with_a_known_payout_writes_nothing(app):
    """The first payout is fine; the second is known from its webhook with another amount."""
    api_payout(amount_cents=172400)
    with refused("report", r"^Line 6: payout po_18Kh\S+ is \$1,724\.00 in our records, but its rows in this file "
                           r"net \$1,724\.13"):
        payouts.import_reconciliation_csv(CSV_TEXT)
    assert counts() == (1, 0, 0)


def test_a_closed_month_refuses_the_whole_file(app):
    close_month(date(2025, 3, 1))
    with refused("report", r"closed"):
        payouts.import_reconciliation_csv(CSV_TEXT)
    assert counts() == (0, 0, 0)


def test_a_transaction_settled_by_another_payout_is_refused(app):
    payouts.import_reconciliation_csv(CSV_TEXT)
    rows = [dict(CSV_ROWS[0], automatic_payout_id="po_OtherKc7MxL2vQ9")]
    with refused("report", r"txn_37247\S+ was already settled by payout po_1g488"):
        payouts.import_reconciliation_csv(csv_of(rows))


def test_other_currencies_from_the_api_are_refused(app):
    payout = api_payout()
    data = [dict(t, currency="eur") if t["type"] == "charge" else t for t in API_LIST["data"]]
    with refused(None, r"EUR; only US dollar"):
        payouts.post_payout(payout, data)


def test_fees_stripe_bills_separately_are_merchant_fees_not_clearing(app):
    """A Radar fee (reporting category "fee") was never in Stripe clearing: all of it is a fee."""
    radar = {"id": "txn_RadarKc7MxL2vQ9", "type": "stripe_fee", "reporting_category": "fee", "amount": -500,
             "fee": 0, "net": -500, "currency": "usd", "available_on": 1742169600, "source": None,
             "description": "Radar for Fraud Teams"}
    payout = api_payout(amount_cents=172413 - 500)
    own = dict(API_LIST["data"][0], amount=-(172413 - 500), net=-(172413 - 500))
    payouts.post_payout(payout, [own, *API_LIST["data"][1:], radar])
    assert lines_of(payout) == {journal.MERCHANT_FEES: dollars("80.87") + dollars("5.00"),
                                journal.BANK: dollars("1719.13"), journal.STRIPE_CLEARING: -dollars("1805.00")}


def test_a_payment_is_matched_by_the_id_in_its_metadata(app, card_payment):
    payment = card_payment("450.00", "pi_OtherKc7MxL2vQ9", "ch_OtherKc7MxL2vQ9", date(2025, 3, 3))
    rows = [dict(CSV_ROWS[0], automatic_payout_id="po_MetaKc7MxL2vQ9", charge_id="", payment_intent_id="",
                 source_id="", **{"payment_metadata[app_payment_id]": str(payment.id)})]
    payouts.import_reconciliation_csv(csv_of(rows))
    assert db.session.scalars(sa.select(StripeBalanceTransaction.payment_id)).one() == payment.id


# --- the worker and the commands -----------------------------------------------------------------------


def test_fetch_unposted_posts_each_payout_and_keeps_going_past_a_failure(app, monkeypatch):
    broken = "po_BrokenKc7MxL2vQ9"
    api_payout()
    api_payout(amount_cents=100, payout_id=broken)
    db.session.commit()
    asked = []

    def balance_transactions(payout_id):
        asked.append(payout_id)
        return API_LIST["data"] if payout_id == PO2 else API_LIST["data"][1:2]

    monkeypatch.setattr(stripe_gateway, "payout_balance_transactions", balance_transactions)
    posted, failed = stripe_payouts.fetch_unposted()

    assert sorted(asked) == sorted([PO2, broken])
    assert posted == [PO2]
    assert [(payout_id, "$1.00" in why and "$582.30" in why) for payout_id, why in failed] == [(broken, True)]
    states = dict(db.session.execute(sa.select(StripePayout.payout_id, StripePayout.posted)).all())
    assert states == {PO2: True, broken: False}
    assert journal.balance(journal.BANK) == dollars("1724.13")
    # The next run asks only about the one still unposted.
    asked.clear()
    assert stripe_payouts.fetch_unposted() == ([], failed)
    assert asked == [broken]


def test_fetch_unposted_stops_when_stripe_is_not_configured(app, monkeypatch):
    api_payout()
    api_payout(amount_cents=100, payout_id="po_SecondKc7MxL2vQ9")
    db.session.commit()

    def not_configured(payout_id):
        raise stripe_gateway.NotConfigured("Card payments are not set up")

    monkeypatch.setattr(stripe_gateway, "payout_balance_transactions", not_configured)
    posted, failed = stripe_payouts.fetch_unposted()
    assert posted == [] and len(failed) == 1


def test_the_import_command_posts_and_commits(app, runner, tmp_path):
    path = tmp_path / "payouts.csv"
    path.write_bytes(b"\xef\xbb\xbf" + CSV_TEXT.replace("\n", "\r\n").encode())
    result = runner.invoke(args=["billing", "stripe", "import-payouts", str(path)])
    assert result.exit_code == 0, result.output
    assert "Posted 2 payouts" in result.output and "$1,673.77" in result.output
    again = runner.invoke(args=["billing", "stripe", "import-payouts", str(path)])
    assert again.exit_code == 0 and "already posted" in again.output
    assert counts() == (2, 10, 2)


def test_the_import_command_names_the_bad_line(app, runner, tmp_path):
    path = tmp_path / "payouts.csv"
    path.write_text(with_row(4, gross="lots"))
    result = runner.invoke(args=["billing", "stripe", "import-payouts", str(path)])
    assert result.exit_code == 1 and "Line 4, column gross" in result.output
    assert counts() == (0, 0, 0)


def test_the_fetch_command_prints_a_summary(app, runner, monkeypatch):
    api_payout()
    db.session.commit()
    monkeypatch.setattr(stripe_gateway, "payout_balance_transactions", lambda payout_id: API_LIST["data"])
    result = runner.invoke(args=["billing", "stripe", "fetch-payouts"])
    assert result.exit_code == 0, result.output
    assert f"Posted 1 payout: {PO2}." in result.output
    assert db.session.scalar(sa.select(sa.func.sum(JournalLine.amount_cents))) == 0
