"""Writing the audit log: one helper, called in the transaction of the change it records."""

from typing import Any

import sqlalchemy as sa
from flask import g, has_request_context, request
from flask_login import current_user

from billing.extensions import db
from billing.models import AuditEvent, User
from billing.services import primary_key

# Attribute values never copied into the log.
REDACTED = {"password_hash", "logo"}

_INSERT = sa.insert(AuditEvent.__table__)


def record(
    action: str,
    entity: Any = None,
    *,
    changes: dict[str, Any] | None = None,
    actor: User | None = None,
) -> int:
    """Write one audit event in the current transaction, so it commits or rolls back with the change
    it records; returns its id.

    `entity` is a model instance (flushed first if it has no id yet) or None.
    The actor defaults to the signed-in staff user, else `g.audit_actor` (the CLI sets it),
    else "anonymous" in a request and "system" outside one. The row is inserted at once, without
    the unit of work: nothing ever changes it afterwards.
    """
    if actor is None and has_request_context() and current_user.is_authenticated:
        actor = current_user._get_current_object()
    entity_type = entity_id = None
    if entity is not None:
        entity_type = type(entity).__name__
        entity_id = str(primary_key(entity))
    return db.session.execute(_INSERT, {
        "actor_id": primary_key(actor) if actor else None,
        "actor_label": actor.email if actor else g.get("audit_actor") or _anonymous_label(),
        "action": action,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "changes": changes or None,
        "ip": request.remote_addr if has_request_context() else None,
    }).inserted_primary_key[0]


def current_actor_id() -> int | None:
    """The signed-in staff user's id, for created_by columns."""
    if has_request_context() and current_user.is_authenticated:
        return current_user.id
    return None


def _anonymous_label() -> str:
    return "anonymous" if has_request_context() else "system"


def changes_of(obj: Any) -> dict[str, list[Any]]:
    """The pending attribute changes of a model instance as {name: [old, new]}, secrets redacted."""
    state = sa.inspect(obj)
    out: dict[str, list[Any]] = {}
    for attr in state.mapper.column_attrs:
        history = state.attrs[attr.key].history
        if not history.has_changes():
            continue
        old = history.deleted[0] if history.deleted else None
        new = history.added[0] if history.added else None
        if attr.key in REDACTED:
            out[attr.key] = ["(redacted)", "(changed)"]
        elif old != new:
            out[attr.key] = [_plain(old), _plain(new)]
    return out


def _plain(value: Any) -> Any:
    """A JSON-safe form of a column value."""
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)
