import sqlalchemy as sa
from flask import abort, current_app, flash, redirect, render_template, request, url_for

from billing.access import roles_required
from billing.documents.receipts import receipt_pdf as render_receipt
from billing.extensions import db
from billing.integrations import stripe_gateway as gateway
from billing.models import (
    Allocation, CardChannel, CardRefundRequest, CardRefundStatus, CareCreditPlan, Dispute, Invoice, MoneyOrderIssuer,
    Patient, Payment, PaymentMethod, PaymentStatus, Receipt, Refund, RefundKind, Role,
)
from billing.forms import choices
from billing.money import Money
from billing.payments import bp, card_flow, card_pages
from billing.payments.forms import CardForm, CareCreditForm, MoneyOrderForm, RefundForm, ReturnForm
from billing.services import (
    ServiceError, audit, balances, card_payments, payments as payment_service, receipts as receipt_service,
)
from billing.timeutil import clinic_today
from billing.views import email_document, get_or_404, send_document, submit_once

F, B = Role.FRONTDESK, Role.BOOKKEEPER
METHODS = ("money_order", "carecredit", "card")
FORMS = {"money_order": MoneyOrderForm, "carecredit": CareCreditForm, "card": CardForm}


def _payment_form(method: str, patient: Patient):
    form = FORMS[method]()
    open_invoices = balances.open_invoices(patient.id)
    form.apply_to.choices = choices([(0, "Oldest invoices first")] + [
        (i.id, f"{i.number} · {balances.invoice_balance(i)} due") for i in open_invoices])
    if method == "carecredit":
        plans = db.session.scalars(sa.select(CareCreditPlan).where(CareCreditPlan.active.is_(True))
                                   .order_by(CareCreditPlan.months))
        form.plan.choices = choices((p.id, p.name) for p in plans)
    if request.method == "GET":
        chosen = request.args.get("invoice", type=int)
        if method == "card" and chosen is None and len(open_invoices) == 1:
            chosen = open_invoices[0].id  # a card payment names its invoice in Stripe's metadata
        if method != "card":
            form.received_date.data = clinic_today()
        form.apply_to.data = chosen if chosen in {i.id for i in open_invoices} else 0
        due = sum((balances.invoice_balance(i) for i in open_invoices
                   if not form.apply_to.data or i.id == form.apply_to.data), Money.zero())
        form.amount.data = due if due.is_positive else None
    return form, open_invoices


@bp.route("/new/<int:patient_id>/<method>", methods=["GET", "POST"])
@roles_required(F)
def new(patient_id: int, method: str):
    """Take a payment: one tab per method."""
    if method not in METHODS:
        abort(404)
    patient = get_or_404(Patient, patient_id)
    summary = balances.patient_summary(patient)
    if method == "card":
        return _card_tab(patient, summary)
    form, open_invoices = _payment_form(method, patient)
    if form.validate_on_submit():
        def record() -> str:
            apply_to = None
            if form.apply_to.data:
                invoice = db.session.get(Invoice, form.apply_to.data)
                apply_to = [(invoice.id, min(form.amount.data, balances.invoice_balance(invoice)))]
            common = dict(received_date=form.received_date.data, today=clinic_today(), apply_to=apply_to,
                          confirm_overpayment=form.confirm_overpayment.data)
            if method == "money_order":
                payment = payment_service.record_money_order(patient, form.amount.data, payment_service.MoneyOrderInput(
                    issuer=MoneyOrderIssuer(form.issuer.data),
                    serial=form.serial.data, purchaser=form.purchaser.data, id_seen=form.id_seen.data,
                    signed_in_front_of_staff=form.signed_in_front_of_staff.data,
                    security_features_checked=form.security_features_checked.data), **common)
            else:
                payment = payment_service.record_carecredit(patient, form.amount.data, payment_service.CareCreditInput(
                    authorization_code=form.authorization_code.data, plan=db.session.get(CareCreditPlan, form.plan.data),
                    account_last4=form.account_last4.data, id_checked=form.id_checked.data,
                    receipt_signed=form.receipt_signed.data), **common)
            flash(f"{Money(payment.amount_cents)} received. Thank you!", "success")
            return url_for("payments.detail", payment_id=payment.id)

        if (response := submit_once(form, record)) is not None:
            return response
    return render_template("payments/new.html", patient=patient, method=method, form=form, summary=summary,
                           open_invoices=open_invoices)


def _card_tab(patient: Patient, summary):
    """The card tab: how much and on which invoice; then the card page takes the card."""
    if not gateway.is_configured():
        return render_template("payments/new.html", patient=patient, method="card", form=None, summary=summary)
    form, open_invoices = _payment_form("card", patient)
    if form.validate_on_submit():
        def start() -> Payment:
            invoice = db.session.get(Invoice, form.apply_to.data) if form.apply_to.data else None
            try:
                return card_payments.start(patient, form.amount.data, invoice=invoice, channel=CardChannel.DESK,
                                           today=clinic_today())
            except ServiceError as err:
                raise ServiceError(err.message, "apply_to" if err.field == "invoice" else err.field) from err

        if (response := card_pages.start_once(form, start, _card_url)) is not None:
            return response
    return render_template("payments/new.html", patient=patient, method="card", form=form, summary=summary,
                           open_invoices=open_invoices)


def _open_card_payment(payment_id: int) -> Payment:
    payment = get_or_404(Payment, payment_id)
    if payment.method != PaymentMethod.CARD:
        abort(404)
    return payment


def _card_url(payment: Payment) -> str:
    return url_for("payments.card", payment_id=payment.id)


def _card_urls(payment: Payment) -> card_pages.CardUrls:
    return card_pages.CardUrls(
        page=url_for("payments.card", payment_id=payment.id, _external=True),
        status=url_for("payments.card_status", payment_id=payment.id),
        retry=url_for("payments.card_retry", payment_id=payment.id),
        another=url_for("payments.card_another", payment_id=payment.id),
        cancel=url_for("payments.card_cancel", payment_id=payment.id),
        other_method=url_for("payments.new", patient_id=payment.patient_id, method="money_order",
                             invoice=payment.card.invoice_id))


@bp.route("/<int:payment_id>/card")
@roles_required(F)
def card(payment_id: int):
    """Take the card in Stripe's Payment Element, then wait for Stripe's webhook to settle it."""
    payment = _open_card_payment(payment_id)
    if not card_pages.is_open(payment):
        if payment.status == PaymentStatus.SUCCEEDED:
            flash(f"Paid: {Money(payment.amount_cents)} by card. Thank you!", "success")
        return redirect(url_for("payments.detail", payment_id=payment.id))
    patient = db.session.get(Patient, payment.patient_id)
    return card_pages.render_step("payments/card.html", payment, _card_urls(payment), patient=patient,
                                  summary=balances.patient_summary(patient))


@bp.route("/<int:payment_id>/card/status")
@roles_required(F)
def card_status(payment_id: int):
    """The payment's status for the card page's script: pending, failed (with Stripe's message) or succeeded."""
    payment = _open_card_payment(payment_id)
    return card_pages.status_response(payment, _card_url(payment))  # a paid card page shows the receipt


@bp.route("/<int:payment_id>/card/retry", methods=["POST"])
@roles_required(F)
def card_retry(payment_id: int):
    """Ask Stripe again for the PaymentIntent, with the same idempotency key (never a second one)."""
    payment = _open_card_payment(payment_id)
    if payment.status == PaymentStatus.PENDING:
        card_pages.ask_for_intent(payment)
    return redirect(_card_url(payment))


@bp.route("/<int:payment_id>/card/cancel", methods=["POST"])
@roles_required(F)
def card_cancel(payment_id: int):
    """Give up on a card payment that has not gone through (its PaymentIntent is cancelled first)."""
    payment = _open_card_payment(payment_id)
    if not card_pages.is_open(payment):
        return redirect(url_for("payments.detail", payment_id=payment.id))
    try:
        card_pages.release_intent(payment)
        card_payments.abandon(payment, "Cancelled at the front desk.")
    except ServiceError as err:
        db.session.rollback()
        flash(err.message, "error")
        return redirect(_card_url(payment))
    db.session.commit()
    flash("The card payment was cancelled. Nothing was charged.", "info")
    return redirect(url_for("payments.new", patient_id=payment.patient_id, method="card"))


@bp.route("/<int:payment_id>/card/another", methods=["POST"])
@roles_required(F)
def card_another(payment_id: int):
    """After a decline: a new pending payment for the same amount and invoice, with a new PaymentIntent."""
    payment = _open_card_payment(payment_id)
    return card_pages.try_another(payment, _card_url) or redirect(_card_url(payment))


@bp.app_template_global()
def open_card_disputes(patient_id: int) -> list[Dispute]:
    """The patient's card payments under an open dispute, for the banner on the patient page."""
    return list(db.session.scalars(
        sa.select(Dispute).join(Payment, Dispute.payment_id == Payment.id)
        .where(Payment.patient_id == patient_id, Dispute.closed_on.is_(None)).order_by(Dispute.id)))


def _receipt_context(payment: Payment) -> dict:
    patient = db.session.get(Patient, payment.patient_id)
    allocations = db.session.execute(
        sa.select(Allocation, Invoice).join(Invoice, Allocation.invoice_id == Invoice.id)
        .where(Allocation.payment_id == payment.id).order_by(Allocation.id)).all()
    refunds = db.session.scalars(sa.select(Refund).where(Refund.payment_id == payment.id).order_by(Refund.id)).all()
    context = {"payment": payment, "patient": patient, "allocations": allocations, "refunds": refunds,
               "refundable": Money(payment.amount_cents) - balances.payment_refunded(payment.id),
               "summary": balances.patient_summary(patient)}
    if payment.method == PaymentMethod.CARD:
        context.update(
            refundable=card_payments.card_refundable(payment), dispute=card_payments.open_dispute(payment.id),
            refund_requests=db.session.scalars(sa.select(CardRefundRequest).where(
                CardRefundRequest.payment_id == payment.id, CardRefundRequest.status != CardRefundStatus.SUCCEEDED)
                .order_by(CardRefundRequest.id)).all())
    return context


def _receipt_downloads(payment: Payment) -> list[dict]:
    """One download per receipt of the payment and of its refunds, flagged when it renders changed."""
    receipts = receipt_service.receipts_of(payment)
    changed = receipt_service.renders_changed(receipts)
    kinds = {r.id: r.kind for r in db.session.scalars(sa.select(Refund).where(Refund.payment_id == payment.id))}
    out = []
    for receipt in receipts:
        if receipt.payment_id:
            label = "Receipt"
        else:
            label = "Returned money order" if kinds.get(receipt.refund_id) == RefundKind.RETURN else "Refund receipt"
        out.append({"id": receipt.id, "number": receipt.number, "label": label, "sha256": receipt.sha256,
                    "changed": receipt.id in changed})
    return out


@bp.route("/<int:payment_id>")
@roles_required(F, B)
def detail(payment_id: int):
    payment = get_or_404(Payment, payment_id)
    audit.record("payment.view", payment)
    db.session.commit()
    return render_template("payments/detail.html", receipt_downloads=_receipt_downloads(payment),
                           **_receipt_context(payment))


@bp.route("/receipts/<int:receipt_id>/pdf")
@roles_required(F, B)
def receipt_pdf(receipt_id: int):
    """Download a receipt as a PDF. The first download keeps its SHA-256; a later one that differs
    is still sent, but logged, audited and flagged on the payment page."""
    receipt = get_or_404(Receipt, receipt_id)
    document = render_receipt(receipt)
    same = receipt_service.record_download(receipt, document.pdf, document.filename)
    db.session.commit()
    if not same:
        current_app.logger.warning("Receipt %s renders differently from when it was issued (sha256 %s, issued %s)",
                                   receipt.number, receipt_service.sha256_of(document.pdf), receipt.sha256)
        flash(f"Receipt {receipt.number} renders differently from when it was issued. The new rendering was "
              "downloaded; check it before handing it out.", "error")
    return send_document(document)


@bp.route("/receipts/<int:receipt_id>/email", methods=["POST"])
@roles_required(F, B)
def email_receipt(receipt_id: int):
    """Email a receipt PDF to the patient, through the outbox (audited as receipt.email). A receipt
    that renders differently from when it was issued is not emailed: staff download and check it."""
    receipt = get_or_404(Receipt, receipt_id)
    payment = receipt.payment if receipt.payment_id else receipt.refund.payment

    def render():
        document = render_receipt(receipt)
        if not receipt_service.record_rendering(receipt, document.pdf):
            raise ServiceError(f"Receipt {receipt.number} renders differently from when it was issued, so it was "
                               "not emailed. Download it, check it, and hand or send it yourself.")
        return document

    return email_document(db.session.get(Patient, payment.patient_id), render, kind="receipt",
                          what=f"receipt {receipt.number}", about=receipt,
                          back=url_for("payments.detail", payment_id=payment.id))


@bp.route("/<int:payment_id>/refund", methods=["GET", "POST"])
@roles_required(F, B)
def refund(payment_id: int):
    payment = get_or_404(Payment, payment_id)
    if payment.method == PaymentMethod.CARD:
        return _card_refund(payment)
    form = RefundForm()
    if form.validate_on_submit():
        def act() -> str:
            payment_service.refund_payment(payment, form.amount.data, form.reason.data, today=clinic_today(),
                                           check_number=form.check_number.data or "",
                                           return_reference=form.return_reference.data or "")
            flash(f"Refunded {form.amount.data}.", "success")
            return url_for("payments.detail", payment_id=payment.id)

        if (response := submit_once(form, act)) is not None:
            return response
    context = _receipt_context(payment)
    if request.method == "GET":
        form.amount.data = min(context["refundable"], context["summary"].credit) or context["refundable"]
    return render_template("payments/refund.html", form=form, **context)


def _card_refund(payment: Payment):
    """Refund a card payment through Stripe: never above what remains after refunds made and asked."""
    form = RefundForm()
    if form.validate_on_submit():
        def act() -> str:
            try:
                _flash_refund(card_flow.refund(payment, form.amount.data, form.reason.data))
            except gateway.GatewayError as error:
                _flash_refund_error(error)
            return url_for("payments.detail", payment_id=payment.id)

        if (response := submit_once(form, act)) is not None:
            return response
    context = _receipt_context(payment)
    if request.method == "GET":
        form.amount.data = context["refundable"] if context["refundable"].is_positive else None
    return render_template("payments/refund.html", form=form, **context)


def _flash_refund(request_: CardRefundRequest) -> None:
    amount = Money(request_.amount_cents)
    if request_.status == CardRefundStatus.SUCCEEDED:
        flash(f"Refunded {amount} to the card.", "success")
    elif request_.status == CardRefundStatus.FAILED:
        flash(f"Stripe did not refund {amount}: {request_.failure_message} Nothing was refunded.", "error")
    else:
        flash(f"Stripe accepted the refund of {amount}. It is recorded when Stripe confirms it.", "info")


def _flash_refund_error(error: gateway.GatewayError) -> None:
    if isinstance(error, gateway.Unreachable):
        flash("Stripe did not answer, so the refund is not recorded yet. Use \"Ask Stripe again\" below: "
              "Stripe never refunds twice for the same request.", "error")
    else:
        flash(f"{error.message} Nothing was refunded.", "error")


@bp.route("/card-refunds/<int:request_id>/send", methods=["POST"])
@roles_required(F, B)
def card_refund_send(request_id: int):
    """Ask Stripe again for a refund it never answered (its idempotency key makes it happen once)."""
    request_ = get_or_404(CardRefundRequest, request_id)
    if request_.status == CardRefundStatus.PENDING and not request_.stripe_refund_id:
        try:
            _flash_refund(card_flow.send_refund(request_))
        except gateway.GatewayError as error:
            _flash_refund_error(error)
    return redirect(url_for("payments.detail", payment_id=request_.payment_id))


@bp.route("/<int:payment_id>/return", methods=["GET", "POST"])
@roles_required(F, B)
def return_(payment_id: int):
    payment = get_or_404(Payment, payment_id)
    if payment.method != PaymentMethod.MONEY_ORDER:
        abort(404)
    form = ReturnForm()
    if form.validate_on_submit():
        def act() -> str:
            payment_service.return_money_order(payment, form.reason.data, today=clinic_today())
            flash("The money order is recorded as returned; what it paid is due again.", "success")
            return url_for("payments.detail", payment_id=payment.id)

        if (response := submit_once(form, act)) is not None:
            return response
    return render_template("payments/return.html", form=form, **_receipt_context(payment))
