"""Email against a real SMTP server on loopback (aiosmtpd): the message and its PDF attachment arrive
and open; the "Email this" actions queue the patient's invoice, receipt or statement and it is
delivered right after the response."""

import io
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from billing.extensions import db
from billing.integrations import mail
from billing.models import AuditEvent, OutboxMessage, OutboxStatus, Receipt, Role
from billing.outbox import delivery
from billing.services import outbox
from billing.services.settings import get_settings
from tests.services.conftest import TODAY, catalog, charge, invoice_for, make_patient, pay_mo  # noqa: F401


def pdf_text(pdf: bytes) -> str:
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages))


def attachments(message) -> list:
    return [part for part in message.iter_attachments()]


# --- the SMTP edge ----------------------------------------------------------------------------------


def test_a_queued_pdf_arrives_and_opens(app, smtp_server, pdf_document):
    get_settings().name, get_settings().email = "Riverside Infusion", "front@riverside.test"
    message = outbox.queue_email("sam@patient.test", "Your invoice INV-2026-000001", "Dear Sam,\n\nAttached.\n",
                                 attachment=pdf_document, kind="invoice")
    db.session.commit()

    assert delivery.deliver_due() == (1, 0)

    [envelope] = smtp_server.envelopes
    assert envelope.mail_from == "billing@clinic.test" and envelope.rcpt_tos == ["sam@patient.test"]
    [received] = smtp_server.messages
    assert received["Subject"] == "Your invoice INV-2026-000001"
    assert received["To"] == "sam@patient.test"
    assert received["From"] == "Riverside Infusion <billing@clinic.test>"
    assert received["Reply-To"] == "front@riverside.test"
    assert received["Message-ID"].startswith(f"<outbox.{message.id}.") and received["Message-ID"].endswith("@clinic.test>")
    assert received.get_body(preferencelist=("plain",)).get_content() == "Dear Sam,\n\nAttached.\n"
    [pdf] = attachments(received)
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_filename() == "INV-2026-000001.pdf"
    assert pdf.get_content() == pdf_document.pdf
    assert len(PdfReader(io.BytesIO(pdf.get_content())).pages) == 2


def test_a_message_without_attachment_is_plain_text(app, smtp_server):
    outbox.queue_email("sam@patient.test", "Hello", "Just text.", attachment=None, kind="note")
    db.session.commit()
    delivery.deliver_due()
    [received] = smtp_server.messages
    assert received.get_content_type() == "text/plain" and attachments(received) == []


def test_send_raises_mail_error_when_the_server_is_down(app, smtp_server):
    smtp_server.stop()
    with pytest.raises(mail.MailError, match=rf"Could not connect to 127\.0\.0\.1:{smtp_server.port}"):
        mail.send(mail.build_message("sam@patient.test", "Hi", "Body"))


def test_ssl_and_starttls_together_are_refused(app, smtp_server, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_SSL", True)
    monkeypatch.setitem(app.config, "SMTP_STARTTLS", True)
    with pytest.raises(mail.MailError, match="not both"):
        mail.send(mail.build_message("sam@patient.test", "Hi", "Body"))
    assert smtp_server.envelopes == []


def test_a_refusal_by_the_server_is_recorded(app, smtp_server, monkeypatch):
    async def refuse(server, session, envelope):
        return "554 Transaction failed: mailbox full"

    monkeypatch.setattr(smtp_server, "handle_DATA", refuse)
    message = outbox.queue_email("sam@patient.test", "Hi", "Body", attachment=None, kind="note")
    db.session.commit()
    assert delivery.deliver_due() == (0, 1)
    db.session.expire_all()
    assert "554 Transaction failed: mailbox full" in db.session.get(OutboxMessage, message.id).last_error


# --- "Email this" -----------------------------------------------------------------------------------


@pytest.fixture
def frontdesk(login):
    client, _ = login(Role.FRONTDESK)
    return client


def delivered(response) -> None:
    """The server finished sending the response: the after-response delivery runs now. Then the
    test's own session commits, so that a later rollback in it cannot undo what the request did."""
    assert response.status_code == 302, response.data
    response.close()
    db.session.commit()


def test_email_an_invoice(app, smtp_server, frontdesk, make_patient, invoice_for):
    patient = make_patient(email="sam@patient.test")
    invoice = invoice_for(patient)
    db.session.commit()

    response = frontdesk.post(f"/invoices/{invoice.id}/email")
    assert response.location.endswith(f"/invoices/{invoice.id}")
    delivered(response)
    page = frontdesk.get(response.location).get_data(as_text=True)
    assert "Queued for sam@patient.test; see the outbox for delivery." in page

    [received] = smtp_server.messages
    assert received["To"] == "sam@patient.test" and invoice.number in received["Subject"]
    assert "Dear Sam," in received.get_body(preferencelist=("plain",)).get_content()
    [pdf] = attachments(received)
    assert pdf.get_filename() == f"invoice-{invoice.number}.pdf"
    assert invoice.number in pdf_text(pdf.get_content())

    message = db.session.scalar(sa.select(OutboxMessage))
    assert (message.status, message.kind, message.patient_id) == (OutboxStatus.SENT, "invoice", patient.id)
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "invoice.email"))
    assert event.entity_id == str(invoice.id)
    assert event.changes["to"] == "sam@patient.test" and event.changes["outbox_id"] == message.id


def test_email_a_receipt(app, smtp_server, frontdesk, make_patient, invoice_for, pay_mo):
    patient = make_patient(email="sam@patient.test")
    invoice_for(patient)
    payment = pay_mo(patient, "450.00")
    db.session.commit()
    receipt = db.session.scalar(sa.select(Receipt).where(Receipt.payment_id == payment.id))
    assert f"/payments/receipts/{receipt.id}/email".encode() in frontdesk.get(f"/payments/{payment.id}").data

    response = frontdesk.post(f"/payments/receipts/{receipt.id}/email")
    assert response.location.endswith(f"/payments/{payment.id}")
    delivered(response)

    [received] = smtp_server.messages
    assert receipt.number in received["Subject"]
    [pdf] = attachments(received)
    assert pdf.get_filename() == f"receipt-{receipt.number}.pdf"
    assert receipt.number in pdf_text(pdf.get_content())
    assert db.session.get(Receipt, receipt.id).sha256 is not None  # the first rendering is kept
    assert db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "receipt.email")).entity_id == str(receipt.id)


def test_a_receipt_that_renders_differently_is_not_emailed(app, smtp_server, frontdesk, make_patient, pay_mo):
    patient = make_patient(email="sam@patient.test")
    payment = pay_mo(patient, "100.00", confirm=True)
    receipt = db.session.scalar(sa.select(Receipt).where(Receipt.payment_id == payment.id))
    receipt.sha256 = "0" * 64  # as if first rendered differently
    db.session.commit()

    response = frontdesk.post(f"/payments/receipts/{receipt.id}/email")
    delivered(response)
    assert "renders differently" in frontdesk.get(response.location).get_data(as_text=True)
    assert db.session.scalars(sa.select(OutboxMessage)).all() == []
    assert smtp_server.envelopes == []


def test_email_a_statement(app, smtp_server, frontdesk, make_patient, invoice_for):
    patient = make_patient(email="sam@patient.test")
    invoice_for(patient)  # dated TODAY
    db.session.commit()
    start, end = TODAY - timedelta(days=30), TODAY
    page = frontdesk.get(f"/patients/{patient.id}").get_data(as_text=True)
    assert f"/patients/{patient.id}/statement/email" in page

    response = frontdesk.post(f"/patients/{patient.id}/statement/email",
                              data={"start": start.isoformat(), "end": end.isoformat()})
    assert response.location.endswith(f"/patients/{patient.id}#statement")
    delivered(response)

    [received] = smtp_server.messages
    assert "statement" in received["Subject"]
    [pdf] = attachments(received)
    assert pdf.get_filename() == f"statement-{patient.account_number}-{start.isoformat()}-to-{end.isoformat()}.pdf"
    assert patient.account_number in pdf_text(pdf.get_content())
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "statement.email"))
    assert event.entity_id == str(patient.id)


@pytest.mark.parametrize("data, error", [
    ({"start": "", "end": "2026-01-31"}, "Enter the start date"),
    ({"start": "2026-02-01", "end": "2026-01-31"}, "is after the end date"),
    ({"start": "2026-01-01", "end": "2999-01-31"}, "is in the future"),
])
def test_a_statement_period_that_cannot_be_used_is_refused(app, smtp_server, frontdesk, make_patient, data, error):
    patient = make_patient(email="sam@patient.test")
    db.session.commit()
    response = frontdesk.post(f"/patients/{patient.id}/statement/email", data=data)
    delivered(response)
    assert error in frontdesk.get(response.location).get_data(as_text=True)
    assert db.session.scalars(sa.select(OutboxMessage)).all() == []


def test_a_patient_without_email_gets_a_clear_error(app, smtp_server, frontdesk, make_patient, invoice_for):
    patient = make_patient(email="")
    invoice = invoice_for(patient)
    db.session.commit()
    response = frontdesk.post(f"/invoices/{invoice.id}/email")
    delivered(response)
    page = frontdesk.get(response.location).get_data(as_text=True)
    assert f"{patient.full_name} has no email address on file" in page
    assert db.session.scalars(sa.select(OutboxMessage)).all() == []
    assert smtp_server.envelopes == []


def test_with_the_server_down_the_action_still_succeeds_and_the_mail_waits(app, smtp_server, frontdesk, make_patient,
                                                                          invoice_for):
    patient = make_patient(email="sam@patient.test")
    invoice = invoice_for(patient)
    db.session.commit()
    smtp_server.stop()

    response = frontdesk.post(f"/invoices/{invoice.id}/email")
    delivered(response)  # the delivery after the response fails quietly
    assert "Queued for sam@patient.test" in frontdesk.get(response.location).get_data(as_text=True)
    message = db.session.scalar(sa.select(OutboxMessage))
    assert (message.status, message.attempts) == (OutboxStatus.PENDING, 1) and message.last_error

    smtp_server.start()
    assert delivery.deliver_due(now=message.next_attempt_at) == (1, 0)
    [pdf] = attachments(smtp_server.messages[0])
    assert invoice.number in pdf_text(pdf.get_content())
