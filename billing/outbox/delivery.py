"""The outbox's delivery worker: sends what is due, outside any request's transaction.

It commits (one claim and one outcome per message), so it lives here rather than in
billing/services, where functions only flush. It runs right after the response of a request that
queued mail (`deliver_after_response`, registered in create_app) and from cron
(`flask billing send-mail`).
"""

from datetime import datetime, timedelta
from email.message import EmailMessage

import sqlalchemy as sa
from flask import Flask, Response, current_app, g

from billing.extensions import db
from billing.integrations import mail
from billing.models import OutboxMessage, OutboxStatus
from billing.models.types import utcnow
from billing.services.settings import get_settings

BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
           timedelta(hours=12))
MAX_ATTEMPTS = len(BACKOFF) + 1
# How long other workers leave a message alone while one is sending it. A worker that dies
# mid-send leaves the message pending, due again after this (the attempt counts as made).
CLAIM = timedelta(minutes=10)


def deliver_due(now: datetime | None = None, limit: int = 50) -> tuple[int, int]:
    """Send up to `limit` pending messages whose next attempt is due at `now`, oldest first.

    The delivery worker, and it commits: call it with a
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
