"""Money-order deposit batches: pick the money orders on hand, print the slip, mark it deposited."""

from flask import flash, redirect, render_template, request, url_for
from wtforms import DateField, StringField, SubmitField
from wtforms.validators import InputRequired, Length

from billing.access import roles_required
from billing.books import bp
from billing.documents import Document
from billing.documents.statements import deposit_slip_pdf
from billing.extensions import db
from billing.forms import OneTimeForm
from billing.models import DepositBatch, DepositStatus, Role
from billing.money import Money
from billing.reports.money_orders import money_orders_on_hand, on_hand_total
from billing.services import ServiceError, audit, deposits
from billing.timeutil import clinic_today
from billing.views import get_or_404, send_document, submit_once

F, B = Role.FRONTDESK, Role.BOOKKEEPER


class NewBatchForm(OneTimeForm):
    error_slots = ("payments",)
    submit = SubmitField("Create the deposit batch")


class DepositedForm(OneTimeForm):
    deposited_on = DateField("Deposit date (on the bank's receipt)", validators=[InputRequired("Enter the date.")])
    bank_reference = StringField("Bank reference", validators=[
        InputRequired("Enter the bank's reference for the deposit."), Length(max=60)],
        render_kw={"autocomplete": "off"})
    submit = SubmitField("Mark deposited")


class CancelBatchForm(OneTimeForm):
    submit = SubmitField("Cancel this batch")


@bp.route("/deposits")
@roles_required(F, B)
def deposits_index():
    """Open batches (slip printed, not yet at the bank) and recent deposits."""
    return render_template("books/deposits.html", open_batches=deposits.open_batches(),
                           recent=deposits.recent_deposits(), on_hand_count=len(money_orders_on_hand()),
                           on_hand=on_hand_total())


@bp.route("/deposits/new", methods=["GET", "POST"])
@roles_required(F, B)
def deposit_new():
    """The money orders on hand, all ticked: the ones left ticked go in a new batch."""
    form = NewBatchForm()
    on_hand = money_orders_on_hand()
    chosen = {p.id for p in on_hand}
    if form.validate_on_submit():
        raw = request.form.getlist("payments")
        chosen = {int(i) for i in raw if i.isdigit()}

        def create() -> str:
            if len(chosen) != len(raw):
                raise ServiceError("Choose money orders from the list.", "payments")
            batch = deposits.create_batch(sorted(chosen), today=clinic_today())
            flash(f"Deposit batch {batch.number} is ready: {len(batch.items)} money order"
                  f"{'' if len(batch.items) == 1 else 's'}, {Money(batch.total_cents)}. Print the slip and take it "
                  "to the bank with the money orders.", "success")
            return url_for("books.deposit_detail", batch_id=batch.id)

        if (response := submit_once(form, create)) is not None:
            return response
        on_hand = money_orders_on_hand()
    return render_template("books/deposits_new.html", form=form, on_hand=on_hand, chosen=chosen,
                           total=sum((Money(p.amount_cents) for p in on_hand), Money.zero()))


@bp.route("/deposits/<int:batch_id>")
@roles_required(F, B)
def deposit_detail(batch_id: int):
    batch = get_or_404(DepositBatch, batch_id)
    form = DepositedForm()
    if batch.status == DepositStatus.OPEN and not form.deposited_on.data:
        form.deposited_on.data = clinic_today()
    return _detail(batch, form)


def _detail(batch: DepositBatch, form: DepositedForm):
    return render_template("books/deposits_detail.html", batch=batch, payments=deposits.batch_payments(batch),
                           form=form, cancel_form=CancelBatchForm(prefix="cancel"))


@bp.route("/deposits/<int:batch_id>/deposited", methods=["POST"])
@roles_required(F, B)
def deposit_mark(batch_id: int):
    """The bank took the batch: its date and reference; Bank / Undeposited funds is posted."""
    batch = get_or_404(DepositBatch, batch_id)
    form = DepositedForm()
    if form.validate_on_submit():
        def mark() -> str:
            deposits.mark_deposited(batch, form.deposited_on.data, form.bank_reference.data, today=clinic_today())
            flash(f"{batch.number} is deposited: {Money(batch.total_cents)} moved from Undeposited funds to Bank.",
                  "success")
            return url_for("books.deposit_detail", batch_id=batch.id)

        if (response := submit_once(form, mark)) is not None:
            return response
        batch = get_or_404(DepositBatch, batch_id)
    return _detail(batch, form), 422


@bp.route("/deposits/<int:batch_id>/cancel", methods=["POST"])
@roles_required(F, B)
def deposit_cancel(batch_id: int):
    """Give up an open batch: its money orders are on hand again."""
    batch = get_or_404(DepositBatch, batch_id)
    form = CancelBatchForm(prefix="cancel")
    if form.validate_on_submit():
        def cancel() -> str:
            number = deposits.cancel_batch(batch, today=clinic_today())
            flash(f"{number} is cancelled; its money orders are on hand again.", "success")
            return url_for("books.deposits_index")

        if (response := submit_once(form, cancel)) is not None:
            return response
    else:
        flash("This form has expired. Reload the page and try again.", "error")
    return redirect(url_for("books.deposit_detail", batch_id=batch_id))


@bp.route("/deposits/<int:batch_id>/slip.pdf")
@roles_required(F, B)
def deposit_batch_slip(batch_id: int):
    """The batch's deposit slip, to take to the bank with its money orders."""
    batch = get_or_404(DepositBatch, batch_id)
    payments = deposits.batch_payments(batch)
    try:
        slip = deposit_slip_pdf(payments, slip_date=batch.deposited_on or clinic_today())
    except ValueError:
        flash(f"{batch.number} holds a money order that was returned; cancel the batch and put together a new one.",
              "error")
        return redirect(url_for("books.deposit_detail", batch_id=batch.id))
    audit.record("deposit_slip.print", batch, changes={"number": batch.number, "payments": [p.id for p in payments],
                                                       "total": Money(batch.total_cents).plain()})
    db.session.commit()
    return send_document(Document(f"deposit-slip-{batch.number}.pdf", slip.pdf))
