"""The patient statement and the money-order deposit slip: real PDFs, read back as text."""

import io
import re
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from billing.documents.statements import deposit_slip_pdf, statement_pdf
from billing.extensions import db
from billing.models import AdjustmentKind, AuditEvent, MoneyOrderIssuer, Role
from billing.money import Money
from billing.reports import statements
from billing.reports.money_orders import money_orders_on_hand, undeposited_funds
from billing.services import charges as charge_service
from billing.services import invoices as invoice_service
from billing.services import journal
from billing.services import payments as payment_service
from billing.services.settings import get_settings
from billing.timeutil import clinic_today
from tests.services.conftest import (  # noqa: F401  (fixtures)
    catalog, charge, invoice_for, make_patient, money_order, pay_cc, pay_mo,
)

# Everything happens on dates counted back from the real clinic date: allocations undone by a refund
# or a void are dated the day they are written, as in the app, so the scenarios live in real time.


def usd(text: str) -> Money:
    return Money.parse(text, allow_negative=True)


def mdy(day: date) -> str:
    return day.strftime("%m/%d/%Y")


def pages_of(pdf: bytes) -> list[str]:
    """The text of each page, whitespace runs folded to one space."""
    return [re.sub(r"\s+", " ", page.extract_text()) for page in PdfReader(io.BytesIO(pdf)).pages]


def in_order(text: str, *parts: str) -> bool:
    """True when every part occurs in `text`, each after the one before."""
    at = 0
    for part in parts:
        at = text.find(part, at)
        if at < 0:
            return False
        at += len(part)
    return True


@pytest.fixture
def today(app) -> date:
    return clinic_today()


@pytest.fixture
def ago(today):
    """ago(n) -> the date n days before today."""
    return lambda days: today - timedelta(days=days)


@pytest.fixture
def clinic(app):
    settings = get_settings()
    settings.name, settings.address_line1 = "Lakeside Infusion Clinic", "200 Harbor Street, Suite 4"
    settings.city, settings.state, settings.postal_code = "Portland", "ME", "04101"
    settings.phone, settings.email = "(207) 555-0142", "billing@lakeside.test"
    db.session.flush()
    return settings


@pytest.fixture
def post(catalog, today):
    """post(patient, "infusion", day) -> a charge dated `day`."""

    def make(patient, service: str, day: date, **kw):
        return charge_service.post_charge(
            patient, charge_service.ChargeInput(service=catalog[service], date_of_service=day, **kw), today=today)

    return make


def receive_mo(patient, dollars: str, day: date, **details):
    return payment_service.record_money_order(patient, usd(dollars), money_order(**details), received_date=day,
                                              today=clinic_today(), confirm_overpayment=True)


def receive_cc(catalog, patient, dollars: str, day: date, apply_to=None):
    details = payment_service.CareCreditInput(authorization_code="K7Q2M9", plan=catalog["12mo"], account_last4="4321",
                                              id_checked=True, receipt_signed=True)
    return payment_service.record_carecredit(patient, usd(dollars), details, received_date=day, today=clinic_today(),
                                             apply_to=apply_to)


def patient_balance(patient, as_of: date) -> Money:
    """The journal's view: receivables less credits held, up to the end of `as_of`."""
    return (journal.balance(journal.RECEIVABLES, patient_id=patient.id, as_of=as_of)
            + journal.balance(journal.PATIENT_CREDITS, patient_id=patient.id, as_of=as_of))


@pytest.fixture
def scenario(clinic, catalog, make_patient, post, ago):
    """$350.00 owing before the period (20 days ago to today), then every kind of line in it
    (the running balance in comments)."""
    patient = make_patient(address_line1="12 Elm Street", city="Portland", state="ME", postal_code="04103")
    post(patient, "infusion", ago(40), icd10_codes=["F33.2"])
    invoice_a = invoice_service.issue_invoice(patient, today=ago(40))  # 450
    receive_mo(patient, "100", ago(30), serial="11112222")  # 350: the opening balance
    post(patient, "infusion", ago(18), icd10_codes=["F33.2"])  # 800
    post(patient, "addl", ago(18))  # 950
    invoice_b = invoice_service.issue_invoice(patient, today=ago(18))
    receive_mo(patient, "300", ago(17), issuer=MoneyOrderIssuer.WESTERN_UNION, serial="WU5550001234")  # 650
    cc = receive_cc(catalog, patient, "400", ago(15))  # 250
    payment_service.refund_payment(cc, usd("100"), "Charged twice on the terminal", today=ago(14),
                                   return_reference="RT88812")  # 350
    payment_service.adjust_invoice(invoice_b, AdjustmentKind.COURTESY, usd("50"), "Loyal patient",
                                   today=ago(12))  # 300
    extra = post(patient, "addl", ago(11))  # 450
    charge_service.void_charge(extra, "Posted twice", today=ago(10))  # 300
    db.session.flush()
    return patient, invoice_a, invoice_b


# --- the statement ---------------------------------------------------------------------------------


def test_statement_ties_to_the_journal_line_by_line(scenario, ago, today):
    patient, _, invoice_b = scenario
    statement = statements.build_statement(patient, ago(20), today)

    assert statement.opening == usd("350") == patient_balance(patient, ago(21))
    assert [(line.day, line.kind, line.amount, line.balance) for line in statement.lines] == [
        (ago(18), "charge", usd("450"), usd("800")),
        (ago(18), "charge", usd("150"), usd("950")),
        (ago(17), "payment", usd("-300"), usd("650")),
        (ago(15), "payment", usd("-400"), usd("250")),
        (ago(14), "refund", usd("100"), usd("350")),
        (ago(12), "adjustment", usd("-50"), usd("300")),
        (ago(11), "charge", usd("150"), usd("450")),
        (ago(10), "correction", usd("-150"), usd("300")),
    ]
    assert statement.closing == usd("300") == patient_balance(patient, today)
    assert dict(statement.totals) == {
        "New charges": usd("750"), "Payments": usd("-700"), "Refunds and returns": usd("100"),
        "Discounts and write-offs": usd("-50"), "Voids and corrections": usd("-150")}
    # Invoice A is paid; B has 600 - 350 + 100 reopened - 50 = 300 left, 18 days after its date.
    assert [(i.number, i.due) for i in statement.open_invoices] == [(invoice_b.number, usd("300"))]
    assert statement.aging[1] == ("1–30 days", usd("300"))
    assert (statement.invoiced_due, statement.uninvoiced, statement.credit) == (usd("300"), Money.zero(), Money.zero())


def test_statement_pdf_shows_balances_lines_and_masked_details(scenario, ago, today):
    patient, _, invoice_b = scenario
    start = ago(20)
    document = statement_pdf(patient, start, today)

    assert document.filename == f"statement-{patient.account_number}-{start.isoformat()}-to-{today.isoformat()}.pdf"
    assert document.pdf.startswith(b"%PDF")
    text = " ".join(pages_of(document.pdf))
    assert "Lakeside Infusion Clinic" in text and "Statement" in text
    assert patient.full_name in text and "12 Elm Street" in text and patient.account_number in text
    assert f"Period {mdy(start)} – {mdy(today)}" in text
    # The account summary: opening, the period's totals by kind, closing, what is due.
    assert in_order(text, f"Opening balance on {mdy(start)}", "$350.00", "New charges", "$750.00",
                    "Payments", "-$700.00", "Refunds and returns", "$100.00", "Discounts and write-offs", "-$50.00",
                    "Voids and corrections", "-$150.00", f"Closing balance on {mdy(today)}", "$300.00",
                    "Amount due now", "$300.00")
    # Every line in date order with its running balance.
    assert in_order(
        text, "Opening balance", "$350.00",
        mdy(ago(18)), "Ketamine infusion, first hour", "96365", invoice_b.number, "$450.00", "$800.00",
        mdy(ago(18)), "Infusion, each additional hour", "96366", "$150.00", "$950.00",
        mdy(ago(17)), "Money order payment", "Western Union money order, serial ending 1234", "-$300.00", "$650.00",
        mdy(ago(15)), "CareCredit payment", "12 months no interest, authorization K7Q2M9", "-$400.00", "$250.00",
        mdy(ago(14)), "CareCredit return", "return reference RT88812", "$100.00", "$350.00",
        mdy(ago(12)), "Courtesy discount", invoice_b.number, "-$50.00", "$300.00",
        mdy(ago(11)), "Infusion, each additional hour", "$150.00", "$450.00",
        mdy(ago(10)), "Charge voided: Infusion, each additional hour", "-$150.00", "$300.00",
        "Closing balance", "$300.00")
    # Masked: never the whole serial, never a diagnosis.
    assert "WU5550001234" not in text
    assert "F33.2" not in text
    assert in_order(text, "Amount due", "1–30 DAYS", "AMOUNT DUE NOW", "$0.00", "$300.00", "$0.00", "$300.00",
                    invoice_b.number, mdy(ago(18)), "18", "$600.00", "$300.00")
    assert "How to pay" in text and "Please detach and return this part with your payment" in text
    assert f"ST-{patient.account_number}-{start:%Y%m%d}-{today:%Y%m%d}" in text  # the footer's document number


def test_credit_applied_is_information_and_a_voided_invoice_is_a_reversal(clinic, make_patient, post, ago, today):
    patient = make_patient()
    post(patient, "infusion", ago(9))
    invoice = invoice_service.issue_invoice(patient, today=ago(9))  # 450
    receive_mo(patient, "500", ago(8), serial="70001234")  # -50: 50 held as credit
    post(patient, "addl", ago(7))  # 100
    second = invoice_service.issue_invoice(patient, today=ago(7))
    payment_service.apply_credit(patient, second, None, today=ago(6))  # 100: no change
    payment_service.adjust_invoice(second, AdjustmentKind.WRITE_OFF, usd("100"), "Hardship", today=ago(5))  # 0
    invoice_service.void_invoice(second, "Wrong service", today=ago(4))  # 100: the write-off reversed
    db.session.flush()

    statement = statements.build_statement(patient, ago(10), today)
    assert [(line.kind, line.amount, line.balance) for line in statement.lines] == [
        ("charge", usd("450"), usd("450")),
        ("payment", usd("-500"), usd("-50")),
        ("charge", usd("150"), usd("100")),
        ("info", None, None),
        ("adjustment", usd("-100"), usd("0")),
        ("correction", usd("100"), usd("100")),
    ]
    # The voided invoice's charge is open again, and the credit used on it is back.
    assert (statement.invoiced_due, statement.uninvoiced, statement.credit) == (Money.zero(), usd("150"), usd("50"))
    assert statement.closing == usd("100") == patient_balance(patient, today)
    text = " ".join(pages_of(statement_pdf(patient, ago(10), today).pdf))
    assert "Credit on account applied" in text and f"$50.00 applied to {second.number}" in text
    assert f"Invoice {second.number} voided" in text and "$50.00 paid on it kept as credit on account" in text
    assert "Discounts and write-offs on it reversed" in text
    assert invoice.number in text


def test_statement_of_a_credit_balance_asks_for_nothing(clinic, make_patient, post, ago, today):
    patient = make_patient()
    post(patient, "addl", ago(3))
    invoice_service.issue_invoice(patient, today=ago(3))
    receive_mo(patient, "200", ago(2), serial="70005555")
    db.session.flush()

    statement = statements.build_statement(patient, ago(10), today)
    assert statement.closing == usd("-50") and statement.amount_due == Money.zero()
    assert statement.credit_balance == usd("50")
    text = " ".join(pages_of(statement_pdf(patient, ago(10), today).pdf))
    assert "Your account has a credit of $50.00" in text
    assert in_order(text, "Amount due now", "$0.00")


def test_aging_buckets_open_invoices_by_days_since_the_invoice_date(clinic, make_patient, post, ago, today):
    patient = make_patient()
    ages = {120: ("infusion",), 75: ("addl", "addl"), 45: ("infusion", "addl"), 10: ("infusion",), 0: ("addl",)}
    invoices = {}
    for age, services in ages.items():
        for service in services:
            post(patient, service, ago(age))
        invoices[age] = invoice_service.issue_invoice(patient, today=ago(age))
    payment_service.record_money_order(patient, usd("200"), money_order(serial="70009999"), received_date=today,
                                       today=today, apply_to=[(invoices[120].id, usd("200"))])
    post(patient, "infusion", today)  # due, but not invoiced: in no aging bucket
    db.session.flush()

    statement = statements.build_statement(patient, ago(30), today)
    assert statement.aging == [("Current", usd("150")), ("1–30 days", usd("450")), ("31–60 days", usd("600")),
                               ("61–90 days", usd("300")), ("Over 90 days", usd("250"))]
    assert statement.invoiced_due == usd("1750") and statement.uninvoiced == usd("450")
    assert statement.amount_due == statement.closing == usd("2200") == patient_balance(patient, today)
    assert [(i.number, i.age_days, i.due) for i in statement.open_invoices] == [
        (invoices[age].number, age, due) for age, due in
        ((120, usd("250")), (75, usd("300")), (45, usd("600")), (10, usd("450")), (0, usd("150")))]

    text = " ".join(pages_of(statement_pdf(patient, ago(30), today).pdf))
    assert in_order(text, "CURRENT", "1–30 DAYS", "31–60 DAYS", "61–90 DAYS", "OVER 90 DAYS", "NOT YET INVOICED",
                    "LESS CREDIT", "AMOUNT DUE NOW",
                    "$150.00", "$450.00", "$600.00", "$300.00", "$250.00", "$450.00", "$0.00", "$2,200.00",
                    "due on invoices: $1,750.00")
    assert in_order(text, invoices[120].number, mdy(ago(120)), "120", "$450.00", "$250.00")


def test_aging_as_of_an_earlier_end_date_leaves_out_what_came_after(clinic, catalog, make_patient, post, ago, today):
    patient = make_patient()
    post(patient, "infusion", ago(60))
    first = invoice_service.issue_invoice(patient, today=ago(60))
    receive_mo(patient, "450", ago(5), serial="70008888")
    post(patient, "addl", ago(40))
    second = invoice_service.issue_invoice(patient, today=ago(40))
    cc = receive_cc(catalog, patient, "150", ago(30), apply_to=[(second.id, usd("150"))])
    payment_service.refund_payment(cc, usd("150"), "Paid by mistake", today=today, return_reference="RT1")
    db.session.flush()

    earlier = statements.build_statement(patient, ago(45), ago(10))
    assert earlier.closing == usd("450") == patient_balance(patient, ago(10))
    assert [(i.number, i.due) for i in earlier.open_invoices] == [(first.number, usd("450"))]
    assert earlier.aging[2] == ("31–60 days", usd("450"))
    text = " ".join(pages_of(statement_pdf(patient, ago(45), ago(10)).pdf))
    assert f"Activity after {mdy(ago(10))} is not on this statement." in text

    now = statements.build_statement(patient, ago(10), today)
    assert [(i.number, i.due) for i in now.open_invoices] == [(second.number, usd("150"))]
    assert now.closing == usd("150") == patient_balance(patient, today)


def test_a_long_statement_spans_pages_with_the_table_header_on_each(clinic, make_patient, post, ago, today):
    patient = make_patient()
    for n in range(LONG_LINES):
        post(patient, "addl", ago(80 - n))
    db.session.flush()

    start = ago(90)
    pages = pages_of(statement_pdf(patient, start, today).pdf)
    assert len(pages) == 2
    assert "Page 1 of 2" in pages[0] and "Page 2 of 2" in pages[1]
    for page in pages:
        assert in_order(page, "DATE", "DESCRIPTION", "CODE", "REFERENCE", "AMOUNT", "BALANCE")
        assert f"ST-{patient.account_number}-{start:%Y%m%d}-{today:%Y%m%d}" in page
    # Page 2 says whose statement it is, and the lines carry on from page 1 to the closing balance.
    assert f"{patient.full_name} · Account {patient.account_number}" in pages[1]
    assert f"{patient.full_name} · Account {patient.account_number}" not in pages[0]
    last = Money(15000 * LONG_LINES)
    assert in_order(pages[1], str(last), "Closing balance", str(last), "AMOUNT DUE NOW", str(last))


LONG_LINES = 50  # two pages hold about 15 to 60 lines; 50 keeps room either way


def test_the_default_period_is_the_last_three_months():
    assert statements.default_period(date(2026, 3, 16)) == (date(2025, 12, 16), date(2026, 3, 16))
    assert statements.default_period(date(2026, 5, 31)) == (date(2026, 2, 28), date(2026, 5, 31))
    assert statements.default_period(date(2026, 2, 10)) == (date(2025, 11, 10), date(2026, 2, 10))


# --- the deposit slip -----------------------------------------------------------------------------


@pytest.fixture
def drawer(clinic, make_patient, post, ago, today):
    """Three money orders on hand (one of them refunded by check) and one that came back."""
    rivera, chen = make_patient(), make_patient(last="Chen", first="Lee")
    for patient, services in ((rivera, ("infusion", "infusion")), (chen, ("infusion",))):
        for service in services:
            post(patient, service, ago(9))
        invoice_service.issue_invoice(patient, today=ago(9))
    usps = receive_mo(rivera, "450", ago(8), issuer=MoneyOrderIssuer.USPS, serial="27345591020")
    western = receive_mo(rivera, "300", ago(7), issuer=MoneyOrderIssuer.WESTERN_UNION, serial="WU0048812345")
    moneygram = receive_mo(chen, "450", ago(6), issuer=MoneyOrderIssuer.MONEYGRAM, serial="MG77120033")
    payment_service.refund_payment(moneygram, usd("50"), "Overpaid", today=today, check_number="1042")
    bounced = receive_mo(chen, "125.50", ago(5), issuer=MoneyOrderIssuer.BANK, serial="BK99990001")
    payment_service.return_money_order(bounced, "Counterfeit", today=today)
    db.session.flush()
    return usps, western, moneygram, bounced


def test_deposit_slip_lists_full_serials_and_the_total(drawer, today):
    usps, western, moneygram, _ = drawer
    on_hand = money_orders_on_hand()
    assert on_hand == [usps, western, moneygram]
    assert undeposited_funds() == usd("1200")

    document = deposit_slip_pdf(on_hand, slip_date=today)
    assert document.filename == f"money-order-deposit-slip-{today.isoformat()}.pdf"
    [text] = pages_of(document.pdf)
    assert "Deposit slip" in text and "Lakeside Infusion Clinic" in text and f"Deposit date {mdy(today)}" in text
    assert in_order(text, "USPS", "27345591020", "$450.00",
                    "Western Union", "WU0048812345", "$300.00",
                    "MoneyGram", "MG77120033", "$450.00",
                    "Total: 3 money orders", "$1,200.00")
    assert "BK99990001" not in text  # came back: not in the drawer
    assert "Rivera" not in text and "Chen" not in text  # the bank gets no patient names
    assert "Page 1 of 1" in text


def test_deposit_slip_refuses_what_is_not_a_money_order_on_hand(drawer, make_patient, invoice_for, pay_cc, today):
    usps, _, _, bounced = drawer
    with pytest.raises(ValueError, match="not a money order on hand"):
        deposit_slip_pdf([usps, bounced], slip_date=today)
    patient = make_patient(last="Okafor")
    invoice_for(patient)
    with pytest.raises(ValueError, match="not a money order on hand"):
        deposit_slip_pdf([pay_cc(patient, "450")], slip_date=today)
    with pytest.raises(ValueError, match="at least one"):
        deposit_slip_pdf([], slip_date=today)


# --- downloads --------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.FRONTDESK, Role.BOOKKEEPER])
def test_staff_download_a_statement(login, scenario, ago, today, role):
    patient, _, _ = scenario
    db.session.commit()
    client, user = login(role)
    start = ago(20)
    response = client.get(f"/patients/{patient.id}/statement.pdf?start={start}&end={today}")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="statement-{patient.account_number}-{start}-to-{today}.pdf"')
    assert response.headers["Cache-Control"] == "no-store"
    assert in_order(" ".join(pages_of(response.data)), "Closing balance", "$300.00")
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "statement.download")).one()
    assert (event.actor_id, event.entity_id, event.changes) == (
        user.id, str(patient.id), {"start": start.isoformat(), "end": today.isoformat()})


def test_statement_without_dates_covers_the_last_three_months(login, clinic, make_patient, today):
    patient = make_patient()
    db.session.commit()
    client, _ = login(Role.FRONTDESK)
    start, end = statements.default_period(today)
    response = client.get(f"/patients/{patient.id}/statement.pdf")
    assert response.status_code == 200
    assert f'filename="statement-{patient.account_number}-{start}-to-{end}.pdf"' in \
        response.headers["Content-Disposition"]


@pytest.mark.parametrize("query, message", [
    ("start=2026-13-01&end=2026-03-16", "The start date “2026-13-01” is not a date. Use the form YYYY-MM-DD"),
    ("start=2026-03-01&end=16/03/2026", "The end date “16/03/2026” is not a date."),
    ("start=&end=2026-03-16", "Enter the start date of the statement."),
    ("start=2026-03-31&end=2026-03-01", "The start date (03/31/2026) is after the end date (03/01/2026)."),
    ("start=2026-03-01&end=2999-01-01", "The end date (01/01/2999) is in the future."),
])
def test_bad_statement_dates_get_a_clear_400(login, clinic, make_patient, query, message):
    patient = make_patient()
    db.session.commit()
    client, _ = login(Role.BOOKKEEPER)
    response = client.get(f"/patients/{patient.id}/statement.pdf?{query}")
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert message in response.get_data(as_text=True)


def test_patient_page_offers_a_statement_for_the_last_three_months(login, clinic, make_patient, today):
    patient = make_patient()
    db.session.commit()
    client, _ = login(Role.BOOKKEEPER)
    page = client.get(f"/patients/{patient.id}").get_data(as_text=True)
    start, end = statements.default_period(today)
    assert f'action="/patients/{patient.id}/statement.pdf"' in page
    assert f'name="start" value="{start.isoformat()}"' in page
    assert f'name="end" value="{end.isoformat()}"' in page
    assert "Download statement (PDF)" in page


def test_front_desk_lists_money_orders_on_hand_and_prints_the_slip(login, drawer, today):
    usps, western, moneygram, _ = drawer
    db.session.commit()
    client, user = login(Role.FRONTDESK)
    page = client.get("/patients/money-orders").get_data(as_text=True)
    for serial in ("27345591020", "WU0048812345", "MG77120033"):
        assert serial in page
    assert "BK99990001" not in page
    assert "3 money orders" in page and "$1,200.00" in page
    assert 'href="/patients/money-orders/deposit-slip.pdf"' in page
    assert "undeposited funds, but" not in page  # the drawer agrees with the books

    response = client.get("/patients/money-orders/deposit-slip.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="money-order-deposit-slip-{today.isoformat()}.pdf"')
    assert in_order(pages_of(response.data)[0], "27345591020", "WU0048812345", "MG77120033",
                    "Total: 3 money orders", "$1,200.00")
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "deposit_slip.print")).one()
    assert event.actor_id == user.id
    assert event.changes == {"payments": [usps.id, western.id, moneygram.id], "total": "1200.00"}


def test_bookkeeper_sees_money_orders_on_hand_but_does_not_print_the_slip(login, drawer):
    db.session.commit()
    client, _ = login(Role.BOOKKEEPER)
    page = client.get("/patients/money-orders").get_data(as_text=True)
    assert "WU0048812345" in page
    assert "deposit-slip.pdf" not in page
    assert client.get("/patients/money-orders/deposit-slip.pdf").status_code == 403


def test_no_money_orders_on_hand_means_no_slip(login, clinic):
    client, _ = login(Role.FRONTDESK)
    assert "No money orders on hand." in client.get("/patients/money-orders").get_data(as_text=True)
    response = client.get("/patients/money-orders/deposit-slip.pdf")
    assert response.status_code == 302 and response.location == "/patients/money-orders"
    assert "no money orders on hand to deposit" in client.get(response.location).get_data(as_text=True)
