"""The bookkeeper's bank pages: import a statement file, see each credit with the payouts, deposit
batches and CareCredit fundings it may have settled, confirm or undo a match, and what is unmatched."""

from datetime import timedelta

from flask import abort, flash, redirect, render_template, url_for
from flask_wtf.file import FileField, FileRequired
from wtforms import HiddenField, StringField, SubmitField
from wtforms.validators import DataRequired, Optional, Regexp

from billing.access import roles_required
from billing.books import bp
from billing.forms import OneTimeForm
from billing.models import BankLine, BankStatement, Role
from billing.services import bank
from billing.views import get_or_404, submit_once


class StatementForm(OneTimeForm):
    statement_file = FileField("Bank statement file (OFX, QFX or CSV)",
                               validators=[FileRequired("Choose the statement file downloaded from the bank.")])
    account_last4 = StringField(
        "Account (last 4 digits)",
        validators=[Optional(), Regexp(r"^[0-9]{4}$", message="Enter the last 4 digits of the account number.")],
        description="Required for a CSV file, which does not say which account it is from; an OFX file names its "
                    "account itself.")
    submit = SubmitField("Import statement")


class MatchForm(OneTimeForm):
    kind = HiddenField(validators=[DataRequired()])
    target = HiddenField(validators=[DataRequired()])
    submit = SubmitField("Confirm")


class UnmatchForm(OneTimeForm):
    submit = SubmitField("Unmatch")


@bp.route("/bank", methods=["GET", "POST"])
@roles_required(Role.BOOKKEEPER, Role.ADMIN)
def bank_statements():
    """Upload a bank statement; the statements imported so far and what is unmatched on each side."""
    form = StatementForm()
    if not form.is_submitted():
        form.account_last4.data = bank.last_account_last4()
    if form.validate_on_submit():
        def import_file() -> str:
            upload = form.statement_file.data
            result = bank.import_statement(upload.filename or "statement", upload.read(),
                                           account_last4=form.account_last4.data or "")
            flash(result.message(), "success")
            return url_for("books.bank_statement", statement_id=result.statement.id)

        if (response := submit_once(form, import_file)) is not None:
            return response
    return render_template("books/bank.html", form=form, statements=bank.statements(),
                           unmatched_lines=bank.unmatched_lines(), unmatched_targets=bank.unmatched_targets())


@bp.route("/bank/<int:statement_id>")
@roles_required(Role.BOOKKEEPER, Role.ADMIN)
def bank_statement(statement_id: int):
    """A statement's lines: each credit with its suggested matches (Confirm) or its confirmed match."""
    statement = get_or_404(BankStatement, statement_id)
    lines = bank.lines_of(statement)
    suggestions = bank.suggestions(lines)
    forms = {line.id: [(target, MatchForm(formdata=None, kind=target.kind.value, target=str(target.id)))
                       for target in suggestions.get(line.id, [])] for line in lines}
    unmatch_forms = {line.id: UnmatchForm(formdata=None) for line in lines if line.match_kind is not None}
    window = None
    if statement.period_start and statement.period_end:
        window = (statement.period_start - timedelta(days=bank.WINDOW_DAYS),
                  statement.period_end + timedelta(days=bank.WINDOW_DAYS))
    return render_template(
        "books/bank_statement.html", statement=statement, lines=lines, forms=forms, unmatch_forms=unmatch_forms,
        matches={line.id: bank.describe_match(line) for line in lines if line.match_kind is not None},
        unmatched_lines=bank.unmatched_lines(statement),
        unmatched_targets=bank.unmatched_targets(*window) if window else bank.unmatched_targets())


@bp.route("/bank/lines/<int:line_id>/match", methods=["POST"])
@roles_required(Role.BOOKKEEPER, Role.ADMIN)
def bank_match(line_id: int):
    """Confirm that a bank credit settled the payout, batch or funding named in the form."""
    line, back, form = _line_form(line_id, MatchForm)
    if not form.target.data.isdigit():
        abort(400)

    def match() -> str:
        target = bank.confirm(line, form.kind.data, int(form.target.data))
        flash(f"Matched the bank line of {line.posted_on.isoformat()} to {target.label}.", "success")
        return back

    return submit_once(form, match) or redirect(back)


@bp.route("/bank/lines/<int:line_id>/unmatch", methods=["POST"])
@roles_required(Role.BOOKKEEPER, Role.ADMIN)
def bank_unmatch(line_id: int):
    """Undo a confirmed match (audited)."""
    line, back, form = _line_form(line_id, UnmatchForm)

    def undo() -> str:
        was = bank.describe_match(line)
        bank.unmatch(line)
        flash(f"The bank line of {line.posted_on.isoformat()} is no longer matched to {was}.", "info")
        return back

    return submit_once(form, undo) or redirect(back)


def _line_form(line_id: int, form_class):
    """The bank line, the URL of its row on the statement page, and the posted form (400 if invalid)."""
    line = get_or_404(BankLine, line_id)
    form = form_class()
    if not form.validate_on_submit():
        abort(400)
    return line, url_for("books.bank_statement", statement_id=line.statement_id, _anchor=f"line-{line.id}"), form
