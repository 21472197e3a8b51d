from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from billing.access import roles_required
from billing.admin import bp
from billing.admin.forms import (
    AuditFilterForm, ConfirmForm, LogoForm, NewUserForm, ResetPasswordForm, SettingsForm, UserForm,
)
from billing.extensions import db
from billing.forms import apply_service_error
from billing.models import AuditEvent, Role, User
from billing.services import ServiceError, settings as settings_service, users

AUDIT_PAGE_SIZE = 50


@bp.route("/")
@roles_required(Role.ADMIN)
def home():
    user_count = db.session.scalar(sa.select(sa.func.count()).select_from(User).where(User.active.is_(True)))
    recent = db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(10)).all()
    clinic = settings_service.get_settings()
    missing = [label for label, value in (("NPI", clinic.npi), ("TIN", clinic.tin), ("address", clinic.address_line1))
               if not value]
    return render_template("admin/home.html", user_count=user_count, recent=recent, missing=missing)


@bp.route("/users")
@roles_required(Role.ADMIN)
def users_list():
    rows = db.session.scalars(sa.select(User).order_by(User.active.desc(), User.name)).all()
    return render_template("admin/users.html", users=rows)


@bp.route("/users/new", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def user_new():
    form = NewUserForm()
    if form.validate_on_submit():
        try:
            user = users.create_user(form.email.data, form.name.data, form.password.data,
                                     [Role(r) for r in form.roles.data])
        except ServiceError as err:
            apply_service_error(form, err)
        else:
            db.session.commit()
            flash(f"{user.name} can now sign in as {user.email}.", "success")
            return redirect(url_for("admin.users_list"))
    return render_template("admin/user_new.html", form=form)


def _get_user(user_id: int) -> User:
    return db.session.get(User, user_id) or abort(404)


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def user_edit(user_id: int):
    user = _get_user(user_id)
    form = UserForm(obj=None if request.method == "POST" else user,
                    data=None if request.method == "POST" else {"roles": [r.value for r in user.roles]})
    if form.validate_on_submit():
        try:
            users.update_user(user, name=form.name.data, roles=[Role(r) for r in form.roles.data])
        except ServiceError as err:
            apply_service_error(form, err)
        else:
            db.session.commit()
            flash(f"Saved {user.name}.", "success")
            return redirect(url_for("admin.users_list"))
    return render_template("admin/user_edit.html", user=user, form=form,
                           reset_form=ResetPasswordForm(), confirm_form=ConfirmForm())


@bp.route("/users/<int:user_id>/password", methods=["POST"])
@roles_required(Role.ADMIN)
def user_reset_password(user_id: int):
    user = _get_user(user_id)
    reset_form = ResetPasswordForm()
    if reset_form.validate_on_submit():
        try:
            users.reset_password(user, reset_form.new_password.data)
        except ServiceError as err:
            apply_service_error(reset_form, err)
        else:
            db.session.commit()
            flash(f"New password set for {user.name}; their other sessions were signed out.", "success")
            return redirect(url_for("admin.user_edit", user_id=user.id))
    # formdata=None: this POST carried the password form, not this one.
    form = UserForm(formdata=None, data={"name": user.name, "roles": [r.value for r in user.roles]})
    return render_template("admin/user_edit.html", user=user, form=form,
                           reset_form=reset_form, confirm_form=ConfirmForm()), 400


@bp.route("/users/<int:user_id>/active", methods=["POST"])
@roles_required(Role.ADMIN)
def user_set_active(user_id: int):
    user = _get_user(user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        if user.active:
            users.deactivate(user, by=current_user)
            message = f"{user.name} can no longer sign in."
        else:
            users.reactivate(user)
            message = f"{user.name} can sign in again."
    except ServiceError as err:
        flash(err.message, "error")
    else:
        db.session.commit()
        flash(message, "success")
    return redirect(url_for("admin.user_edit", user_id=user.id))


@bp.route("/settings", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def settings():
    clinic = settings_service.get_settings()
    form = SettingsForm(obj=clinic)
    if form.validate_on_submit():
        try:
            settings_service.update_settings(form.data)
        except ServiceError as err:
            db.session.rollback()
            apply_service_error(form, err)
        else:
            db.session.commit()
            flash("Clinic settings saved.", "success")
            return redirect(url_for("admin.settings"))
    return render_template("admin/settings.html", form=form, logo_form=LogoForm())


@bp.route("/settings/logo", methods=["POST"])
@roles_required(Role.ADMIN)
def settings_logo():
    logo_form = LogoForm()
    if logo_form.validate_on_submit():
        try:
            settings_service.set_logo(logo_form.logo.data.read())
        except ServiceError as err:
            apply_service_error(logo_form, err)
        else:
            db.session.commit()
            flash("Logo uploaded.", "success")
            return redirect(url_for("admin.settings"))
    form = SettingsForm(obj=settings_service.get_settings())
    return render_template("admin/settings.html", form=form, logo_form=logo_form), 400


@bp.route("/settings/logo")
@roles_required()
def logo():
    clinic = settings_service.get_settings()
    if not clinic.logo:
        abort(404)
    return Response(clinic.logo, mimetype=clinic.logo_mime, headers={"Cache-Control": "private, max-age=300"})


@bp.route("/audit")
@roles_required(Role.ADMIN)
def audit_log():
    form = AuditFilterForm(request.args)
    query = sa.select(AuditEvent).order_by(AuditEvent.id.desc())
    # A date that does not parse is shown as an error and left out (its data is None);
    # the other filters still apply, so the page never shows everything as if filtered.
    form.validate()
    tz = ZoneInfo(settings_service.get_settings().timezone)
    if form.actor.data:
        query = query.where(AuditEvent.actor_label.icontains(form.actor.data.strip(), autoescape=True))
    if form.action.data:
        query = query.where(AuditEvent.action.startswith(form.action.data.strip(), autoescape=True))
    if form.entity_type.data:
        query = query.where(AuditEvent.entity_type == form.entity_type.data.strip())
    if form.entity_id.data:
        query = query.where(AuditEvent.entity_id == form.entity_id.data.strip())
    if form.date_from.data:
        query = query.where(AuditEvent.occurred_at >= datetime.combine(form.date_from.data, time(), tz))
    if form.date_to.data:
        end = datetime.combine(form.date_to.data + timedelta(days=1), time(), tz)
        query = query.where(AuditEvent.occurred_at < end)
    page = db.paginate(query, per_page=AUDIT_PAGE_SIZE, error_out=False)
    args = {k: v for k, v in request.args.items() if k != "page"}
    return render_template("admin/audit.html", form=form, page=page, args=args)
