import sqlalchemy as sa
from flask import flash, redirect, render_template, request, url_for

from billing.access import roles_required
from billing.documents.estimates import estimate_pdf
from billing.estimates import bp
from billing.estimates.forms import GivenForm, estimate_form
from billing.extensions import db
from billing.forms import choices
from billing.models import GoodFaithEstimate, Patient, Provider, Role, Service, ServiceCategory
from billing.models.types import utcnow
from billing.money import Money
from billing.services import ServiceError, audit
from billing.services import estimates as estimate_service
from billing.services.charges import parse_icd10
from billing.timeutil import clinic_today
from billing.views import get_or_404, send_document, submit_once

# Estimates carry diagnoses: the front desk's, never the bookkeeper's.
F = Role.FRONTDESK


def _services() -> list[Service]:
    """The fee schedule's active services by category, then code (96365 before +96366)."""
    order = list(ServiceCategory)
    services = db.session.scalars(sa.select(Service).where(Service.active.is_(True)))
    return sorted(services, key=lambda s: (order.index(s.category), s.cpt_code or "~", s.name))


@bp.route("/new/<int:patient_id>", methods=["GET", "POST"])
@roles_required(F)
def new(patient_id: int):
    """Prepare a Good Faith Estimate from the fee schedule."""
    patient = get_or_404(Patient, patient_id)
    services = _services()
    form = estimate_form(services)
    providers = db.session.scalars(sa.select(Provider).where(Provider.active.is_(True)).order_by(Provider.name))
    form.provider.choices = choices([(0, "—")] + [(p.id, p.display_name) for p in providers])
    if request.method == "GET":
        today = clinic_today()
        form.period_start.data = today
        form.period_end.data = estimate_service.last_day_of_period(today)
    if form.validate_on_submit():
        def create() -> str:
            by_id = {s.id: s for s in services}
            lines = [(by_id[service_id], field.data) for service_id, field in form.quantity_fields() if field.data]
            estimate = estimate_service.create_estimate(
                patient, lines, period_start=form.period_start.data, period_end=form.period_end.data,
                provider=db.session.get(Provider, form.provider.data) if form.provider.data else None,
                icd10_codes=parse_icd10(form.icd10_codes.data), reason=form.reason.data or "",
                today=clinic_today())
            flash(f"Estimate {estimate.number} prepared. Print it or send it, then record how it was given.",
                  "success")
            return url_for("estimates.detail", estimate_id=estimate.id)

        if (response := submit_once(form, create)) is not None:
            return response
    prices = {s.id: Money(s.default_price_cents) for s in services}
    return render_template("estimates/new.html", patient=patient, form=form, services=services, prices=prices)


@bp.route("/<int:estimate_id>")
@roles_required(F)
def detail(estimate_id: int):
    estimate = get_or_404(GoodFaithEstimate, estimate_id)
    patient = db.session.get(Patient, estimate.patient_id)
    audit.record("estimate.view", estimate)
    db.session.commit()
    return render_template("estimates/detail.html", estimate=estimate, patient=patient,
                           given_form=GivenForm(formdata=None), threshold=estimate_service.DISPUTE_THRESHOLD,
                           missing=estimate_service.missing_identifiers(estimate.provider))


@bp.route("/<int:estimate_id>/pdf")
@roles_required(F)
def pdf(estimate_id: int):
    estimate = get_or_404(GoodFaithEstimate, estimate_id)
    try:
        document = estimate_pdf(estimate)
    except ServiceError as err:
        flash(err.message, "error")
        return redirect(url_for("estimates.detail", estimate_id=estimate.id))
    audit.record("estimate.download", estimate, changes={"file": document.filename})
    db.session.commit()
    return send_document(document)


@bp.route("/<int:estimate_id>/given", methods=["POST"])
@roles_required(F)
def mark_given(estimate_id: int):
    estimate = get_or_404(GoodFaithEstimate, estimate_id)
    form = GivenForm()
    back = url_for("estimates.detail", estimate_id=estimate.id)
    if form.validate_on_submit():
        def give() -> str:
            estimate_service.mark_given(estimate, form.how.data, utcnow())
            how = form.how.data if form.how.data == "in person" else f"by {form.how.data}"
            flash(f"{estimate.number} recorded as given {how}. It is now the patient's current estimate.", "success")
            return back

        if (response := submit_once(form, give)) is not None:
            return response
    for errors in form.errors.values():
        flash(" ".join(errors), "error")
    return redirect(back)
