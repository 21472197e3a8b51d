"""Staff accounts: creation, sign-in, passwords, roles and the rules that keep an admin."""

import pytest
import sqlalchemy as sa
from werkzeug.security import check_password_hash

from billing.extensions import db
from billing.models import AuditEvent, Role
from billing.services import ServiceError
from billing.services import users
from tests.conftest import PASSWORD

NEW_PASSWORD = "a different long passphrase"


def last_event() -> AuditEvent:
    return db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()


def audit_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))


# --- create_user ------------------------------------------------------------------------------


def test_create_user_normalises_the_email_and_hashes_the_password(app):
    user = users.create_user("  Dana.Scully@Clinic.TEST ", " Dana Scully ", PASSWORD, [Role.FRONTDESK])
    db.session.flush()

    assert user.email == "dana.scully@clinic.test"
    assert user.name == "Dana Scully"
    assert user.password_hash != PASSWORD
    assert PASSWORD not in user.password_hash
    assert user.password_hash.startswith(app.config["PASSWORD_HASH_METHOD"].split(":")[0])
    assert check_password_hash(user.password_hash, PASSWORD)
    assert user.active and user.session_epoch == 0
    assert user.roles == {Role.FRONTDESK}
    assert users.find_by_email("DANA.SCULLY@clinic.test") is user

    event = last_event()
    assert (event.action, event.entity_type, event.entity_id) == ("user.create", "User", str(user.id))
    assert event.changes == {"email": "dana.scully@clinic.test", "name": "Dana Scully", "roles": ["frontdesk"]}
    assert PASSWORD not in str(event.changes)


@pytest.mark.parametrize(
    ("email", "password", "roles", "field", "message"),
    [
        ("taken@clinic.test", PASSWORD, [Role.ADMIN], "email", "A user with this email already exists."),
        ("TAKEN@clinic.test", PASSWORD, [Role.ADMIN], "email", "A user with this email already exists."),
        ("new@clinic.test", "short", [Role.ADMIN], "password", "Use at least 12 characters."),
        ("new@clinic.test", "aaaabbbbaaaabbbb", [Role.ADMIN], "password", "Use a less repetitive password."),
        ("dana.scully@clinic.test", "dana.scully-2026!", [Role.ADMIN], "password",
         "The password must not contain your email name."),
        ("new@clinic.test", PASSWORD, [], "roles", "Choose at least one role."),
    ],
)
def test_create_user_refusals(app, create_user, email, password, roles, field, message):
    create_user(Role.FRONTDESK, email="taken@clinic.test")
    count = audit_count()
    with pytest.raises(ServiceError) as refused:
        users.create_user(email, "Someone", password, roles)
    assert (refused.value.field, refused.value.message) == (field, message)
    assert audit_count() == count


# --- authenticate ---------------------------------------------------------------------------


def test_authenticate_returns_the_user_and_audits_the_sign_in(app, create_user):
    user = create_user(Role.FRONTDESK, email="fox@clinic.test")
    assert user.last_login_at is None

    assert users.authenticate(" FOX@clinic.test", PASSWORD) is user

    assert user.last_login_at is not None
    event = last_event()
    assert (event.action, event.actor_id, event.entity_id) == ("auth.login", user.id, str(user.id))


@pytest.mark.parametrize(
    ("email", "password", "active", "reason"),
    [
        ("fox@clinic.test", "not the password", True, "bad_credentials"),
        ("nobody@clinic.test", PASSWORD, True, "bad_credentials"),
        ("fox@clinic.test", PASSWORD, False, "inactive"),
        # A wrong password on an inactive account says nothing about the account.
        ("fox@clinic.test", "not the password", False, "bad_credentials"),
    ],
    ids=["wrong-password", "unknown-email", "inactive", "inactive-wrong-password"],
)
def test_authenticate_refuses_and_audits_the_reason(app, create_user, email, password, active, reason):
    user = create_user(Role.FRONTDESK, email="fox@clinic.test", active=active)
    count = audit_count()

    assert users.authenticate(email, password) is None

    assert audit_count() == count + 1
    event = last_event()
    assert event.action == "auth.login_failed"
    assert event.changes == {"email": email, "reason": reason}
    assert event.actor_id is None
    known = email == user.email
    assert event.entity_id == (str(user.id) if known else None)
    assert user.last_login_at is None


# --- passwords and sessions ------------------------------------------------------------------


def test_reset_password_sets_the_new_one_and_ends_sessions(app, create_user):
    user = create_user(Role.FRONTDESK)
    users.reset_password(user, NEW_PASSWORD)

    assert user.session_epoch == 1
    assert check_password_hash(user.password_hash, NEW_PASSWORD)
    assert not check_password_hash(user.password_hash, PASSWORD)
    assert last_event().action == "user.password_reset"
    assert last_event().changes is None  # never the hash, not even redacted


def test_reset_password_refuses_a_weak_one(app, create_user):
    user = create_user(Role.FRONTDESK)
    old_hash = user.password_hash
    with pytest.raises(ServiceError) as refused:
        users.reset_password(user, "tiny")
    assert refused.value.field == "new_password"
    assert (user.password_hash, user.session_epoch) == (old_hash, 0)


def test_change_own_password_needs_the_current_one(app, create_user):
    user = create_user(Role.FRONTDESK)
    with pytest.raises(ServiceError) as refused:
        users.change_own_password(user, "not the password", NEW_PASSWORD)
    assert (refused.value.field, refused.value.message) == ("current_password", "That is not your current password.")
    assert user.session_epoch == 0

    users.change_own_password(user, PASSWORD, NEW_PASSWORD)
    assert check_password_hash(user.password_hash, NEW_PASSWORD)
    assert user.session_epoch == 1
    assert last_event().action == "user.password_change"


def test_a_role_change_ends_sessions_and_a_rename_does_not(app, create_user):
    user = create_user(Role.FRONTDESK, name="Fox Mulder")

    users.update_user(user, name="Fox W. Mulder", roles=[Role.FRONTDESK])
    assert (user.name, user.session_epoch) == ("Fox W. Mulder", 0)

    users.update_user(user, name="Fox W. Mulder", roles=[Role.FRONTDESK, Role.BOOKKEEPER])
    db.session.flush()
    assert user.roles == {Role.FRONTDESK, Role.BOOKKEEPER}
    assert user.session_epoch == 1
    assert last_event().changes == {"roles": [["frontdesk"], ["bookkeeper", "frontdesk"]]}

    users.update_user(user, name="Fox W. Mulder", roles=[Role.BOOKKEEPER])
    db.session.flush()
    db.session.expire(user)
    assert user.roles == {Role.BOOKKEEPER}
    assert user.session_epoch == 2


def test_update_without_changes_records_nothing(app, create_user):
    user = create_user(Role.FRONTDESK, name="Fox Mulder")
    count = audit_count()
    users.update_user(user, name=" Fox Mulder ", roles=[Role.FRONTDESK])
    assert audit_count() == count
    assert user.session_epoch == 0


def test_deactivate_ends_sessions_and_reactivate_lets_them_back(app, create_user):
    user = create_user(Role.FRONTDESK)
    users.deactivate(user)
    assert (user.active, user.session_epoch) == (False, 1)
    assert last_event().action == "user.deactivate"
    assert users.authenticate(user.email, PASSWORD) is None

    users.reactivate(user)
    assert user.active
    assert last_event().action == "user.reactivate"
    assert users.authenticate(user.email, PASSWORD) is user


# --- keeping an admin --------------------------------------------------------------------------


def test_the_last_active_admin_keeps_the_admin_role(app, create_user):
    admin = create_user(Role.ADMIN)
    create_user(Role.ADMIN, active=False)  # an inactive admin does not count
    with pytest.raises(ServiceError, match="only active admin"):
        users.update_user(admin, name=admin.name, roles=[Role.FRONTDESK])
    assert admin.roles == {Role.ADMIN}
    assert admin.session_epoch == 0


def test_the_last_active_admin_cannot_be_deactivated(app, create_user):
    admin = create_user(Role.ADMIN)
    other = create_user(Role.FRONTDESK)
    with pytest.raises(ServiceError, match="only active admin and cannot be deactivated"):
        users.deactivate(admin, by=other)
    assert admin.active


def test_nobody_deactivates_themselves(app, create_user):
    admin = create_user(Role.ADMIN)
    create_user(Role.ADMIN)
    with pytest.raises(ServiceError, match="cannot deactivate your own account"):
        users.deactivate(admin, by=admin)
    assert admin.active


def test_with_two_admins_either_may_step_down(app, create_user):
    first, second = create_user(Role.ADMIN), create_user(Role.ADMIN)
    users.update_user(first, name=first.name, roles=[Role.BOOKKEEPER])
    db.session.flush()
    users.deactivate(first, by=second)  # no longer an admin: nothing to protect
    db.session.flush()
    with pytest.raises(ServiceError):
        users.deactivate(second)
