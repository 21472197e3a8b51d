"""The patient portal: who may sign in, the single-use sign-in links, signed document links in
emails, and the statements or superbills patients ask for that the front desk must finish."""

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
import sqlalchemy.orm as so

from billing.extensions import db
from billing.models.types import UTCDateTime, enum_column, utcnow


class PortalAccount(db.Model):
    """A patient's access to the portal: the email links are sent to. Revoking keeps the row (and its
    history); inviting again restores it. `session_epoch` moves on at each revoke, ending sessions."""

    __tablename__ = "portal_accounts"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    patient_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("patients.id"), unique=True)
    email: so.Mapped[str] = so.mapped_column(sa.String(254), unique=True)  # lower case
    invited_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    invited_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    revoked_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    revoked_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    last_sign_in_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    session_epoch: so.Mapped[int] = so.mapped_column(default=0)

    patient = so.relationship("Patient")

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class PortalSignInToken(db.Model):
    """One emailed sign-in link. Only the SHA-256 of its token is kept; it works once, until expires_at."""

    __tablename__ = "portal_sign_in_tokens"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    account_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("portal_accounts.id"), index=True)
    token_sha256: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    expires_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime)
    used_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    requested_ip: so.Mapped[str | None] = so.mapped_column(sa.String(45))

    account: so.Mapped[PortalAccount] = so.relationship()


class DocumentLinkKind(StrEnum):
    RECEIPT = "receipt"
    INVOICE = "invoice"


class DocumentLink(db.Model):
    """A link in an email that opens one document's PDF without signing in, until it expires or is
    revoked. Only the SHA-256 of its token is kept."""

    __tablename__ = "document_links"
    __table_args__ = (sa.Index("ix_document_links_document", "kind", "document_id"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    token_sha256: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    patient_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("patients.id"), index=True)
    kind: so.Mapped[DocumentLinkKind] = so.mapped_column(enum_column(DocumentLinkKind, "document_link_kind"))
    document_id: so.Mapped[int]
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))
    expires_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime)
    revoked_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)


class DocumentRequestKind(StrEnum):
    STATEMENT = "statement"
    SUPERBILL = "superbill"

    @property
    def label(self) -> str:
        return {"statement": "Statement", "superbill": "Superbill"}[self.value]


class DocumentRequestStatus(StrEnum):
    OPEN = "open"  # waiting for the front desk
    DONE = "done"


class DocumentRequest(db.Model):
    """A statement or superbill a patient asked for in the portal that could not be produced at once
    (a superbill missing a diagnosis, say): the front desk's queue."""

    __tablename__ = "document_requests"
    __table_args__ = (sa.Index("ix_document_requests_status", "status", "created_at"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    patient_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("patients.id"), index=True)
    kind: so.Mapped[DocumentRequestKind] = so.mapped_column(enum_column(DocumentRequestKind, "document_request_kind"))
    period_start: so.Mapped[date]
    period_end: so.Mapped[date]
    status: so.Mapped[DocumentRequestStatus] = so.mapped_column(
        enum_column(DocumentRequestStatus, "document_request_status"), default=DocumentRequestStatus.OPEN)
    reason: so.Mapped[str] = so.mapped_column(sa.String(500), default="")  # why it could not be produced
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    handled_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    handled_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"))

    patient = so.relationship("Patient")
    handled_by = so.relationship("User")
