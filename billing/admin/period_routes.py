"""Reopening a closed month of the books: the admin's decision, with a reason."""

from flask import flash, redirect, render_template, url_for
from wtforms import SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length

from billing.access import roles_required
from billing.admin import bp
from billing.books.period_routes import month_or_404
from billing.forms import OneTimeForm
from billing.models import PeriodStatus, Role
from billing.services import periods
from billing.views import submit_once


class ReopenMonthForm(OneTimeForm):
    reason = TextAreaField("Why it must be reopened", validators=[
        InputRequired("Say why the month must be reopened; the reason is kept in the audit log."), Length(max=500)])
    submit = SubmitField("Reopen the month")


@bp.route("/periods/<month>/reopen", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def period_reopen(month: str):
    """Open a closed month again so postings can be dated in it; the reason goes to the audit log."""
    first = month_or_404(month)
    back = url_for("books.period", month=f"{first:%Y-%m}")
    period = periods.period_of(first)
    form = ReopenMonthForm()
    if period is None or period.status != PeriodStatus.CLOSED:
        flash(f"{first:%B %Y} is not closed; there is nothing to reopen.", "info")
        return redirect(back)
    if form.validate_on_submit():
        def reopen() -> str:
            periods.reopen_month(first, form.reason.data or "")
            flash(f"{first:%B %Y} is open again: postings can be dated in it until it is closed again.", "success")
            return back

        if (response := submit_once(form, reopen)) is not None:
            return response
    return render_template("admin/period_reopen.html", month=first, period=period,
                           closer=periods.changed_by(first), form=form)
