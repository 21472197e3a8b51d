"""Portal sessions: a patient signed in by an emailed link.

They share the signed session cookie with staff sessions but use keys of their own, and signing in
either way clears the other, so one browser is never both. A staff user on a portal page is refused
(403); a portal session on a staff page is simply not signed in. A portal session ends after
PORTAL_IDLE_MINUTES without a request, when access is revoked (the account's epoch moves on), or on
sign-out.
"""

import time

from flask import abort, current_app, flash, g, redirect, session, url_for
from flask_login import current_user, logout_user

from billing.models import PortalAccount
from billing.services import portal as portal_service

ACCOUNT, EPOCH, LAST_SEEN = "portal_account", "portal_epoch", "portal_last_seen"


def start(account: PortalAccount) -> None:
    """Sign the browser in as the account's patient (ending any staff session in it)."""
    logout_user()
    session.clear()
    session[ACCOUNT] = account.id
    session[EPOCH] = account.session_epoch
    session[LAST_SEEN] = int(time.time())
    session.permanent = True


def end() -> None:
    for key in (ACCOUNT, EPOCH, LAST_SEEN):
        session.pop(key, None)


def current_account() -> PortalAccount:
    """The signed-in patient's account (set by enforce_portal_session)."""
    return g.portal_account


def enforce_portal_session():
    """The access check of @patient_required views: a live, current portal session, else the sign-in page."""
    if current_user.is_authenticated:
        abort(403)
    account_id, epoch = session.get(ACCOUNT), session.get(EPOCH)
    account = portal_service.active_account(account_id, epoch) if account_id and epoch is not None else None
    if account is None:
        end()
        return redirect(url_for("portal.sign_in"))
    now = int(time.time())
    if now - session.get(LAST_SEEN, now) > current_app.config["PORTAL_IDLE_MINUTES"] * 60:
        end()
        flash(f"You were signed out after {current_app.config['PORTAL_IDLE_MINUTES']} minutes without activity. "
              "Enter your email to get a new sign-in link.", "info")
        return redirect(url_for("portal.sign_in"))
    session[LAST_SEEN] = now
    g.portal_account = account
    g.audit_actor = f"patient {account.patient.account_number}"
    return None
