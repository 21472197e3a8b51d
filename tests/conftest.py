"""Fixtures for every test: the app, a database per test, clients logged in per role,
a CLI runner, a live server for the browser, and a guard against the network.

The schema is built once per run by the Alembic migrations. Each test then runs inside
one outer transaction that is rolled back at the end; the app's own commits become
SAVEPOINT releases inside it. Tests that need real commits across threads (the browser,
concurrency) use `live_app`, which gets a database of its own.

TEST_DATABASE_URL selects PostgreSQL (a temporary SQLite file by default), e.g.
postgresql+psycopg://postgres@127.0.0.1:5432/test: the run creates its own databases on that
server and drops them at the end.
"""

import contextvars
import ipaddress
import os
import socket
import threading
import uuid
from collections.abc import Iterator

import flask_migrate
import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy.session import _app_ctx_id
from werkzeug.serving import make_server

from billing import create_app
from billing.extensions import db, limiter
from billing.models import Role, User
from billing.services import users as user_service
from config import TestingConfig

PASSWORD = "correct horse battery staple"

pytest_plugins = ["tests.stripe_support"]


# --- no network ----------------------------------------------------------------------

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check_address(address) -> None:
    if isinstance(address, (str, bytes)):  # a Unix socket path
        return
    host = address[0]
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        raise RuntimeError(f"Tests may not resolve or connect to {host!r}") from None
    if not ip.is_loopback:
        raise RuntimeError(f"Tests may not connect outside 127.0.0.1 (tried {host})")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Fail any test that opens a connection to anything but loopback."""

    def connect(self, address):
        _check_address(address)
        return _real_connect(self, address)

    def connect_ex(self, address):
        _check_address(address)
        return _real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


# --- databases -------------------------------------------------------------------------


def _migrated_app(url: str, **overrides) -> Flask:
    config = type("TestConfig", (TestingConfig,), {"SQLALCHEMY_DATABASE_URI": url, **overrides})
    app = create_app(config)
    app.test_client_class = IsolatedClient
    with app.app_context():
        flask_migrate.upgrade()
    return app


@pytest.fixture(scope="session")
def server_url() -> str | None:
    """TEST_DATABASE_URL: a PostgreSQL database used only to create the run's own databases."""
    return os.environ.get("TEST_DATABASE_URL")


@pytest.fixture(scope="session")
def database_url(server_url, tmp_path_factory) -> Iterator[str]:
    """The run's database: a temporary SQLite file, or a new PostgreSQL database dropped at the end
    (so parallel runs on one server never meet)."""
    if not server_url:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
        return
    url = _fresh_database(server_url, tmp_path_factory)
    yield url
    _drop_database(url, server_url)


@pytest.fixture(scope="session")
def _session_app(database_url) -> Iterator[Flask]:
    app = _migrated_app(database_url)
    yield app
    with app.app_context():
        db.engine.dispose()


class IsolatedClient(FlaskClient):
    """A test client whose requests get their own app context (and so their own
    database session and `g`), as in production, even while the test holds one."""

    def open(self, *args, **kwargs):
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture
def app(_session_app) -> Iterator[Flask]:
    """The app inside an app context, its database in a transaction rolled back afterwards."""
    app = _session_app
    with app.app_context():
        connection = db.engine.connect()
        outer = connection.begin()
        real_session = db.session
        db.session = so.scoped_session(
            so.sessionmaker(bind=connection, join_transaction_mode="create_savepoint"),
            scopefunc=_app_ctx_id,
        )
        limiter.reset()
        try:
            yield app
        finally:
            db.session.remove()
            db.session = real_session
            outer.rollback()
            connection.close()


@pytest.fixture
def client(app) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# --- users and logins --------------------------------------------------------------------


@pytest.fixture
def create_user(app):
    """Factory: create_user(Role.FRONTDESK, ...) -> a committed staff user with PASSWORD."""

    def make(*roles: Role, email: str | None = None, name: str = "Test User", active: bool = True) -> User:
        user = user_service.create_user(
            email or f"{uuid.uuid4().hex[:10]}@clinic.test", name, PASSWORD, roles or [Role.FRONTDESK]
        )
        user.active = active
        db.session.commit()
        return user

    return make


def log_in(client: FlaskClient, user: User, password: str = PASSWORD):
    return client.post("/login", data={"email": user.email, "password": password})


@pytest.fixture
def login(app, create_user):
    """Factory: login(Role.ADMIN) -> (client signed in as a new user with that role, user)."""

    def make(*roles: Role) -> tuple[FlaskClient, User]:
        user = create_user(*roles)
        client = app.test_client()
        response = log_in(client, user)
        assert response.status_code == 302, response.data
        return client, user

    return make


# --- live server for the browser ---------------------------------------------------------------


def _fresh_database(database_url: str, tmp_path_factory) -> str:
    """A new empty database beside the test one: a SQLite file, or a PostgreSQL database."""
    if not database_url.startswith("postgresql"):
        return f"sqlite:///{tmp_path_factory.mktemp('live') / 'live.sqlite3'}"
    name = f"billing_live_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return sa.make_url(database_url).set(database=name).render_as_string(hide_password=False)


def _drop_database(url: str, database_url: str) -> None:
    if not url.startswith("postgresql"):
        return
    admin = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{sa.make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


class LiveServer:
    def __init__(self, app: Flask):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def live_app(server_url, database_url, tmp_path_factory) -> Iterator[Flask]:
    """An app with a database of its own where commits are real (for threads and the browser)."""
    url = _fresh_database(server_url or database_url, tmp_path_factory)
    app = _migrated_app(url, WTF_CSRF_ENABLED=True)
    try:
        yield app
    finally:
        with app.app_context():
            db.engine.dispose()
        _drop_database(url, server_url or database_url)


@pytest.fixture(scope="module")
def live_server(live_app) -> Iterator[LiveServer]:
    with LiveServer(live_app) as server:
        yield server
