"""The email outbox: queued in the caller's transaction, delivered after commit against a real SMTP
server on loopback, retried with backoff through an outage, failed after the last retry."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from billing.documents import Document
from billing.extensions import db
from billing.models import AuditEvent, OutboxMessage, OutboxStatus, Role
from billing.outbox import delivery
from billing.services import ServiceError, outbox
from tests.integrations.conftest import blank_pdf, smtp_server  # noqa: F401

# The clock the tests pass to deliver_due: an hour after now, when everything queued is due.
T0 = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)


def queue(to: str = "sam@patient.test", **kw) -> OutboxMessage:
    kw.setdefault("attachment", Document("RCT-2026-000001.pdf", blank_pdf()))
    kw.setdefault("kind", "receipt")
    message = outbox.queue_email(to, "Your receipt", "Attached.", **kw)
    db.session.commit()
    return message


def reload(message: OutboxMessage) -> OutboxMessage:
    db.session.expire_all()
    return db.session.get(OutboxMessage, message.id)


def all_messages() -> list[OutboxMessage]:
    return list(db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)))


# --- queueing --------------------------------------------------------------------------------------


def test_queue_email_adds_a_pending_row_due_now(app, make_patient):
    patient = make_patient(email="sam@patient.test")
    message = outbox.queue_email("sam@patient.test", "Your\r\ninvoice", "Body", kind="invoice", patient=patient,
                                 attachment=Document("INV-1.pdf", b"%PDF-1.4 tiny"))
    assert message.id is not None  # flushed
    assert (message.status, message.attempts, message.patient_id) == (OutboxStatus.PENDING, 0, patient.id)
    assert message.subject == "Your invoice"  # a header holds one line
    assert message.attachment_name == "INV-1.pdf" and message.attachment == b"%PDF-1.4 tiny"
    assert message.next_attempt_at <= datetime.now(UTC)


@pytest.mark.parametrize("to", ["", "   ", "no-at-sign", "a@b@c", "Sam <sam@patient.test>", "a@b.test, c@d.test",
                                "sam@patient.test\r\nBcc: x@evil.test"])
def test_queue_email_refuses_an_address_it_cannot_send_to(app, to):
    with pytest.raises(ServiceError) as info:
        outbox.queue_email(to, "Subject", "Body", attachment=None, kind="test")
    assert info.value.field == "to"
    assert all_messages() == []


def test_a_message_queued_in_a_transaction_that_rolls_back_is_never_sent(app, smtp_server):
    with app.test_request_context("/"):
        outbox.queue_email("sam@patient.test", "Subject", "Body", attachment=None, kind="test")
        db.session.rollback()  # the action failed after queueing its mail
        response = app.response_class("error page", status=500)
        response = delivery.deliver_after_response(response)
    response.close()  # the server finished sending the response: the after-response delivery runs
    assert all_messages() == []
    assert delivery.deliver_due() == (0, 0)
    assert smtp_server.envelopes == []


# --- delivery ------------------------------------------------------------------------------------


def test_deliver_due_sends_and_marks_sent(app, smtp_server):
    message = queue()
    assert delivery.deliver_due() == (1, 0)
    message = reload(message)
    assert message.status == OutboxStatus.SENT and message.attempts == 1 and message.sent_at is not None
    assert [e.rcpt_tos for e in smtp_server.envelopes] == [["sam@patient.test"]]
    assert delivery.deliver_due() == (0, 0)  # nothing twice
    assert len(smtp_server.envelopes) == 1


def test_an_outage_keeps_the_message_until_the_server_is_back(app, smtp_server):
    message = queue()
    smtp_server.stop()

    assert delivery.deliver_due(now=T0) == (0, 1)
    message = reload(message)
    assert message.status == OutboxStatus.PENDING
    assert message.attempts == 1
    assert "Could not connect" in message.last_error and str(smtp_server.port) in message.last_error
    assert message.next_attempt_at == T0 + timedelta(minutes=1) > T0

    assert delivery.deliver_due(now=T0 + timedelta(seconds=30)) == (0, 0)  # not due yet: no attempt
    assert reload(message).attempts == 1

    smtp_server.start()
    assert delivery.deliver_due(now=T0 + timedelta(minutes=2)) == (1, 0)
    assert delivery.deliver_due(now=T0 + timedelta(days=1)) == (0, 0)
    message = reload(message)
    assert (message.status, message.attempts, message.sent_at) == (OutboxStatus.SENT, 2, T0 + timedelta(minutes=2))
    assert len(smtp_server.envelopes) == 1  # exactly once
    assert smtp_server.messages[0]["Subject"] == "Your receipt"


def test_backoff_then_failed_then_the_retry_button_sends_it(app, smtp_server, login):
    message = queue()
    smtp_server.stop()
    now = T0
    waits = []
    for _ in range(delivery.MAX_ATTEMPTS - 1):
        assert delivery.deliver_due(now=now) == (0, 1)
        m = reload(message)
        assert m.status == OutboxStatus.PENDING
        waits.append(m.next_attempt_at - now)
        now = m.next_attempt_at
    assert waits == [timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
                     timedelta(hours=12)]
    assert delivery.deliver_due(now=now) == (0, 1)  # the last attempt
    message = reload(message)
    assert (message.status, message.attempts) == (OutboxStatus.FAILED, delivery.MAX_ATTEMPTS)
    assert delivery.deliver_due(now=now + timedelta(days=30)) == (0, 0)  # a failed message waits for staff

    smtp_server.start()
    client, _ = login(Role.FRONTDESK)
    page = client.get("/outbox/")
    assert b"Retry now" in page.data and b"Failed" in page.data
    response = client.post(f"/outbox/{message.id}/retry")
    assert response.status_code == 302
    response.close()  # after the response: delivery of what is due
    message = reload(message)
    assert message.status == OutboxStatus.SENT
    assert len(smtp_server.envelopes) == 1
    assert db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "outbox.retry")).entity_id == str(message.id)


def test_with_the_server_unreachable_one_attempt_is_made_per_run(app, smtp_server):
    first, second = queue("first@patient.test"), queue("second@patient.test")
    smtp_server.stop()
    assert delivery.deliver_due(now=T0) == (0, 1)
    assert reload(first).attempts == 1
    second = reload(second)
    assert (second.attempts, second.last_error) == (0, "")  # untouched, still due
    smtp_server.start()
    assert delivery.deliver_due(now=T0 + timedelta(minutes=1)) == (2, 0)


def test_a_message_being_sent_by_one_worker_is_skipped_by_another(app, smtp_server):
    message = queue()
    assert delivery._claim(message.id, T0)  # a worker took it, then died before it could say how it went
    assert delivery.deliver_due(now=T0) == (0, 0)
    assert delivery.deliver_due(now=T0 + delivery.CLAIM - timedelta(seconds=1)) == (0, 0)
    assert smtp_server.envelopes == []
    assert delivery.deliver_due(now=T0 + delivery.CLAIM) == (1, 0)  # the claim ran out: sent once
    assert reload(message).attempts == 2
    assert len(smtp_server.envelopes) == 1


def test_a_refused_message_does_not_hold_up_the_rest(app, smtp_server, monkeypatch):
    first, second = queue("first@patient.test"), queue("second@patient.test")
    real_send = delivery.mail.send

    def refuse_first(email):
        if email["To"] == "first@patient.test":
            raise delivery.mail.MailError("550 mailbox unavailable")
        real_send(email)

    monkeypatch.setattr(delivery.mail, "send", refuse_first)
    assert delivery.deliver_due() == (1, 1)
    assert reload(first).last_error == "550 mailbox unavailable"
    assert reload(second).status == OutboxStatus.SENT


def test_send_mail_command_delivers_what_is_due(app, runner, smtp_server):
    queue()
    queue("other@patient.test")
    result = runner.invoke(args=["billing", "send-mail"])
    assert result.exit_code == 0, result.output
    assert "Sent 2, failed 0." in result.output
    assert sorted(e.rcpt_tos[0] for e in smtp_server.envelopes) == ["other@patient.test", "sam@patient.test"]


def test_retry_refuses_a_sent_message(app, smtp_server):
    message = queue()
    delivery.deliver_due()
    with pytest.raises(ServiceError):
        outbox.retry(reload(message))


# --- the outbox page -------------------------------------------------------------------------------


def test_outbox_page_shows_each_status_and_never_the_attachment(app, login, make_patient):
    patient = make_patient(email="sam@patient.test")
    pending = queue(patient=patient)
    sent = queue("paid@patient.test")
    failed = queue("bounced@patient.test")
    for m, status in ((sent, OutboxStatus.SENT), (failed, OutboxStatus.FAILED)):
        m.status, m.attempts = status, 1
    sent.sent_at = T0
    failed.last_error = "Could not connect to 127.0.0.1:1025: ConnectionRefusedError"
    db.session.commit()

    for role in (Role.FRONTDESK, Role.ADMIN):
        client, _ = login(role)
        page = client.get("/outbox/")
        html = page.get_data(as_text=True)
        assert page.status_code == 200
        for address in ("sam@patient.test", "paid@patient.test", "bounced@patient.test"):
            assert address in html
        assert "status-pending" in html and "status-sent" in html and "status-failed" in html
        assert "ConnectionRefusedError" in html
        assert patient.full_name in html and "RCT-2026-000001.pdf" in html
        assert "%PDF" not in html
        assert html.count("Retry now") == 2  # pending and failed, not sent

    only_failed = client.get("/outbox/?status=failed").get_data(as_text=True)
    assert "bounced@patient.test" in only_failed and "paid@patient.test" not in only_failed
    assert pending.status == OutboxStatus.PENDING


def test_outbox_link_on_the_front_desk_and_admin_pages(app, login):
    for role, home in ((Role.FRONTDESK, "/frontdesk/"), (Role.ADMIN, "/admin/")):
        client, _ = login(role)
        assert b'href="/outbox/"' in client.get(home).data
