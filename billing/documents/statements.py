"""The patient statement and the money-order deposit slip."""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from billing.documents import Document, render_pdf
from billing.models import Patient, Payment, PaymentMethod
from billing.money import Money
from billing.reports import statements
from billing.reports.money_orders import ON_HAND
from billing.timeutil import clinic_today


def statement_pdf(patient: Patient, start: date, end: date) -> Document:
    """The patient's statement from `start` to `end` (both included). Raises ValueError when the
    start is after the end."""
    statement = statements.build_statement(patient, start, end)
    number = f"ST-{patient.account_number}-{start:%Y%m%d}-{end:%Y%m%d}"
    pdf = render_pdf("statement.html", document_number=number, title="Statement", statement=statement,
                     statement_date=clinic_today())
    return Document(f"statement-{patient.account_number}-{start.isoformat()}-to-{end.isoformat()}.pdf", pdf)


@dataclass(frozen=True)
class DepositItem:
    received: date
    issuer: str
    serial: str
    amount: Money
    reference: str


def deposit_slip_pdf(payments: Sequence[Payment], *, slip_date: date) -> Document:
    """A deposit slip for the bank listing the money orders `payments` with their full serials.
    Raises ValueError for no payments, or one that is not a money order on hand."""
    if not payments:
        raise ValueError("A deposit slip needs at least one money order.")
    for payment in payments:
        if payment.method != PaymentMethod.MONEY_ORDER or payment.status not in ON_HAND:
            raise ValueError(f"Payment #{payment.id} is not a money order on hand.")
    items = [
        DepositItem(p.received_date, p.money_order.issuer.label, p.money_order.serial, Money(p.amount_cents),
                    f"#{p.id}")
        for p in sorted(payments, key=lambda p: (p.received_date, p.id))
    ]
    total = sum((i.amount for i in items), Money.zero())
    # The same money orders always give the same number, so a reprint is recognisable.
    digest = hashlib.sha256(",".join(str(p.id) for p in sorted(payments, key=lambda p: p.id)).encode()).hexdigest()
    number = f"DS-{slip_date:%Y%m%d}-{digest[:6].upper()}"
    pdf = render_pdf("deposit_slip.html", document_number=number, title="Deposit slip", items=items, total=total,
                     slip_date=slip_date)
    return Document(f"money-order-deposit-slip-{slip_date.isoformat()}.pdf", pdf)
