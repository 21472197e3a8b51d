import time
from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from billing.access import home_endpoint, public, roles_required
from billing.auth import bp
from billing.auth.forms import ChangePasswordForm, LoginForm
from billing.extensions import db, limiter
from billing.forms import apply_service_error
from billing.services import ServiceError, users


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _account_key() -> str:
    return "login-account:" + request.form.get("email", "").strip().lower()


def _safe_next(target: str | None) -> str | None:
    """Only same-site paths are followed after sign-in."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.route("/")
@public
def index():
    if current_user.is_authenticated:
        return redirect(url_for(home_endpoint(current_user)))
    return redirect(url_for("auth.login"))


@bp.route("/login", methods=["GET", "POST"])
@public
@limiter.limit(_login_limit, methods=["POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=_account_key)
def login():
    if current_user.is_authenticated:
        return redirect(url_for(home_endpoint(current_user)))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        user = users.authenticate(form.email.data, form.password.data)
        db.session.commit()
        if user:
            next_url = _safe_next(request.args.get("next"))
            session.clear()
            login_user(user)
            session.permanent = True
            session["last_seen"] = int(time.time())
            return redirect(next_url or url_for(home_endpoint(user)))
        error = "The email or password is not right, or the account is not active."
    return render_template("auth/login.html", form=form, error=error), 401 if error else 200


@bp.route("/logout", methods=["POST"])
@public
def logout():
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@roles_required()
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            users.change_own_password(current_user, form.current_password.data, form.new_password.data)
        except ServiceError as err:
            apply_service_error(form, err)
        else:
            db.session.commit()
            # The epoch moved on: sign this session in again so only other sessions end.
            login_user(current_user._get_current_object())
            flash("Your password was changed. Other devices were signed out.", "success")
            return redirect(url_for("auth.index"))
    return render_template("auth/change_password.html", form=form)
