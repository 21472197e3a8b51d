"""Helpers shared by the views: find-or-404, running a one-time form, sending or emailing a PDF."""

import io
from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, send_file, url_for
from werkzeug import Response

from billing.documents import Document

from billing.extensions import db
from billing.forms import OneTimeForm, apply_service_error
from billing.models import Invoice, OutboxMessage, Patient, Receipt
from billing.services import ServiceError, audit, outbox, portal, submissions
from billing.services.settings import get_settings
from billing.timeutil import clinic_tz


def get_or_404(model, ident):
    return db.session.get(model, ident) or abort(404)


def send_document(document: Document) -> Response:
    """A rendered PDF as a download under its own file name, kept out of every cache."""
    response = send_file(io.BytesIO(document.pdf), mimetype="application/pdf", as_attachment=True,
                         download_name=document.filename, max_age=0)
    response.headers["Cache-Control"] = "no-store"
    return response


def submit_once(form: OneTimeForm, action: Callable[[], str]) -> Response | None:
    """Do a form's work once: spend its token, run `action` (which returns the URL of the result),
    commit, redirect there. A second send of the same form redirects to the first result.
    On a ServiceError, roll back, put the message on the form and return None (re-render)."""
    try:
        submission = submissions.spend(form.form_token.data)
        url = action()
        submission.result_url = url
        db.session.commit()
        return redirect(url)
    except submissions.AlreadySubmitted as done:
        db.session.rollback()
        flash("That form was already sent, so nothing was done twice. Here is the result.", "info")
        return redirect(done.result_url or request.path)
    except ServiceError as err:
        db.session.rollback()
        apply_service_error(form, err)
        return None


def local_datetime(day: date, moment: time | None) -> datetime | None:
    """A clinic-local date and time as an aware datetime (None when no time was entered)."""
    return datetime.combine(day, moment, clinic_tz()) if moment else None


def email_document(patient: Patient, render: Callable[[], Document], *, kind: str, what: str, about: Any,
                   back: str) -> Response:
    """An "Email this" action: render the PDF, queue it to the patient's email (audited as
    "<kind>.email" on `about`), commit, and go back to `back`. It is sent after the response.
    `render` may raise ServiceError to refuse; its message is shown."""
    if not patient.email:
        flash(f"{patient.full_name} has no email address on file. Add one with Edit details, then send again.",
              "error")
        return redirect(back)
    try:
        message = queue_document_email(patient, render(), kind=kind, what=what, about=about)
    except ServiceError as err:
        db.session.rollback()
        flash(err.message, "error")
        return redirect(back)
    db.session.commit()
    flash(f"Queued for {message.to_address}; see the outbox for delivery.", "success")
    return redirect(back)


def queue_document_email(patient: Patient, document: Document, *, kind: str, what: str, about: Any) -> OutboxMessage:
    """Queue `document` to the patient's email with the clinic's wording (a signed link to open a
    receipt or invoice, a pay link for an invoice) and audit it as "<kind>.email" on `about`.
    Raises ServiceError for an address the outbox refuses."""
    from billing.pay.links import pay_link_for  # here: billing.pay's own views import this module

    clinic = get_settings()
    subject = f"Your {what} from {clinic.name}" if clinic.name else f"Your {what}"
    body = render_template("email/document.txt", patient=patient, what=what, link=document_link_for(about),
                           pay_link=pay_link_for(about))
    message = outbox.queue_email(patient.email, subject, body, attachment=document, patient=patient, kind=kind)
    audit.record(f"{kind}.email", about, changes={"to": message.to_address, "outbox_id": message.id,
                                                  "attachment": document.filename})
    return message


def document_link_for(about: Any) -> dict | None:
    """A signed link that opens an emailed receipt or invoice without signing in (DOCUMENT_LINK_DAYS),
    for the email's body; None for other documents."""
    if not isinstance(about, Invoice | Receipt):
        return None
    days = current_app.config["DOCUMENT_LINK_DAYS"]
    token = portal.create_document_link(about, days=days)
    return {"url": url_for("portal.document_link", token=token, _external=True), "days": days}
