"""The patient's pay page, reached from the signed link in an emailed invoice: no sign-in; the link
opens one invoice and the card payments made from it, nothing else."""

import sqlalchemy as sa
from flask import abort, redirect, render_template, url_for

from billing.access import public
from billing.extensions import db, limiter
from billing.integrations import stripe_gateway as gateway
from billing.models import CardChannel, CardDetails, Invoice, InvoiceStatus, Payment, PaymentMethod, PaymentStatus
from billing.money import Money
from billing.pay import bp
from billing.pay.forms import PayForm
from billing.pay.links import LinkNotValid, invoice_of
from billing.payments import card_pages
from billing.services import audit, balances, card_payments, receipts
from billing.timeutil import clinic_today

PAY_LIMIT = "20 per hour"  # per client address: each press asks Stripe for a PaymentIntent


@bp.errorhandler(LinkNotValid)
def link_not_valid(error: LinkNotValid):
    return render_template("pay/invalid.html"), error.status


def _state(invoice: Invoice, due: Money) -> str:
    if invoice.status == InvoiceStatus.VOID:
        return "void"
    if invoice.status != InvoiceStatus.OPEN or not due.is_positive:
        return "paid"
    return "payable" if gateway.is_configured() else "no_cards"


def _waiting_payment(invoice: Invoice, due: Money) -> Payment | None:
    """A card payment already started from the link for this amount: pressing Pay again resumes it."""
    return db.session.scalar(
        sa.select(Payment).join(CardDetails, CardDetails.payment_id == Payment.id)
        .where(CardDetails.invoice_id == invoice.id, CardDetails.channel == CardChannel.LINK,
               Payment.status == PaymentStatus.PENDING, Payment.amount_cents == due.cents)
        .order_by(Payment.id.desc()).limit(1))


@bp.route("/<token>", methods=["GET", "POST"])
@public
@limiter.limit(PAY_LIMIT, methods=["POST"])
def invoice(token: str):
    """The invoice, what is due on it, and "Pay $X by card"."""
    invoice = invoice_of(token)
    due = balances.invoice_balance(invoice)
    state = _state(invoice, due)
    form = PayForm()
    if state == "payable" and form.validate_on_submit():
        response = card_pages.start_once(form, lambda: _waiting_payment(invoice, due) or card_payments.start(
            invoice.patient, due, invoice=invoice, channel=CardChannel.LINK, today=clinic_today()),
            lambda payment: url_for("pay.card", token=token, payment_id=payment.id))
        if response is not None:
            return response
    audit.record("invoice.pay_link_view", invoice)
    db.session.commit()
    return render_template("pay/invoice.html", invoice=invoice, patient=invoice.patient, due=due, state=state,
                           form=form)


def _link_payment(token: str, payment_id: int) -> Payment:
    """A card payment made from this link's invoice; any other payment is not found."""
    invoice = invoice_of(token)
    payment = db.session.get(Payment, payment_id)
    if (payment is None or payment.method != PaymentMethod.CARD or payment.card.invoice_id != invoice.id
            or payment.card.channel != CardChannel.LINK):
        abort(404)
    return payment


def _card_urls(token: str, payment: Payment) -> card_pages.CardUrls:
    return card_pages.CardUrls(
        page=url_for("pay.card", token=token, payment_id=payment.id, _external=True),
        status=url_for("pay.card_status", token=token, payment_id=payment.id),
        retry=url_for("pay.card_retry", token=token, payment_id=payment.id),
        another=url_for("pay.card_another", token=token, payment_id=payment.id))


@bp.route("/<token>/card/<int:payment_id>")
@public
def card(token: str, payment_id: int):
    payment = _link_payment(token, payment_id)
    if not card_pages.is_open(payment):
        return redirect(url_for("pay.receipt", token=token, payment_id=payment.id))
    return card_pages.render_step("pay/card.html", payment, _card_urls(token, payment), token=token)


@bp.route("/<token>/card/<int:payment_id>/status")
@public
def card_status(token: str, payment_id: int):
    payment = _link_payment(token, payment_id)
    return card_pages.status_response(payment, url_for("pay.receipt", token=token, payment_id=payment.id))


@bp.route("/<token>/card/<int:payment_id>/retry", methods=["POST"])
@public
@limiter.limit(PAY_LIMIT)
def card_retry(token: str, payment_id: int):
    payment = _link_payment(token, payment_id)
    if payment.status == PaymentStatus.PENDING:
        card_pages.ask_for_intent(payment)
    return redirect(url_for("pay.card", token=token, payment_id=payment.id))


@bp.route("/<token>/card/<int:payment_id>/another", methods=["POST"])
@public
@limiter.limit(PAY_LIMIT)
def card_another(token: str, payment_id: int):
    payment = _link_payment(token, payment_id)
    response = card_pages.try_another(payment, lambda new: url_for("pay.card", token=token, payment_id=new.id))
    return response or redirect(url_for("pay.card", token=token, payment_id=payment.id))


@bp.route("/<token>/receipt/<int:payment_id>")
@public
def receipt(token: str, payment_id: int):
    """Thank you, with the receipt number; once Stripe's webhook has settled the payment."""
    payment = _link_payment(token, payment_id)
    if card_pages.is_open(payment):
        return redirect(url_for("pay.card", token=token, payment_id=payment.id))
    invoice = payment.card.invoice
    audit.record("payment.pay_link_receipt_view", payment)
    db.session.commit()
    return render_template("pay/receipt.html", payment=payment, invoice=invoice, token=token,
                           receipt=receipts.receipt_of_payment(payment.id), due=balances.invoice_balance(invoice))
