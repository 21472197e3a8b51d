"""Signing in and out through the real pages, for each role, on the tablet and a phone."""

import uuid

import pytest
from playwright.sync_api import Page, expect

from billing.extensions import db
from billing.models import Role
from billing.services import users as user_service
from tests.conftest import PASSWORD
from tests.e2e.conftest import no_horizontal_scroll, path_is, sign_in

HOMES = {
    Role.FRONTDESK: ("/frontdesk/", "Front desk"),
    Role.BOOKKEEPER: ("/books/", "Books"),
    Role.ADMIN: ("/admin/", "Admin"),
}
AREA_LINKS = {Role.FRONTDESK: "Front desk", Role.BOOKKEEPER: "Books", Role.ADMIN: "Admin"}


def main_nav(page: Page):
    return page.get_by_role("navigation", name="Main")


def open_user_menu(page: Page, name: str) -> None:
    main_nav(page).locator("summary", has_text=name).click()


@pytest.mark.parametrize("role", [Role.FRONTDESK, Role.BOOKKEEPER, Role.ADMIN], ids=str)
def test_each_role_lands_on_its_home_and_sees_only_its_links(page, staff, screenshot, role):
    person = staff[role]
    page.goto("/")
    expect(page).to_have_url(path_is("/login"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    if role is Role.FRONTDESK:
        screenshot(page, "login")

    sign_in(page, person.email, person.password)

    path, heading = HOMES[role]
    expect(page).to_have_url(path_is(path))
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    nav = main_nav(page)
    for other, label in AREA_LINKS.items():
        expect(nav.get_by_role("link", name=label, exact=True)).to_have_count(1 if other is role else 0)
    expect(nav.get_by_role("link", name=AREA_LINKS[role], exact=True)).to_have_attribute("aria-current", "page")
    expect(nav.locator("summary", has_text=person.name)).to_be_visible()
    screenshot(page, f"home-{role}")

    open_user_menu(page, person.name)
    expect(page.get_by_role("link", name="Change password")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    screenshot(page, f"user-menu-{role}")

    page.get_by_role("link", name="Change password").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Change your password")
    if role is Role.FRONTDESK:
        screenshot(page, "change-password")


def test_a_wrong_password_shows_the_error_and_stays_on_login(page, staff, screenshot):
    sign_in(page, staff[Role.FRONTDESK].email, "not the password at all")

    expect(page).to_have_url(path_is("/login"))
    expect(page.get_by_role("alert")).to_have_text(
        "The email or password is not right, or the account is not active.")
    expect(page.get_by_label("Email")).to_have_value(staff[Role.FRONTDESK].email)
    expect(page.get_by_label("Password", exact=True)).to_be_empty()
    screenshot(page, "login-error")


def test_sign_out_ends_the_session(page, staff, screenshot):
    admin = staff[Role.ADMIN]
    sign_in(page, admin.email, admin.password)
    expect(page).to_have_url(path_is("/admin/"))

    open_user_menu(page, admin.name)
    page.get_by_role("button", name="Sign out").click()

    expect(page).to_have_url(path_is("/login"))
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    expect(main_nav(page).get_by_role("link", name="Admin", exact=True)).to_have_count(0)
    screenshot(page, "signed-out")

    page.goto("/admin/")
    expect(page).to_have_url(path_is("/login"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")


def test_a_missing_page_renders_in_the_layout(page, staff, screenshot):
    person = staff[Role.FRONTDESK]
    sign_in(page, person.email, person.password)
    expect(page).to_have_url(path_is("/frontdesk/"))

    response = page.goto("/no-such-page")

    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    expect(page.get_by_text("There is nothing at this address.")).to_be_visible()
    expect(main_nav(page).get_by_role("link", name="Front desk", exact=True)).to_be_visible()
    expect(page.get_by_role("contentinfo")).to_contain_text(person.email)
    screenshot(page, "not-found")

    page.get_by_role("link", name="Go to the start page").click()
    expect(page).to_have_url(path_is("/frontdesk/"))


def test_admin_adds_a_user_who_can_then_sign_in(page, staff, screenshot):
    admin = staff[Role.ADMIN]
    sign_in(page, admin.email, admin.password)
    expect(page).to_have_url(path_is("/admin/"))
    screenshot(page, "home-admin-overview")

    subnav = page.get_by_role("navigation", name="Admin")
    subnav.get_by_role("link", name="Users").click()
    expect(page).to_have_url(path_is("/admin/users"))
    page.get_by_role("button", name="Add a user").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add a user")
    screenshot(page, "admin-user-new")

    email = f"newdesk-{uuid.uuid4().hex[:6]}@example.com"
    page.get_by_label("Full name").fill("Nora Newdesk")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Front desk").check()
    page.get_by_label("First password").fill(PASSWORD)
    page.get_by_role("button", name="Create user").click()

    expect(page).to_have_url(path_is("/admin/users"))
    expect(page.get_by_role("status")).to_have_text(f"Nora Newdesk can now sign in as {email}.")
    row = page.get_by_role("row").filter(has_text=email)
    expect(row).to_contain_text("Nora Newdesk")
    expect(row).to_contain_text("Front desk")
    expect(row).to_contain_text("Never")
    screenshot(page, "admin-users")

    row.get_by_role("link", name="Nora Newdesk").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Nora Newdesk")
    expect(page.get_by_label("Front desk")).to_be_checked()
    screenshot(page, "admin-user-edit")

    subnav.get_by_role("link", name="Clinic settings").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Clinic settings")
    screenshot(page, "admin-settings")

    subnav.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
    expect(page.get_by_role("row").filter(has_text="user.create").filter(has_text=email)).to_have_count(1)
    screenshot(page, "admin-audit")

    open_user_menu(page, admin.name)
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, email, PASSWORD)
    expect(page).to_have_url(path_is("/frontdesk/"))
    expect(page.get_by_text("Good to see you, Nora.")).to_be_visible()


def test_signing_in_on_a_phone_needs_no_sideways_scrolling(phone_page, staff, screenshot):
    page = phone_page
    person = staff[Role.BOOKKEEPER]
    page.goto("/login")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    no_horizontal_scroll(page)
    screenshot(page, "phone-login")

    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password", exact=True).fill(person.password)
    page.get_by_role("button", name="Sign in").tap()

    expect(page).to_have_url(path_is("/books/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Books")
    no_horizontal_scroll(page)
    screenshot(page, "phone-home")

    main_nav(page).locator("summary", has_text=person.name).tap()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    no_horizontal_scroll(page)
    screenshot(page, "phone-user-menu")


def test_a_user_with_every_role_fits_a_phone(phone_page, live_app, screenshot):
    page = phone_page
    with live_app.app_context():
        user_service.create_user("olive@clinic.test", "Olivia Owner-Practitioner", PASSWORD, list(Role))
        db.session.commit()

    sign_in(page, "olive@clinic.test", PASSWORD)

    expect(page).to_have_url(path_is("/frontdesk/"))
    nav = main_nav(page)
    for label in AREA_LINKS.values():
        expect(nav.get_by_role("link", name=label, exact=True)).to_be_visible()
    no_horizontal_scroll(page)
    screenshot(page, "phone-home-every-role")

    nav.get_by_role("link", name="Admin", exact=True).tap()
    expect(page.get_by_role("heading", level=1)).to_have_text("Admin")
    screenshot(page, "phone-admin")
