"""The superbill download on the patient page (front desk only: it carries diagnoses)."""

from flask import flash, redirect, request, url_for

from billing.access import roles_required
from billing.documents.superbill import superbill_pdf
from billing.extensions import db
from billing.models import Patient, Role
from billing.patients import bp
from billing.patients.forms import SuperbillForm
from billing.services import ServiceError, audit
from billing.views import get_or_404, send_document


@bp.route("/<int:patient_id>/superbill")
@roles_required(Role.FRONTDESK)
def superbill(patient_id: int):
    """The superbill for ?start=&end= (dates of service); when it cannot be produced, back to the patient
    page with the dates kept and a message saying what is missing."""
    patient = get_or_404(Patient, patient_id)
    form = SuperbillForm(formdata=request.args)
    back = url_for("patients.detail", patient_id=patient.id, start=request.args.get("start") or None,
                   end=request.args.get("end") or None)
    if not form.validate():
        flash(" ".join(e for errors in form.errors.values() for e in errors), "error")
        return redirect(back)
    try:
        document = superbill_pdf(patient, form.start.data, form.end.data)
    except ServiceError as err:
        flash(err.message, "error")
        return redirect(back)
    audit.record("superbill.download", patient, changes={"start": form.start.data.isoformat(),
                                                         "end": form.end.data.isoformat()})
    db.session.commit()
    return send_document(document)
