"""Signed "pay this invoice" links, for emailed invoices: the token holds the invoice id and nothing
else, signed with the app's SECRET_KEY; it is good for PAY_LINK_DAYS."""

from flask import current_app, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from billing.extensions import db
from billing.integrations import stripe_gateway as gateway
from billing.models import Invoice, InvoiceStatus
from billing.services.balances import invoice_balance

SALT = "billing.pay.invoice-link"


class LinkNotValid(Exception):
    """A link that was tampered with, or names no issued invoice (404), or is too old (410)."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def make_pay_link(invoice: Invoice) -> str:
    """The absolute URL of the page where the patient pays `invoice` by card."""
    return url_for("pay.invoice", token=_serializer().dumps(invoice.id), _external=True)


def pay_link_for(about) -> dict | None:
    """For an emailed invoice's body: its pay link, the amount due and how long the link works; None
    for other documents, an invoice with nothing due, or when card payments are not set up."""
    if not isinstance(about, Invoice) or about.status != InvoiceStatus.OPEN or not gateway.is_configured():
        return None
    due = invoice_balance(about)
    if not due.is_positive:
        return None
    return {"url": make_pay_link(about), "due": due, "days": current_app.config["PAY_LINK_DAYS"]}


def invoice_of(token: str) -> Invoice:
    """The issued invoice a link was made for. Raises LinkNotValid."""
    try:
        invoice_id = _serializer().loads(token, max_age=current_app.config["PAY_LINK_DAYS"] * 86400)
    except SignatureExpired:
        raise LinkNotValid(410) from None
    except BadSignature:
        raise LinkNotValid(404) from None
    invoice = db.session.get(Invoice, invoice_id) if isinstance(invoice_id, int) else None
    if invoice is None or invoice.number is None:
        raise LinkNotValid(404)
    return invoice
