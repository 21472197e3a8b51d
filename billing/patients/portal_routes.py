"""The front desk's side of the patient portal: invite a patient or revoke their access, withdraw a
document link sent in an email, and the queue of statements and superbills patients asked for."""

from collections.abc import Callable

from flask import current_app, flash, redirect, render_template, url_for
from flask_login import current_user

from billing.access import roles_required
from billing.extensions import db
from billing.models import DocumentLink, DocumentRequest, Patient, Role
from billing.patients import bp
from billing.portal.forms import InviteForm
from billing.services import ServiceError
from billing.services import portal as portal_service
from billing.views import get_or_404

F, B = Role.FRONTDESK, Role.BOOKKEEPER


@bp.app_template_global()
def portal_card(patient: Patient) -> dict:
    """What the patient page's portal section shows: the access, live email links, waiting requests."""
    account = portal_service.account_of(patient)
    return {"account": account, "links": portal_service.live_document_links(patient),
            "requests": [r for r in portal_service.open_requests() if r.patient_id == patient.id],
            "form": InviteForm(formdata=None, email=account.email if account else patient.email)}


def _back(patient_id: int) -> str:
    return url_for("patients.detail", patient_id=patient_id, _anchor="portal")


@bp.route("/<int:patient_id>/portal/invite", methods=["POST"])
@roles_required(F)
def portal_invite(patient_id: int):
    """Give portal access at the posted email and send the first sign-in link."""
    patient = get_or_404(Patient, patient_id)
    form = InviteForm()
    if not form.validate_on_submit():
        flash(" ".join(e for errors in form.errors.values() for e in errors), "error")
        return redirect(_back(patient.id))
    try:
        account = portal_service.invite(
            patient, form.email.data, minutes=current_app.config["PORTAL_LINK_MINUTES"],
            link_for=lambda token: url_for("portal.sign_in_link", token=token, _external=True))
    except ServiceError as err:
        db.session.rollback()
        flash(err.message, "error")
        return redirect(_back(patient.id))
    db.session.commit()
    flash(f"{patient.full_name} is invited: a sign-in link is on its way to {account.email}.", "success")
    return redirect(_back(patient.id))


@bp.route("/<int:patient_id>/portal/revoke", methods=["POST"])
@roles_required(F)
def portal_revoke(patient_id: int):
    patient = get_or_404(Patient, patient_id)
    _commit_or_explain(lambda: portal_service.revoke(patient),
                       f"{patient.full_name} can no longer sign in to the portal; any open session has ended.")
    return redirect(_back(patient.id))


@bp.route("/document-links/<int:link_id>/revoke", methods=["POST"])
@roles_required(F, B)
def document_link_revoke(link_id: int):
    link = get_or_404(DocumentLink, link_id)
    _commit_or_explain(lambda: portal_service.revoke_document_link(link),
                       "The link was withdrawn; it no longer opens the document.")
    return redirect(_back(link.patient_id))


@bp.route("/portal-requests")
@roles_required(F)
def portal_requests():
    """Statements and superbills patients asked for in the portal that need the front desk."""
    return render_template("patients/portal_requests.html", requests=portal_service.open_requests())


@bp.route("/portal-requests/<int:request_id>/done", methods=["POST"])
@roles_required(F)
def portal_request_done(request_id: int):
    request = get_or_404(DocumentRequest, request_id)
    _commit_or_explain(lambda: portal_service.close_request(request, current_user._get_current_object()),
                       f"Request from {request.patient.full_name} marked as done.")
    return redirect(url_for("patients.portal_requests"))


def _commit_or_explain(action: Callable[[], object], done: str) -> None:
    """Run one service call and commit with `done` as the message, or roll back and show its refusal."""
    try:
        action()
    except ServiceError as err:
        db.session.rollback()
        flash(err.message, "error")
    else:
        db.session.commit()
        flash(done, "success")
