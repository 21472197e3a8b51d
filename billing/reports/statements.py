"""A patient's statement over a period, read from the journal so it always ties to the books.

The patient's balance is the sum of their lines on two accounts: Patient receivables (what they owe)
and Patient credits (what the clinic holds for them, negative). Every journal entry that moves that
sum is a line of the statement, described from the row that caused it (a charge, a payment, a refund,
an adjustment...). An entry that only moves money between the two accounts, like credit applied to
an invoice, does not change the balance and is shown for information only.
"""

import calendar
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so

from billing.extensions import db
from billing.models import (
    Adjustment, Allocation, Charge, Invoice, InvoiceStatus, JournalEntry, JournalLine, PackagePurchase, Patient,
    Payment, PaymentMethod, Receipt, Refund, RefundKind,
)
from billing.money import Money
from billing.services import journal
from billing.timeutil import to_clinic_time

# Statement line kinds, and the period total each one counts towards (in the order they are printed).
CHARGE, PAYMENT, REFUND, ADJUSTMENT, CORRECTION, INFO = "charge", "payment", "refund", "adjustment", "correction", "info"
TOTALS = (
    (CHARGE, "New charges"),
    (PAYMENT, "Payments"),
    (REFUND, "Refunds and returns"),
    (ADJUSTMENT, "Discounts and write-offs"),
    (CORRECTION, "Voids and corrections"),
)
# Aging buckets of open invoice balances: (label, oldest age in days it holds; None for no limit).
AGING = (("Current", 0), ("1–30 days", 30), ("31–60 days", 60), ("61–90 days", 90), ("Over 90 days", None))


@dataclass(frozen=True)
class StatementLine:
    day: date
    kind: str  # one of CHARGE, PAYMENT, REFUND, ADJUSTMENT, CORRECTION, INFO
    description: str
    detail: str  # a second, smaller line: masked payment details, the invoice a credit went to
    code: str  # CPT/HCPCS code of a charge
    reference: str  # invoice, receipt or payment number
    amount: Money | None  # the change to the balance (None for information lines)
    balance: Money | None  # the running balance after this line (None for information lines)


@dataclass(frozen=True)
class OpenInvoice:
    number: str
    issue_date: date
    age_days: int
    total: Money
    due: Money


@dataclass(frozen=True)
class Statement:
    patient: dict  # name, account_number, address_lines
    start: date
    end: date
    opening: Money  # the balance at the end of the day before `start`
    lines: list[StatementLine]
    totals: list[tuple[str, Money]]  # (label, sum) per kind; opening + their sum = closing
    closing: Money  # the balance at the end of `end`, as the journal has it
    invoiced_due: Money  # on open invoices as of `end`
    uninvoiced: Money  # charges posted and not yet on an invoice as of `end`
    credit: Money  # held for the patient as of `end`
    aging: list[tuple[str, Money]]  # invoiced_due by days since the invoice date
    open_invoices: list[OpenInvoice]

    @property
    def opening_date(self) -> date:
        """The day the opening balance is the closing balance of."""
        return self.start - timedelta(days=1)

    @property
    def amount_due(self) -> Money:
        """What the patient is asked to pay: the closing balance, or nothing when it is a credit."""
        return max(self.closing, Money.zero())

    @property
    def less_credit(self) -> Money:
        """The credit held, as it is subtracted from what is due."""
        return -self.credit

    @property
    def credit_balance(self) -> Money:
        """What the clinic owes the patient overall, when the closing balance is a credit."""
        return max(-self.closing, Money.zero())


def default_period(today: date) -> tuple[date, date]:
    """The last three months: the same day three months ago (or that month's last day) up to today."""
    month, year = today.month - 3, today.year
    if month < 1:
        month, year = month + 12, year - 1
    return date(year, month, min(today.day, calendar.monthrange(year, month)[1])), today


def _ledger_accounts() -> tuple[int, int]:
    return journal.account_id(journal.RECEIVABLES), journal.account_id(journal.PATIENT_CREDITS)


def balance_before(patient_id: int, day: date) -> Money:
    """The patient's balance (receivables plus credits, signed) from the entries dated before `day`."""
    return Money(int(db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(JournalLine.amount_cents), 0)).join(JournalLine.entry)
        .where(JournalLine.patient_id == patient_id, JournalLine.account_id.in_(_ledger_accounts()),
               JournalEntry.entry_date < day)
    )))


@dataclass(frozen=True)
class _Movement:
    """One journal entry's effect on the patient: on receivables, on credits, and their sum."""

    entry_id: int
    day: date
    source_type: str
    source_id: int | None
    reverses_id: int | None
    description: str
    receivable: Money
    credit: Money

    @property
    def net(self) -> Money:
        return self.receivable + self.credit


def _movements(patient_id: int, start: date, end: date) -> list[_Movement]:
    receivables, credits = _ledger_accounts()

    def on(account: int):
        return sa.func.sum(sa.case((JournalLine.account_id == account, JournalLine.amount_cents), else_=0))

    columns = (JournalEntry.id, JournalEntry.entry_date, JournalEntry.source_type, JournalEntry.source_id,
               JournalEntry.reverses_id, JournalEntry.description)
    rows = db.session.execute(
        sa.select(*columns, on(receivables), on(credits)).select_from(JournalLine).join(JournalLine.entry)
        .where(JournalLine.patient_id == patient_id, JournalLine.account_id.in_((receivables, credits)),
               JournalEntry.entry_date >= start, JournalEntry.entry_date <= end)
        .group_by(*columns).order_by(JournalEntry.entry_date, JournalEntry.id)
    )
    return [
        _Movement(entry_id, day, source_type, int(source_id) if source_id.isdigit() else None, reverses_id,
                  description, Money(int(receivable)), Money(int(credit)))
        for entry_id, day, source_type, source_id, reverses_id, description, receivable, credit in rows
    ]


class _Sources:
    """The rows the period's journal entries were written for, loaded in one query per kind."""

    def __init__(self, movements: Iterable[_Movement]):
        ids: dict[str, set[int]] = defaultdict(set)
        for m in movements:
            if m.source_id is not None:
                ids[m.source_type].add(m.source_id)
        self.charges = self._load(Charge, ids["Charge"])
        self.payments = self._load(Payment, ids["Payment"])
        self.refunds = self._load(Refund, ids["Refund"], so.selectinload(Refund.payment))
        self.adjustments = self._load(Adjustment, ids["Adjustment"])
        self.purchases = self._load(PackagePurchase, ids["PackagePurchase"])
        invoice_ids = (ids["Invoice"] | {c.invoice_id for c in self.charges.values() if c.invoice_id}
                       | {a.invoice_id for a in self.adjustments.values()})
        self.invoice_numbers = dict(db.session.execute(
            sa.select(Invoice.id, Invoice.number).where(Invoice.id.in_(invoice_ids))).all()) if invoice_ids else {}
        self.payment_receipts = self._receipts(Receipt.payment_id, self.payments)
        self.refund_receipts = self._receipts(Receipt.refund_id, self.refunds)

    @staticmethod
    def _load(model, ids: set[int], *options) -> dict:
        if not ids:
            return {}
        return {row.id: row for row in db.session.scalars(sa.select(model).where(model.id.in_(ids)).options(*options))}

    @staticmethod
    def _receipts(column, rows: dict) -> dict[int, str]:
        if not rows:
            return {}
        return dict(db.session.execute(sa.select(column, Receipt.number).where(column.in_(rows.keys()))).all())


def _payment_details(payment: Payment) -> str:
    """How a payment was made, masked as on a receipt."""
    if payment.money_order:
        return f"{payment.money_order.issuer.label} money order, serial ending {payment.money_order.serial[-4:]}"
    if payment.carecredit:
        return f"{payment.carecredit.plan.name}, authorization {payment.carecredit.authorization_code}"
    return ""


def _describe(m: _Movement, src: _Sources) -> tuple[str, str, str, str, str]:
    """(kind, description, detail, code, reference) of one movement, from the row it was written for."""
    def invoice_number(invoice_id: int | None) -> str:
        return src.invoice_numbers.get(invoice_id) or ""

    if m.source_type == "Charge" and (charge := src.charges.get(m.source_id)):
        name = charge.package.name if charge.package_id else charge.service.name
        code = "" if charge.package_id else charge.service.cpt_code
        if m.reverses_id is not None:
            return (CORRECTION, f"Charge voided: {name}", f"Date of service {charge.date_of_service:%m/%d/%Y}",
                    code, "")
        units = f" × {charge.units}" if charge.units > 1 else ""
        return CHARGE, f"{name}{units}", "", code, invoice_number(charge.invoice_id)
    if m.source_type == "Payment" and (payment := src.payments.get(m.source_id)):
        return (PAYMENT, f"{payment.method.label} payment", _payment_details(payment), "",
                src.payment_receipts.get(payment.id) or f"Payment #{payment.id}")
    if m.source_type == "Refund" and (refund := src.refunds.get(m.source_id)):
        payment = refund.payment
        reference = src.refund_receipts.get(refund.id) or f"Payment #{payment.id}"
        if refund.kind == RefundKind.RETURN:
            return REFUND, "Money order returned unpaid", _payment_details(payment), "", reference
        if payment.method == PaymentMethod.MONEY_ORDER:
            detail = f"Check {refund.check_number}, for the money order of {payment.received_date:%m/%d/%Y}"
            return REFUND, "Refund by clinic check", detail, "", reference
        if payment.method == PaymentMethod.CARECREDIT:
            detail = f"{payment.carecredit.plan.name}, return reference {refund.return_reference}"
            return REFUND, "CareCredit return", detail, "", reference
        return REFUND, "Refund to card", f"For the payment of {payment.received_date:%m/%d/%Y}", "", reference
    if m.source_type == "Adjustment" and (adjustment := src.adjustments.get(m.source_id)):
        return ADJUSTMENT, adjustment.kind.label, "", "", invoice_number(adjustment.invoice_id)
    if m.source_type == "Invoice" and m.source_id in src.invoice_numbers:
        number = src.invoice_numbers[m.source_id]
        if m.credit.is_positive:  # credit held for the patient went to the invoice
            return INFO, "Credit on account applied", f"{m.credit} applied to {number}", "", number
        parts = []
        if m.net:
            parts.append("Discounts and write-offs on it reversed")
        if m.credit.is_negative:
            parts.append(f"{-m.credit} paid on it kept as credit on account")
        return CORRECTION, f"Invoice {number} voided", "; ".join(parts), "", number
    if m.source_type == "PackagePurchase" and (purchase := src.purchases.get(m.source_id)):
        return CORRECTION, "Credit for unused prepaid units", purchase.package.name, "", ""
    return CORRECTION, m.description, "", "", ""


def _invoices_due_as_of(patient_id: int, end: date) -> list[OpenInvoice]:
    """Issued, not void invoices with something due at the end of `end`, oldest first.

    An allocation counts from the day its money was booked: a payment's received date, otherwise
    (credit applied, undone by a refund or a void) the clinic-local day it was written."""
    invoices = list(db.session.scalars(
        sa.select(Invoice).where(Invoice.patient_id == patient_id, Invoice.issue_date <= end,
                                 Invoice.status.in_((InvoiceStatus.OPEN, InvoiceStatus.PAID)))
        .options(so.lazyload(Invoice.lines)).order_by(Invoice.issue_date, Invoice.id)
    ))
    if not invoices:
        return []
    ids = [i.id for i in invoices]
    settled: dict[int, Money] = defaultdict(Money.zero)
    allocations = db.session.execute(
        sa.select(Allocation.invoice_id, Allocation.amount_cents, Allocation.reverses_id, Allocation.created_at,
                  Payment.received_date)
        .outerjoin(Payment, Payment.id == Allocation.payment_id).where(Allocation.invoice_id.in_(ids))
    )
    for invoice_id, cents, reverses_id, created_at, received_date in allocations:
        booked = received_date if received_date and reverses_id is None else to_clinic_time(created_at).date()
        if booked <= end:
            settled[invoice_id] += Money(cents)
    adjusted = db.session.execute(
        sa.select(Adjustment.invoice_id, sa.func.sum(Adjustment.amount_cents))
        .where(Adjustment.invoice_id.in_(ids), Adjustment.adjustment_date <= end).group_by(Adjustment.invoice_id)
    )
    for invoice_id, cents in adjusted:
        settled[invoice_id] += Money(int(cents))
    result = []
    for invoice in invoices:
        due = Money(invoice.total_cents) - settled[invoice.id]
        if due.is_positive:
            result.append(OpenInvoice(invoice.number, invoice.issue_date, (end - invoice.issue_date).days,
                                      Money(invoice.total_cents), due))
    return result


def _aging(invoices: list[OpenInvoice]) -> list[tuple[str, Money]]:
    buckets = {label: Money.zero() for label, _ in AGING}
    for invoice in invoices:
        label = next(label for label, oldest in AGING if oldest is None or invoice.age_days <= oldest)
        buckets[label] += invoice.due
    return list(buckets.items())


def build_statement(patient: Patient, start: date, end: date) -> Statement:
    """Everything a statement of `patient` from `start` to `end` (both included) shows.
    Raises ValueError when the start is after the end."""
    if start > end:
        raise ValueError("The start date is after the end date.")
    opening = balance_before(patient.id, start)
    movements = _movements(patient.id, start, end)
    sources = _Sources(movements)
    lines, sums, balance = [], {kind: Money.zero() for kind, _ in TOTALS}, opening
    for m in movements:
        kind, description, detail, code, reference = _describe(m, sources)
        if not m.net:  # moved money between what is owed and what is held: no change to the balance
            lines.append(StatementLine(m.day, INFO, description, detail, code, reference, None, None))
            continue
        if kind == INFO:
            kind = CORRECTION
        balance += m.net
        sums[kind] += m.net
        lines.append(StatementLine(m.day, kind, description, detail, code, reference, m.net, balance))
    receivable = journal.balance(journal.RECEIVABLES, patient_id=patient.id, as_of=end)
    held = -journal.balance(journal.PATIENT_CREDITS, patient_id=patient.id, as_of=end)
    if receivable - held != balance:  # the lines are the journal's own entries: this cannot differ
        raise RuntimeError(f"Statement of {patient.account_number} does not tie to the journal.")
    open_invoices = _invoices_due_as_of(patient.id, end)
    invoiced_due = sum((i.due for i in open_invoices), Money.zero())
    return Statement(
        patient={"name": patient.full_name, "account_number": patient.account_number,
                 "address_lines": patient.address_lines},
        start=start, end=end, opening=opening, lines=lines,
        totals=[(label, sums[kind]) for kind, label in TOTALS], closing=balance,
        invoiced_due=invoiced_due, uninvoiced=receivable - invoiced_due, credit=held,
        aging=_aging(open_invoices), open_invoices=open_invoices,
    )
