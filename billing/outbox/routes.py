import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import flash, redirect, render_template, request, url_for

from billing.access import roles_required
from billing.extensions import db
from billing.models import OutboxMessage, OutboxStatus, Patient, Role
from billing.outbox import bp
from billing.services import ServiceError, outbox as outbox_service
from billing.views import get_or_404

A, F = Role.ADMIN, Role.FRONTDESK
PAGE_SIZE = 100


@bp.route("/")
@roles_required(A, F)
def index():
    """The most recent messages and where each stands; the attachment itself is never loaded."""
    status = request.args.get("status", "")
    query = (sa.select(OutboxMessage, Patient)
             .outerjoin(Patient, OutboxMessage.patient_id == Patient.id)
             .options(so.defer(OutboxMessage.attachment, raiseload=True))
             .order_by(OutboxMessage.id.desc()).limit(PAGE_SIZE))
    if status in {s.value for s in OutboxStatus}:
        query = query.where(OutboxMessage.status == OutboxStatus(status))
    else:
        status = ""
    counts = dict(db.session.execute(
        sa.select(OutboxMessage.status, sa.func.count()).group_by(OutboxMessage.status)).all())
    return render_template("outbox/index.html", rows=db.session.execute(query).all(), status=status,
                           counts={s: counts.get(s, 0) for s in OutboxStatus}, page_size=PAGE_SIZE)


@bp.route("/<int:message_id>/retry", methods=["POST"])
@roles_required(A, F)
def retry(message_id: int):
    message = get_or_404(OutboxMessage, message_id)
    try:
        outbox_service.retry(message)
    except ServiceError as err:
        db.session.rollback()
        flash(err.message, "error")
    else:
        db.session.commit()
        flash(f"Trying {message.to_address} again now; reload this page in a moment to see how it went.", "success")
    return redirect(url_for("outbox.index"))
