"""Access control: every view declares who may use it, and the app refuses views that don't.

    @bp.route("/users")
    @roles_required(Role.ADMIN)
    def users(): ...

`enforce_access` runs before every request; a view without a declaration answers 403,
so a route added without access control is closed rather than open.
"""

import time
from collections.abc import Callable

from flask import abort, current_app, flash, redirect, request, session, url_for
from flask_login import current_user, logout_user

from billing.models import Role

PUBLIC = "public"
PATIENT = "patient"
ANY_STAFF = frozenset(Role)


def public(view: Callable) -> Callable:
    """Mark a view as open to everyone, signed in or not."""
    view.access = PUBLIC
    return view


def roles_required(*roles: Role) -> Callable[[Callable], Callable]:
    """Mark a view as open to staff holding any of `roles` (all staff when none are given)."""

    def mark(view: Callable) -> Callable:
        view.access = frozenset(roles) or ANY_STAFF
        return view

    return mark


def patient_required(view: Callable) -> Callable:
    """Mark a view as open only to a patient signed in to the portal: never to staff, whose sessions
    are separate (billing/portal/session.py)."""
    view.access = PATIENT
    return view


def enforce_access():
    """before_request: end idle staff sessions, then apply the view's declared access."""
    if request.endpoint is None or request.endpoint == "static":
        return None
    if current_user.is_authenticated and _idle_too_long():
        logout_user()
        session.clear()
        flash(f"You were signed out after {current_app.config['STAFF_IDLE_MINUTES']} minutes "
              "without activity. Sign in again to continue.", "info")
        return redirect(url_for("auth.login", next=request.full_path))
    view = current_app.view_functions[request.endpoint]
    access = getattr(view, "access", None)
    if access == PUBLIC:
        return None
    if access is None:
        abort(403)
    if access == PATIENT:
        from billing.portal.session import enforce_portal_session

        return enforce_portal_session()
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=request.full_path))
    if not current_user.has_role(*access):
        abort(403)
    return None


def _idle_too_long() -> bool:
    now = int(time.time())
    last = session.get("last_seen", now)
    session["last_seen"] = now
    return now - last > current_app.config["STAFF_IDLE_MINUTES"] * 60


def home_endpoint(user) -> str:
    """Where a staff user lands after signing in: their main role's home page."""
    for role, endpoint in (
        (Role.FRONTDESK, "frontdesk.home"),
        (Role.BOOKKEEPER, "books.home"),
        (Role.ADMIN, "admin.home"),
    ):
        if user.has_role(role):
            return endpoint
    return "auth.login"
