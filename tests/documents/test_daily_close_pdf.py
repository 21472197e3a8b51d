"""The daily close PDF: real PDFs read back as text."""

import io
import re

from pypdf import PdfReader

from billing.documents.daily_close import daily_close_pdf
from billing.extensions import db
from billing.models import User
from billing.money import Money
from billing.reports import daily
from billing.services import daily_close
from billing.services import payments as payment_service
from tests.services.conftest import (  # noqa: F401  (fixtures)
    TODAY, catalog, charge, invoice_for, make_patient, pay_cc,
)
from tests.services.conftest import money_order as _money_order

_serials = iter(range(88_000_001, 89_000_000))


def pdf_text(pdf: bytes) -> str:
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages))


def mo(patient, dollars: str, serial: str):
    return payment_service.record_money_order(patient, Money.parse(dollars), _money_order(serial=serial),
                                              received_date=TODAY, today=TODAY, confirm_overpayment=True)


def test_a_closed_and_reviewed_day(app, make_patient, invoice_for, pay_cc):
    patient = make_patient()
    invoice_for(patient, "infusion", "addl")
    kept = mo(patient, "350.00", "US12345678")
    bounced = mo(patient, "100.00", "WU87654321")
    cc = pay_cc(patient, "150.00")
    payment_service.refund_payment(cc, Money.parse("25.00"), "Overcharged", today=TODAY, return_reference="R9")
    payment_service.return_money_order(bounced, "Counterfeit", today=TODAY)
    desk = User(email="desk@clinic.test", name="Frances Desk", password_hash="x")
    books = User(email="books@clinic.test", name="Boris Books", password_hash="x")
    db.session.add_all([desk, books])
    db.session.flush()
    close = daily_close.close_day(TODAY, Money.parse("340.00"), "Counted twice; $10 missing", today=TODAY)
    close.closed_by_id = desk.id
    daily_close.review_close(close)
    close.reviewed_by_id = books.id
    db.session.flush()
    db.session.expire(close)

    document = daily_close_pdf(daily.day_figures(TODAY), close)

    assert document.filename == "daily-close-2026-03-16.pdf"
    content = pdf_text(document.pdf)
    for part in (
        "Daily close", "DC-20260316", "Monday, 03/16/2026",
        "Closed by Frances Desk", "Reviewed by Boris Books",
        "Card 0 $0.00", "Money order 2 $450.00", "CareCredit 1 $150.00", "Total received $600.00",
        "Money order returned 1 $100.00", "CareCredit refunds 1 $25.00", "Total given back $125.00",
        "Net for the day $475.00",
        "Expected (on hand per the books) $350.00", "Counted $340.00", "Short -$10.00",
        "Note: Counted twice; $10 missing",
        f"#{kept.id} {patient.account_number}", "Money order, USPS, ending 5678 $350.00",
        f"#{bounced.id} (returned since)",
    ):
        assert part in content, part
    # Full serials and account numbers never appear: only the last four.
    assert "US12345678" not in content and "WU87654321" not in content


def test_an_open_day_prints_as_a_marked_preview(app, make_patient):
    patient = make_patient()
    mo(patient, "80.00", "MG11112222")
    content = pdf_text(daily_close_pdf(daily.day_figures(TODAY), None).pdf)
    assert "NOT CLOSED — a preview" in content
    assert "On hand per the books now $80.00" in content
    assert "Closed by" not in content.replace("Closed by (front desk)", "")
