"""Invoice and receipt PDFs rendered for real: their text, their numbering, their bytes, the downloads."""

import io
import re
from datetime import date

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from billing.documents import RefusedURL, render_pdf
from billing.documents import receipts as receipt_documents
from billing.documents.invoices import invoice_pdf
from billing.documents.receipts import receipt_pdf
from billing.extensions import db
from billing.models import AuditEvent, Payment, PaymentMethod, PaymentStatus, Receipt, Role
from billing.money import Money
from billing.services import ServiceError
from billing.services import invoices as invoice_service
from billing.services import payments as payment_service
from billing.services import receipts as receipt_service
from billing.services.settings import get_settings
from tests.services.conftest import (  # noqa: F401  (fixtures)
    TODAY, catalog, charge, invoice_for, make_patient, money_order, pay_cc, pay_mo,
)


def text_of(pdf: bytes) -> str:
    """The PDF's text, whitespace (line breaks within a cell too) collapsed to single spaces."""
    return " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages).split())


@pytest.fixture(autouse=True)
def clinic(app):
    settings = get_settings()
    settings.name = "Lakeside Infusion Clinic"
    settings.address_line1 = "200 Harbor Street, Suite 4"
    settings.city, settings.state, settings.postal_code = "Portland", "ME", "04101"
    settings.phone, settings.email = "(207) 555-0142", "billing@lakeside.test"
    db.session.flush()
    return settings


@pytest.fixture
def patient(make_patient):
    return make_patient(last="Rivera", first="Sam", address_line1="18 Elm Street", city="Portland", state="ME",
                        postal_code="04102")


def receipt_for(payment: Payment) -> Receipt:
    return db.session.scalars(sa.select(Receipt).where(Receipt.payment_id == payment.id)).one()


# --- the invoice --------------------------------------------------------------------------------


def test_invoice_pdf_shows_lines_payments_balance_and_how_to_pay(patient, charge, pay_mo):
    charge(patient, "infusion")
    charge(patient, "addl", units=2)
    invoice = invoice_service.issue_invoice(patient, today=TODAY)
    pay_mo(patient, "200")

    document = invoice_pdf(invoice)
    text = text_of(document.pdf)

    assert document.filename == f"invoice-{invoice.number}.pdf" == "invoice-INV-2026-000001.pdf"
    assert "Lakeside Infusion Clinic" in text and "Sam Rivera" in text and "18 Elm Street" in text
    assert patient.account_number in text
    assert "96365" in text and "96366" in text and "Ketamine infusion, first hour" in text
    assert "$150.00" in text and "$300.00" in text  # additional hour: price and 2 units
    assert re.search(r"Total charges\s*\$750\.00", text)
    assert "(207) 555-0142" in text
    assert re.search(r"Money order payment 03/16/2026 Receipt RCT-2026-000001 -\$200\.00", text)
    assert re.search(r"Balance due\s*\$550\.00", text)
    assert "Payable to Lakeside Infusion Clinic" in text
    assert "CareCredit accepted" in text and "link in your email" in text
    assert "Page 1 of 1" in text and "Invoice INV-2026-000001" in text
    assert "VOID" not in text


def test_a_paid_invoice_asks_for_nothing(patient, invoice_for, pay_cc):
    invoice = invoice_for(patient)
    pay_cc(patient, "450")
    text = text_of(invoice_pdf(invoice).pdf)
    assert "Nothing is due on this invoice" in text and "How to pay" not in text
    assert re.search(r"Balance due\s*\$0\.00", text)


def test_a_void_invoice_is_marked_void(patient, invoice_for, pay_mo):
    invoice = invoice_for(patient)
    pay_mo(patient, "100")
    invoice_service.void_invoice(invoice, "Wrong service posted", today=TODAY)
    text = text_of(invoice_pdf(invoice).pdf)
    assert "VOID" in text and "Wrong service posted" in text
    assert "Reversed: Money order payment" in text
    assert "How to pay" not in text


# --- receipts: numbers and contents ---------------------------------------------------------------


def test_receipts_are_numbered_without_gaps_across_payments_refunds_and_returns(patient, invoice_for, pay_mo,
                                                                                pay_cc):
    invoice_for(patient, "infusion", "infusion")
    first = pay_mo(patient, "300")
    second = pay_cc(patient, "200")
    refund = payment_service.refund_payment(second, Money.parse("50"), "Overcharged", today=TODAY,
                                            return_reference="RET-88")
    returned = payment_service.return_money_order(first, "Counterfeit", today=TODAY)

    numbers = [r.number for r in db.session.scalars(sa.select(Receipt).order_by(Receipt.id))]
    assert numbers == [f"RCT-2026-{n:06d}" for n in range(1, 5)]
    assert receipt_for(first).number == "RCT-2026-000001"
    assert db.session.scalar(sa.select(Receipt.number).where(Receipt.refund_id == refund.id)) == "RCT-2026-000003"
    assert db.session.scalar(sa.select(Receipt.number).where(Receipt.refund_id == returned.id)) == "RCT-2026-000004"


def test_receipt_year_follows_the_received_date_and_the_prefix_the_clinic(patient, invoice_for, clinic):
    clinic.receipt_prefix = "LIC"
    invoice_for(patient, day=date(2025, 12, 30))
    payment = payment_service.record_money_order(patient, Money.parse("450"), money_order(),
                                                 received_date=date(2025, 12, 31), today=TODAY)
    assert receipt_for(payment).number == "LIC-2025-000001"


def test_a_card_payment_gets_its_receipt_when_it_settles(patient, invoice_for):
    invoice_for(patient)
    payment = Payment(patient_id=patient.id, method=PaymentMethod.CARD, status=PaymentStatus.PENDING,
                      amount_cents=45000, received_date=TODAY)
    db.session.add(payment)
    db.session.flush()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Receipt)) == 0
    payment_service.settle_payment(payment)
    text = text_of(receipt_pdf(receipt_for(payment)).pdf)
    assert "Card" in text and "$450.00" in text


def test_money_order_receipt_masks_the_serial(patient, invoice_for, pay_mo):
    invoice = invoice_for(patient)
    payment = pay_mo(patient, "500", confirm=True, serial="8812345678")
    invoice_for(patient, "addl")  # later activity does not show on the receipt

    document = receipt_pdf(receipt_for(payment))
    text = text_of(document.pdf)

    assert document.filename == "receipt-RCT-2026-000001.pdf"
    assert "Payment received" in text and "$500.00" in text and "03/16/2026" in text
    assert "USPS" in text and "ending 5678" in text
    assert "8812345678" not in text and "881234" not in text
    assert re.search(rf"{invoice.number}\s*\$450\.00", text)
    assert re.search(r"Kept as credit on account\s*\$50\.00", text)
    assert re.search(r"Remaining balance\s*\$0\.00", text) and re.search(r"Credit on account\s*\$50\.00", text)
    assert "Page 1 of 1" in text and "Receipt RCT-2026-000001" in text


def test_carecredit_receipt_shows_plan_authorization_and_remaining_balance(patient, invoice_for, pay_cc):
    invoice_for(patient, "infusion", "addl")
    payment = pay_cc(patient, "400")
    text = text_of(receipt_pdf(receipt_for(payment)).pdf)
    assert "CareCredit" in text and "12 months no interest" in text
    assert "A1B2C3" in text and "ending 4321" in text
    assert re.search(r"Remaining balance\s*\$200\.00", text)


def test_refund_receipt_names_the_original_payment_and_the_check(patient, invoice_for, pay_mo):
    invoice_for(patient)
    payment = pay_mo(patient, "500", confirm=True, serial="77001234")
    refund = payment_service.refund_payment(payment, Money.parse("80"), "Overpaid", today=TODAY,
                                            check_number="1042")
    receipt = db.session.scalars(sa.select(Receipt).where(Receipt.refund_id == refund.id)).one()
    text = text_of(receipt_pdf(receipt).pdf)
    assert "Refund receipt RCT-2026-000002" in text and "Refund issued" in text and "$80.00" in text
    assert "Clinic check no. 1042" in text and "Overpaid" in text
    assert "RCT-2026-000001" in text and "ending 1234" in text and "77001234" not in text
    assert re.search(r"Taken from credit on account\s*\$50\.00", text)
    assert re.search(r"Added back to the balance due on invoices\s*\$30\.00", text)
    assert re.search(r"Remaining balance\s*\$30\.00", text)


def test_returned_money_order_receipt(patient, invoice_for, pay_mo):
    invoice_for(patient)
    payment = pay_mo(patient, "450")
    returned = payment_service.return_money_order(payment, "Counterfeit", today=TODAY)
    receipt = db.session.scalars(sa.select(Receipt).where(Receipt.refund_id == returned.id)).one()
    text = text_of(receipt_pdf(receipt).pdf)
    assert "Returned money order" in text and "Money order returned" in text and "Counterfeit" in text
    assert re.search(r"Remaining balance\s*\$450\.00", text)


def test_refused_payments_issue_no_receipt_and_use_no_number(patient, invoice_for, pay_mo):
    invoice_for(patient)
    with pytest.raises(ServiceError):
        pay_mo(patient, "500")  # an overpayment not confirmed
    pay_mo(patient, "450")
    assert [r.number for r in db.session.scalars(sa.select(Receipt))] == ["RCT-2026-000001"]


# --- the same bytes every time ---------------------------------------------------------------------


def test_same_data_renders_identical_bytes(patient, invoice_for, pay_mo, pay_cc):
    invoice = invoice_for(patient, "infusion", "addl")
    payment = pay_mo(patient, "100")
    receipt = receipt_for(payment)
    first = receipt_pdf(receipt).pdf
    assert receipt_pdf(receipt).pdf == first
    assert invoice_pdf(invoice).pdf == invoice_pdf(invoice).pdf

    # Later payments and refunds change the invoice, never an issued receipt.
    pay_cc(patient, "200")
    payment_service.refund_payment(payment, Money.parse("20"), "Goodwill", today=TODAY, check_number="7")
    db.session.expire_all()
    assert receipt_pdf(db.session.get(Receipt, receipt.id)).pdf == first

    info = PdfReader(io.BytesIO(first)).metadata
    stamp = receipt.issued_at.strftime("%Y%m%d%H%M%S")
    assert info["/CreationDate"].startswith(f"D:{stamp}") and info["/ModDate"].startswith(f"D:{stamp}")


def test_record_rendering_keeps_the_first_hash_and_compares(patient, invoice_for, pay_mo):
    invoice_for(patient)
    receipt = receipt_for(pay_mo(patient, "450"))
    pdf = receipt_pdf(receipt).pdf
    assert receipt.sha256 is None
    assert receipt_service.record_rendering(receipt, pdf) is True
    assert receipt.sha256 == receipt_service.sha256_of(pdf)
    assert receipt_service.record_rendering(receipt, pdf) is True
    assert receipt_service.record_rendering(receipt, pdf + b"%changed") is False
    assert receipt.sha256 == receipt_service.sha256_of(pdf)  # the first one is kept


# --- downloads -----------------------------------------------------------------------------------


def _attachment_name(response) -> str:
    return re.search(r'attachment; filename="?([^";]+)"?', response.headers["Content-Disposition"]).group(1)


@pytest.mark.parametrize("role", [Role.FRONTDESK, Role.BOOKKEEPER])
def test_download_invoice_and_receipt(login, role, patient, invoice_for, pay_mo):
    invoice = invoice_for(patient)
    payment = pay_mo(patient, "450")
    receipt = receipt_for(payment)
    db.session.commit()
    client, _ = login(role)

    response = client.get(f"/invoices/{invoice.id}/pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert _attachment_name(response) == "invoice-INV-2026-000001.pdf"
    assert response.headers["Cache-Control"] == "no-store"
    assert "INV-2026-000001" in text_of(response.data)

    response = client.get(f"/payments/receipts/{receipt.id}/pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert _attachment_name(response) == "receipt-RCT-2026-000001.pdf"
    db.session.expire_all()
    assert db.session.get(Receipt, receipt.id).sha256 == receipt_service.sha256_of(response.data)

    actions = db.session.scalars(sa.select(AuditEvent.action).where(AuditEvent.action.like("%download%"))
                                 .order_by(AuditEvent.id)).all()
    assert actions == ["invoice.download", "receipt.download"]

    page = client.get(f"/payments/{payment.id}").get_data(as_text=True)
    assert f'href="/payments/receipts/{receipt.id}/pdf"' in page
    assert "renders differently" not in page
    page = client.get(f"/invoices/{invoice.id}").get_data(as_text=True)
    assert f'href="/invoices/{invoice.id}/pdf"' in page


def test_the_payment_page_offers_every_receipt_of_the_payment(login, patient, invoice_for, pay_mo):
    invoice_for(patient)
    payment = pay_mo(patient, "500", confirm=True)
    payment_service.refund_payment(payment, Money.parse("50"), "Overpaid", today=TODAY, check_number="9")
    db.session.commit()
    client, _ = login(Role.FRONTDESK)
    page = client.get(f"/payments/{payment.id}").get_data(as_text=True)
    assert "Receipt RCT-2026-000001 (PDF)" in page and "Refund receipt RCT-2026-000002 (PDF)" in page


def test_unknown_documents_are_404(login):
    client, _ = login(Role.FRONTDESK)
    assert client.get("/invoices/999999/pdf").status_code == 404
    assert client.get("/payments/receipts/999999/pdf").status_code == 404


def test_a_receipt_that_renders_differently_is_still_served_but_reported(login, monkeypatch, patient,
                                                                         invoice_for, pay_mo, caplog):
    invoice_for(patient)
    payment = pay_mo(patient, "450")
    receipt = receipt_for(payment)
    db.session.commit()
    client, _ = login(Role.FRONTDESK)
    first = client.get(f"/payments/receipts/{receipt.id}/pdf").data

    real = receipt_documents.receipt_data
    monkeypatch.setattr(receipt_documents, "receipt_data", lambda r: {**real(r), "amount": Money.parse("45")})
    response = client.get(f"/payments/receipts/{receipt.id}/pdf")
    assert response.status_code == 200 and response.data != first
    assert "$45.00" in text_of(response.data)
    assert "renders differently" in caplog.text

    db.session.expire_all()
    assert db.session.get(Receipt, receipt.id).sha256 == receipt_service.sha256_of(first)
    event = db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id.desc())
                               .where(AuditEvent.action.like("receipt.%"))).first()
    assert event.action == "receipt.download_changed"
    assert event.changes["issued_sha256"] == receipt_service.sha256_of(first)
    page = client.get(f"/payments/{payment.id}").get_data(as_text=True)
    assert "This receipt renders differently from when it was issued" in page
    assert "RCT-2026-000001 renders differently" in page  # the flash from the download

    monkeypatch.setattr(receipt_documents, "receipt_data", real)
    assert client.get(f"/payments/receipts/{receipt.id}/pdf").data == first
    assert "renders differently" not in client.get(f"/payments/{payment.id}").get_data(as_text=True)


# --- the fetcher ---------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["file:///etc/hostname", "http://127.0.0.1:9/logo.png",
                                 "https://example.com/logo.png"])
def test_documents_refuse_file_and_remote_urls(app, monkeypatch, url):
    import billing.documents

    monkeypatch.setattr(billing.documents, "letterhead", lambda: {
        "name": "Clinic", "address_lines": [], "phone": "", "email": "", "tin": "", "npi": "", "logo": url})
    with app.test_request_context(), pytest.raises(RefusedURL):
        render_pdf("receipt.html", document_number="RCT-2026-000001", title="Receipt", receipt={
            "kind": "payment", "patient": {}, "method": [], "applied": [], "kept_as_credit": Money.zero(),
            "amount": Money.zero(), "remaining": Money.zero(), "credit": Money.zero()})
