"""Signing in and out, rate limits, idle timeout, CSRF and sessions that must end."""

import time

import pytest
import sqlalchemy as sa

from billing.extensions import db
from billing.models import AuditEvent, Role
from billing.services import users as user_service
from tests.conftest import PASSWORD, log_in


@pytest.mark.parametrize(
    ("role", "home"),
    [(Role.FRONTDESK, "/frontdesk/"), (Role.BOOKKEEPER, "/books/"), (Role.ADMIN, "/admin/")],
)
def test_each_role_lands_on_its_home(client, create_user, role, home):
    user = create_user(role)
    response = log_in(client, user)
    assert response.status_code == 302
    assert response.location == home
    assert client.get(home).status_code == 200


def test_wrong_password_shows_an_error_and_signs_nobody_in(client, create_user):
    user = create_user(Role.ADMIN)
    response = log_in(client, user, "not the password")
    assert response.status_code == 401
    assert b"The email or password is not right" in response.data
    assert client.get("/admin/").status_code == 302
    event = db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert (event.action, event.changes["reason"]) == ("auth.login_failed", "bad_credentials")


def test_unknown_email_gets_the_same_answer(client):
    response = client.post("/login", data={"email": "nobody@clinic.test", "password": "whatever it is"})
    assert response.status_code == 401
    assert b"The email or password is not right" in response.data


def test_sixth_rapid_wrong_password_is_rate_limited_per_ip(client, create_user):
    user = create_user(Role.ADMIN)
    statuses = [log_in(client, user, f"wrong-{i}").status_code for i in range(6)]
    assert statuses == [401] * 5 + [429]
    # Even the right password is refused until the window passes.
    assert log_in(client, user).status_code == 429


def test_login_rate_limit_is_per_account_across_ips(client, create_user):
    user = create_user(Role.ADMIN)
    statuses = [
        client.post("/login", data={"email": user.email, "password": "wrong"},
                    environ_base={"REMOTE_ADDR": f"10.0.0.{i}"}).status_code
        for i in range(6)
    ]
    assert statuses == [401] * 5 + [429]
    # Another account from a fresh address is unaffected.
    other = create_user(Role.ADMIN)
    response = client.post("/login", data={"email": other.email, "password": PASSWORD},
                           environ_base={"REMOTE_ADDR": "10.0.1.1"})
    assert response.status_code == 302


def test_idle_session_expires(client, create_user, app):
    user = create_user(Role.FRONTDESK)
    log_in(client, user)
    idle = app.config["STAFF_IDLE_MINUTES"] * 60
    with client.session_transaction() as session:
        session["last_seen"] = int(time.time()) - idle + 60
    assert client.get("/frontdesk/").status_code == 200  # 14 minutes idle: still signed in

    with client.session_transaction() as session:
        session["last_seen"] = int(time.time()) - idle - 1
    response = client.get("/frontdesk/")
    assert response.status_code == 302
    assert response.location.startswith("/login?next=/frontdesk/")
    page = client.get(response.location)
    assert b"signed out after 15 minutes without activity" in page.data
    assert client.get("/frontdesk/").status_code == 302


def test_deactivated_user_cannot_sign_in(client, create_user):
    user = create_user(Role.FRONTDESK, active=False)
    response = log_in(client, user)
    assert response.status_code == 401
    event = db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event.changes["reason"] == "inactive"


def test_deactivation_ends_an_open_session(client, create_user):
    admin = create_user(Role.ADMIN)
    user = create_user(Role.FRONTDESK)
    log_in(client, user)
    assert client.get("/frontdesk/").status_code == 200
    user_service.deactivate(user, by=admin)
    db.session.commit()
    assert client.get("/frontdesk/").status_code == 302


def test_post_without_csrf_token_is_refused(client, create_user, app, monkeypatch):
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    user = create_user(Role.ADMIN)
    response = log_in(client, user)
    assert response.status_code == 400
    assert b"This form has expired or was already sent" in response.data
    assert client.get("/admin/").status_code == 302


def test_post_with_csrf_token_is_accepted(client, create_user, app, monkeypatch):
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    user = create_user(Role.ADMIN)
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    response = client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302


def test_logout_ends_the_session(client, create_user):
    log_in(client, create_user(Role.ADMIN))
    response = client.post("/logout")
    assert response.location == "/login"
    assert client.get("/admin/").status_code == 302


def test_next_parameter_only_follows_local_paths(client, create_user):
    user = create_user(Role.ADMIN)
    response = client.post("/login?next=https://evil.example/", data={"email": user.email, "password": PASSWORD})
    assert response.location == "/admin/"
    client.post("/logout")
    response = client.post("/login?next=/admin/users", data={"email": user.email, "password": PASSWORD})
    assert response.location == "/admin/users"


def test_change_own_password_signs_out_other_sessions(app, create_user):
    user = create_user(Role.FRONTDESK)
    here, elsewhere = app.test_client(), app.test_client()
    log_in(here, user)
    log_in(elsewhere, user)
    new = "a brand new passphrase"
    response = here.post("/account/password",
                         data={"current_password": PASSWORD, "new_password": new, "confirm": new})
    assert response.status_code == 302
    assert here.get("/frontdesk/").status_code == 200
    assert elsewhere.get("/frontdesk/").status_code == 302
    here.post("/logout")
    assert log_in(here, user, new).status_code == 302


def test_change_password_with_wrong_current_password_changes_nothing(client, create_user):
    user = create_user(Role.FRONTDESK)
    log_in(client, user)
    before = user.password_hash
    response = client.post("/account/password",
                           data={"current_password": "wrong one", "new_password": "x" * 20, "confirm": "x" * 20})
    assert b"That is not your current password." in response.data
    db.session.refresh(user)
    assert user.password_hash == before


def _redis_up() -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")
def test_login_rate_limit_works_with_redis_storage(server_url, database_url, tmp_path_factory, monkeypatch):
    """With RATELIMIT_STORAGE_URI set, the limit is kept in Redis (shared by every worker)."""
    import uuid

    import redis

    from billing.extensions import limiter
    from tests.conftest import _drop_database, _fresh_database, _migrated_app

    # The one Limiter instance keeps the storage of the app initialised last: restore ours after.
    monkeypatch.setattr(limiter, "_storage", limiter._storage)
    monkeypatch.setattr(limiter, "_limiter", limiter._limiter)

    prefix = f"billing-test-{uuid.uuid4().hex[:8]}"
    url = _fresh_database(server_url or database_url, tmp_path_factory)
    app = _migrated_app(url, RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/15", RATELIMIT_KEY_PREFIX=prefix)
    try:
        client = app.test_client()
        statuses = [client.post("/login", data={"email": f"{prefix}@clinic.test", "password": "wrong"}).status_code
                    for _ in range(6)]
        assert statuses == [401] * 5 + [429]
        store = redis.Redis.from_url("redis://127.0.0.1:6379/15")
        keys = store.keys(f"*{prefix}*")
        assert keys
        store.delete(*keys)
    finally:
        with app.app_context():
            db.engine.dispose()
        _drop_database(url, server_url or database_url)
