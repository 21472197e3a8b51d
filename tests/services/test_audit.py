"""The audit log: what `audit.record` writes, what `changes_of` reveals, and that rows never change."""

import pytest
import sqlalchemy as sa
from flask import g
from flask_login import login_user

from billing.extensions import db
from billing.models import AuditEvent, Role, User
from billing.models.audit import AuditLogIsAppendOnly
from billing.services import audit
from billing.services.settings import get_settings

# What the append-only trigger says (first wording kept for databases migrated before it changed).
TRIGGER_MESSAGE = r"audit_events (rows cannot be changed or deleted|is append-only)"


def _event(**values) -> AuditEvent:
    event = AuditEvent(actor_label="system", action="test.event", **values)
    db.session.add(event)
    db.session.flush()
    return event


def test_record_in_a_request_takes_the_signed_in_user_and_the_ip(app, create_user):
    user = create_user(Role.ADMIN)
    with app.test_request_context("/", environ_base={"REMOTE_ADDR": "203.0.113.7"}):
        login_user(user)
        event_id = audit.record("test.thing", changes={"x": [1, 2]})

    stored = db.session.get(AuditEvent, event_id)
    assert stored.actor_id == user.id
    assert stored.actor_label == user.email
    assert stored.ip == "203.0.113.7"
    assert stored.changes == {"x": [1, 2]}
    assert stored.entity_type is None and stored.entity_id is None
    assert stored.occurred_at.tzinfo is not None


def test_record_of_a_new_entity_flushes_it_to_get_its_id(app, create_user):
    actor = create_user(Role.ADMIN)
    user = User(email="new@clinic.test", name="New", password_hash="x")
    db.session.add(user)
    assert user.id is None

    event = db.session.get(AuditEvent, audit.record("user.create", user, actor=actor))

    assert user.id is not None
    assert (event.entity_type, event.entity_id) == ("User", str(user.id))
    assert (event.actor_id, event.actor_label) == (actor.id, actor.email)
    assert event.ip is None  # no request


def test_an_explicit_actor_wins_over_the_signed_in_user(app, create_user):
    signed_in, other = create_user(Role.ADMIN), create_user(Role.FRONTDESK)
    with app.test_request_context("/"):
        login_user(signed_in)
        event = db.session.get(AuditEvent, audit.record("auth.login", other, actor=other))
    assert event.actor is other
    assert event.actor_label == other.email


@pytest.mark.parametrize(
    ("in_request", "cli", "label"),
    [(False, False, "system"), (True, False, "anonymous"), (False, True, "cli")],
)
def test_label_without_a_user(app, in_request, cli, label):
    if cli:
        g.audit_actor = "cli"
    if in_request:
        with app.test_request_context("/", environ_base={"REMOTE_ADDR": "198.51.100.1"}):
            event = db.session.get(AuditEvent, audit.record("test.thing"))
        assert event.ip == "198.51.100.1"
    else:
        event = db.session.get(AuditEvent, audit.record("test.thing"))
    assert event.actor_id is None
    assert event.actor_label == label


def test_empty_changes_are_stored_as_null(app):
    event = db.session.get(AuditEvent, audit.record("test.thing", changes={}))
    assert event.changes is None


def test_changes_of_lists_changed_columns_as_old_new(app):
    settings = get_settings()
    settings.name = "Lakeside"
    settings.timezone = "America/Chicago"
    settings.city = settings.city  # unchanged
    assert audit.changes_of(settings) == {
        "name": ["", "Lakeside"],
        "timezone": ["America/New_York", "America/Chicago"],
    }


def test_changes_of_redacts_the_password_hash(app, create_user):
    user = create_user(Role.FRONTDESK)
    old_hash = user.password_hash
    user.password_hash = "pbkdf2:sha256:1000$new$hash"
    user.name = "Renamed"

    changes = audit.changes_of(user)

    assert changes == {"password_hash": ["(redacted)", "(changed)"], "name": ["Test User", "Renamed"]}
    assert old_hash not in str(changes) and "new$hash" not in str(changes)


def test_changes_of_redacts_the_logo(app):
    settings = get_settings()
    settings.logo = b"\x89PNG\r\n\x1a\nbytes"
    assert audit.changes_of(settings)["logo"] == ["(redacted)", "(changed)"]


# --- append-only: the ORM --------------------------------------------------------------------


def test_orm_refuses_to_update_an_event(app):
    event = _event()
    with pytest.raises(AuditLogIsAppendOnly):
        with db.session.begin_nested():  # begin_nested flushes: change the row inside it
            event.action = "test.rewritten"
            db.session.flush()
    db.session.expire_all()
    assert db.session.get(AuditEvent, event.id).action == "test.event"


def test_orm_refuses_to_delete_an_event(app):
    event = _event()
    with pytest.raises(AuditLogIsAppendOnly):
        with db.session.begin_nested():
            db.session.delete(event)
            db.session.flush()
    db.session.expire_all()
    assert db.session.get(AuditEvent, event.id) is not None


# --- append-only: the database triggers ----------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        lambda event_id: sa.update(AuditEvent).where(AuditEvent.id == event_id).values(action="test.rewritten"),
        lambda event_id: sa.delete(AuditEvent).where(AuditEvent.id == event_id),
        lambda event_id: sa.text(f"UPDATE audit_events SET changes = NULL, action = 'x' WHERE id = {event_id}"),
        lambda event_id: sa.text(f"DELETE FROM audit_events WHERE id = {event_id}"),
        lambda event_id: sa.text("DELETE FROM audit_events"),
    ],
    ids=["orm-update", "orm-delete", "sql-update", "sql-delete", "sql-delete-all"],
)
def test_database_refuses_to_change_or_delete_events(app, statement):
    event = _event(changes={"kept": True})
    event_id = event.id
    with pytest.raises(sa.exc.DBAPIError, match=TRIGGER_MESSAGE):
        with db.session.begin_nested():
            db.session.execute(statement(event_id))
    # The test's transaction survived, and so did the row.
    db.session.expire_all()
    stored = db.session.get(AuditEvent, event_id)
    assert (stored.action, stored.changes) == ("test.event", {"kept": True})

