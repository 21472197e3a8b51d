"""Closing a month of the books: the months with what blocks each, and the bookkeeper's close."""

from datetime import date

from flask import abort, flash, render_template, url_for
from wtforms import SubmitField, TextAreaField
from wtforms.validators import Length

from billing.access import roles_required
from billing.books import bp
from billing.forms import OneTimeForm
from billing.models import Role
from billing.services import periods
from billing.timeutil import clinic_today
from billing.views import submit_once

A, B = Role.ADMIN, Role.BOOKKEEPER


class CloseMonthForm(OneTimeForm):
    override_reason = TextAreaField("Reason for closing anyway", validators=[Length(max=500)],
                                    description="Needed only while something above is unsettled; kept with the close "
                                                "and in the audit log.")
    submit = SubmitField("Close the month")


def month_or_404(text: str) -> date:
    """The month in a URL ("2026-03"); 404 for anything else."""
    return periods.parse_month(text) or abort(404)


@bp.route("/periods")
@roles_required(A, B)
def periods_index():
    """The last twelve months: open or closed, and how much still blocks each ended open month."""
    today = clinic_today()
    return render_template("books/periods.html", today=today,
                           months=[periods.blockers(month, today=today) for month in periods.recent_months(today)])


def _month_page(month: date, form: CloseMonthForm):
    today = clinic_today()
    return render_template("books/period.html", today=today, review=periods.blockers(month, today=today),
                           closer=periods.changed_by(month), form=form)


@bp.route("/periods/<month>")
@roles_required(A, B)
def period(month: str):
    """One month: what blocks its close (each linked to where it is settled), warnings, and the close."""
    return _month_page(month_or_404(month), CloseMonthForm())


@bp.route("/periods/<month>/close", methods=["POST"])
@roles_required(B)
def period_close(month: str):
    first = month_or_404(month)
    form = CloseMonthForm()
    if form.validate_on_submit():
        def close() -> str:
            period = periods.close_month(first, today=clinic_today(), override_reason=form.override_reason.data or "")
            overridden = " (with blockers overridden: the reason is kept)" if period.reason else ""
            flash(f"{first:%B %Y} is closed{overridden}. Nothing more can be dated in it.", "success")
            return url_for("books.period", month=f"{first:%Y-%m}")

        if (response := submit_once(form, close)) is not None:
            return response
    return _month_page(first, form)
