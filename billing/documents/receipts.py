"""The receipt PDF of a payment, a refund or a returned money order.

A receipt shows only what cannot change after it is issued (the payment as taken, what it was
applied to then, the patient's balance right after it was posted), so it renders the same bytes
every time; services.receipts.record_rendering notices when it does not.
"""

from typing import Any

import sqlalchemy as sa

from billing.documents import Document, render_pdf
from billing.extensions import db
from billing.models import Allocation, Invoice, Patient, Payment, PaymentMethod, Receipt, Refund, RefundKind
from billing.money import Money
from billing.services import receipts as receipt_service

DATE = "%m/%d/%Y"


def receipt_pdf(receipt: Receipt) -> Document:
    """The receipt as a PDF named receipt-<number>.pdf."""
    data = receipt_data(receipt)
    pdf = render_pdf("receipt.html", document_number=receipt.number, title=data["title"],
                     dated=receipt.issued_at, receipt=data)
    return Document(f"receipt-{receipt.number}.pdf", pdf)


def receipt_data(receipt: Receipt) -> dict[str, Any]:
    """Everything the receipt template shows, as plain values."""
    remaining, credit = receipt_service.standing_after(receipt)
    common = {"number": receipt.number, "remaining": remaining, "credit": credit}
    if receipt.payment_id is not None:
        return {**common, **_payment_part(receipt.payment)}
    return {**common, **_refund_part(receipt.refund)}


def method_details(payment: Payment) -> list[tuple[str, str]]:
    """The payment method with its details masked: never a full serial or account number."""
    rows = [("Method", payment.method.label)]
    if payment.method == PaymentMethod.MONEY_ORDER and payment.money_order:
        rows += [("Issuer", payment.money_order.issuer.label),
                 ("Serial number", f"ending {payment.money_order.serial[-4:]}")]
    elif payment.method == PaymentMethod.CARECREDIT and payment.carecredit:
        rows += [("Promotional plan", payment.carecredit.plan.name),
                 ("Authorization code", payment.carecredit.authorization_code),
                 ("Account", f"ending {payment.carecredit.account_last4}")]
    return rows


def _patient(patient_id: int) -> dict[str, str]:
    patient = db.session.get(Patient, patient_id)
    return {"name": patient.full_name, "account_number": patient.account_number}


def _payment_part(payment: Payment) -> dict[str, Any]:
    # Allocations written when the payment was taken: positive and not undoing anything. Later
    # reversals (refunds, voids) get their own receipt or show on the invoice.
    applied = [
        {"invoice": number, "amount": Money(cents)}
        for number, cents in db.session.execute(
            sa.select(Invoice.number, Allocation.amount_cents).join(Invoice, Allocation.invoice_id == Invoice.id)
            .where(Allocation.payment_id == payment.id, Allocation.amount_cents > 0,
                   Allocation.reverses_id.is_(None))
            .order_by(Allocation.id))
    ]
    amount = Money(payment.amount_cents)
    return {
        "kind": "payment",
        "title": "Receipt",
        "heading": "Payment received",
        "date": f"{payment.received_date:{DATE}}",
        "patient": _patient(payment.patient_id),
        "amount": amount,
        "method": method_details(payment),
        "applied": applied,
        "kept_as_credit": amount - sum((a["amount"] for a in applied), Money.zero()),
    }


def _refund_part(refund: Refund) -> dict[str, Any]:
    payment = refund.payment
    original = receipt_service.receipt_of_payment(payment.id)
    from_credit, reopened = receipt_service.refund_split(refund)
    returned = refund.kind == RefundKind.RETURN
    if returned:
        how = "The money order was not honored; the clinic did not receive these funds."
    elif refund.check_number:
        how = f"Clinic check no. {refund.check_number}"
    elif refund.return_reference:
        how = f"CareCredit return, reference {refund.return_reference}"
    elif payment.method == PaymentMethod.CARD:
        how = "Refunded to the card used for the payment"
    else:
        how = ""
    return {
        "kind": "return" if returned else "refund",
        "title": "Returned money order" if returned else "Refund receipt",
        "heading": "Money order returned" if returned else "Refund issued",
        "date": f"{refund.refund_date:{DATE}}",
        "patient": _patient(payment.patient_id),
        "amount": Money(refund.amount_cents),
        "how": how,
        "reason": refund.reason,
        "original": {
            "receipt": original.number if original else None,
            "date": f"{payment.received_date:{DATE}}",
            "amount": Money(payment.amount_cents),
            "method": method_details(payment),
        },
        "from_credit": from_credit,
        "reopened": reopened,
    }
