"""The patient portal's writes: portal access, single-use sign-in links, signed document links and the
statements or superbills patients ask the front desk for.

    invite / revoke             the front desk gives or takes away portal access
    request_sign_in             a patient asks for a sign-in link (emailed through the outbox)
    redeem_sign_in              the link is used: once, before it expires
    create_document_link        a link for an email that opens one receipt or invoice PDF
    open_document_link / revoke_document_link
    request_document / close_request     the front desk's queue of statements and superbills

Tokens are 256 random bits shown once (in the email); only their SHA-256 is stored, so a copy of the
database opens nothing. Functions flush, never commit; ServiceError says what a person did wrong.
"""

import hashlib
import secrets
from collections.abc import Callable
from datetime import date, datetime, timedelta
from email.utils import parseaddr

import sqlalchemy as sa
from flask import render_template

from billing.extensions import db
from billing.models import (
    DocumentLink, DocumentLinkKind, DocumentRequest, DocumentRequestKind, DocumentRequestStatus, Invoice, Patient,
    PortalAccount, PortalSignInToken, Receipt, User,
)
from billing.models.types import utcnow
from billing.services import ServiceError, audit, outbox

REFUSED_SIGN_IN = ("This sign-in link cannot be used. A link works once, for a short time after it was sent. "
                   "Ask for a new one below.")
REFUSED_DOCUMENT = "This link has expired or was withdrawn."


def new_token() -> tuple[str, str]:
    """A fresh token for a link and the SHA-256 stored in its place."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalize_email(email: str) -> str:
    return (email or "").strip().lower()


# --- portal access ----------------------------------------------------------------------------------


def account_of(patient: Patient) -> PortalAccount | None:
    return db.session.scalar(sa.select(PortalAccount).where(PortalAccount.patient_id == patient.id))


def invite(patient: Patient, email: str, *, link_for: Callable[[str], str], minutes: int,
           now: datetime | None = None) -> PortalAccount:
    """Give the patient portal access at `email` (again, after a revoke) and email the first sign-in
    link. Raises ServiceError (field "email") for a malformed address or one another patient's portal
    uses, and for an archived patient. Writes or restores the PortalAccount, one sign-in token, one
    outbox message and an audit event (portal.invite); flushes."""
    now = now or utcnow()
    email = normalize_email(email)
    if patient.archived:
        raise ServiceError(f"{patient.full_name} is archived; restore the patient before inviting them.")
    if not email or parseaddr(email)[1] != email or email.count("@") != 1 or len(email) > 254:
        raise ServiceError("Enter the patient's email address.", "email")
    taken = db.session.scalar(sa.select(PortalAccount).where(PortalAccount.email == email,
                                                             PortalAccount.patient_id != patient.id))
    if taken is not None:
        raise ServiceError("Another patient's portal uses that email address; each patient needs their own.",
                           "email")
    account = account_of(patient)
    if account is None:
        account = PortalAccount(patient_id=patient.id, email=email, invited_at=now, session_epoch=0)
        db.session.add(account)
    else:
        if account.email != email:
            account.session_epoch += 1  # sessions of the old address end
        account.email, account.revoked_at, account.revoked_by_id, account.invited_at = email, None, None, now
    account.invited_by_id = audit.current_actor_id()
    db.session.flush()
    audit.record("portal.invite", patient, changes={"email": email})
    _send_sign_in_link(account, link_for, minutes=minutes, now=now, ip=None, invited=True)
    return account


def revoke(patient: Patient, *, now: datetime | None = None) -> PortalAccount:
    """End the patient's portal access: their sessions end and unused sign-in links stop working.
    Raises ServiceError when they have no access. Writes the account and an audit event; flushes."""
    account = account_of(patient)
    if account is None or not account.active:
        raise ServiceError(f"{patient.full_name} has no portal access to revoke.")
    account.revoked_at = now or utcnow()
    account.revoked_by_id = audit.current_actor_id()
    account.session_epoch += 1
    db.session.flush()
    audit.record("portal.revoke", patient, changes={"email": account.email})
    return account


def active_account(account_id: int, epoch: int) -> PortalAccount | None:
    """The account a portal session belongs to, while access lasts and the session is current."""
    account = db.session.get(PortalAccount, account_id)
    if account is None or not account.active or account.session_epoch != epoch or account.patient.archived:
        return None
    return account


# --- sign-in links ------------------------------------------------------------------------------------


def request_sign_in(email: str, *, link_for: Callable[[str], str], minutes: int, ip: str | None,
                    now: datetime | None = None) -> None:
    """Email a sign-in link when `email` belongs to a patient with portal access; otherwise do nothing.
    The caller's answer must not depend on which happened. Writes a token and an outbox message (or
    nothing); flushes."""
    account = db.session.scalar(sa.select(PortalAccount).where(PortalAccount.email == normalize_email(email)))
    if account is None or not account.active or account.patient.archived:
        return
    _send_sign_in_link(account, link_for, minutes=minutes, now=now or utcnow(), ip=ip, invited=False)


def _send_sign_in_link(account: PortalAccount, link_for: Callable[[str], str], *, minutes: int, now: datetime,
                       ip: str | None, invited: bool) -> None:
    token, digest = new_token()
    db.session.add(PortalSignInToken(account_id=account.id, token_sha256=digest, created_at=now,
                                     expires_at=now + timedelta(minutes=minutes), requested_ip=ip))
    patient = account.patient
    subject = "Your invitation to the patient portal" if invited else "Your link to sign in"
    body = render_template("email/portal_sign_in.txt", patient=patient, link=link_for(token), minutes=minutes,
                           invited=invited)
    outbox.queue_email(account.email, subject, body, attachment=None, patient=patient, kind="portal_sign_in")


def _usable_token(token: str, now: datetime) -> PortalSignInToken | None:
    row = db.session.scalar(sa.select(PortalSignInToken).where(PortalSignInToken.token_sha256 == token_hash(token)))
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    account = row.account
    # Links sent before the latest invitation (or a revoke and a new invitation) no longer work.
    if not account.active or row.created_at < account.invited_at or account.patient.archived:
        return None
    return row


def check_sign_in(token: str, *, now: datetime | None = None) -> bool:
    """Whether a sign-in link would work now (it is not spent by looking)."""
    return _usable_token(token, now or utcnow()) is not None


def redeem_sign_in(token: str, *, ip: str | None, now: datetime | None = None) -> PortalAccount:
    """Spend a sign-in link and return the account it signs in. Raises ServiceError for a link that is
    unknown, altered, expired, already used, or whose access was revoked, all with the same message.
    The token is spent with a conditional UPDATE, so two uses at once sign in at most once. Writes the
    token's used_at, the account's last sign-in and an audit event (portal.sign_in); flushes."""
    now = now or utcnow()
    row = _usable_token(token, now)
    if row is None:
        raise ServiceError(REFUSED_SIGN_IN)
    spent = db.session.execute(
        sa.update(PortalSignInToken).where(PortalSignInToken.id == row.id, PortalSignInToken.used_at.is_(None))
        .values(used_at=now).execution_options(synchronize_session=False)).rowcount
    if spent != 1:
        raise ServiceError(REFUSED_SIGN_IN)
    account = row.account
    account.last_sign_in_at = now
    db.session.flush()
    audit.record("portal.sign_in", account.patient, changes={"ip": ip, "token": row.id})
    return account


# --- document links in emails ---------------------------------------------------------------------------


def _document_patient_id(document: Receipt | Invoice) -> int:
    if isinstance(document, Invoice):
        return document.patient_id
    return document.payment.patient_id if document.payment_id else document.refund.payment.patient_id


def create_document_link(document: Receipt | Invoice, *, days: int, now: datetime | None = None) -> str:
    """A token that opens this one receipt or invoice for `days`. Writes a DocumentLink (hash only) and
    flushes; returns the token, which is not stored."""
    now = now or utcnow()
    token, digest = new_token()
    kind = DocumentLinkKind.INVOICE if isinstance(document, Invoice) else DocumentLinkKind.RECEIPT
    db.session.add(DocumentLink(token_sha256=digest, patient_id=_document_patient_id(document), kind=kind,
                                document_id=document.id, created_at=now, created_by_id=audit.current_actor_id(),
                                expires_at=now + timedelta(days=days)))
    db.session.flush()
    return token


def open_document_link(token: str, *, now: datetime | None = None) -> tuple[DocumentLink, Receipt | Invoice]:
    """The link and the document it opens. Raises ServiceError (one message for every reason) for an
    unknown or altered token, an expired or revoked link."""
    now = now or utcnow()
    link = db.session.scalar(sa.select(DocumentLink).where(DocumentLink.token_sha256 == token_hash(token)))
    if link is None or link.revoked_at is not None or link.expires_at <= now:
        raise ServiceError(REFUSED_DOCUMENT)
    model = Invoice if link.kind == DocumentLinkKind.INVOICE else Receipt
    document = db.session.get(model, link.document_id)
    if document is None or _document_patient_id(document) != link.patient_id:
        raise ServiceError(REFUSED_DOCUMENT)
    return link, document


def revoke_document_link(link: DocumentLink, *, now: datetime | None = None) -> None:
    """Stop a document link working. Raises ServiceError when it already stopped. Writes revoked_at
    and an audit event; flushes."""
    if link.revoked_at is not None:
        raise ServiceError("That link was already withdrawn.")
    link.revoked_at = now or utcnow()
    db.session.flush()
    audit.record("document_link.revoke", link, changes={"kind": link.kind.value, "document_id": link.document_id})


def live_document_links(patient: Patient, *, now: datetime | None = None) -> list[DocumentLink]:
    """The patient's document links that still open their document, newest first."""
    return list(db.session.scalars(
        sa.select(DocumentLink).where(DocumentLink.patient_id == patient.id, DocumentLink.revoked_at.is_(None),
                                      DocumentLink.expires_at > (now or utcnow()))
        .order_by(DocumentLink.id.desc())))


# --- statements and superbills the front desk must finish --------------------------------------------------


def request_document(patient: Patient, kind: DocumentRequestKind, start: date, end: date, *, reason: str
                     ) -> DocumentRequest:
    """Put a statement or superbill the portal could not produce in the front desk's queue (once: an
    open request for the same document and dates is returned as it is). Writes the request and an
    audit event; flushes."""
    existing = db.session.scalar(sa.select(DocumentRequest).where(
        DocumentRequest.patient_id == patient.id, DocumentRequest.kind == kind,
        DocumentRequest.period_start == start, DocumentRequest.period_end == end,
        DocumentRequest.status == DocumentRequestStatus.OPEN))
    if existing is not None:
        return existing
    request = DocumentRequest(patient_id=patient.id, kind=kind, period_start=start, period_end=end,
                              status=DocumentRequestStatus.OPEN, reason=reason[:500])
    db.session.add(request)
    db.session.flush()
    audit.record("document_request.create", request, changes={"kind": kind.value, "start": start.isoformat(),
                                                              "end": end.isoformat()})
    return request


def close_request(request: DocumentRequest, by: User, *, now: datetime | None = None) -> None:
    """The front desk sent the document. Raises ServiceError when it was already closed. Writes the
    request and an audit event; flushes."""
    if request.status != DocumentRequestStatus.OPEN:
        raise ServiceError("That request was already handled.")
    request.status = DocumentRequestStatus.DONE
    request.handled_at = now or utcnow()
    request.handled_by_id = by.id
    db.session.flush()
    audit.record("document_request.done", request)


def open_requests() -> list[DocumentRequest]:
    """The front desk's queue, oldest first."""
    return list(db.session.scalars(sa.select(DocumentRequest).where(
        DocumentRequest.status == DocumentRequestStatus.OPEN).order_by(DocumentRequest.created_at, DocumentRequest.id)))
