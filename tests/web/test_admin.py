"""The admin area through its real routes: users, clinic settings, the logo and the audit log."""

import io
import random
import re
import struct
import zlib
from datetime import UTC, datetime
from html import unescape

import pytest
import sqlalchemy as sa

from billing.extensions import db
from billing.models import AuditEvent, Role, User
from billing.services.settings import get_settings
from tests.conftest import PASSWORD, log_in

NEW_PASSWORD = "a different long passphrase"
VALID_NPI = "1245319599"
NPI_MESSAGE = "An NPI has 10 digits and a valid check digit; check it on the NPPES registry."


# --- helpers ------------------------------------------------------------------------------


def html(response) -> str:
    return unescape(response.get_data(as_text=True))


def field_error(response, field_id: str) -> str | None:
    """The error shown next to a form field, or None."""
    match = re.search(rf'<small id="{field_id}-help" class="field-error">(.*?)</small>',
                      response.get_data(as_text=True), re.S)
    return unescape(match.group(1)) if match else None


def flashes(response, category: str = "error") -> list[str]:
    return [unescape(m) for m in re.findall(rf'<p class="flash flash-{category}"[^>]*>(.*?)</p>',
                                              response.get_data(as_text=True), re.S)]


def checked_roles(response) -> set[str]:
    """The role checkboxes ticked on a user form."""
    inputs = re.findall(r'<input[^>]*name="roles"[^>]*>', response.get_data(as_text=True))
    return {re.search(r'value="([^"]*)"', i).group(1) for i in inputs if " checked" in i}


def audit_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))


def last_event() -> AuditEvent:
    return db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()


def reload(obj):
    """Drop what the test's session remembers so reads see the requests' commits."""
    db.session.expire_all()
    return obj


def png(width: int = 2, height: int = 2, *, noise: bool = False) -> bytes:
    """A valid RGB PNG; with noise=True its pixels are random, so it does not compress."""
    rng = random.Random(0)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(
        b"\x00" + (bytes(rng.randrange(256) for _ in range(width * 3)) if noise else b"\xc0\x20\x20" * width)
        for _ in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def settings_data(**overrides) -> dict[str, str]:
    """A complete, valid clinic settings form."""
    data = {
        "name": "Lakeside Infusion",
        "address_line1": "12 Pier Road",
        "address_line2": "",
        "city": "Burlington",
        "state": "vt",
        "postal_code": "05401",
        "phone": "(802) 555-0100",
        "email": "office@lakeside.example",
        "tin": "123456789",
        "npi": VALID_NPI,
        "timezone": "America/Chicago",
        "invoice_prefix": "INV",
        "receipt_prefix": "RCT",
    }
    data.update(overrides)
    return data


def new_user_data(**overrides) -> dict:
    data = {"name": "Dana Scully", "email": "Dana.Scully@Clinic.Example",
            "roles": ["frontdesk", "bookkeeper"], "password": PASSWORD}
    data.update(overrides)
    return data


@pytest.fixture
def admin(login):
    """(client signed in as the clinic's only admin, that admin)."""
    return login(Role.ADMIN)


def signed_in_client(app, user, password: str = PASSWORD):
    client = app.test_client()
    assert log_in(client, user, password).status_code == 302
    return client


# --- creating users ---------------------------------------------------------------------------


def test_admin_creates_a_user_who_can_then_sign_in(app, admin):
    client, _ = admin
    response = client.post("/admin/users/new", data=new_user_data())
    assert response.status_code == 302
    assert response.location == "/admin/users"

    listing = html(client.get("/admin/users"))
    assert "Dana Scully" in listing
    assert "dana.scully@clinic.example" in listing
    assert "Front desk" in listing and "Bookkeeper" in listing

    user = db.session.scalars(sa.select(User).where(User.email == "dana.scully@clinic.example")).one()
    assert user.roles == {Role.FRONTDESK, Role.BOOKKEEPER}
    assert user.active

    fresh = app.test_client()
    response = fresh.post("/login", data={"email": "dana.scully@clinic.example", "password": PASSWORD})
    assert response.status_code == 302
    assert response.location == "/frontdesk/"
    assert fresh.get("/books/").status_code == 200


def test_duplicate_email_is_shown_next_to_the_email_field(admin, create_user):
    client, _ = admin
    create_user(Role.FRONTDESK, email="dana.scully@clinic.example")
    users_before = db.session.scalar(sa.select(sa.func.count()).select_from(User))

    response = client.post("/admin/users/new", data=new_user_data(name="Another Dana"))

    assert response.status_code == 200
    assert field_error(response, "email") == "A user with this email already exists."
    assert reload(db.session.scalar(sa.select(sa.func.count()).select_from(User))) == users_before
    assert db.session.scalar(sa.select(User).where(User.name == "Another Dana")) is None


def test_weak_password_is_refused_next_to_the_password_field(admin):
    client, _ = admin
    response = client.post("/admin/users/new", data=new_user_data(password="short"))

    assert response.status_code == 200
    assert field_error(response, "password") == "Use at least 12 characters."
    assert db.session.scalar(sa.select(User).where(User.email == "dana.scully@clinic.example")) is None


def test_a_new_user_needs_a_role(admin):
    client, _ = admin
    data = new_user_data()
    del data["roles"]
    response = client.post("/admin/users/new", data=data)

    assert response.status_code == 200
    assert "Choose at least one role." in field_error(response, "roles")
    assert db.session.scalar(sa.select(User).where(User.email == "dana.scully@clinic.example")) is None


# --- editing users ------------------------------------------------------------------------------


def test_edit_shows_the_current_name_and_roles(admin, create_user):
    client, _ = admin
    target = create_user(Role.FRONTDESK, Role.BOOKKEEPER, name="Fox Mulder")
    response = client.get(f"/admin/users/{target.id}")
    assert response.status_code == 200
    assert 'value="Fox Mulder"' in response.get_data(as_text=True)
    assert checked_roles(response) == {"frontdesk", "bookkeeper"}


def test_role_change_saves_audits_and_ends_the_users_sessions(app, admin, create_user):
    client, _ = admin
    target = create_user(Role.FRONTDESK, name="Fox Mulder")
    target_client = signed_in_client(app, target)

    response = client.post(f"/admin/users/{target.id}", data={"name": "Fox W. Mulder", "roles": ["bookkeeper"]})

    assert response.status_code == 302
    reload(target)
    assert target.name == "Fox W. Mulder"
    assert target.roles == {Role.BOOKKEEPER}
    event = last_event()
    assert event.action == "user.update"
    assert event.changes == {"name": ["Fox Mulder", "Fox W. Mulder"], "roles": [["frontdesk"], ["bookkeeper"]]}
    # Their old session is over, even for the page the new role would allow.
    response = target_client.get("/books/")
    assert response.status_code == 302
    assert response.location.startswith("/login")


def test_renaming_alone_keeps_the_users_sessions(app, admin, create_user):
    client, _ = admin
    target = create_user(Role.FRONTDESK, name="Fox Mulder")
    target_client = signed_in_client(app, target)

    response = client.post(f"/admin/users/{target.id}", data={"name": "Fox W. Mulder", "roles": ["frontdesk"]})

    assert response.status_code == 302
    assert reload(target).name == "Fox W. Mulder"
    assert target_client.get("/frontdesk/").status_code == 200


def test_the_last_active_admin_cannot_drop_their_admin_role(admin):
    client, me = admin
    count = audit_count()
    response = client.post(f"/admin/users/{me.id}", data={"name": "Renamed", "roles": ["frontdesk"]})

    assert response.status_code == 200
    assert flashes(response) == ["This is the only active admin; make someone else an admin first."]
    reload(me)
    assert me.roles == {Role.ADMIN}
    assert me.name == "Test User"
    assert audit_count() == count
    assert client.get("/admin/").status_code == 200


def test_an_admin_can_drop_their_admin_role_when_another_admin_remains(admin, create_user):
    client, me = admin
    create_user(Role.ADMIN)
    response = client.post(f"/admin/users/{me.id}", data={"name": me.name, "roles": ["frontdesk"]})

    assert response.status_code == 302
    assert reload(me).roles == {Role.FRONTDESK}
    # The role change ended this very session too.
    assert client.get("/frontdesk/").location.startswith("/login")


def test_an_admin_cannot_deactivate_themselves(admin):
    client, me = admin
    count = audit_count()
    response = client.post(f"/admin/users/{me.id}/active", follow_redirects=True)

    assert response.status_code == 200
    assert flashes(response) == ["You cannot deactivate your own account."]
    assert reload(me).active
    assert audit_count() == count


def test_deactivated_user_is_signed_out_and_cannot_sign_in_until_reactivated(app, admin, create_user):
    client, _ = admin
    target = create_user(Role.FRONTDESK, name="Fox Mulder")
    target_client = signed_in_client(app, target)

    response = client.post(f"/admin/users/{target.id}/active", follow_redirects=True)
    assert flashes(response, "success") == ["Fox Mulder can no longer sign in."]
    assert "This account is deactivated" in html(response)
    assert not reload(target).active
    assert target_client.get("/frontdesk/").location.startswith("/login")
    assert log_in(app.test_client(), target).status_code == 401
    assert "Deactivated" in html(client.get("/admin/users"))

    response = client.post(f"/admin/users/{target.id}/active", follow_redirects=True)
    assert flashes(response, "success") == ["Fox Mulder can sign in again."]
    assert reload(target).active
    assert log_in(app.test_client(), target).status_code == 302


def test_admin_resets_a_password(app, admin, create_user):
    client, _ = admin
    target = create_user(Role.FRONTDESK)
    target_client = signed_in_client(app, target)

    response = client.post(f"/admin/users/{target.id}/password", data={"new_password": NEW_PASSWORD})

    assert response.status_code == 302
    assert target_client.get("/frontdesk/").location.startswith("/login")
    assert log_in(app.test_client(), target, PASSWORD).status_code == 401
    assert log_in(app.test_client(), target, NEW_PASSWORD).status_code == 302


def test_weak_reset_password_is_refused_and_the_user_form_keeps_its_values(admin, create_user):
    client, _ = admin
    target = create_user(Role.BOOKKEEPER, name="Fox Mulder")
    old_hash = target.password_hash

    response = client.post(f"/admin/users/{target.id}/password", data={"new_password": "short"})

    assert response.status_code == 400
    assert field_error(response, "new_password") == "Use at least 12 characters."
    assert reload(target).password_hash == old_hash
    # The edit form beside it still shows the user as they are.
    assert 'value="Fox Mulder"' in response.get_data(as_text=True)
    assert checked_roles(response) == {"bookkeeper"}


def test_unknown_user_is_404(admin):
    client, _ = admin
    assert client.get("/admin/users/999999").status_code == 404


# --- clinic settings -------------------------------------------------------------------------------


def test_settings_save_normalises_and_audits_the_changes(admin):
    client, me = admin
    response = client.post("/admin/settings", data=settings_data())

    assert response.status_code == 302
    assert response.location == "/admin/settings"
    clinic = reload(get_settings())
    assert clinic.tin == "12-3456789"
    assert clinic.state == "VT"
    assert clinic.npi == VALID_NPI
    assert clinic.timezone == "America/Chicago"
    event = last_event()
    assert (event.action, event.actor_id, event.entity_type, event.entity_id) == (
        "settings.update", me.id, "ClinicSettings", "1")
    assert event.changes == {
        "name": ["", "Lakeside Infusion"],
        "address_line1": ["", "12 Pier Road"],
        "city": ["", "Burlington"],
        "state": ["", "VT"],
        "postal_code": ["", "05401"],
        "phone": ["", "(802) 555-0100"],
        "email": ["", "office@lakeside.example"],
        "tin": ["", "12-3456789"],
        "npi": ["", VALID_NPI],
        "timezone": ["America/New_York", "America/Chicago"],
    }
    page = html(client.get("/admin/settings"))
    assert 'value="12-3456789"' in page

    # Saving the same values again changes nothing and records nothing.
    count = audit_count()
    assert client.post("/admin/settings", data=settings_data()).status_code == 302
    assert audit_count() == count


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        pytest.param("npi", "1245319598", NPI_MESSAGE, id="npi=1245319598"),
        pytest.param("npi", "12453195", NPI_MESSAGE, id="npi=12453195"),
        pytest.param("tin", "12-345678", "A TIN (EIN) has 9 digits, like 12-3456789.", id="tin=12-345678"),
        pytest.param("postal_code", "0540", "Five digits, like 10001.", id="postal_code=0540"),
        pytest.param("postal_code", "05401-12", "Five digits, like 10001.", id="postal_code=05401-12"),
        pytest.param("state", "Vermont", "Two letters, like NY.", id="state=Vermont"),
        pytest.param("timezone", "Mars/Olympus_Mons", "Not a valid choice.", id="timezone=Mars/Olympus_Mons"),
        pytest.param("timezone", "Europe/Paris", "Not a valid choice.", id="timezone=Europe/Paris"),
        pytest.param("invoice_prefix", "inv", "Use 1–10 capital letters or digits, like INV.",
                     id="invoice_prefix=inv"),
    ],
)
def test_invalid_settings_show_the_message_and_change_nothing(admin, field, value, message):
    client, _ = admin
    count = audit_count()
    response = client.post("/admin/settings", data=settings_data(**{field: value}))

    assert response.status_code == 200
    assert field_error(response, field) == message
    clinic = reload(get_settings())
    assert (clinic.name, clinic.tin, clinic.npi, clinic.timezone) == ("", "", "", "America/New_York")
    assert audit_count() == count


# --- logo -------------------------------------------------------------------------------------------


def test_png_logo_is_stored_and_served_back(app, admin, login):
    client, _ = admin
    image = png()
    response = client.post("/admin/settings/logo", data={"logo": (io.BytesIO(image), "logo.png")})

    assert response.status_code == 302
    event = last_event()
    assert event.action == "settings.logo"
    assert event.changes == {"logo_mime": "image/png", "bytes": len(image)}
    assert 'alt="Current clinic logo"' in html(client.get("/admin/settings"))

    served = client.get("/admin/settings/logo")
    assert served.status_code == 200
    assert served.mimetype == "image/png"
    assert served.data == image
    # Every staff member's pages can show it.
    frontdesk, _ = login(Role.FRONTDESK)
    assert frontdesk.get("/admin/settings/logo").data == image


@pytest.mark.parametrize(
    ("content", "filename"),
    [
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "logo.svg"),
        (b"just some text", "logo.png"),
    ],
)
def test_non_raster_logo_is_refused(admin, content, filename):
    client, _ = admin
    count = audit_count()
    response = client.post("/admin/settings/logo", data={"logo": (io.BytesIO(content), filename)})

    assert response.status_code == 400
    assert field_error(response, "logo") == "Upload a PNG, JPEG or GIF image."
    assert client.get("/admin/settings/logo").status_code == 404
    assert audit_count() == count


def test_logo_above_the_limit_is_refused(app, admin, monkeypatch):
    client, _ = admin
    monkeypatch.setitem(app.config, "LOGO_MAX_BYTES", 2048)
    big = png(40, 40, noise=True)
    assert len(big) > 2048

    response = client.post("/admin/settings/logo", data={"logo": (io.BytesIO(big), "logo.png")})

    assert response.status_code == 400
    assert field_error(response, "logo") == "The logo must be at most 2 KB."
    assert client.get("/admin/settings/logo").status_code == 404
    # Under the same limit a small image goes through.
    response = client.post("/admin/settings/logo", data={"logo": (io.BytesIO(png()), "logo.png")})
    assert response.status_code == 302


# --- audit log ---------------------------------------------------------------------------------------


def shown_actions(response) -> list[str]:
    """Actions listed on an audit page, leaving out the sign-up and sign-in of the test's admin."""
    actions = re.findall(r"<td><code>([^<]*)</code></td>", response.get_data(as_text=True))
    return [a for a in actions if not a.startswith(("auth.", "user."))]


@pytest.fixture
def probe_events(app):
    """Four events around midnight in New York (EDT, UTC-4, from 2026-03-08)."""
    rows = [
        ("alice@clinic.example", "invoice.issue", "Invoice", "1", datetime(2026, 3, 9, 14, 0, tzinfo=UTC)),
        # 23:30 on the 9th in New York, already the 10th in UTC.
        ("bob@clinic.example", "invoice.void", "Invoice", "1", datetime(2026, 3, 10, 3, 30, tzinfo=UTC)),
        ("alice@clinic.example", "payment.record", "Invoice", "2", datetime(2026, 3, 10, 4, 30, tzinfo=UTC)),
        ("cli", "patient.create", "Patient", "1", datetime(2026, 3, 11, 12, 0, tzinfo=UTC)),
    ]
    db.session.add_all(
        AuditEvent(actor_label=who, action=action, entity_type=kind, entity_id=ident, occurred_at=when)
        for who, action, kind, ident, when in rows
    )
    db.session.commit()


def test_audit_page_lists_events_newest_first_in_clinic_time(admin, probe_events):
    client, me = admin
    response = client.get("/admin/audit")
    assert response.status_code == 200
    assert shown_actions(response) == ["patient.create", "payment.record", "invoice.void", "invoice.issue"]
    page = html(response)
    assert "2026-03-09 23:30 EDT" in page
    assert me.email in page  # the admin's own sign-in is there too
    assert "auth.login" in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param({"actor": "alice"}, ["payment.record", "invoice.issue"], id="actor=alice"),
        pytest.param({"actor": "ALICE@clinic"}, ["payment.record", "invoice.issue"], id="actor=ALICE@clinic"),
        pytest.param({"action": "invoice."}, ["invoice.void", "invoice.issue"], id="action=invoice."),
        pytest.param({"action": "payment.record"}, ["payment.record"], id="action=payment.record"),
        pytest.param({"entity_type": "Invoice", "entity_id": "1"}, ["invoice.void", "invoice.issue"],
                     id="entity_type=Invoice&entity_id=1"),
        pytest.param({"entity_type": "Patient"}, ["patient.create"], id="entity_type=Patient"),
        pytest.param({"date_from": "2026-03-10"}, ["patient.create", "payment.record"], id="date_from=2026-03-10"),
        pytest.param({"date_to": "2026-03-09"}, ["invoice.void", "invoice.issue"], id="date_to=2026-03-09"),
        pytest.param({"date_from": "2026-03-10", "date_to": "2026-03-10"}, ["payment.record"],
                     id="date_from=2026-03-10&date_to=2026-03-10"),
        pytest.param({"actor": "alice", "date_to": "2026-03-09"}, ["invoice.issue"],
                     id="actor=alice&date_to=2026-03-09"),
        pytest.param({"actor": "nobody"}, [], id="actor=nobody"),
    ],
)
def test_audit_filters(admin, probe_events, query, expected):
    client, _ = admin
    response = client.get("/admin/audit", query_string=query)
    assert response.status_code == 200
    assert shown_actions(response) == expected


def test_a_bad_date_is_flagged_and_the_other_filters_still_apply(admin, probe_events):
    client, _ = admin
    response = client.get("/admin/audit", query_string={"actor": "bob", "date_from": "10/03/2026"})
    assert response.status_code == 200
    assert field_error(response, "date_from") == "Not a valid date value."
    assert shown_actions(response) == ["invoice.void"]


def test_audit_date_filter_follows_the_clinic_timezone(admin, probe_events):
    client, _ = admin
    get_settings().timezone = "America/Los_Angeles"  # 20:30 and 21:30 on the 9th
    db.session.commit()
    response = client.get("/admin/audit", query_string={"date_to": "2026-03-09"})
    assert shown_actions(response) == ["payment.record", "invoice.void", "invoice.issue"]


def test_audit_page_paginates_and_keeps_the_filter(admin):
    client, _ = admin
    db.session.add_all(AuditEvent(actor_label="cli", action=f"bulk.n{i:02d}") for i in range(60))
    db.session.commit()

    first = client.get("/admin/audit", query_string={"action": "bulk."})
    assert "60 events." in html(first)
    assert "Page 1 of 2" in html(first)
    actions = shown_actions(first)
    assert actions == [f"bulk.n{i:02d}" for i in range(59, 9, -1)]

    older = re.search(r'<a href="([^"]*)">Older', first.get_data(as_text=True)).group(1)
    second = client.get(unescape(older))
    assert "Page 2 of 2" in html(second)
    assert shown_actions(second) == [f"bulk.n{i:02d}" for i in range(9, -1, -1)]


# --- one audit event per staff write ---------------------------------------------------------------


def _create_user(app, client, admin, target):
    return client.post("/admin/users/new", data=new_user_data())


def _update_user(app, client, admin, target):
    return client.post(f"/admin/users/{target.id}", data={"name": "Renamed", "roles": ["bookkeeper"]})


def _reset_password(app, client, admin, target):
    return client.post(f"/admin/users/{target.id}/password", data={"new_password": NEW_PASSWORD})


def _deactivate(app, client, admin, target):
    return client.post(f"/admin/users/{target.id}/active")


def _reactivate(app, client, admin, target):
    target.active = False
    db.session.commit()
    return client.post(f"/admin/users/{target.id}/active")


def _save_settings(app, client, admin, target):
    return client.post("/admin/settings", data=settings_data())


def _upload_logo(app, client, admin, target):
    return client.post("/admin/settings/logo", data={"logo": (io.BytesIO(png()), "logo.png")})


def _change_own_password(app, client, admin, target):
    return client.post("/account/password", data={
        "current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})


def _sign_in(app, client, admin, target):
    return log_in(app.test_client(), target)


def _failed_sign_in(app, client, admin, target):
    return log_in(app.test_client(), target, "not the password")


@pytest.mark.parametrize(
    ("write", "action", "actor", "status"),
    [
        (_create_user, "user.create", "admin", 302),
        (_update_user, "user.update", "admin", 302),
        (_reset_password, "user.password_reset", "admin", 302),
        (_deactivate, "user.deactivate", "admin", 302),
        (_reactivate, "user.reactivate", "admin", 302),
        (_save_settings, "settings.update", "admin", 302),
        (_upload_logo, "settings.logo", "admin", 302),
        (_change_own_password, "user.password_change", "admin", 302),
        (_sign_in, "auth.login", "target", 302),
        (_failed_sign_in, "auth.login_failed", None, 401),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else None,
)
def test_each_staff_write_produces_exactly_one_audit_event(app, admin, create_user, write, action, actor, status):
    client, admin_user = admin
    target = create_user(Role.FRONTDESK)
    before = audit_count()

    response = write(app, client, admin_user, target)

    assert response.status_code == status, response.data
    assert audit_count() == before + 1
    event = last_event()
    assert event.action == action
    expected_actor = {"admin": admin_user, "target": target, None: None}[actor]
    assert event.actor_id == (expected_actor.id if expected_actor else None)
    assert event.actor_label == (expected_actor.email if expected_actor else "anonymous")
    assert event.ip == "127.0.0.1"
