"""The patient portal: sign-in by emailed link, what the patient owes, their documents as PDFs, and
the signed document links sent in emails.

Every id in a URL is looked up through the signed-in patient (billing/reports/portal.py), so another
patient's id answers 404 like one that does not exist. Every document a patient opens is audited as
portal.document_view.
"""

from datetime import date

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from werkzeug import Response

from billing.access import patient_required, public
from billing.documents import Document
from billing.documents.estimates import estimate_pdf
from billing.documents.invoices import invoice_data, invoice_pdf
from billing.documents.receipts import receipt_pdf
from billing.documents.statements import statement_pdf
from billing.documents.superbill import superbill_data, superbill_pdf
from billing.errors import MESSAGES
from billing.extensions import db, limiter
from billing.integrations import stripe_gateway as gateway
from billing.models import DocumentRequestKind, Invoice, InvoiceStatus, Receipt
from billing.portal import bp, session as portal_session
from billing.portal.forms import ContinueForm, DocumentRequestForm, PeriodForm, SignInForm
from billing.reports import portal as portal_report
from billing.reports import statements as statement_report
from billing.services import ServiceError, audit, balances
from billing.services import portal as portal_service
from billing.services import receipts as receipt_service
from billing.timeutil import clinic_today
from billing.views import send_document


def _limit() -> str:
    return current_app.config["PORTAL_RATE_LIMIT"]


def _email_key() -> str:
    return "portal-email:" + portal_service.normalize_email(request.form.get("email", ""))


def _sign_in_link(token: str) -> str:
    return url_for("portal.sign_in_link", token=token, _external=True)


def _patient():
    return portal_session.current_account().patient


@bp.errorhandler(404)
def not_found(error):
    title, message = MESSAGES[404]
    return render_template("portal/error.html", title=title, message=message), 404


# --- signing in ------------------------------------------------------------------------------------


@bp.route("/sign-in", methods=["GET", "POST"])
@public
@limiter.limit(_limit, methods=["POST"])
@limiter.limit(_limit, methods=["POST"], key_func=_email_key)
def sign_in():
    """Ask for a sign-in link. The answer is the same whether or not the email has portal access."""
    form = SignInForm()
    if form.validate_on_submit():
        portal_service.request_sign_in(form.email.data, link_for=_sign_in_link,
                                       minutes=current_app.config["PORTAL_LINK_MINUTES"], ip=request.remote_addr)
        db.session.commit()
        return render_template("portal/check_email.html", minutes=current_app.config["PORTAL_LINK_MINUTES"])
    return render_template("portal/sign_in.html", form=form)


@bp.route("/sign-in/<token>", methods=["GET", "POST"])
@public
@limiter.limit(_limit, methods=["POST"])
def sign_in_link(token: str):
    """The page an emailed link opens: a button that spends the link (opening it alone does not)."""
    form = ContinueForm()
    if form.validate_on_submit():
        try:
            account = portal_service.redeem_sign_in(token, ip=request.remote_addr)
        except ServiceError as err:
            db.session.rollback()
            return _refused_link(err.message)
        db.session.commit()
        portal_session.start(account)
        return redirect(url_for("portal.home"))
    if not portal_service.check_sign_in(token):
        return _refused_link(portal_service.REFUSED_SIGN_IN)
    return render_template("portal/continue.html", form=form)


def _refused_link(message: str):
    return render_template("portal/sign_in.html", form=SignInForm(formdata=None), refused=message), 400


@bp.route("/sign-out", methods=["POST"])
@public
def sign_out():
    portal_session.end()
    flash("You are signed out.", "info")
    return redirect(url_for("portal.sign_in"))


# --- pages ------------------------------------------------------------------------------------------------


@bp.route("/")
@patient_required
def home():
    patient = _patient()
    summary = balances.patient_summary(patient)
    return render_template("portal/home.html", patient=patient, summary=summary,
                           invoices=[i for i in portal_report.invoice_rows(patient) if i.due.is_positive],
                           receipts=portal_report.receipt_rows(patient)[:3],
                           pay_url=url_for("portal.pay") if gateway.is_configured() else None)


@bp.route("/documents")
@patient_required
def documents():
    patient = _patient()
    return render_template("portal/documents.html", patient=patient, form=_request_form(),
                           invoices=portal_report.invoice_rows(patient), receipts=portal_report.receipt_rows(patient),
                           estimates=portal_report.estimates(patient),
                           waiting=portal_report.waiting_requests(patient))


def _request_form(formdata=None) -> DocumentRequestForm:
    form = DocumentRequestForm(formdata=formdata)
    if formdata is None:
        form.start.data, form.end.data = statement_report.default_period(clinic_today())
    return form


@bp.route("/invoices/<int:invoice_id>")
@patient_required
def invoice(invoice_id: int):
    invoice = _own(portal_report.invoice_of, invoice_id)
    audit.record("portal.document_view", invoice, changes={"via": "page"})
    db.session.commit()
    payable = invoice.status == InvoiceStatus.OPEN and gateway.is_configured()
    return render_template("portal/invoice.html", invoice=invoice, data=invoice_data(invoice),
                           pay_url=url_for("portal.pay_invoice", invoice_id=invoice.id) if payable else None)


@bp.route("/invoices/<int:invoice_id>.pdf")
@patient_required
def invoice_download(invoice_id: int):
    invoice = _own(portal_report.invoice_of, invoice_id)
    return _send(invoice, invoice_pdf(invoice), via="portal")


@bp.route("/receipts/<int:receipt_id>.pdf")
@patient_required
def receipt_download(receipt_id: int):
    receipt = _own(portal_report.receipt_of, receipt_id)
    return _send(receipt, receipt_pdf(receipt), via="portal")


@bp.route("/estimates/<int:estimate_id>")
@patient_required
def estimate(estimate_id: int):
    estimate = _own(portal_report.estimate_of, estimate_id)
    audit.record("portal.document_view", estimate, changes={"via": "page"})
    db.session.commit()
    return render_template("portal/estimate.html", estimate=estimate)


@bp.route("/estimates/<int:estimate_id>.pdf")
@patient_required
def estimate_download(estimate_id: int):
    estimate = _own(portal_report.estimate_of, estimate_id)
    try:
        document = estimate_pdf(estimate)
    except ServiceError:
        return _not_ready()
    return _send(estimate, document, via="portal")


@bp.route("/documents/request", methods=["POST"])
@patient_required
def request_document():
    """A statement or superbill for a period: produced now when its data is complete, otherwise put in
    the front desk's queue."""
    patient = _patient()
    form = _request_form(request.form)
    if not form.validate_on_submit() or not _period_ok(form.start.data, form.end.data):
        for errors in form.errors.values():
            flash(" ".join(errors), "error")
        return redirect(url_for("portal.documents", _anchor="request"))
    start, end = form.start.data, form.end.data
    period = {"start": start.isoformat(), "end": end.isoformat()}
    if form.kind.data == DocumentRequestKind.STATEMENT.value:
        return redirect(url_for("portal.statement_download", **period))
    if not portal_report.has_services(patient, start, end):
        flash(f"You had no visits between {start:%m/%d/%Y} and {end:%m/%d/%Y}. Choose other dates.", "error")
        return redirect(url_for("portal.documents", _anchor="request"))
    try:
        superbill_data(patient, start, end)
    except ServiceError as err:
        portal_service.request_document(patient, DocumentRequestKind.SUPERBILL, start, end, reason=err.message)
        db.session.commit()
        flash("The clinic needs to finish a few details before this superbill is ready. We sent your request to "
              "the front desk; they will email it to you.", "success")
        return redirect(url_for("portal.documents"))
    return redirect(url_for("portal.superbill_download", **period))


@bp.route("/statement.pdf")
@patient_required
def statement_download():
    patient = _patient()
    start, end = _period()
    if start is None:
        return redirect(url_for("portal.documents", _anchor="request"))
    return _send(patient, statement_pdf(patient, start, end), via="portal", kind="statement",
                 start=start.isoformat(), end=end.isoformat())


@bp.route("/superbill.pdf")
@patient_required
def superbill_download():
    patient = _patient()
    start, end = _period()
    if start is None:
        return redirect(url_for("portal.documents", _anchor="request"))
    try:
        document = superbill_pdf(patient, start, end)
    except ServiceError:
        return _not_ready()
    return _send(patient, document, via="portal", kind="superbill", start=start.isoformat(), end=end.isoformat())


def _period() -> tuple[date, date] | tuple[None, None]:
    form = PeriodForm(formdata=request.args)
    if not form.validate() or not _period_ok(form.start.data, form.end.data):
        for errors in form.errors.values():
            flash(" ".join(errors), "error")
        return None, None
    return form.start.data, form.end.data


def _period_ok(start: date | None, end: date | None) -> bool:
    if start is None or end is None:
        return False
    today = clinic_today()
    if start > end:
        flash("The first date must be on or before the last date.", "error")
        return False
    if end > today:
        flash(f"The last date can be today ({today:%m/%d/%Y}) at the latest.", "error")
        return False
    return True


# --- signed document links in emails -------------------------------------------------------------------------


@bp.route("/d/<token>")
@public
@limiter.limit(lambda: "60 per minute")
def document_link(token: str):
    """The PDF one emailed link opens, without signing in, until the link expires or is withdrawn."""
    try:
        link, document = portal_service.open_document_link(token)
    except ServiceError as err:
        return render_template("portal/error.html", title="Link not valid", message=err.message,
                               sign_in_hint=True), 404
    render = invoice_pdf if isinstance(document, Invoice) else receipt_pdf
    return _send(document, render(document), via="email link", link=link.id)


# --- helpers -----------------------------------------------------------------------------------------------


def _own(lookup, ident: int):
    """The signed-in patient's record with this id, or 404 (whether it is someone else's or missing)."""
    found = lookup(_patient(), ident)
    if found is None:
        abort(404)
    return found


def _send(entity, document: Document, *, via: str, **details) -> Response:
    """Audit the view (portal.document_view) and send the PDF. A receipt's rendering is also checked
    against its first one (receipts.record_rendering)."""
    changes = {"file": document.filename, "via": via, **details}
    if isinstance(entity, Receipt):
        changes["renders_as_issued"] = receipt_service.record_rendering(entity, document.pdf)
    audit.record("portal.document_view", entity, changes=changes)
    db.session.commit()
    return send_document(document)


def _not_ready() -> Response:
    flash("This document cannot be downloaded yet. Please call the clinic, or ask for it below.", "error")
    return redirect(url_for("portal.documents"))
