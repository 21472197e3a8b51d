import sqlalchemy as sa
from flask import abort, flash, render_template, url_for

from billing.access import roles_required
from billing.documents.invoices import invoice_pdf
from billing.extensions import db
from billing.invoices import bp
from billing.invoices.forms import AdjustForm, ApplyCreditForm
from billing.models import Adjustment, AdjustmentKind, Allocation, Invoice, Patient, Payment, Role
from billing.patients.forms import ReasonForm
from billing.services import audit, balances, invoices as invoice_service, payments as payment_service
from billing.timeutil import clinic_today
from billing.views import email_document, get_or_404, send_document, submit_once

A, F, B = Role.ADMIN, Role.FRONTDESK, Role.BOOKKEEPER


def _page(invoice: Invoice, **forms):
    patient = db.session.get(Patient, invoice.patient_id)
    allocations = db.session.execute(
        sa.select(Allocation, Payment).outerjoin(Payment, Allocation.payment_id == Payment.id)
        .where(Allocation.invoice_id == invoice.id).order_by(Allocation.id)).all()
    adjustments = db.session.scalars(sa.select(Adjustment).where(Adjustment.invoice_id == invoice.id)).all()
    forms.setdefault("void_form", ReasonForm(formdata=None))
    forms.setdefault("adjust_form", AdjustForm(formdata=None))
    forms.setdefault("credit_form", ApplyCreditForm(formdata=None))
    return render_template(
        "invoices/detail.html", invoice=invoice, patient=patient, allocations=allocations, adjustments=adjustments,
        balance=balances.invoice_balance(invoice), credit=balances.patient_credit(patient.id), **forms)


@bp.route("/<int:invoice_id>")
@roles_required(F, B)
def detail(invoice_id: int):
    invoice = get_or_404(Invoice, invoice_id)
    audit.record("invoice.view", invoice)
    db.session.commit()
    return _page(invoice)


@bp.route("/<int:invoice_id>/pdf")
@roles_required(F, B)
def pdf(invoice_id: int):
    """Download the invoice as a PDF (audited)."""
    invoice = get_or_404(Invoice, invoice_id)
    if invoice.number is None:
        abort(404)
    document = invoice_pdf(invoice)
    audit.record("invoice.download", invoice, changes={"file": document.filename})
    db.session.commit()
    return send_document(document)


@bp.route("/<int:invoice_id>/email", methods=["POST"])
@roles_required(F, B)
def email(invoice_id: int):
    """Email the invoice PDF to the patient, through the outbox (audited as invoice.email)."""
    invoice = get_or_404(Invoice, invoice_id)
    if invoice.number is None:
        abort(404)
    return email_document(db.session.get(Patient, invoice.patient_id), lambda: invoice_pdf(invoice),
                          kind="invoice", what=f"invoice {invoice.number}", about=invoice,
                          back=url_for("invoices.detail", invoice_id=invoice.id))


@bp.route("/<int:invoice_id>/void", methods=["POST"])
@roles_required(F, B)
def void(invoice_id: int):
    invoice = get_or_404(Invoice, invoice_id)
    form = ReasonForm()
    if form.validate_on_submit():
        def act() -> str:
            invoice_service.void_invoice(invoice, form.reason.data, today=clinic_today())
            flash(f"{invoice.number} is void. Anything paid on it is now credit; its charges are open again.",
                  "success")
            return url_for("invoices.detail", invoice_id=invoice.id)

        if (response := submit_once(form, act)) is not None:
            return response
    return _page(invoice, void_form=form), 400


@bp.route("/<int:invoice_id>/adjust", methods=["POST"])
@roles_required(A, B)
def adjust(invoice_id: int):
    invoice = get_or_404(Invoice, invoice_id)
    form = AdjustForm()
    if form.validate_on_submit():
        def act() -> str:
            payment_service.adjust_invoice(invoice, AdjustmentKind(form.kind.data), form.amount.data,
                                           form.reason.data, today=clinic_today())
            flash("Adjustment posted.", "success")
            return url_for("invoices.detail", invoice_id=invoice.id)

        if (response := submit_once(form, act)) is not None:
            return response
    return _page(invoice, adjust_form=form), 400


@bp.route("/<int:invoice_id>/apply-credit", methods=["POST"])
@roles_required(F, B)
def apply_credit(invoice_id: int):
    invoice = get_or_404(Invoice, invoice_id)
    form = ApplyCreditForm()
    if form.validate_on_submit():
        def act() -> str:
            patient = db.session.get(Patient, invoice.patient_id)
            applied = payment_service.apply_credit(patient, invoice, form.amount.data, today=clinic_today())
            flash(f"{applied} of credit applied to {invoice.number}.", "success")
            return url_for("invoices.detail", invoice_id=invoice.id)

        if (response := submit_once(form, act)) is not None:
            return response
    return _page(invoice, credit_form=form), 400
