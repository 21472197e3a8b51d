"""The reconciliation pages: the month's figures per method, the drill-down to the payments, the
clearing accounts and the roll-forward, the CSV and PDF downloads, a bad month refused."""

import csv
import io
import re
from html import unescape

from billing.models import Role
from tests.services.test_reconciliation import march  # noqa: F401  (March 2026 built through the services)

MONTH = {"month": "2026-03"}


def text(response) -> str:
    return unescape(response.get_data(as_text=True))


def amounts(html: str) -> list[str]:
    return re.findall(r"\$[\d,]+\.\d\d", html)


def method_row(page: str, method: str) -> str:
    return re.search(rf'<tr data-method="{method}">(.*?)</tr>', page, re.S).group(1)


def test_page_shows_each_method_and_links_down_to_the_payments(login, march):
    client, _ = login(Role.BOOKKEEPER)
    response = client.get("/books/reconciliation", query_string=MONTH)
    assert response.status_code == 200
    page = text(response)
    # received, refunds, recorded, settled, in transit, difference, fees, net to bank
    assert amounts(method_row(page, "card")) == ["$800.00", "$50.00", "$750.00", "$600.00", "$150.00", "$0.00",
                                                 "$19.45", "$580.55"]
    assert amounts(method_row(page, "money_order"))[:6] == ["$925.00", "$300.00", "$625.00", "$450.00", "$175.00",
                                                            "$0.00"]
    cc = method_row(page, "carecredit")
    assert amounts(cc) == ["$2,000.00", "$0.00", "$2,000.00", "$1,600.00", "$400.00", "$0.00", "$238.40",
                           "$1,361.60"]
    assert "1 in transit, 1 fee mismatch" in cc
    fees = re.search(r'<p id="carecredit-fees">(.*?)</p>', page, re.S).group(1)
    assert amounts(fees) == ["$238.40", "$188.40", "$50.00"] and "$50.00 short</span>" in fees
    assert "on 1 payment." in " ".join(fees.split())
    link = re.search(r'href="([^"]*/reconciliation/carecredit[^"]*)"', cc).group(1)

    items = text(client.get(unescape(link)))
    rows = re.findall(r'<tr data-payment="(\d+)">(.*?)</tr>', items, re.S)
    assert [int(pid) for pid, _ in rows] == [march.payments["k1"].id, march.payments["k3"].id]
    assert "funded short" in rows[0][1] and amounts(rows[0][1])[-2:] == ["$149.00", "$99.00"]
    assert "not yet funded" in rows[1][1]

    # Clearing accounts tie to the journal; the roll-forward ties too.
    for code, balance in (("1020", "$150.00"), ("1010", "$175.00"), ("1030", "$400.00")):
        table = re.search(rf'<table class="striped" data-account="{code}">(.*?)</table>', page, re.S).group(1)
        assert re.search(rf"Journal balance</th><td class=\"num\">\{balance}", table)
        assert re.search(r'data-figure="unexplained">\$0.00', table)
    assert re.search(r'data-figure="ar-difference">\$0.00', page)
    assert "$1,075.00" in page  # closing receivables


def test_csv_and_pdf_downloads(login, march):
    client, _ = login(Role.ADMIN)
    response = client.get("/books/reconciliation.csv", query_string=MONTH)
    assert response.is_streamed and response.mimetype == "text/csv"
    assert 'filename="reconciliation-2026-03.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["Section", "Item", "Count", "Amount", "Detail"]
    assert ["Money order", "In transit", "2", "175.00", ""] in rows
    assert ["A/R roll-forward", "Closing", "", "1075.00", "as of 2026-03-31"] in rows
    pdf = client.get("/books/reconciliation.pdf", query_string=MONTH)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    assert 'filename=reconciliation-2026-03.pdf' in pdf.headers["Content-Disposition"]


def test_a_bad_month_is_refused_next_to_the_field(login, march):
    client, _ = login(Role.BOOKKEEPER)
    response = client.get("/books/reconciliation", query_string={"month": "March"})
    assert response.status_code == 400
    page = text(response)
    assert re.search(r'class="field-error">“March” is not a month. Enter a month like 2026-03.', page)
    assert 'data-method="card"' not in page
    bad = client.get("/books/reconciliation.csv", query_string={"month": "2026-13"})
    assert bad.status_code == 400 and "Enter a month like 2026-03." in bad.get_data(as_text=True)
    assert client.get("/books/reconciliation/cash", query_string=MONTH).status_code == 404


def test_the_default_is_last_month(login, march):
    client, _ = login(Role.BOOKKEEPER)
    page = text(client.get("/books/reconciliation"))
    assert re.search(r'name="month"[^>]*value="\d{4}-\d\d"', page) and 'data-method="card"' in page
