"""The fee schedule in the admin area: services, packages, rendering providers and CareCredit plans.

Each write goes through billing.services.catalog; a view commits once and redirects.
"""

from collections.abc import Callable

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for

from billing.access import roles_required
from billing.admin import bp
from billing.admin.forms import (
    ConfirmForm, NewPackageForm, NewServiceForm, PackageForm, PlanForm, ProviderForm, ServiceForm, format_bps,
)
from billing.extensions import db
from billing.forms import apply_service_error, choices
from billing.models import CareCreditPlan, Package, Provider, Role, Service, ServiceCategory
from billing.money import Money
from billing.services import ServiceError, catalog
from billing.views import get_or_404


def _set_active(obj, deactivate: Callable[[], None], reactivate: Callable[[], None],
                messages: tuple[str, str], back: str):
    """Deactivate an active row or reactivate an inactive one, commit, and go back to its edit page.
    `messages` are the flashes for (deactivated, reactivated)."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    was_active = obj.active
    try:
        if was_active:
            deactivate()
        else:
            reactivate()
    except ServiceError as err:
        db.session.rollback()
        flash(err.message, "error")
    else:
        db.session.commit()
        flash(messages[0] if was_active else messages[1], "success")
    return redirect(back)


def _refused(form, err: ServiceError) -> None:
    """Undo what the refused write had begun and show why next to the field."""
    db.session.rollback()
    apply_service_error(form, err)


def _on_get() -> bool:
    """True when the form starts from the row rather than from what was sent."""
    return request.method != "POST"


# --- services ------------------------------------------------------------------------------------


@bp.route("/fee-schedule/services")
@roles_required(Role.ADMIN)
def services_list():
    services = db.session.scalars(sa.select(Service).order_by(Service.active.desc(), Service.code)).all()
    groups = [(category, [s for s in services if s.category == category]) for category in ServiceCategory]
    return render_template("admin/catalog_services.html", groups=[(c, rows) for c, rows in groups if rows])


def _service_input(form: ServiceForm, code: str = "") -> catalog.ServiceInput:
    return catalog.ServiceInput(code=code, name=form.name.data, cpt_code=form.cpt_code.data,
                                category=form.category.data, price=form.price.data, unit=form.unit.data,
                                ndc=form.ndc.data)


@bp.route("/fee-schedule/services/new", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def service_new():
    form = NewServiceForm()
    if form.validate_on_submit():
        try:
            service = catalog.create_service(_service_input(form, form.code.data))
        except ServiceError as err:
            _refused(form, err)
        else:
            db.session.commit()
            flash(f"{service.name} is on the fee schedule as {service.code}.", "success")
            return redirect(url_for("admin.services_list"))
    return render_template("admin/catalog_service_form.html", form=form, service=None)


@bp.route("/fee-schedule/services/<int:service_id>", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def service_edit(service_id: int):
    service = get_or_404(Service, service_id)
    form = ServiceForm(obj=service if _on_get() else None,
                       data={"price": Money(service.default_price_cents)} if _on_get() else None)
    if form.validate_on_submit():
        try:
            catalog.update_service(service, _service_input(form))
        except ServiceError as err:
            _refused(form, err)
        else:
            db.session.commit()
            flash(f"Saved {service.code}, {service.name}.", "success")
            return redirect(url_for("admin.services_list"))
    return render_template("admin/catalog_service_form.html", form=form, service=service,
                           confirm_form=ConfirmForm())


@bp.route("/fee-schedule/services/<int:service_id>/active", methods=["POST"])
@roles_required(Role.ADMIN)
def service_set_active(service_id: int):
    service = get_or_404(Service, service_id)
    return _set_active(service, lambda: catalog.deactivate_service(service),
                       lambda: catalog.reactivate_service(service),
                       (f"{service.name} is no longer offered.", f"{service.name} is offered again."),
                       url_for("admin.service_edit", service_id=service.id))


# --- packages ------------------------------------------------------------------------------------


@bp.route("/fee-schedule/packages")
@roles_required(Role.ADMIN)
def packages_list():
    packages = db.session.scalars(sa.select(Package).order_by(Package.active.desc(), Package.code)).all()
    return render_template("admin/catalog_packages.html", packages=packages)


def _package_form(form_class: type[PackageForm], package: Package | None = None) -> PackageForm:
    """The package form with the active services to choose from (and the package's own, if inactive)."""
    data = None
    if package is not None and _on_get():
        data = {"name": package.name, "service": package.service_id, "units": package.units,
                "price": Money(package.price_cents)}
    form = form_class(data=data)
    current = package.service_id if package is not None else None
    services = db.session.scalars(
        sa.select(Service).where(sa.or_(Service.active.is_(True), Service.id == current)).order_by(Service.name)
    ).all()
    form.service.choices = choices(
        [(0, "Choose a service")]
        + [(s.id, f"{s.name} · {s.code} · {Money(s.default_price_cents)} per {s.unit}"
                  + ("" if s.active else " (no longer offered)")) for s in services]
    )
    return form


def _package_input(form: PackageForm, code: str = "") -> catalog.PackageInput:
    service = db.session.get(Service, form.service.data) if form.service.data else None
    return catalog.PackageInput(code=code, name=form.name.data, service=service, units=form.units.data,
                                price=form.price.data)


@bp.route("/fee-schedule/packages/new", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def package_new():
    form = _package_form(NewPackageForm)
    if form.validate_on_submit():
        try:
            package = catalog.create_package(_package_input(form, form.code.data))
        except ServiceError as err:
            _refused(form, err)
        else:
            db.session.commit()
            flash(f"{package.name} can now be sold as {package.code}.", "success")
            return redirect(url_for("admin.packages_list"))
    return render_template("admin/catalog_package_form.html", form=form, package=None)


@bp.route("/fee-schedule/packages/<int:package_id>", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def package_edit(package_id: int):
    package = get_or_404(Package, package_id)
    form = _package_form(PackageForm, package)
    if form.validate_on_submit():
        try:
            catalog.update_package(package, _package_input(form))
        except ServiceError as err:
            _refused(form, err)
        else:
            db.session.commit()
            flash(f"Saved {package.code}, {package.name}.", "success")
            return redirect(url_for("admin.packages_list"))
    return render_template("admin/catalog_package_form.html", form=form, package=package,
                           confirm_form=ConfirmForm())


@bp.route("/fee-schedule/packages/<int:package_id>/active", methods=["POST"])
@roles_required(Role.ADMIN)
def package_set_active(package_id: int):
    package = get_or_404(Package, package_id)
    return _set_active(package, lambda: catalog.deactivate_package(package),
                       lambda: catalog.reactivate_package(package),
                       (f"{package.name} is no longer sold; patients who bought it keep their units.",
                        f"{package.name} can be sold again."),
                       url_for("admin.package_edit", package_id=package.id))


# --- providers ------------------------------------------------------------------------------------


@bp.route("/fee-schedule/providers")
@roles_required(Role.ADMIN)
def providers_list():
    providers = db.session.scalars(sa.select(Provider).order_by(Provider.active.desc(), Provider.name)).all()
    return render_template("admin/catalog_providers.html", providers=providers)


def _provider_input(form: ProviderForm) -> catalog.ProviderInput:
    return catalog.ProviderInput(name=form.name.data, credentials=form.credentials.data, npi=form.npi.data)


@bp.route("/fee-schedule/providers/new", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def provider_new():
    form = ProviderForm()
    if form.validate_on_submit():
        try:
            provider = catalog.create_provider(_provider_input(form))
        except ServiceError as err:
            _refused(form, err)
        else:
            db.session.commit()
            flash(f"{provider.display_name} can now be chosen on charges.", "success")
            return redirect(url_for("admin.providers_list"))
    return render_template("admin/catalog_provider_form.html", form=form, provider=None)


@bp.route("/fee-schedule/providers/<int:provider_id>", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def provider_edit(provider_id: int):
    provider = get_or_404(Provider, provider_id)
    form = ProviderForm(obj=provider if _on_get() else None)
    if form.validate_on_submit():
        try:
            catalog.update_provider(provider, _provider_input(form))
        except ServiceError as err:
            _refused(form, err)
        else:
            db.session.commit()
            flash(f"Saved {provider.display_name}.", "success")
            return redirect(url_for("admin.providers_list"))
    return render_template("admin/catalog_provider_form.html", form=form, provider=provider,
                           confirm_form=ConfirmForm())


@bp.route("/fee-schedule/providers/<int:provider_id>/active", methods=["POST"])
@roles_required(Role.ADMIN)
def provider_set_active(provider_id: int):
    provider = get_or_404(Provider, provider_id)
    return _set_active(provider, lambda: catalog.deactivate_provider(provider),
                       lambda: catalog.reactivate_provider(provider),
                       (f"{provider.display_name} can no longer be chosen on charges.",
                        f"{provider.display_name} can be chosen on charges again."),
                       url_for("admin.provider_edit", provider_id=provider.id))


# --- CareCredit plans --------------------------------------------------------------------------------


@bp.route("/fee-schedule/carecredit-plans")
@roles_required(Role.ADMIN)
def plans_list():
    plans = db.session.scalars(
        sa.select(CareCreditPlan).order_by(CareCreditPlan.active.desc(), CareCreditPlan.months, CareCreditPlan.name)
    ).all()
    return render_template("admin/catalog_plans.html", plans=plans, percent=format_bps)


def _plan_input(form: PlanForm) -> catalog.PlanInput:
    return catalog.PlanInput(name=form.name.data, months=form.months.data, merchant_fee_bps=form.merchant_fee.data)


@bp.route("/fee-schedule/carecredit-plans/new", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def plan_new():
    form = PlanForm()
    if form.validate_on_submit():
        try:
            plan = catalog.create_plan(_plan_input(form))
        except ServiceError as err:
            _refused(form, err)
        else:
            db.session.commit()
            flash(f"“{plan.name}” can now be chosen for CareCredit payments.", "success")
            return redirect(url_for("admin.plans_list"))
    return render_template("admin/catalog_plan_form.html", form=form, plan=None)


@bp.route("/fee-schedule/carecredit-plans/<int:plan_id>", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def plan_edit(plan_id: int):
    plan = get_or_404(CareCreditPlan, plan_id)
    form = PlanForm(obj=plan if _on_get() else None,
                    data={"merchant_fee": plan.merchant_fee_bps} if _on_get() else None)
    if form.validate_on_submit():
        try:
            catalog.update_plan(plan, _plan_input(form))
        except ServiceError as err:
            _refused(form, err)
        else:
            db.session.commit()
            flash(f"Saved “{plan.name}”.", "success")
            return redirect(url_for("admin.plans_list"))
    return render_template("admin/catalog_plan_form.html", form=form, plan=plan, confirm_form=ConfirmForm())


@bp.route("/fee-schedule/carecredit-plans/<int:plan_id>/active", methods=["POST"])
@roles_required(Role.ADMIN)
def plan_set_active(plan_id: int):
    plan = get_or_404(CareCreditPlan, plan_id)
    return _set_active(plan, lambda: catalog.deactivate_plan(plan), lambda: catalog.reactivate_plan(plan),
                       (f"“{plan.name}” can no longer be chosen for new payments.",
                        f"“{plan.name}” can be chosen again."),
                       url_for("admin.plan_edit", plan_id=plan.id))
