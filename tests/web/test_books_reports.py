"""The bookkeeper's report pages: figures, SVG charts, streamed CSV downloads, journal exports and the
admin's account names for exports."""

import csv
import io
import re
from html import unescape

from billing.exports.names import export_names
from billing.models import Role
from billing.services import journal
from tests.services.test_reports import activity  # noqa: F401  (three patients' invoices, payments, a write-off)

AS_OF = "2026-03-16"
PERIOD = {"start": "2025-11-01", "end": "2026-03-16"}


def text(response) -> str:
    return unescape(response.get_data(as_text=True))


def csv_rows(response) -> list[list[str]]:
    assert response.is_streamed and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def row(page: str, key: str) -> str:
    return re.search(rf'<tr data-patient="{key}">(.*?)</tr>', page, re.S).group(1)


def test_aging_page_shows_each_patient_the_total_and_a_stacked_chart(login, activity):
    client, _ = login(Role.BOOKKEEPER)
    page = text(client.get("/books/reports/aging", query_string={"as_of": AS_OF}))
    ava, ben = activity["ava"].account_number, activity["ben"].account_number
    assert re.findall(r"\$[\d,]+\.\d\d", row(page, ava)) == ["$0.00", "$600.00", "$0.00", "$250.00", "$0.00",
                                                             "$850.00", "$0.00"]
    assert re.findall(r"\$[\d,]+\.\d\d", row(page, ben))[:6] == ["$450.00", "$0.00", "$0.00", "$0.00", "$400.00",
                                                                 "$850.00"]
    assert activity["cleo"].account_number not in page  # paid in full
    assert "$1,700.00" in row(page, "total") and "$450.00 not on an invoice" in page
    svg = re.search(r"<svg.*?</svg>", page, re.S).group(0)
    assert "Open invoices by age" in svg and svg.count("<rect") == 4 + 5  # four buckets hold money, five keys
    assert "90+: $400.00" in svg


def test_aging_csv_streams_the_same_figures(login, activity):
    client, _ = login(Role.ADMIN)
    rows = csv_rows(client.get("/books/reports/aging.csv", query_string={"as_of": "2026-02-09"}))
    assert rows[0] == ["Account", "Patient", "Current", "1–30 days", "31–60 days", "61–90 days", "90+",
                       "Total due", "Not invoiced", "Receivable"]
    by_account = {r[0]: r[2:] for r in rows[1:]}
    assert by_account[activity["ava"].account_number][:6] == ["0.00", "0.00", "450.00", "0.00", "0.00", "450.00"]
    assert by_account[activity["ben"].account_number][:6] == ["0.00", "0.00", "0.00", "0.00", "450.00", "450.00"]
    assert rows[-1][:2] == ["", "Total"] and rows[-1][7] == "900.00"
    assert len(rows) == 1 + 2 + 1


def test_a_bad_date_is_named_and_nothing_is_computed(login, activity):
    client, _ = login(Role.BOOKKEEPER)
    page = text(client.get("/books/reports/aging", query_string={"as_of": "16/03/2026"}))
    assert 'aria-invalid="true"' in page and "Enter a date like 2026-03-31." in page
    assert 'id="aging"' not in page
    response = client.get("/books/reports/revenue.csv", query_string={"start": "2026-03-16", "end": "2026-01-01"})
    assert response.status_code == 400
    assert "To: The end date is before the start date" in response.get_data(as_text=True)


def test_revenue_page_and_csv_by_month_service_and_provider(login, activity):
    client, _ = login(Role.BOOKKEEPER)
    page = text(client.get("/books/reports/revenue", query_string=PERIOD))
    months = re.search(r'<table class="striped" id="by-month">(.*?)</table>', page, re.S).group(1)
    assert "2026-03" in months and "$1,500.00" in months and "$2,850.00" in months  # March, and the total
    svg = re.search(r"<svg.*?</svg>", page, re.S).group(0)
    assert svg.count('<g data-label=') == 4 and "2026-03: $1,500.00" in svg
    assert "Dana Whitfield, MD" in page and "No provider" in page
    for by, first in (("month", ["2025-11", "1", "450.00"]),
                      ("service", ["Ketamine infusion, first hour (KET-INF)", "6", "2700.00"]),
                      ("provider", ["Dana Whitfield, MD", "4", "1500.00"])):
        rows = csv_rows(client.get("/books/reports/revenue.csv", query_string={**PERIOD, "by": by}))
        assert rows[1] == first
        assert sum(int(r[2].replace(".", "")) for r in rows[1:]) == 285000


def test_payments_by_method_page_and_csv(login, activity):
    client, _ = login(Role.BOOKKEEPER)
    page = text(client.get("/books/reports/payments", query_string=PERIOD))
    methods = re.search(r'<table class="striped" id="methods">(.*?)</table>', page, re.S).group(1)
    assert re.findall(r"<td>(.*?)</td><td class=\"num\">(\d+)</td><td class=\"num\">(.*?)</td>", methods) == [
        ("Card", "0", "$0.00"), ("Money order", "1", "$200.00"), ("CareCredit", "1", "$450.00")]
    assert "$650.00" in methods
    assert "<svg" in page and "CareCredit: $450.00" in page
    rows = csv_rows(client.get("/books/reports/payments.csv", query_string=PERIOD))
    assert rows == [["Month", "Method", "Payments", "Amount"], ["2026-02", "CareCredit", "1", "450.00"],
                    ["2026-02", "Money order", "1", "200.00"]]


def test_refunds_page_lists_refunds_and_returns(login, activity, make_patient, invoice_for, pay_mo):
    from billing.money import Money
    from billing.services import payments as payment_service
    from tests.services.conftest import TODAY

    patient = make_patient("Eve")
    invoice_for(patient)
    paid = pay_mo(patient, "450", serial="66600001")
    payment_service.refund_payment(paid, Money.parse("45"), "=HYPERLINK(evil)", today=TODAY, check_number="1042")
    client, _ = login(Role.BOOKKEEPER)
    page = text(client.get("/books/reports/refunds", query_string=PERIOD))
    assert "Refund" in page and "$45.00" in page and f"#{paid.id}" in page
    rows = csv_rows(client.get("/books/reports/refunds.csv", query_string=PERIOD))
    assert rows[1][:3] == ["2026-03-16", "Refund", "Money order"] and rows[1][6] == "45.00"
    assert rows[1][7] == "'=HYPERLINK(evil)"  # never a formula in a spreadsheet


def test_trial_balance_page_and_csv(login, activity):
    client, _ = login(Role.BOOKKEEPER)
    page = text(client.get("/books/reports/trial-balance", query_string={"as_of": AS_OF}))
    receivables = re.search(r'<tr data-account="1100">(.*?)</tr>', page, re.S).group(1)
    assert journal.balance(journal.RECEIVABLES).format() in receivables
    rows = csv_rows(client.get("/books/reports/trial-balance.csv", query_string={"as_of": AS_OF}))
    balances = {r[0]: r[4] for r in rows[1:]}
    assert balances["1100"] == journal.balance(journal.RECEIVABLES).plain() == "2150.00"
    assert sum(int(r[4].replace(".", "").replace("-", "-")) for r in rows[1:]) == 0


def test_journal_exports_download_beancount_and_quickbooks(login, activity):
    client, _ = login(Role.BOOKKEEPER)
    form = text(client.get("/books/exports"))
    assert 'name="format"' in form and 'name="start"' in form
    beancount = client.get("/books/exports", query_string={**PERIOD, "format": "beancount"})
    assert beancount.is_streamed and beancount.headers["Content-Disposition"] == \
        'attachment; filename="journal-2025-11-01-to-2026-03-16.beancount"'
    body = beancount.get_data(as_text=True)
    assert "2025-10-31 open Assets:PatientReceivables USD" in body
    assert "2026-03-17 balance Assets:PatientReceivables  2150.00 USD" in body
    rows = csv_rows(client.get("/books/exports", query_string={**PERIOD, "format": "quickbooks"}))
    assert rows[0] == ["Journal No", "Journal Date", "Account", "Debits", "Credits", "Description", "Name"]
    assert sum(1 for r in rows if r[2] == "Patient receivables" and r[3] == "450.00") == 6
    bad = client.get("/books/exports", query_string={"start": "2026-03-01", "end": "", "format": "beancount"})
    assert bad.status_code == 400 and "Enter a date like 2026-03-31." in text(bad)


def test_the_front_desk_gets_no_reports(login):
    client, _ = login(Role.FRONTDESK)
    for url in ("/books/reports/aging", "/books/reports/aging.csv", "/books/exports", "/admin/export-names"):
        assert client.get(url).status_code == 403


def test_the_admin_maps_account_names_for_exports(login):
    client, _ = login(Role.ADMIN)
    page = text(client.get("/admin/export-names"))
    names = {n.code: n for n in export_names()}
    bank, undeposited = names[journal.BANK], names[journal.UNDEPOSITED]
    assert f'placeholder="{bank.beancount_default}"' in page
    form = {f"beancount-{bank.account_id}": "Assets:Bank:Checking",
            f"quickbooks-{bank.account_id}": "Checking"}
    response = client.post("/admin/export-names", data=form)
    assert response.status_code == 302
    assert "Export names saved (1 account changed)." in text(client.get(response.location))
    names = {n.code: n for n in export_names()}
    assert (names[journal.BANK].beancount_name, names[journal.BANK].quickbooks_name) == \
        ("Assets:Bank:Checking", "Checking")

    bad = client.post("/admin/export-names", data={f"beancount-{undeposited.account_id}": "assets:cash"})
    assert bad.status_code == 400
    assert "is not a Beancount account name" in text(bad) and 'aria-invalid="true"' in text(bad)
    assert {n.code: n for n in export_names()}[journal.UNDEPOSITED].beancount == ""
    assert {n.code: n for n in export_names()}[journal.BANK].beancount == "Assets:Bank:Checking"  # kept
