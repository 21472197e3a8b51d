"""Configuration, security headers and error pages."""

import pytest

from billing import create_app
from config import ProductionConfig, TestingConfig


def _config(base, database_url, **values):
    return type("C", (base,), {"SQLALCHEMY_DATABASE_URI": database_url, **values})


@pytest.mark.parametrize("key", [None, "", "change-me", "short-but-random-1234"])
def test_production_refuses_to_start_without_a_real_secret_key(database_url, key):
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(_config(ProductionConfig, database_url, SECRET_KEY=key))


def test_production_starts_with_a_real_key_and_secures_cookies(database_url):
    app = create_app(_config(ProductionConfig, database_url, SECRET_KEY="k" * 16 + "9f8e7d6c5b4a3210"))
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    response = app.test_client().get("/login")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    cookie = response.headers.get("Set-Cookie", "")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_security_headers_on_every_response(client):
    for path in ("/login", "/static/app.css", "/no-such-page"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "'unsafe-inline'" not in csp
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in client.get("/login").headers  # plain http in development


def test_session_cookie_is_httponly_and_samesite(client, create_user):
    from billing.models import Role
    from tests.conftest import log_in

    response = log_in(client, create_user(Role.ADMIN))
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_404_renders_in_the_layout(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert b"Not found" in response.data and b"Skip to content" in response.data


def test_500_renders_a_plain_message_and_nothing_is_saved(database_url):
    app = create_app(_config(TestingConfig, database_url, TESTING=False))

    from billing.access import public

    @app.route("/boom")
    @public
    def boom():
        raise RuntimeError("kaput")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert b"Nothing was saved" in response.data
    assert b"kaput" not in response.data


def test_oversized_upload_is_refused(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1000)
    response = client.post("/login", data={"email": "a@b.c", "password": "x" * 5000})
    assert response.status_code == 413
