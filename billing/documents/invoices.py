"""The invoice PDF: its lines as issued, what was paid and adjusted on it, and how to pay the rest."""

from typing import Any

import sqlalchemy as sa

from billing.documents import Document, render_pdf
from billing.extensions import db
from billing.models import Adjustment, Allocation, Invoice, InvoiceStatus, Patient, Payment, Receipt
from billing.money import Money
from billing.services import balances
from billing.services.settings import get_settings
from billing.timeutil import to_clinic_time

DATE = "%m/%d/%Y"


def invoice_pdf(invoice: Invoice) -> Document:
    """The invoice as a PDF named invoice-<number>.pdf (only issued invoices have a number)."""
    if invoice.number is None:
        raise ValueError("A draft invoice has no number and no PDF.")
    pdf = render_pdf("invoice.html", document_number=invoice.number, title="Invoice", dated=invoice.issued_at,
                     invoice=invoice_data(invoice))
    return Document(f"invoice-{invoice.number}.pdf", pdf)


def invoice_data(invoice: Invoice) -> dict[str, Any]:
    """Everything the invoice template shows, as plain values."""
    patient = db.session.get(Patient, invoice.patient_id)
    void = invoice.status == InvoiceStatus.VOID
    credits = [_applied_row(alloc, payment, receipt_number) for alloc, payment, receipt_number in db.session.execute(
        sa.select(Allocation, Payment, Receipt.number)
        .outerjoin(Payment, Allocation.payment_id == Payment.id)
        .outerjoin(Receipt, Receipt.payment_id == Payment.id)
        .where(Allocation.invoice_id == invoice.id).order_by(Allocation.id))]
    adjustments = [
        {"label": f"{adj.kind.label}, {adj.adjustment_date:{DATE}}", "amount": -Money(adj.amount_cents)}
        for adj in db.session.scalars(sa.select(Adjustment).where(Adjustment.invoice_id == invoice.id)
                                      .order_by(Adjustment.id))
    ]
    balance = balances.invoice_balance(invoice)
    return {
        "number": invoice.number,
        "issue_date": f"{invoice.issue_date:{DATE}}",
        "status": {"open": "Balance due", "paid": "Paid", "void": "Void"}.get(invoice.status.value, ""),
        "void": void,
        "void_reason": invoice.void_reason,
        "patient": {"name": patient.full_name, "account_number": patient.account_number,
                    "address_lines": patient.address_lines},
        "lines": [
            {"date": f"{line.date_of_service:{DATE}}", "description": line.description, "code": line.code,
             "units": line.units, "unit_price": Money(line.unit_price_cents),
             "discount": Money(line.discount_cents), "amount": Money(line.amount_cents)}
            for line in invoice.lines
        ],
        "total": Money(invoice.total_cents),
        "credits": credits,
        "adjustments": adjustments,
        "balance": balance,
        "how_to_pay": None if void or not balance.is_positive else {
            "payable_to": get_settings().name or "the clinic",
        },
    }


def _applied_row(alloc: Allocation, payment: Payment | None, receipt_number: str | None) -> dict[str, Any]:
    """One payment or credit applied to the invoice (or undone: a refund, a return or a void)."""
    if payment is not None:
        label = f"{payment.method.label} payment {payment.received_date:{DATE}}"
    else:
        label = f"Credit on account applied {to_clinic_time(alloc.created_at):{DATE}}"
    if alloc.amount_cents < 0:
        label = f"Reversed: {label}"
    return {"label": label, "receipt": receipt_number, "amount": -Money(alloc.amount_cents)}
