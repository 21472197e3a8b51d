"""The bookkeeper's reports (aging, revenue, payments by method, refunds and disputes, trial balance),
each with a streamed CSV, server-rendered SVG charts, and the journal exports (Beancount, QuickBooks)."""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from flask import Response, current_app, render_template, request
from flask_wtf import FlaskForm
from wtforms import DateField, RadioField, SubmitField
from wtforms.validators import DataRequired

from billing.access import roles_required
from billing.books import bp
from billing.exports import beancount, quickbooks
from billing.exports.csvstream import csv_lines
from billing.forms import choices
from billing.models import Role
from billing.money import Money
from billing.reports import aging as aging_report
from billing.reports import revenue
from billing.reports.trial_balance import totals, trial_balance
from billing.timeutil import clinic_today

READERS = (Role.BOOKKEEPER, Role.ADMIN)
DATE_MESSAGE = "Enter a date like 2026-03-31."


class _GetForm(FlaskForm):
    """A read-only form sent by GET: no CSRF token, its values in the query string."""

    class Meta:
        csrf = False

    def __init__(self, **defaults):
        super().__init__(formdata=request.args if request.args else None, **defaults)


class AsOfForm(_GetForm):
    as_of = DateField("As of", validators=[DataRequired(DATE_MESSAGE)])
    submit = SubmitField("Show", name="")


class PeriodForm(_GetForm):
    start = DateField("From", validators=[DataRequired(DATE_MESSAGE)])
    end = DateField("To", validators=[DataRequired(DATE_MESSAGE)])
    submit = SubmitField("Show", name="")

    def validate(self, extra_validators=None) -> bool:
        if not super().validate(extra_validators):
            return False
        if self.start.data > self.end.data:
            self.end.errors.append("The end date is before the start date; put the earlier date in From.")
            return False
        return True


class ExportForm(PeriodForm):
    format = RadioField("Format", choices=choices([("beancount", "Beancount (.beancount)"),
                                                   ("quickbooks", "QuickBooks Online journal import (.csv)")]),
                        default="beancount", validators=[DataRequired("Choose a format.")])
    submit = SubmitField("Download", name="")


def _months_back(today: date, months: int) -> date:
    """The first day of the month `months` before today's."""
    index = today.year * 12 + today.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def _period(default_months: int) -> tuple[PeriodForm, tuple[date, date] | None]:
    today = clinic_today()
    form = PeriodForm(start=_months_back(today, default_months), end=today)
    if request.args and not form.validate():
        return form, None
    return form, (form.start.data, form.end.data)


def _as_of() -> tuple[AsOfForm, date | None]:
    form = AsOfForm(as_of=clinic_today())
    if request.args and not form.validate():
        return form, None
    return form, form.as_of.data


def _csv_response(filename: str, header: Iterable[str], rows: Callable[[], Iterable[Iterable]]) -> Response:
    """A streamed CSV download; `rows()` is called once the header is sent, in the body's own context."""
    def body() -> Iterator[Iterable]:
        yield from rows()

    return _download(filename, "text/csv; charset=utf-8", lambda: csv_lines(header, body()))


def _download(filename: str, mimetype: str, chunks: Callable[[], Iterator[str]]) -> Response:
    """Stream what `chunks()` yields, in constant memory. Like flask's stream_with_context, but the
    body is read in an app context and database session of its own (the request's are over by then).
    Its first chunk (a header) must need no database: a server may ask for it before sending the
    response, from elsewhere than where it reads the rest."""
    app = current_app._get_current_object()

    def generate():
        body = chunks()
        yield next(body, "")
        with app.app_context():
            yield from body

    response = Response(generate(), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _period_csv(default_months: int, name: str, header: Iterable[str],
                rows: Callable[[date, date], Iterable[Iterable]]) -> Response:
    """The CSV of a report over the period in the query string (400 naming a bad date)."""
    form, period = _period(default_months)
    if period is None:
        return _bad_request(form)
    start, end = period
    return _csv_response(f"{name}-{start:%Y-%m-%d}-to-{end:%Y-%m-%d}.csv", header, lambda: rows(start, end))


def _bad_request(form: FlaskForm) -> Response:
    messages = [f"{getattr(form, name).label.text}: {' '.join(errors)}" for name, errors in form.errors.items()]
    return Response("\n".join(messages) + "\n", status=400, mimetype="text/plain")


# --- charts ------------------------------------------------------------------------------------------

COLORS = ("#2f6f8f", "#5b9a68", "#d49a2a", "#c8643b", "#a23b3b")


@dataclass(frozen=True)
class Bar:
    label: str
    value: Money
    x: float
    y: float
    width: float
    height: float
    color: str


@dataclass(frozen=True)
class Chart:
    title: str
    width: int
    height: int
    bars: list[Bar]
    baseline: float


def bar_chart(title: str, figures: list[tuple[str, Money]], *, width: int = 640, height: int = 240) -> Chart:
    """Vertical bars scaled to the largest figure (negative figures drawn as zero)."""
    top, bottom = 24, 40
    plot = height - top - bottom
    biggest = max((v.cents for _, v in figures), default=0) or 1
    slot = width / max(len(figures), 1)
    bars = []
    for i, (label, value) in enumerate(figures):
        h = plot * max(value.cents, 0) / biggest
        bars.append(Bar(label, value, round(i * slot + slot * 0.15, 1), round(top + plot - h, 1),
                        round(slot * 0.7, 1), round(h, 1), COLORS[0]))
    return Chart(title, width, height, bars, top + plot)


def stacked_bar(title: str, figures: list[tuple[str, Money]], *, width: int = 640, height: int = 90) -> Chart:
    """One horizontal bar split in segments by share of the total, in the figures' order."""
    total = sum(max(v.cents, 0) for _, v in figures) or 1
    x, bars = 0.0, []
    for i, (label, value) in enumerate(figures):
        w = width * max(value.cents, 0) / total
        bars.append(Bar(label, value, round(x, 1), 10, round(w, 1), 36, COLORS[i % len(COLORS)]))
        x += w
    return Chart(title, width, height, bars, 46)


# --- pages -------------------------------------------------------------------------------------------


@bp.route("/reports/aging")
@roles_required(*READERS)
def aging():
    """Open invoice balances per patient and in total as of a date, by age."""
    form, as_of = _as_of()
    report = aging_report.aging(as_of) if as_of else None
    chart = stacked_bar("Open invoices by age", list(zip(_bucket_labels(), report.total.buckets))) if report else None
    return render_template("books/reports_aging.html", form=form, report=report, labels=_bucket_labels(),
                           chart=chart)


def _bucket_labels() -> list[str]:
    return [label if label in ("Current", "90+") else f"{label} days" for label, _ in aging_report.BUCKETS]


@bp.route("/reports/aging.csv")
@roles_required(*READERS)
def aging_csv():
    form, as_of = _as_of()
    if as_of is None:
        return _bad_request(form)
    header = ("Account", "Patient", *_bucket_labels(), "Total due", "Not invoiced", "Receivable")

    def rows():
        report = aging_report.aging(as_of)
        for row in [*report.rows, report.total]:
            yield (row.account_number, row.name, *(m.plain() for m in row.buckets), row.total.plain(),
                   row.uninvoiced.plain(), row.receivable.plain())

    return _csv_response(f"aging-{as_of:%Y-%m-%d}.csv", header, rows)


@bp.route("/reports/revenue")
@roles_required(*READERS)
def revenue_report():
    """Revenue (charges not void) by month, service and provider over a period."""
    form, period = _period(11)
    data = None
    if period:
        months = revenue.revenue_by_month(*period)
        data = {"months": months, "services": revenue.revenue_by_service(*period),
                "providers": revenue.revenue_by_provider(*period),
                "total": sum((f.amount for f in months), Money.zero()),
                "chart": bar_chart("Revenue by month", [(f.label, f.amount) for f in months])}
    return render_template("books/reports_revenue.html", form=form, data=data)


REVENUE_TABLES: dict[str, tuple[str, Callable]] = {
    "month": ("Month", revenue.revenue_by_month),
    "service": ("Service", revenue.revenue_by_service),
    "provider": ("Provider", revenue.revenue_by_provider),
}


@bp.route("/reports/revenue.csv")
@roles_required(*READERS)
def revenue_csv():
    by = request.args.get("by", "month")
    if by not in REVENUE_TABLES:
        return Response("by: choose month, service or provider.\n", status=400, mimetype="text/plain")
    heading, query = REVENUE_TABLES[by]
    return _period_csv(11, f"revenue-by-{by}", (heading, "Charges", "Amount"),
                       lambda start, end: ((f.label, f.count, f.amount.plain()) for f in query(start, end)))


@bp.route("/reports/payments")
@roles_required(*READERS)
def payments_report():
    """Payments received per method, per month and in total."""
    form, period = _period(2)
    data = None
    if period:
        methods = revenue.method_totals(*period)
        data = {"rows": revenue.payments_by_method(*period), "methods": methods,
                "total": sum((f.amount for f in methods), Money.zero()),
                "chart": bar_chart("Payments by method", [(f.label, f.amount) for f in methods], height=220)}
    return render_template("books/reports_payments.html", form=form, data=data)


@bp.route("/reports/payments.csv")
@roles_required(*READERS)
def payments_csv():
    return _period_csv(2, "payments-by-method", ("Month", "Method", "Payments", "Amount"),
                       lambda start, end: ((r.month, r.method.label, r.count, r.amount.plain())
                                           for r in revenue.payments_by_method(start, end)))


@bp.route("/reports/refunds")
@roles_required(*READERS)
def refunds_report():
    """Refunds, returned money orders and card disputes in a period."""
    form, period = _period(2)
    data = None
    if period:
        data = {"rows": revenue.refunds_and_disputes(*period), "totals": revenue.refund_totals(*period)}
    return render_template("books/reports_refunds.html", form=form, data=data)


@bp.route("/reports/refunds.csv")
@roles_required(*READERS)
def refunds_csv():
    return _period_csv(2, "refunds-and-disputes",
                       ("Date", "Kind", "Method", "Payment", "Account", "Patient", "Amount", "Detail"),
                       lambda start, end: ((r.day.isoformat(), r.kind, r.method.label, r.payment_id,
                                            r.account_number, r.patient, r.amount.plain(), r.detail)
                                           for r in revenue.refunds_and_disputes(start, end)))


@bp.route("/reports/trial-balance")
@roles_required(*READERS)
def trial_balance_report():
    """Every account's debits, credits and balance as of a date."""
    form, as_of = _as_of()
    rows = trial_balance(as_of) if as_of else None
    return render_template("books/reports_trial_balance.html", form=form, rows=rows,
                           totals=totals(rows) if rows else None)


@bp.route("/reports/trial-balance.csv")
@roles_required(*READERS)
def trial_balance_csv():
    form, as_of = _as_of()
    if as_of is None:
        return _bad_request(form)
    return _csv_response(f"trial-balance-{as_of:%Y-%m-%d}.csv", ("Code", "Account", "Debits", "Credits", "Balance"),
                         lambda: ((r.code, r.name, r.debits.plain(), r.credits.plain(), r.balance.plain())
                                  for r in trial_balance(as_of)))


@bp.route("/exports")
@roles_required(*READERS)
def exports():
    """The journal for a date range as a Beancount file or a QuickBooks Online import CSV (streamed)."""
    today = clinic_today()
    last_month_end = today.replace(day=1) - timedelta(days=1)
    form = ExportForm(start=last_month_end.replace(day=1), end=last_month_end)
    if request.args and form.validate():
        start, end = form.start.data, form.end.data
        span = f"{start:%Y-%m-%d}-to-{end:%Y-%m-%d}"
        if form.format.data == "quickbooks":
            return _download(f"journal-{span}.csv", "text/csv; charset=utf-8", lambda: quickbooks.lines(start, end))
        return _download(f"journal-{span}.beancount", "text/plain; charset=utf-8",
                         lambda: beancount.lines(start, end))
    return render_template("books/reports_exports.html", form=form), 400 if form.errors else 200
