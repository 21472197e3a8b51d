"""Browser fixtures: headless Debian Chromium driving the live server.

Every test gets a fresh browser context (no cookies carried over), sized like the
front-desk tablet (`page`) or a phone (`phone_page`). Each context may only talk to
127.0.0.1: any other request is aborted and fails the test, so a CDN link or a
stray tracker cannot slip in. Errors in the browser console (a script error, a
Content-Security-Policy violation) fail the test too.
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Route, expect, sync_playwright

from billing.extensions import db, limiter
from billing.models import Role
from billing.services import users as user_service
from tests.conftest import PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TABLET = {"width": 1024, "height": 768}
PHONE = {"width": 375, "height": 812}
SCREENSHOTS = Path(__file__).parent / "screenshots"
EXPECT_TIMEOUT_MS = 5_000

expect.set_options(timeout=EXPECT_TIMEOUT_MS)


def pytest_collection_modifyitems(config, items):
    """Mark every test in this folder as e2e, so `-m "not e2e"` skips the browser."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.e2e)


# --- the browser -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _playwright() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(_playwright) -> Iterator[Browser]:
    browser = _playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@dataclass
class BrowserProblems:
    """What a context saw that a clean page never causes."""

    blocked: list[str]
    console_errors: list[str]


def _open_context(browser: Browser, base_url: str, **options) -> tuple[BrowserContext, BrowserProblems]:
    context = browser.new_context(base_url=base_url, locale="en-US", timezone_id="America/New_York", **options)
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    context.set_default_navigation_timeout(EXPECT_TIMEOUT_MS)
    problems = BrowserProblems(blocked=[], console_errors=[])

    def loopback_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            problems.blocked.append(route.request.url)
            route.abort("blockedbyclient")

    context.route("**/*", loopback_only)
    return context, problems


def _watch(page: Page, problems: BrowserProblems) -> Page:
    def on_console(message) -> None:
        # A 401 or 404 page is an expected answer; Chromium still logs it as a failed load.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.console_errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.console_errors.append(str(error)))
    return page


def _close_checked(context: BrowserContext, problems: BrowserProblems) -> None:
    context.close()
    assert not problems.blocked, f"The page tried to reach the internet: {problems.blocked}"
    assert not problems.console_errors, f"Errors in the browser console: {problems.console_errors}"


@pytest.fixture
def page(browser, live_server) -> Iterator[Page]:
    """A page in a fresh context the size of the front-desk tablet (1024×768)."""
    context, problems = _open_context(browser, live_server.url, viewport=TABLET)
    yield _watch(context.new_page(), problems)
    _close_checked(context, problems)


@pytest.fixture
def phone_page(browser, live_server) -> Iterator[Page]:
    """A page in a fresh touch-screen context the size of a phone (375×812)."""
    context, problems = _open_context(browser, live_server.url, viewport=PHONE, is_mobile=True,
                                      has_touch=True)
    yield _watch(context.new_page(), problems)
    _close_checked(context, problems)


@pytest.fixture
def screenshot() -> Callable[[Page, str], Path]:
    """screenshot(page, "login") saves a full-page PNG to tests/e2e/screenshots/login.png."""
    SCREENSHOTS.mkdir(exist_ok=True)

    def take(page: Page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True, animations="disabled")
        return path

    return take


# --- the app's side -------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_rate_limits(live_app) -> None:
    """Every test signs in a few times from 127.0.0.1; start each with the login limit unused."""
    with live_app.app_context():
        limiter.reset()


@dataclass(frozen=True)
class Staff:
    email: str
    password: str
    name: str
    role: Role


@pytest.fixture(scope="module")
def staff(live_app) -> dict[Role, Staff]:
    """One committed user per role in the live database, keyed by role."""
    people = {
        Role.FRONTDESK: Staff("frances@clinic.test", PASSWORD, "Frances Desk", Role.FRONTDESK),
        Role.BOOKKEEPER: Staff("boris@clinic.test", PASSWORD, "Boris Books", Role.BOOKKEEPER),
        Role.ADMIN: Staff("ada@clinic.test", PASSWORD, "Ada Admin", Role.ADMIN),
    }
    with live_app.app_context():
        for person in people.values():
            user_service.create_user(person.email, person.name, person.password, [person.role])
        db.session.commit()
    return people


def no_horizontal_scroll(page: Page, width: int = 375) -> None:
    """Assert the settled page (loaded, fonts in place: a fallback font is wider) fits the screen."""
    page.wait_for_load_state("load")
    page.evaluate("document.fonts.ready.then(() => true)")
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"the page is {scroll_width}px wide on a {width}px screen"


def path_is(path: str) -> re.Pattern:
    """A URL pattern for exactly this path on the live server (any query string)."""
    return re.compile(rf"^http://127\.0\.0\.1:\d+{re.escape(path)}(\?.*)?$")


def sign_in(page: Page, email: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
