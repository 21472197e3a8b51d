"""What a patient sees in the portal: only their own documents, and only issued ones.

Each `*_of` lookup takes the signed-in patient and an id from a URL and answers None for anything
that is not theirs (or not issued), so a view turns every such id into the same 404.
"""

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from billing.extensions import db
from billing.models import (
    CardChannel, CardDetails, Charge, ChargeStatus, DocumentRequest, DocumentRequestStatus, EstimateStatus,
    GoodFaithEstimate, Invoice, InvoiceStatus, Patient, Payment, PaymentStatus, Receipt, Refund,
)
from billing.money import Money
from billing.services import balances

SHOWN_ESTIMATES = (EstimateStatus.GIVEN, EstimateStatus.SUPERSEDED)


@dataclass(frozen=True)
class InvoiceRow:
    id: int
    number: str
    issue_date: date
    status: str  # in plain words: "Due", "Paid", "Cancelled"
    total: Money
    due: Money


@dataclass(frozen=True)
class ReceiptRow:
    id: int
    number: str
    day: date
    what: str  # "Payment by card", "Refund", ...
    amount: Money


def invoice_rows(patient: Patient) -> list[InvoiceRow]:
    """The patient's issued invoices, newest first, with what is still due on each."""
    invoices = db.session.scalars(sa.select(Invoice).where(
        Invoice.patient_id == patient.id, Invoice.number.is_not(None)).order_by(Invoice.issue_date.desc(),
                                                                                Invoice.id.desc()))
    words = {InvoiceStatus.OPEN: "Due", InvoiceStatus.PAID: "Paid", InvoiceStatus.VOID: "Cancelled"}
    return [InvoiceRow(i.id, i.number, i.issue_date, words[i.status], Money(i.total_cents),
                       balances.invoice_balance(i)) for i in invoices]


def receipt_rows(patient: Patient) -> list[ReceiptRow]:
    """Every receipt of the patient's payments and refunds, newest first."""
    rows = db.session.execute(
        sa.select(Receipt, Payment, Refund)
        .outerjoin(Refund, Receipt.refund_id == Refund.id)
        .join(Payment, Payment.id == sa.func.coalesce(Receipt.payment_id, Refund.payment_id))
        .where(Payment.patient_id == patient.id)
        .order_by(Receipt.issued_at.desc(), Receipt.id.desc()))
    out = []
    for receipt, payment, refund in rows:
        if refund is None:
            out.append(ReceiptRow(receipt.id, receipt.number, payment.received_date,
                                  f"Payment by {payment.method.label.lower()}", Money(payment.amount_cents)))
        else:
            what = "Returned money order" if refund.kind.value == "return" else "Refund"
            out.append(ReceiptRow(receipt.id, receipt.number, refund.refund_date, what, Money(refund.amount_cents)))
    return out


def estimates(patient: Patient) -> list[GoodFaithEstimate]:
    """Good Faith Estimates given to the patient (drafts are the clinic's), newest first."""
    return list(db.session.scalars(sa.select(GoodFaithEstimate).where(
        GoodFaithEstimate.patient_id == patient.id, GoodFaithEstimate.status.in_(SHOWN_ESTIMATES))
        .order_by(GoodFaithEstimate.id.desc())))


def waiting_requests(patient: Patient) -> list[DocumentRequest]:
    return list(db.session.scalars(sa.select(DocumentRequest).where(
        DocumentRequest.patient_id == patient.id, DocumentRequest.status == DocumentRequestStatus.OPEN)
        .order_by(DocumentRequest.id.desc())))


def has_services(patient: Patient, start: date, end: date) -> bool:
    """Whether the patient has services (not voided) dated start..end: a superbill needs some."""
    return db.session.scalar(sa.select(sa.exists().where(
        Charge.patient_id == patient.id, Charge.status != ChargeStatus.VOID,
        Charge.date_of_service >= start, Charge.date_of_service <= end)))


def pending_portal_payment(patient: Patient, invoice: Invoice | None, amount: Money) -> Payment | None:
    """A card payment the patient already started in the portal for the same invoice (or the balance)
    and amount: pressing Pay again resumes it rather than starting a second one."""
    return db.session.scalar(
        sa.select(Payment).join(CardDetails, CardDetails.payment_id == Payment.id)
        .where(Payment.patient_id == patient.id, Payment.status == PaymentStatus.PENDING,
               Payment.amount_cents == amount.cents, CardDetails.channel == CardChannel.PORTAL,
               CardDetails.invoice_id.is_(None) if invoice is None else CardDetails.invoice_id == invoice.id)
        .order_by(Payment.id.desc()).limit(1))


def invoice_of(patient: Patient, invoice_id: int) -> Invoice | None:
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None or invoice.patient_id != patient.id or invoice.number is None:
        return None
    return invoice


def receipt_of(patient: Patient, receipt_id: int) -> Receipt | None:
    receipt = db.session.get(Receipt, receipt_id)
    if receipt is None:
        return None
    payment = receipt.payment if receipt.payment_id else receipt.refund.payment
    return receipt if payment.patient_id == patient.id else None


def estimate_of(patient: Patient, estimate_id: int) -> GoodFaithEstimate | None:
    estimate = db.session.get(GoodFaithEstimate, estimate_id)
    if estimate is None or estimate.patient_id != patient.id or estimate.status not in SHOWN_ESTIMATES:
        return None
    return estimate
