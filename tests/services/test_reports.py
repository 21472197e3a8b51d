"""Aging, revenue and payments reports checked against figures worked out by hand from the activity."""

from datetime import date

import pytest

from billing.models import AdjustmentKind, PaymentMethod
from billing.money import Money
from billing.reports import aging as aging_report
from billing.reports import revenue
from billing.reports.trial_balance import totals, trial_balance
from billing.services import invoices as invoice_service
from billing.services import journal
from billing.services import payments as payment_service
from tests.services.conftest import TODAY, money_order


def usd(text: str) -> Money:
    return Money.parse(text)


@pytest.fixture
def activity(catalog, make_patient, charge):
    """Three patients' invoices issued on several past dates, with payments and an adjustment.

    Ava:   INV1 2026-01-05 $450 (money order $200 on 2026-02-10) · INV2 2026-03-01 $600 (infusion + add'l hour)
    Ben:   INV3 2025-11-01 $450 (write-off $50 on 2026-03-10)    · INV4 2026-03-16 $450
    Cleo:  INV5 2026-02-20 $450 (CareCredit $450 on 2026-02-25) · an uninvoiced $450 charge on 2026-03-12
    """
    provider = catalog["provider"]
    ava, ben, cleo = make_patient("Ava"), make_patient("Ben"), make_patient("Cleo")

    def invoice(patient, day, *services, by=None):
        for service in services or ("infusion",):
            charge(patient, service, day=day, provider=by)
        return invoice_service.issue_invoice(patient, today=day)

    inv1 = invoice(ava, date(2026, 1, 5), by=provider)
    payment_service.record_money_order(ava, usd("200"), money_order(serial="55500002"), received_date=date(2026, 2, 10), today=TODAY,
                                       apply_to=[(inv1.id, usd("200"))])
    invoice(ava, date(2026, 3, 1), "infusion", "addl", by=provider)
    inv3 = invoice(ben, date(2025, 11, 1))
    payment_service.adjust_invoice(inv3, AdjustmentKind.WRITE_OFF, usd("50"), "Hardship", today=date(2026, 3, 10))
    invoice(ben, TODAY)
    inv5 = invoice(cleo, date(2026, 2, 20), by=provider)
    details = payment_service.CareCreditInput(authorization_code="Z9Y8X7", plan=catalog["12mo"],
                                              account_last4="4321", id_checked=True, receipt_signed=True)
    payment_service.record_carecredit(cleo, usd("450"), details, received_date=date(2026, 2, 25), today=TODAY,
                                      apply_to=[(inv5.id, usd("450"))])
    charge(cleo, day=date(2026, 3, 12))
    return {"ava": ava, "ben": ben, "cleo": cleo}


def buckets(row) -> list[str]:
    return [m.plain() for m in row.buckets]


def test_aging_today_buckets_each_open_invoice_by_its_age(activity):
    report = aging_report.aging(TODAY)

    rows = {r.patient_id: r for r in report.rows}
    assert set(rows) == {activity["ava"].id, activity["ben"].id}  # Cleo's invoice is paid
    #                                          current  1–30     31–60   61–90    90+
    assert buckets(rows[activity["ava"].id]) == ["0.00", "600.00", "0.00", "250.00", "0.00"]  # ages 15 and 70
    assert buckets(rows[activity["ben"].id]) == ["450.00", "0.00", "0.00", "0.00", "400.00"]  # ages 0 and 135
    assert buckets(report.total) == ["450.00", "600.00", "0.00", "250.00", "400.00"]
    assert report.total.total == usd("1700")
    # The journal's receivables hold the aged invoices plus Cleo's uninvoiced charge.
    assert report.total.receivable == journal.balance(journal.RECEIVABLES) == usd("2150")
    assert report.total.uninvoiced == usd("450")
    assert rows[activity["ava"].id].uninvoiced == Money.zero()


def test_aging_as_of_a_past_date_ignores_later_payments_adjustments_and_invoices(activity):
    before_payment = aging_report.aging(date(2026, 2, 9))
    rows = {r.patient_id: r for r in before_payment.rows}
    assert buckets(rows[activity["ava"].id]) == ["0.00", "0.00", "450.00", "0.00", "0.00"]  # INV1 35 days old
    assert buckets(rows[activity["ben"].id]) == ["0.00", "0.00", "0.00", "0.00", "450.00"]  # no write-off yet
    assert activity["cleo"].id not in rows  # INV5 not yet issued
    assert before_payment.total.receivable == journal.balance(journal.RECEIVABLES, as_of=date(2026, 2, 9))

    before_carecredit = aging_report.aging(date(2026, 2, 24))
    cleo = next(r for r in before_carecredit.rows if r.patient_id == activity["cleo"].id)
    assert buckets(cleo) == ["0.00", "450.00", "0.00", "0.00", "0.00"]
    ava = next(r for r in before_carecredit.rows if r.patient_id == activity["ava"].id)
    assert buckets(ava) == ["0.00", "0.00", "250.00", "0.00", "0.00"]  # after the $200 money order of 02-10


def test_aging_buckets_follow_the_boundaries_of_30_60_and_90_days(catalog, make_patient, charge):
    patient = make_patient()
    for age in (0, 1, 30, 31, 60, 61, 90, 91):
        charge(patient, day=date.fromordinal(TODAY.toordinal() - age))
        invoice_service.issue_invoice(patient, today=date.fromordinal(TODAY.toordinal() - age))
    assert buckets(aging_report.aging(TODAY).total) == ["450.00", "900.00", "900.00", "900.00", "450.00"]


def test_aging_counts_an_invoice_voided_later_as_outstanding_until_its_void_day(make_patient, charge):
    patient = make_patient("Dale")
    charge(patient, day=date(2026, 3, 2))
    invoice = invoice_service.issue_invoice(patient, today=date(2026, 3, 2))
    payment_service.record_money_order(patient, usd("100"), money_order(), received_date=date(2026, 4, 10),
                                       today=date(2026, 4, 10), apply_to=[(invoice.id, usd("100"))])
    invoice_service.void_invoice(invoice, "Billed twice", today=date(2026, 5, 12))
    assert invoice.voided_on == date(2026, 5, 12)

    april = aging_report.aging(date(2026, 4, 30))
    [row] = april.rows
    assert row.patient_id == patient.id
    #                          current  1–30     31–60     61–90   90+    (59 days since March 2)
    assert buckets(row) == ["0.00", "0.00", "350.00", "0.00", "0.00"]
    assert buckets(april.total) == ["0.00", "0.00", "350.00", "0.00", "0.00"]
    assert row.uninvoiced == Money.zero()  # the journal still held it on the invoice that day
    assert [r.patient_id for r in aging_report.aging(date(2026, 5, 11)).rows] == [patient.id]

    for as_of in (date(2026, 5, 12), date(2026, 5, 31)):
        report = aging_report.aging(as_of)
        assert report.rows == []
        assert report.total.total == Money.zero()


def test_revenue_by_month_service_and_provider(activity):
    start, end = date(2025, 11, 1), TODAY
    assert [(f.label, f.count, f.amount.plain()) for f in revenue.revenue_by_month(start, end)] == [
        ("2025-11", 1, "450.00"), ("2026-01", 1, "450.00"), ("2026-02", 1, "450.00"), ("2026-03", 4, "1500.00"),
    ]
    by_service = {f.label: (f.count, f.amount.plain()) for f in revenue.revenue_by_service(start, end)}
    assert by_service == {"Ketamine infusion, first hour (KET-INF)": (6, "2700.00"),
                          "Infusion, each additional hour (KET-ADD)": (1, "150.00")}
    assert [(f.label, f.amount.plain()) for f in revenue.revenue_by_provider(start, end)] == [
        ("Dana Whitfield, MD", "1500.00"), ("No provider", "1350.00")]
    # The period's revenue is what the journal credited to revenue accounts.
    income = sum((-journal.balance(code) for code in journal.REVENUE.values()), Money.zero())
    assert sum((f.amount for f in revenue.revenue_by_month(start, end)), Money.zero()) == income
    # A narrower period counts only its own charges.
    assert [(f.label, f.amount.plain()) for f in revenue.revenue_by_month(date(2026, 2, 1), date(2026, 2, 28))] == [
        ("2026-02", "450.00")]


def test_payments_by_method_per_month(activity, pay_mo, make_patient, invoice_for):
    other = make_patient("Dee")
    invoice_for(other)
    pay_mo(other, "100")  # TODAY, in March
    rows = [(r.month, r.method, r.count, r.amount.plain())
            for r in revenue.payments_by_method(date(2026, 1, 1), TODAY)]
    assert rows == [("2026-02", PaymentMethod.CARECREDIT, 1, "450.00"),
                    ("2026-02", PaymentMethod.MONEY_ORDER, 1, "200.00"),
                    ("2026-03", PaymentMethod.MONEY_ORDER, 1, "100.00")]
    assert [(f.label, f.count, f.amount.plain()) for f in revenue.method_totals(date(2026, 1, 1), TODAY)] == [
        ("Card", 0, "0.00"), ("Money order", 2, "300.00"), ("CareCredit", 1, "450.00")]


def test_refunds_and_returns_are_listed_in_their_period(activity, make_patient, invoice_for, pay_mo):
    patient = make_patient("Eve")
    invoice_for(patient)
    refunded = pay_mo(patient, "450")
    returned = pay_mo(patient, "80", confirm=True)
    payment_service.refund_payment(refunded, usd("45"), "Session cut short", today=TODAY, check_number="1042")
    payment_service.return_money_order(returned, "Counterfeit", today=TODAY)
    rows = revenue.refunds_and_disputes(TODAY, TODAY)
    assert [(r.kind, r.method, r.amount.plain(), r.detail) for r in rows] == [
        ("Refund", PaymentMethod.MONEY_ORDER, "45.00", "Session cut short"),
        ("Return", PaymentMethod.MONEY_ORDER, "80.00", "Counterfeit")]
    assert revenue.refund_totals(TODAY, TODAY) == {"Refunds": usd("45"), "Returns": usd("80"),
                                                  "Disputes": Money.zero()}
    assert revenue.refunds_and_disputes(date(2026, 1, 1), date(2026, 3, 15)) == []


def test_trial_balance_rows_are_the_journal_balances(activity):
    rows = trial_balance(TODAY)
    assert {r.code: r.balance for r in rows} == {r.code: journal.balance(r.code) for r in rows}
    debits, credits = totals(rows)
    assert debits == credits and debits.is_positive
    # Up to a past date, and the movements of a period.
    feb = {r.code: r.balance for r in trial_balance(date(2026, 2, 28), since=date(2026, 2, 1))}
    assert feb[journal.RECEIVABLES] == usd("450") - usd("200") - usd("450")
    assert feb[journal.UNDEPOSITED] == usd("200") and feb[journal.CARECREDIT_RECEIVABLE] == usd("450")
    assert {r.code: r.balance for r in trial_balance(date(2026, 1, 31))}[journal.RECEIVABLES] == usd("900")
