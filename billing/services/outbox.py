"""The email outbox: mail is written in the transaction of the action that asks for it and sent after
that transaction commits. An SMTP outage delays mail but loses none; an action that rolls back sends
nothing, because its message rolls back with it.

    queue_email     a view's transaction adds the message (flushes, like every service)
    retry           staff ask for another attempt now (flushes)

Sending is the delivery worker's job (billing/outbox/delivery.py), right after the response of a
request that queued mail and from cron: `flask billing send-mail`.
"""

from email.utils import parseaddr

from flask import g, has_request_context

from billing.documents import Document
from billing.extensions import db
from billing.models import OutboxMessage, OutboxStatus, Patient
from billing.models.types import utcnow
from billing.services import ServiceError, audit

# Waits after the 1st, 2nd, ... failed attempt; the attempt after the last wait is the last one.
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



def _deliver_after_this_request() -> None:
    if has_request_context():
        g.outbox_queued = True
