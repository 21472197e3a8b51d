"""The email outbox: mail is written in the transaction of the action that asks for it and sent after
that transaction commits. An SMTP outage delays mail but loses none; an action that rolls back sends
nothing, because its message rolls back with it.

    queue_email     a view's transaction adds the message (flushes, like every service)
    retry           staff ask for another attempt now (flushes)
    deliver_due     the delivery worker: the ONE function under billing/services that commits

Delivery is attempted right after the response of a request that queued mail (the after_request hook
`deliver_after_response`, registered in create_app) and by cron: `flask billing send-mail`.
"""

from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import parseaddr

import sqlalchemy as sa
from flask import Flask, Response, current_app, g, has_request_context

from billing.documents import Document
from billing.extensions import db
from billing.integrations import mail
from billing.models import OutboxMessage, OutboxStatus, Patient
from billing.models.types import utcnow
from billing.services import ServiceError, audit
from billing.services.settings import get_settings

# Waits after the 1st, 2nd, ... failed attempt; the attempt after the last wait is the last one.
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
           timedelta(hours=12))
MAX_ATTEMPTS = len(BACKOFF) + 1
# How long other workers leave a message alone while one is sending it. A worker that dies
# mid-send leaves the message pending, due again after this (the attempt counts as made).
CLAIM = timedelta(minutes=10)


def queue_email(
    to: str,
    subject: str,
    body: str,
    *,
    attachment: Document | None,
    patient: Patient | None = None,
    kind: str,
) -> OutboxMessage:
    """Add an email to the outbox in the caller's transaction, due at once; it is sent after that
    transaction commits (right after the response, or by the next `flask billing send-mail`).

    Raises ServiceError (field "to") for a missing or malformed address. Writes one OutboxMessage
    and flushes.
    """
    to = (to or "").strip()
    if not to:
        raise ServiceError("There is no email address to send to.", field="to")
    if parseaddr(to)[1] != to or to.count("@") != 1 or len(to) > 254 or any(c in to for c in " ,;<>\r\n"):
        raise ServiceError(f"{to!r} is not an email address we can send to.", field="to")
    message = OutboxMessage(
        to_address=to,
        subject=" ".join(subject.split())[:200],  # one line: a header cannot hold line breaks
        body_text=body,
        attachment_name=attachment.filename[:120] if attachment else None,
        attachment=attachment.pdf if attachment else None,
        patient_id=patient.id if patient else None,
        kind=kind,
        status=OutboxStatus.PENDING,
        attempts=0,
        last_error="",
        next_attempt_at=utcnow(),
        created_by_id=audit.current_actor_id(),
    )
    db.session.add(message)
    db.session.flush()
    _deliver_after_this_request()
    return message


def retry(message: OutboxMessage) -> None:
    """Make a pending or failed message due now, for one more attempt (a failed one that fails
    again is failed again; a pending one keeps its schedule).

    Raises ServiceError for a message already sent. Records an audit event and flushes.
    """
    if message.status == OutboxStatus.SENT:
        raise ServiceError("That message was already sent.")
    audit.record("outbox.retry", message, changes={"status": message.status.value, "attempts": message.attempts})
    message.status = OutboxStatus.PENDING
    message.next_attempt_at = utcnow()
    db.session.flush()
    _deliver_after_this_request()


def deliver_due(now: datetime | None = None, limit: int = 50) -> tuple[int, int]:
    """Send up to `limit` pending messages whose next attempt is due at `now`, oldest first.

    The delivery worker, and the only function under billing/services that commits: call it with a
    session holding nothing of its own (the CLI, the after-response hook). Per message, one commit
    claims it (attempts + 1; other workers skip it for CLAIM), the SMTP conversation happens outside
    any transaction, and one commit records the outcome: sent, or last_error and the next attempt
    after BACKOFF, or failed after MAX_ATTEMPTS. When the server cannot be reached at all the run
    stops there, leaving the other messages as they were. Returns (sent, failed) for this run's
    attempts.
    """
    now = now or utcnow()
    due = list(db.session.scalars(
        sa.select(OutboxMessage.id)
        .where(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)))
    clinic = get_settings()
    sender_name, reply_to = clinic.name, clinic.email
    db.session.rollback()  # end the read: SQLite holds its write lock for a whole transaction
    sent = failed = 0
    for message_id in due:
        if not _claim(message_id, now):
            continue  # another worker took it, or staff changed it meanwhile
        try:
            email = _email_of(db.session.get(OutboxMessage, message_id), sender_name, reply_to)
            db.session.rollback()  # no transaction stays open while the server is slow
            mail.send(email)
        except Exception as err:  # noqa: BLE001 - one bad message must not stop the others
            db.session.rollback()
            if not isinstance(err, mail.MailError):
                current_app.logger.exception("Outbox message %s could not be sent", message_id)
            _finish(message_id, now, error=str(err) or type(err).__name__)
            failed += 1
            if isinstance(err, mail.ServerUnavailable):
                break  # the rest would wait on the same server: they keep their turn for the next run
        else:
            _finish(message_id, now)
            sent += 1
    return sent, failed


def _claim(message_id: int, now: datetime) -> bool:
    """Take one due message for this worker: a conditional UPDATE, so two workers never both send it."""
    result = db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status == OutboxStatus.PENDING,
               OutboxMessage.next_attempt_at <= now)
        .values(attempts=OutboxMessage.attempts + 1, next_attempt_at=now + CLAIM)
        .execution_options(synchronize_session=False))
    db.session.commit()
    return result.rowcount == 1


def _email_of(message: OutboxMessage, sender_name: str, reply_to: str) -> EmailMessage:
    # A Message-ID fixed per row: should a worker die after the server accepted the message, the
    # second copy carries the same id and mail clients show it once.
    message_id = f"<outbox.{message.id}.{message.created_at:%Y%m%d%H%M%S}@{mail.sender_domain()}>"
    return mail.build_message(
        message.to_address, message.subject, message.body_text,
        attachment_name=message.attachment_name, attachment=message.attachment,
        message_id=message_id, sender_name=sender_name, reply_to=reply_to)


def _finish(message_id: int, now: datetime, error: str | None = None) -> None:
    message = db.session.get(OutboxMessage, message_id, populate_existing=True)
    if error is None:
        message.status = OutboxStatus.SENT
        message.sent_at = now
    else:
        message.last_error = error[:500]
        if message.attempts >= MAX_ATTEMPTS:
            message.status = OutboxStatus.FAILED
        else:
            message.next_attempt_at = now + BACKOFF[max(message.attempts, 1) - 1]
    db.session.commit()


# --- delivery right after the response -------------------------------------------------------------


def _deliver_after_this_request() -> None:
    if has_request_context():
        g.outbox_queued = True


def deliver_after_response(response: Response) -> Response:
    """after_request: when this request queued mail, deliver what is due once the response has gone
    out. By then the request's transaction has committed (or rolled back, taking its mail with it)."""
    if g.pop("outbox_queued", False):
        app = current_app._get_current_object()
        response.call_on_close(lambda: _deliver_quietly(app))
    return response


def _deliver_quietly(app: Flask) -> None:
    """deliver_due in an app context of its own. Failures are logged, never shown: the mail stays
    pending for the next run."""
    try:
        with app.app_context():
            deliver_due()
    except Exception:  # noqa: BLE001 - the user already has the response; cron will try again
        app.logger.exception("Outbox delivery after a request failed; `flask billing send-mail` will retry")
