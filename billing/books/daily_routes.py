"""The daily close: the front desk closes a day with the money orders counted, the bookkeeper reviews it."""

from datetime import date

from flask import abort, flash, redirect, render_template, request, url_for
from wtforms import SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length

from billing.access import roles_required
from billing.books import bp
from billing.documents.daily_close import daily_close_pdf
from billing.extensions import db
from billing.forms import MoneyField, OneTimeForm
from billing.models import Role
from billing.reports import daily
from billing.reports.money_orders import money_orders_on_hand
from billing.services import audit, daily_close
from billing.timeutil import clinic_today
from billing.views import send_document, submit_once

F, B = Role.FRONTDESK, Role.BOOKKEEPER


class CloseDayForm(OneTimeForm):
    counted = MoneyField("Money orders counted in the drawer", validators=[
        InputRequired("Enter the total of the money orders counted (0.00 when there are none).")],
        render_kw={"inputmode": "decimal", "autocomplete": "off"})
    note = TextAreaField("Note", validators=[Length(max=500)],
                         description="Needed when the count differs from what the books expect.")
    submit = SubmitField("Close the day")


class ReviewForm(OneTimeForm):
    submit = SubmitField("Mark reviewed")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        abort(404)


@bp.route("/daily")
@roles_required(F, B)
def daily_index():
    """Days to close (with activity, not yet closed) and the recent closes; any date can be opened."""
    today = clinic_today()
    if picked := request.args.get("day"):
        try:
            return redirect(url_for("books.daily_day", day=date.fromisoformat(picked).isoformat()))
        except ValueError:
            flash("Enter the date as shown in the date picker, e.g. 2026-03-16.", "error")
    return render_template("books/daily_index.html", today=today, unclosed=daily.unclosed_days(today),
                           closes=[(c, daily_close.over_short(c)) for c in daily.recent_closes()],
                           today_closed=daily.close_for(today) is not None)


@bp.route("/daily/<day>", methods=["GET", "POST"])
@roles_required(F, B)
def daily_day(day: str):
    """One day's figures; the close form while it is open, its close and review once closed."""
    day, today = _day(day), clinic_today()
    close = daily.close_for(day)
    form = CloseDayForm()
    if close is None and form.validate_on_submit():
        def close_it() -> str:
            closed = daily_close.close_day(day, form.counted.data, form.note.data or "", today=today)
            difference = daily_close.over_short(closed)
            result = ("the count matches" if not difference else
                      f"over by {difference}" if difference.is_positive else f"short by {-difference}")
            flash(f"{day:%m/%d/%Y} is closed: {result}.", "success")
            return url_for("books.daily_day", day=day.isoformat())

        if (response := submit_once(form, close_it)) is not None:
            return response
    elif close is not None and request.method == "POST":
        flash(f"{day:%m/%d/%Y} was already closed; nothing was changed.", "info")
        return redirect(url_for("books.daily_day", day=day.isoformat()))
    return render_template("books/daily_day.html", day=day, today=today, close=close, form=form,
                           figures=daily.day_figures(day), on_hand=money_orders_on_hand() if close is None else [],
                           over_short=daily_close.over_short(close) if close else None,
                           review_form=ReviewForm(), payments=daily.day_payments(day))


@bp.route("/daily/<day>/review", methods=["POST"])
@roles_required(B)
def daily_review(day: str):
    day = _day(day)
    close = daily.close_for(day) or abort(404)
    form = ReviewForm()
    back = url_for("books.daily_day", day=day.isoformat())
    if form.validate_on_submit():
        def review() -> str:
            daily_close.review_close(close)
            flash(f"{day:%m/%d/%Y} is marked reviewed.", "success")
            return back

        submit_once(form, review)
    else:
        flash("This form has expired. Reload the page and try again.", "error")
    return redirect(back)


@bp.route("/daily/<day>/close.pdf")
@roles_required(F, B)
def daily_pdf(day: str):
    """The day's close as a printable PDF (a preview marked "not closed" before the close)."""
    day = _day(day)
    close = daily.close_for(day)
    document = daily_close_pdf(daily.day_figures(day), close)
    audit.record("daily_close.print", close, changes={"day": day.isoformat()})
    db.session.commit()
    return send_document(document)
