"""Helpers shared by the views: find-or-404 and running a one-time form."""

from collections.abc import Callable
from datetime import date, datetime, time

from flask import abort, flash, redirect, request
from werkzeug import Response

from billing.extensions import db
from billing.forms import OneTimeForm, apply_service_error
from billing.services import ServiceError, submissions
from billing.timeutil import clinic_tz


def get_or_404(model, ident):
    return db.session.get(model, ident) or abort(404)


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
