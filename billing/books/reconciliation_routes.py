"""The monthly reconciliation: the page, each method's drill-down to the payments behind its figures,
and the same report as CSV (streamed) and PDF."""

from datetime import date

from flask import abort, render_template
from wtforms import StringField, SubmitField
from wtforms.validators import DataRequired, ValidationError

from billing.access import roles_required
from billing.books import bp
from billing.books.report_routes import READERS, _bad_request, _csv_response, _GetForm, _months_back
from billing.documents.reconciliation import reconciliation_pdf
from billing.models import PaymentMethod
from billing.reports import reconciliation as rec
from billing.timeutil import clinic_today
from billing.views import send_document

MONTH_MESSAGE = "Enter a month like 2026-03."


class MonthForm(_GetForm):
    month = StringField("Month", validators=[DataRequired(MONTH_MESSAGE)],
                        render_kw={"type": "month", "placeholder": "YYYY-MM"})
    submit = SubmitField("Show", name="")

    def validate_month(self, field) -> None:
        if rec.parse_month(field.data or "") is None:
            raise ValidationError(f"“{field.data}” is not a month. {MONTH_MESSAGE}")


def _month() -> tuple[MonthForm, date | None]:
    """The month in the query string (last month by default), or None with the form's error."""
    form = MonthForm(month=f"{_months_back(clinic_today(), 1):%Y-%m}")
    if not form.validate():
        return form, None
    return form, rec.parse_month(form.month.data)


@bp.route("/reconciliation")
@roles_required(*READERS)
def reconciliation():
    """The month's reconciliation: methods, clearing accounts, A/R roll-forward, trial balance."""
    form, month = _month()
    report = rec.reconciliation(month) if month else None
    return render_template("books/reconciliation.html", form=form, report=report), 400 if form.errors else 200


@bp.route("/reconciliation/<method>")
@roles_required(*READERS)
def reconciliation_items(method: str):
    """The payments behind one method's figures: not yet settled, settled for another amount, or
    funded with another fee than their plan's."""
    try:
        chosen = PaymentMethod(method)
    except ValueError:
        abort(404)
    form, month = _month()
    if month is None:
        return _bad_request(form)
    report = rec.method_figures(month)
    figures = next(m for m in report if m.method == chosen)
    items = rec.drill_down(month, chosen)
    return render_template("books/reconciliation_items.html", form=form, month=month, figures=figures, items=items,
                           limit=rec.ITEM_LIMIT)


@bp.route("/reconciliation.csv")
@roles_required(*READERS)
def reconciliation_csv():
    form, month = _month()
    if month is None:
        return _bad_request(form)
    return _csv_response(f"reconciliation-{month:%Y-%m}.csv", rec.CSV_HEADER,
                         lambda: rec.csv_rows(rec.reconciliation(month)))


@bp.route("/reconciliation.pdf")
@roles_required(*READERS)
def reconciliation_pdf_download():
    form, month = _month()
    if month is None:
        return _bad_request(form)
    return send_document(reconciliation_pdf(rec.reconciliation(month)))
