from datetime import date

import sqlalchemy as sa
from flask import Response, flash, redirect, render_template, request, url_for
from wtforms.fields.choices import SelectChoice

from billing.access import roles_required
from billing.documents import Document
from billing.documents.statements import deposit_slip_pdf, statement_pdf
from billing.errors import render_error
from billing.extensions import db
from billing.forms import apply_service_error, choices
from billing.models import (
    Charge, ChargeStatus, Invoice, Package, PackagePurchase, Patient, Payment, Provider, Refund, Role,
    Service, ServiceCategory,
)
from billing.money import Money
from billing.patients import bp
from billing.patients.forms import (
    ChargeForm, IssueInvoiceForm, PackageRefundForm, PackageSaleForm, PatientForm, ReasonForm, StatementEmailForm,
    SuperbillForm,
)
from billing.reports import money_orders as money_order_report, statements as statement_report
from billing.services import ServiceError, audit, balances, charges as charge_service
from billing.services import estimates as estimate_service
from billing.services import invoices as invoice_service, patients as patient_service
from billing.timeutil import clinic_today
from billing.views import email_document, get_or_404, local_datetime, submit_once

F, B = Role.FRONTDESK, Role.BOOKKEEPER


@bp.route("/")
@roles_required(F, B)
def search():
    q = request.args.get("q", "").strip()
    results = patient_service.search(q, include_archived=bool(request.args.get("archived"))) if q else []
    return render_template("patients/search.html", q=q, results=results)


@bp.route("/new", methods=["GET", "POST"])
@roles_required(F)
def new():
    form = PatientForm()
    if form.validate_on_submit():
        try:
            patient = patient_service.create_patient(form.data, today=clinic_today())
        except ServiceError as err:
            db.session.rollback()
            apply_service_error(form, err)
        else:
            db.session.commit()
            flash(f"{patient.full_name} is registered as {patient.account_number}.", "success")
            return redirect(url_for("patients.detail", patient_id=patient.id))
    return render_template("patients/form.html", form=form, patient=None)


@bp.route("/<int:patient_id>/edit", methods=["GET", "POST"])
@roles_required(F)
def edit(patient_id: int):
    patient = get_or_404(Patient, patient_id)
    form = PatientForm(obj=patient)
    if form.validate_on_submit():
        try:
            patient_service.update_patient(patient, form.data, today=clinic_today())
        except ServiceError as err:
            db.session.rollback()
            apply_service_error(form, err)
        else:
            db.session.commit()
            flash("Saved.", "success")
            return redirect(url_for("patients.detail", patient_id=patient.id))
    return render_template("patients/form.html", form=form, patient=patient)


@bp.route("/<int:patient_id>/archive", methods=["POST"])
@roles_required(F)
def archive(patient_id: int):
    patient = get_or_404(Patient, patient_id)
    patient_service.set_archived(patient, not patient.archived)
    db.session.commit()
    flash(f"{patient.full_name} is {'archived' if patient.archived else 'active again'}.", "success")
    return redirect(url_for("patients.detail", patient_id=patient.id))


@bp.route("/<int:patient_id>")
@roles_required(F, B)
def detail(patient_id: int):
    patient = get_or_404(Patient, patient_id)
    audit.record("patient.view", patient)
    db.session.commit()
    return render_template("patients/detail.html", patient=patient,
                           statement_period=statement_report.default_period(clinic_today()),
                           superbill_form=_superbill_form(), estimates=estimate_service.estimates_of(patient),
                           **_account(patient))


def _superbill_form() -> SuperbillForm:
    """The superbill's dates as last asked for, or this month so far."""
    if "start" in request.args or "end" in request.args:
        return SuperbillForm(formdata=request.args)
    today = clinic_today()
    return SuperbillForm(formdata=None, start=today.replace(day=1), end=today)


def _account(patient: Patient) -> dict:
    """Everything the patient page shows, read once."""
    charges = list(db.session.scalars(
        sa.select(Charge).where(Charge.patient_id == patient.id).order_by(Charge.date_of_service.desc(), Charge.id.desc())))
    invoices = list(db.session.scalars(
        sa.select(Invoice).where(Invoice.patient_id == patient.id).order_by(Invoice.id.desc())))
    payments = list(db.session.scalars(
        sa.select(Payment).where(Payment.patient_id == patient.id).order_by(Payment.id.desc())))
    refunds = list(db.session.scalars(
        sa.select(Refund).join(Payment).where(Payment.patient_id == patient.id).order_by(Refund.id.desc())))
    purchases = list(db.session.scalars(
        sa.select(PackagePurchase).where(PackagePurchase.patient_id == patient.id).order_by(PackagePurchase.id)))
    invoice_balances = {i.id: balances.invoice_balance(i) for i in invoices}
    timeline = sorted(
        [(c.date_of_service, c.created_at, "charge", c) for c in charges]
        + [(i.issue_date, i.issued_at, "invoice", i) for i in invoices if i.issue_date]
        + [(p.received_date, p.created_at, "payment", p) for p in payments]
        + [(r.refund_date, r.created_at, "refund", r) for r in refunds],
        key=lambda row: (row[0], row[1]), reverse=True,
    )
    return {
        "summary": balances.patient_summary(patient),
        "open_charges": [c for c in charges if c.status == ChargeStatus.OPEN],
        "charges": charges, "invoices": invoices, "invoice_balances": invoice_balances, "payments": payments,
        "refunded": {p.id: sum((Money(r.amount_cents) for r in refunds if r.payment_id == p.id), Money.zero())
                     for p in payments},
        "purchases": [(p, balances.package_units_left(p)) for p in purchases],
        "timeline": timeline,
    }


def _charge_form(patient: Patient) -> ChargeForm:
    form = ChargeForm()
    services = db.session.scalars(sa.select(Service).where(Service.active.is_(True)).order_by(Service.name))
    order = list(ServiceCategory)
    form.service.choices = [SelectChoice(0, "Choose a service…")] + [
        SelectChoice(s.id, f"{s.name} · {s.cpt_code or s.code} · {Money(s.default_price_cents)}",
                     optgroup=s.category.label, render_kw={"data-code": s.code})
        for s in sorted(services, key=lambda s: order.index(s.category))
    ]
    providers = db.session.scalars(sa.select(Provider).where(Provider.active.is_(True)).order_by(Provider.name))
    form.provider.choices = choices([(0, "—")] + [(p.id, p.display_name) for p in providers])
    if request.method == "GET":
        form.date_of_service.data = clinic_today()
    return form


@bp.route("/<int:patient_id>/checkout", methods=["GET", "POST"])
@roles_required(F)
def checkout(patient_id: int):
    """Check-out: add today's charges, then issue the invoice."""
    patient = get_or_404(Patient, patient_id)
    form = _charge_form(patient)
    if form.validate_on_submit():
        def post() -> str:
            day = form.date_of_service.data
            charge_service.post_charge(patient, charge_service.ChargeInput(
                service=db.session.get(Service, form.service.data), date_of_service=day,
                units=form.units.data, unit_price=form.unit_price.data, price_reason=form.price_reason.data or "",
                discount=form.discount.data or Money.zero(),
                icd10_codes=charge_service.parse_icd10(form.icd10_codes.data),
                provider=db.session.get(Provider, form.provider.data) if form.provider.data else None,
                infusion_start=local_datetime(day, form.infusion_start.data),
                infusion_stop=local_datetime(day, form.infusion_stop.data),
                use_package=form.use_package.data,
            ), today=clinic_today())
            flash("Charge added.", "success")
            return url_for("patients.checkout", patient_id=patient.id)

        if (response := submit_once(form, post)) is not None:
            return response
    packages = db.session.scalars(sa.select(Package).where(Package.active.is_(True)).order_by(Package.name)).all()
    package_form = PackageSaleForm(formdata=None)
    package_form.package.choices = choices((p.id, f"{p.name} ({p.units} units) · {Money(p.price_cents)}") for p in packages)
    today = clinic_today()
    return render_template(
        "patients/checkout.html", patient=patient, form=form, package_form=package_form,
        issue_form=IssueInvoiceForm(formdata=None), void_form=ReasonForm(formdata=None),
        estimate=estimate_service.current_estimate(patient, today),
        estimate_overage=estimate_service.overage_if_invoiced(patient, today), **_account(patient))


@bp.route("/<int:patient_id>/packages", methods=["POST"])
@roles_required(F)
def sell_package(patient_id: int):
    patient = get_or_404(Patient, patient_id)
    form = PackageSaleForm()
    form.package.choices = choices((p.id, p.name) for p in db.session.scalars(sa.select(Package)))
    if form.validate_on_submit():
        def sell() -> str:
            package = db.session.get(Package, form.package.data)
            charge_service.sell_package(patient, package, date_of_service=clinic_today(), today=clinic_today())
            flash(f"{package.name} added. Issue the invoice to take payment.", "success")
            return url_for("patients.checkout", patient_id=patient.id)

        if (response := submit_once(form, sell)) is not None:
            return response
    for error in form.errors.values():
        flash(" ".join(error), "error")
    return redirect(url_for("patients.checkout", patient_id=patient.id))


@bp.route("/charges/<int:charge_id>/void", methods=["POST"])
@roles_required(F)
def void_charge(charge_id: int):
    charge = get_or_404(Charge, charge_id)
    form = ReasonForm()
    back = url_for("patients.checkout", patient_id=charge.patient_id)
    if form.validate_on_submit():
        def void() -> str:
            charge_service.void_charge(charge, form.reason.data, today=clinic_today())
            flash("Charge voided.", "success")
            return back

        if (response := submit_once(form, void)) is not None:
            return response
    for errors in form.errors.values():
        flash(" ".join(errors), "error")
    return redirect(back)


@bp.route("/<int:patient_id>/invoice", methods=["POST"])
@roles_required(F)
def issue_invoice(patient_id: int):
    patient = get_or_404(Patient, patient_id)
    form = IssueInvoiceForm()
    if form.validate_on_submit():
        def issue() -> str:
            invoice = invoice_service.issue_invoice(patient, today=clinic_today())
            flash(f"Invoice {invoice.number} issued.", "success")
            return url_for("payments.new", patient_id=patient.id, method="money_order", invoice=invoice.id)

        if (response := submit_once(form, issue)) is not None:
            return response
    for errors in form.errors.values():
        flash(" ".join(errors), "error")
    return redirect(url_for("patients.checkout", patient_id=patient.id))


@bp.route("/packages/<int:purchase_id>/refund", methods=["GET", "POST"])
@roles_required(F, B)
def refund_package(purchase_id: int):
    purchase = get_or_404(PackagePurchase, purchase_id)
    patient = db.session.get(Patient, purchase.patient_id)
    form = PackageRefundForm()
    if form.validate_on_submit():
        def refund() -> str:
            amount = charge_service.refund_package_units(purchase, form.units.data, form.reason.data,
                                                         today=clinic_today())
            flash(f"{amount} is now the patient's credit. Refund it from a payment to pay it out.", "success")
            return url_for("patients.detail", patient_id=patient.id)

        if (response := submit_once(form, refund)) is not None:
            return response
    return render_template("patients/package_refund.html", patient=patient, purchase=purchase, form=form,
                           units_left=balances.package_units_left(purchase))


def _pdf_download(document: Document) -> Response:
    """A PDF as a download under its own name, never kept in a cache (it holds patient data)."""
    return Response(document.pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{document.filename}"', "Cache-Control": "no-store"})


class BadDate(ValueError):
    """A date in the query string that cannot be used; the message is shown as it is."""


def _date_arg(name: str, default: date) -> date:
    """The YYYY-MM-DD date in query argument `name`, or `default` when the argument is absent."""
    if name not in request.args:
        return default
    text = request.args[name].strip()
    if not text:
        raise BadDate(f"Enter the {name} date of the statement.")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadDate(f"The {name} date “{text[:20]}” is not a date. Use the form YYYY-MM-DD, "
                      "like 2026-03-01.") from None


@bp.route("/<int:patient_id>/statement.pdf")
@roles_required(F, B)
def statement(patient_id: int):
    """The patient's statement for ?start=&end= (YYYY-MM-DD; the last three months when left out)."""
    patient = get_or_404(Patient, patient_id)
    today = clinic_today()
    default_start, default_end = statement_report.default_period(today)
    try:
        start = _date_arg("start", default_start)
        end = _date_arg("end", default_end)
    except BadDate as err:
        return render_error(400, str(err))
    if start > end:
        return render_error(400, f"The start date ({start:%m/%d/%Y}) is after the end date ({end:%m/%d/%Y}). "
                                 "Choose a start date on or before the end date.")
    if end > today:
        return render_error(400, f"The end date ({end:%m/%d/%Y}) is in the future. Choose today "
                                 f"({today:%m/%d/%Y}) or an earlier date.")
    document = statement_pdf(patient, start, end)
    audit.record("statement.download", patient, changes={"start": start.isoformat(), "end": end.isoformat()})
    db.session.commit()
    return _pdf_download(document)


@bp.route("/<int:patient_id>/statement/email", methods=["POST"])
@roles_required(F, B)
def email_statement(patient_id: int):
    """Email the statement for the posted start and end to the patient, through the outbox
    (audited as statement.email)."""
    patient = get_or_404(Patient, patient_id)
    back = url_for("patients.detail", patient_id=patient.id, _anchor="statement")
    form = StatementEmailForm()
    today = clinic_today()
    if not form.validate_on_submit():
        flash(next(iter(form.errors.values()))[0], "error")
        return redirect(back)
    start, end = form.start.data, form.end.data
    if start > end:
        flash(f"The start date ({start:%m/%d/%Y}) is after the end date ({end:%m/%d/%Y}). Choose a start date on "
              "or before the end date.", "error")
        return redirect(back)
    if end > today:
        flash(f"The end date ({end:%m/%d/%Y}) is in the future. Choose today ({today:%m/%d/%Y}) or an earlier date.",
              "error")
        return redirect(back)
    return email_document(patient, lambda: statement_pdf(patient, start, end), kind="statement",
                          what=f"statement for {start:%m/%d/%Y} to {end:%m/%d/%Y}", about=patient, back=back)


@bp.route("/money-orders")
@roles_required(F, B)
def money_orders():
    """Money orders in the drawer, waiting to be taken to the bank."""
    on_hand = money_order_report.money_orders_on_hand()
    total = sum((Money(p.amount_cents) for p in on_hand), Money.zero())
    audit.record("money_orders.view", changes={"count": len(on_hand)})
    db.session.commit()
    return render_template("patients/money_orders.html", money_orders=on_hand, total=total,
                           undeposited=money_order_report.undeposited_funds())


@bp.route("/money-orders/deposit-slip.pdf")
@roles_required(F)
def deposit_slip():
    """A deposit slip for every money order on hand, to take to the bank with them."""
    on_hand = money_order_report.money_orders_on_hand()
    if not on_hand:
        flash("There are no money orders on hand to deposit.", "info")
        return redirect(url_for("patients.money_orders"))
    document = deposit_slip_pdf(on_hand, slip_date=clinic_today())
    total = sum((Money(p.amount_cents) for p in on_hand), Money.zero())
    audit.record("deposit_slip.print", changes={"payments": [p.id for p in on_hand], "total": total.plain()})
    db.session.commit()
    return _pdf_download(document)
