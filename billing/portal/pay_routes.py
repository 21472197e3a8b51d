"""Paying in the portal: the whole balance or one chosen invoice, by card, through the card step the
front desk and the pay link use (billing/payments/card_pages.py, static/js/card_payment.js). The
browser never marks anything paid: the page waits for Stripe's signed webhook, then shows the receipt."""

from flask import abort, redirect, render_template, url_for

from billing.access import patient_required
from billing.extensions import db, limiter
from billing.integrations import stripe_gateway as gateway
from billing.models import CardChannel, Invoice, InvoiceStatus, Payment, PaymentMethod, PaymentStatus
from billing.money import Money
from billing.pay.forms import PayForm
from billing.payments import card_pages
from billing.portal import bp, session as portal_session
from billing.reports import portal as portal_report
from billing.services import audit, balances, card_payments, receipts
from billing.timeutil import clinic_today

PAY_LIMIT = "20 per hour"  # per client address: each press asks Stripe for a PaymentIntent


def _patient():
    return portal_session.current_account().patient


@bp.route("/pay", methods=["GET", "POST"])
@patient_required
@limiter.limit(PAY_LIMIT, methods=["POST"])
def pay():
    """Pay everything due on invoices, oldest first."""
    patient = _patient()
    due = sum((balances.invoice_balance(i) for i in balances.open_invoices(patient.id)), Money.zero())
    return _pay_page(None, due)


@bp.route("/invoices/<int:invoice_id>/pay", methods=["GET", "POST"])
@patient_required
@limiter.limit(PAY_LIMIT, methods=["POST"])
def pay_invoice(invoice_id: int):
    invoice = portal_report.invoice_of(_patient(), invoice_id) or abort(404)
    return _pay_page(invoice, balances.invoice_balance(invoice))


def _pay_page(invoice: Invoice | None, due: Money):
    patient = _patient()
    payable = due.is_positive and (invoice is None or invoice.status == InvoiceStatus.OPEN)
    form = PayForm()
    if payable and gateway.is_configured() and form.validate_on_submit():
        def start() -> Payment:
            return (portal_report.pending_portal_payment(patient, invoice, due)
                    or card_payments.start(patient, due, invoice=invoice, channel=CardChannel.PORTAL,
                                           today=clinic_today()))

        response = card_pages.start_once(form, start, lambda payment: url_for("portal.card", payment_id=payment.id))
        if response is not None:
            return response
    return render_template("portal/pay.html", invoice=invoice, due=due, payable=payable,
                           cards=gateway.is_configured(), form=form)


def _own_payment(payment_id: int) -> Payment:
    """A card payment the signed-in patient started in the portal; any other payment is not found."""
    payment = db.session.get(Payment, payment_id)
    if (payment is None or payment.patient_id != _patient().id or payment.method != PaymentMethod.CARD
            or payment.card.channel != CardChannel.PORTAL):
        abort(404)
    return payment


def _urls(payment: Payment) -> card_pages.CardUrls:
    return card_pages.CardUrls(
        page=url_for("portal.card", payment_id=payment.id, _external=True),
        status=url_for("portal.card_status", payment_id=payment.id),
        retry=url_for("portal.card_retry", payment_id=payment.id),
        another=url_for("portal.card_another", payment_id=payment.id))


@bp.route("/payments/<int:payment_id>/card")
@patient_required
def card(payment_id: int):
    payment = _own_payment(payment_id)
    if not card_pages.is_open(payment):
        return redirect(url_for("portal.paid", payment_id=payment.id))
    return card_pages.render_step("portal/card.html", payment, _urls(payment))


@bp.route("/payments/<int:payment_id>/status")
@patient_required
def card_status(payment_id: int):
    payment = _own_payment(payment_id)
    return card_pages.status_response(payment, url_for("portal.paid", payment_id=payment.id))


@bp.route("/payments/<int:payment_id>/retry", methods=["POST"])
@patient_required
@limiter.limit(PAY_LIMIT)
def card_retry(payment_id: int):
    payment = _own_payment(payment_id)
    if payment.status == PaymentStatus.PENDING:
        card_pages.ask_for_intent(payment)
    return redirect(url_for("portal.card", payment_id=payment.id))


@bp.route("/payments/<int:payment_id>/another", methods=["POST"])
@patient_required
@limiter.limit(PAY_LIMIT)
def card_another(payment_id: int):
    payment = _own_payment(payment_id)
    response = card_pages.try_another(payment, lambda new: url_for("portal.card", payment_id=new.id))
    return response or redirect(url_for("portal.card", payment_id=payment.id))


@bp.route("/payments/<int:payment_id>")
@patient_required
def paid(payment_id: int):
    """Thank you, with the receipt to download, once Stripe's webhook has settled the payment."""
    payment = _own_payment(payment_id)
    if card_pages.is_open(payment):
        return redirect(url_for("portal.card", payment_id=payment.id))
    audit.record("portal.payment_view", payment)
    db.session.commit()
    return render_template("portal/paid.html", payment=payment, receipt=receipts.receipt_of_payment(payment.id),
                           summary=balances.patient_summary(_patient()))
