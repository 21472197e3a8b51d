"""The append-only audit log."""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from billing.extensions import db
from billing.models.types import UTCDateTime, utcnow


class AuditEvent(db.Model):
    """Who did what to which record, when and from where. Rows are never changed."""

    __tablename__ = "audit_events"
    __table_args__ = (sa.Index("ix_audit_events_entity", "entity_type", "entity_id"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    occurred_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("users.id"), index=True)
    # Who acted, as shown to a reader: a staff email, "cli" or "system".
    actor_label: so.Mapped[str] = so.mapped_column(sa.String(254))
    action: so.Mapped[str] = so.mapped_column(sa.String(64), index=True)
    entity_type: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    entity_id: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    changes: so.Mapped[dict[str, Any] | None] = so.mapped_column(sa.JSON)
    ip: so.Mapped[str | None] = so.mapped_column(sa.String(45))

    actor = so.relationship("User", lazy="joined")


class AuditLogIsAppendOnly(Exception):
    """Raised when code tries to change or delete an audit row."""


@sa.event.listens_for(AuditEvent, "before_update")
@sa.event.listens_for(AuditEvent, "before_delete")
def _refuse_change(mapper, connection, target) -> None:
    raise AuditLogIsAppendOnly(f"Audit event {target.id} cannot be changed or deleted.")
