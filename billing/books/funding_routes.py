"""The bookkeeper's CareCredit fundings: import the funding report, record a funding by hand, each
funding's charges against our payments (expected fee vs actual, late), and what is unmatched."""

from flask import flash, redirect, render_template, request, url_for
from flask_wtf.file import FileField, FileRequired
from wtforms import DateField, FieldList, Form, FormField, StringField, SubmitField
from wtforms.validators import InputRequired, Length, Optional

from billing.access import roles_required
from billing.books import bp
from billing.forms import MoneyField, OneTimeForm
from billing.models import CareCreditFunding, Role
from billing.money import Money
from billing.services import ServiceError, fundings
from billing.timeutil import clinic_today
from billing.views import get_or_404, submit_once

CHARGE_ROWS = 8  # rows of the manual form; blank ones are skipped


class FundingReportForm(OneTimeForm):
    report = FileField("CareCredit funding report (CSV)",
                       validators=[FileRequired("Choose the funding report downloaded from the Provider Center.")])
    submit = SubmitField("Import fundings")


class RematchForm(OneTimeForm):
    submit = SubmitField("Match again")


class ChargeForm(Form):
    authorization_code = StringField("Authorization code", validators=[Optional(), Length(max=20)])
    gross = MoneyField("Gross", allow_negative=True)
    fee = MoneyField("Fee", allow_negative=True)


class FundingForm(OneTimeForm):
    error_slots = ("lines",)
    reference = StringField("Funding reference", validators=[InputRequired("Enter the funding reference."),
                                                             Length(max=40)])
    funded_on = DateField("Funding date", validators=[InputRequired("Enter the date CareCredit funded.")])
    net = MoneyField("Deposited (net)", validators=[InputRequired("Enter the amount that reached the bank.")],
                     allow_negative=True)
    charges = FieldList(FormField(ChargeForm), min_entries=CHARGE_ROWS, max_entries=100)
    submit = SubmitField("Record funding")

    def charge_inputs(self) -> list[fundings.LineInput]:
        """The rows that were filled in; a row with an amount but no code (or the reverse) is kept
        for the service to refuse."""
        rows = []
        for entry in self.charges:
            code, gross, fee = entry.authorization_code.data or "", entry.gross.data, entry.fee.data
            if not code.strip() and gross is None and fee is None:
                continue
            if gross is None:
                raise ServiceError(f"Charge {len(rows) + 1}: enter the gross amount charged.", "lines")
            rows.append(fundings.LineInput(code, gross, fee if fee is not None else Money.zero()))
        return rows


@bp.route("/fundings", methods=["GET", "POST"])
@roles_required(Role.BOOKKEEPER, Role.ADMIN)
def fundings_list():
    """Import a CareCredit funding report; the fundings just imported, then the recent ones."""
    form = FundingReportForm()
    if form.validate_on_submit():
        def import_report() -> str:
            try:
                text = form.report.data.read().decode("utf-8-sig")
            except UnicodeDecodeError:
                raise ServiceError("This is not a text CSV file. Download the funding report from the CareCredit "
                                   "Provider Center again and choose that file.", "report") from None
            result = fundings.import_funding_csv(text, today=clinic_today())
            flash(result.message(), "success" if result.posted else "info")
            ids = ",".join(str(f.id) for f in result.posted + result.already_posted)
            return url_for("books.fundings_list", imported=ids)

        if (response := submit_once(form, import_report)) is not None:
            return response
    imported_ids = [int(i) for i in request.args.get("imported", "").split(",") if i.isdigit()]
    return render_template("books/fundings.html", form=form,
                           imported=fundings.summaries(ids=imported_ids) if imported_ids else [],
                           recent=fundings.summaries(), unfunded=fundings.unfunded_total(),
                           unmatched=len(fundings.unmatched_lines()))


@bp.route("/fundings/new", methods=["GET", "POST"])
@roles_required(Role.BOOKKEEPER, Role.ADMIN)
def funding_new():
    """Record a funding read off the Provider Center: its reference, date, deposit and charges."""
    form = FundingForm()
    if form.validate_on_submit():
        def record() -> str:
            funding = fundings.record_funding(fundings.FundingInput(
                reference=form.reference.data, funded_on=form.funded_on.data, net=form.net.data,
                lines=form.charge_inputs()), today=clinic_today())
            flash(f"Funding {funding.reference} posted: {len(funding.lines)} charges, "
                  f"{sum(1 for line in funding.lines if line.payment_id)} matched to payments.", "success")
            return url_for("books.funding_detail", funding_id=funding.id)

        if (response := submit_once(form, record)) is not None:
            return response
    return render_template("books/fundings_new.html", form=form)


@bp.route("/fundings/<int:funding_id>")
@roles_required(Role.BOOKKEEPER, Role.ADMIN)
def funding_detail(funding_id: int):
    funding = get_or_404(CareCreditFunding, funding_id)
    [summary] = fundings.summaries(ids=[funding.id])
    return render_template("books/fundings_detail.html", funding=funding, summary=summary,
                           lines=fundings.line_reports(funding))


@bp.route("/fundings/unmatched")
@roles_required(Role.BOOKKEEPER, Role.ADMIN)
def fundings_unmatched():
    """Both sides: funding lines with no payment of ours, and CareCredit payments no funding has paid."""
    today = clinic_today()
    return render_template("books/fundings_unmatched.html", lines=fundings.unmatched_lines(),
                           payments=fundings.unfunded_payments(today=today), unfunded=fundings.unfunded_total(),
                           today=today, form=RematchForm())


@bp.route("/fundings/unmatched/match", methods=["POST"])
@roles_required(Role.BOOKKEEPER, Role.ADMIN)
def fundings_rematch():
    """Match unmatched funding lines to CareCredit payments recorded since they were funded."""
    form = RematchForm()
    if form.validate_on_submit():
        def rematch() -> str:
            matched = fundings.rematch_unmatched()
            flash(f"{matched} funding line{' was' if matched == 1 else 's were'} matched to payments recorded since."
                  if matched else "No new matches: no payment recorded since has their authorization code and amount.",
                  "success" if matched else "info")
            return url_for("books.fundings_unmatched")

        if (response := submit_once(form, rematch)) is not None:
            return response
    flash("That form has expired. Reload the page and try again.", "error")
    return redirect(url_for("books.fundings_unmatched"))
