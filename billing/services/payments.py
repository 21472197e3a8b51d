"""Taking payments, applying them to invoices, refunds, returns, credit and adjustments.

One `payments` table serves every method; method details live in their own tables. Money
that is not applied to an invoice is the patient's credit (the Patient credits account).
Card payments (Stripe) use create_pending_payment + settle_payment; money orders and
CareCredit are settled when recorded.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
import sqlalchemy.orm as so

from billing.extensions import db
from billing.models import (
    Adjustment, AdjustmentKind, Allocation, CareCreditDetails, CareCreditPlan, DepositBatch, DepositBatchItem,
    DepositStatus, Invoice, InvoiceStatus,
    MoneyOrderDetails, MoneyOrderIssuer, Patient, Payment, PaymentMethod, PaymentStatus, Refund, RefundKind,
)
from billing.money import Money
from billing.services import ServiceError, audit, daily_close, journal, primary_key, receipts
from billing.services.balances import invoice_balance, patient_credit, payment_refunded
from billing.services.invoices import lock_invoice
from billing.services import settlement  # noqa: F401 (its flush hook keeps the payments' month-end figures)

# Where money sits once received, and where a refund is paid from.
RECEIVED_INTO = {
    PaymentMethod.CARD: journal.STRIPE_CLEARING,
    PaymentMethod.MONEY_ORDER: journal.UNDEPOSITED,
    PaymentMethod.CARECREDIT: journal.CARECREDIT_RECEIVABLE,
}
REFUNDED_FROM = {
    PaymentMethod.CARD: journal.STRIPE_CLEARING,
    PaymentMethod.MONEY_ORDER: journal.BANK,  # the clinic writes a check
    PaymentMethod.CARECREDIT: journal.CARECREDIT_RECEIVABLE,  # a return against the original plan
}
SETTLED = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED)

# Chosen allocations: [(invoice id, amount)]; None applies to open invoices oldest first.
ApplyTo = Sequence[tuple[int, Money]] | None
# A planned allocation: the locked invoice, the share it gets, and what was due on it before.
Share = tuple[Invoice, Money, Money]

# Allocations are append-only (undoing one appends a negative row): inserted without the unit of work.
_INSERT_ALLOCATIONS = sa.insert(Allocation.__table__)


@dataclass
class MoneyOrderInput:
    issuer: MoneyOrderIssuer
    serial: str
    purchaser: str
    id_seen: bool
    signed_in_front_of_staff: bool
    security_features_checked: bool


@dataclass
class CareCreditInput:
    authorization_code: str
    plan: CareCreditPlan
    account_last4: str
    id_checked: bool
    receipt_signed: bool


# FOR NO KEY UPDATE on PostgreSQL: rows that merely refer to the patient (payments, allocations,
# journal lines) take a key-share lock, which FOR UPDATE would block — a deadlock between two
# transactions that each hold one and wait for the other's.
_LOCK_PATIENT = sa.select(Patient).where(Patient.id == sa.bindparam("patient_id")).with_for_update(key_share=True)
# Locked in id order (as every locker does, so two never wait on each other); freshly read.
_LOCK_OPEN_INVOICES = (
    sa.select(Invoice).where(Invoice.patient_id == sa.bindparam("patient_id"), Invoice.status == InvoiceStatus.OPEN)
    .order_by(Invoice.id).with_for_update().options(so.lazyload(Invoice.lines))
    .execution_options(populate_existing=True)
)
_PAYMENT_WITH_SERIAL = (
    sa.select(Payment.id, Payment.received_date).join(MoneyOrderDetails)
    .where(MoneyOrderDetails.issuer == sa.bindparam("issuer"), MoneyOrderDetails.serial == sa.bindparam("serial"))
)


def _lock_patient(patient_id: int) -> Patient:
    """Serialise everything that moves one patient's money (payments, refunds, credit)."""
    return db.session.scalars(_LOCK_PATIENT, {"patient_id": patient_id}).one()


def _check_new_payment(patient: Patient, amount: Money, received_date: date, today: date) -> None:
    if not amount.is_positive:
        raise ServiceError("Enter an amount greater than zero.", "amount")
    if received_date > today:
        raise ServiceError("The received date cannot be in the future.", "received_date")
    journal.ensure_period_open(received_date, "received_date")
    daily_close.ensure_day_open(received_date, today, "received_date")


def _plan_allocations(patient: Patient, amount: Money, apply_to: ApplyTo,
                      confirm_overpayment: bool) -> list[Share]:
    """Which invoices get how much of `amount`; the invoices are locked. Raises ServiceError for a
    chosen amount above an invoice's balance, more chosen than paid, or an unconfirmed overpayment."""
    if apply_to is None:
        # Locked in id order, applied oldest first.
        invoices = db.session.scalars(_LOCK_OPEN_INVOICES, {"patient_id": patient.id}).all()
        plan, left = [], amount
        for invoice in sorted(invoices, key=lambda i: (i.issue_date, i.id)):
            due = invoice_balance(invoice)
            share = min(left, due)
            if share.is_positive:
                plan.append((invoice, share, due))
                left -= share
    else:
        plan = []
        chosen: dict[int, Money] = {}  # an invoice chosen twice gets the sum, checked against its balance once
        for invoice_id, share in apply_to:
            if share.is_negative:
                raise ServiceError("An amount applied to an invoice cannot be negative.", "apply_to")
            chosen[invoice_id] = chosen.get(invoice_id, Money.zero()) + share
        for invoice_id, share in sorted(chosen.items()):
            invoice = lock_invoice(invoice_id, missing_ok=True)
            if invoice is None or invoice.patient_id != patient.id or invoice.status != InvoiceStatus.OPEN:
                raise ServiceError("Payments can only be applied to this patient's open invoices.", "apply_to")
            due = invoice_balance(invoice)
            if share > due:
                raise ServiceError(f"{invoice.number} has only {due} due.", "apply_to")
            if share.is_positive:
                plan.append((invoice, share, due))
        if sum((s for _, s, _ in plan), Money.zero()) > amount:
            raise ServiceError("The amounts applied add up to more than the payment.", "apply_to")
    leftover = amount - sum((s for _, s, _ in plan), Money.zero())
    if leftover.is_positive and not confirm_overpayment:
        raise ServiceError(
            f"This is {leftover} more than what is applied to invoices. Confirm to keep {leftover} "
            "as the patient's credit, or change the amount.", "confirm_overpayment")
    return plan


def _allocate(payment: Payment | None, patient_id: int, plan: list[Share]) -> Money:
    """Write the planned allocations; an invoice left with nothing due is paid. Returns the total."""
    applied = Money.zero()
    rows = []
    for invoice, share, due in plan:
        rows.append({"patient_id": patient_id, "payment_id": payment.id if payment else None,
                     "invoice_id": invoice.id, "amount_cents": share.cents, "reverses_id": None})
        invoice.status = InvoiceStatus.OPEN if due - share else InvoiceStatus.PAID
        applied += share
    if rows:
        db.session.execute(_INSERT_ALLOCATIONS, rows)
    return applied


def settle_payment(payment: Payment, *, apply_to: ApplyTo = None, confirm_overpayment: bool = True) -> None:
    """Mark a pending payment succeeded, apply it, and post it (for card payments, once Stripe says
    so). Raises ServiceError as _plan_allocations."""
    patient = _lock_patient(payment.patient_id)
    plan = _plan_allocations(patient, Money(payment.amount_cents), apply_to, confirm_overpayment)
    payment.status = PaymentStatus.SUCCEEDED
    _apply_and_post(payment, patient, plan)


def _apply_and_post(payment: Payment, patient: Patient, plan: list[Share]) -> None:
    """Allocate a succeeded payment as planned and post it: the method's holding account against
    receivables (the applied part) and patient credits (the rest)."""
    db.session.flush()
    amount = Money(payment.amount_cents)
    applied = _allocate(payment, patient.id, plan)
    journal.post(payment.received_date, f"{payment.method.label} payment from {patient.account_number}", payment, [
        (RECEIVED_INTO[payment.method], amount, None),
        (journal.RECEIVABLES, -applied, patient.id),
        (journal.PATIENT_CREDITS, -(amount - applied), patient.id),
    ])
    receipts.issue_for_payment(payment)


def _new_payment(patient: Patient, method: PaymentMethod, amount: Money, received_date: date, **details) -> Payment:
    """A succeeded payment with its method details, added to the session (not yet flushed)."""
    payment = Payment(patient_id=patient.id, method=method, status=PaymentStatus.SUCCEEDED,
                      amount_cents=amount.cents, received_date=received_date,
                      received_by_id=audit.current_actor_id(), **details)
    db.session.add(payment)
    return payment


def record_money_order(patient: Patient, amount: Money, details: MoneyOrderInput, *, received_date: date,
                       today: date, apply_to: ApplyTo = None, confirm_overpayment: bool = False) -> Payment:
    """Record a money order in hand, apply it and post it (undeposited funds / receivables).
    Raises ServiceError for a bad amount or date, missing details, an incomplete verification
    checklist, a serial already recorded for that issuer, or an unconfirmed overpayment."""
    _check_new_payment(patient, amount, received_date, today)
    serial = re.sub(r"[\s-]", "", details.serial).upper()
    if not re.fullmatch(r"[0-9A-Za-z]{6,20}", serial):
        raise ServiceError("Enter the serial number printed on the money order (6–20 letters or digits).", "serial")
    if not details.purchaser.strip():
        raise ServiceError("Enter the purchaser's name as written on the money order.", "purchaser")
    if not (details.id_seen and details.signed_in_front_of_staff and details.security_features_checked):
        raise ServiceError("Complete the verification checklist before accepting the money order.", "verification")
    _refuse_duplicate_serial(details.issuer, serial)
    # Lock the patient before the payment row refers to it, and refuse an unconfirmed overpayment
    # or a bad allocation before anything is written.
    patient = _lock_patient(primary_key(patient))
    plan = _plan_allocations(patient, amount, apply_to, confirm_overpayment)
    try:
        with db.session.begin_nested():  # the unique key settles a race with another front desk
            payment = _new_payment(patient, PaymentMethod.MONEY_ORDER, amount, received_date,
                                   money_order=MoneyOrderDetails(
                                       issuer=details.issuer, serial=serial, purchaser=details.purchaser.strip(),
                                       id_seen=True, signed_in_front_of_staff=True,
                                       security_features_checked=True))
    except sa.exc.IntegrityError:  # recorded by someone else a moment ago
        with db.session.no_autoflush:
            _refuse_duplicate_serial(details.issuer, serial)
        raise
    _apply_and_post(payment, patient, plan)
    audit.record("payment.money_order", payment, changes={
        "amount": amount.plain(), "issuer": details.issuer.value, "serial": serial})
    return payment


def _refuse_duplicate_serial(issuer: MoneyOrderIssuer, serial: str) -> None:
    existing = db.session.execute(_PAYMENT_WITH_SERIAL, {"issuer": issuer, "serial": serial}).first()
    if existing is not None:
        raise ServiceError(
            f"{issuer.label} money order {serial} was already recorded on {existing.received_date:%m/%d/%Y} "
            f"(payment #{existing.id}). Check the serial; the same money order cannot be taken twice.", "serial")


def record_carecredit(patient: Patient, amount: Money, details: CareCreditInput, *, received_date: date,
                      today: date, apply_to: ApplyTo = None, confirm_overpayment: bool = False) -> Payment:
    """Record a CareCredit charge run on the provider site, apply it and post it (CareCredit
    receivable / receivables). Raises ServiceError for a bad amount or date, a missing authorization
    code, an inactive plan, a bad last 4, unchecked ID or receipt, or an unconfirmed overpayment."""
    _check_new_payment(patient, amount, received_date, today)
    code = details.authorization_code.strip().upper()
    if not re.fullmatch(r"[0-9A-Z]{4,12}", code):
        raise ServiceError("Enter the authorization code CareCredit gave (4–12 letters or digits).",
                           "authorization_code")
    if not details.plan.active:
        raise ServiceError("That promotional plan is no longer offered; choose another.", "plan")
    if not re.fullmatch(r"\d{4}", details.account_last4.strip()):
        raise ServiceError("Enter only the last 4 digits of the CareCredit account.", "account_last4")
    if not (details.id_checked and details.receipt_signed):
        raise ServiceError("Check the cardholder's ID and get the receipt signed first.", "verification")
    patient = _lock_patient(primary_key(patient))  # as for money orders: plan before writing
    plan = _plan_allocations(patient, amount, apply_to, confirm_overpayment)
    payment = _new_payment(patient, PaymentMethod.CARECREDIT, amount, received_date, carecredit=CareCreditDetails(
        authorization_code=code, plan_id=details.plan.id, merchant_fee_bps=details.plan.merchant_fee_bps,
        account_last4=details.account_last4.strip(), id_checked=True, receipt_signed=True))
    _apply_and_post(payment, patient, plan)
    audit.record("payment.carecredit", payment, changes={
        "amount": amount.plain(), "plan": details.plan.name, "authorization_code": code})
    return payment


def apply_credit(patient: Patient, invoice: Invoice, amount: Money | None, *, today: date) -> Money:
    """Apply the patient's credit to one open invoice (all that fits when `amount` is None) and post
    it (patient credits / receivables). Returns what was applied. Raises ServiceError when there is
    no credit, the invoice is not the patient's open invoice, or the amount exceeds either."""
    patient = _lock_patient(primary_key(patient))
    invoice = lock_invoice(primary_key(invoice))
    if invoice.patient_id != patient.id or invoice.status != InvoiceStatus.OPEN:
        raise ServiceError("Credit can only be applied to this patient's open invoices.")
    credit, due = patient_credit(patient.id), invoice_balance(invoice)
    amount = min(credit, due) if amount is None else amount
    if not amount.is_positive:
        raise ServiceError("There is no credit to apply." if not credit.is_positive else
                           "Enter an amount greater than zero.", "amount")
    if amount > credit or amount > due:
        raise ServiceError(f"At most {min(credit, due)} can be applied (credit {credit}, due {due}).", "amount")
    journal.ensure_period_open(today)
    _allocate(None, patient.id, [(invoice, amount, due)])
    journal.post(today, f"Credit applied to {invoice.number}", invoice, [
        (journal.PATIENT_CREDITS, amount, patient.id),
        (journal.RECEIVABLES, -amount, patient.id),
    ])
    audit.record("credit.apply", invoice, changes={"amount": amount.plain()})
    return amount


def _outstanding_allocations(**where) -> list[tuple[Allocation, Money]]:
    """Positive allocations not yet undone, newest first, with what remains of each."""
    original = sa.orm.aliased(Allocation)
    undone = (sa.select(sa.func.coalesce(sa.func.sum(Allocation.amount_cents), 0))
              .where(Allocation.reverses_id == original.id).scalar_subquery())
    query = (sa.select(original, original.amount_cents + undone).where(original.amount_cents > 0)
             .order_by(original.id.desc()))
    for key, value in where.items():
        query = query.where(getattr(original, key) == value)
    return [(alloc, Money(int(left))) for alloc, left in db.session.execute(query) if left > 0]


def _unapply(pairs: list[tuple[Allocation, Money]], limit: Money | None = None) -> Money:
    """Undo allocations (up to `limit` in total); the invoices reopen. Returns the amount undone."""
    undone = Money.zero()
    touched = {}
    rows = []
    for alloc, left in pairs:
        share = left if limit is None else min(left, limit - undone)
        if not share.is_positive:
            break
        touched.setdefault(alloc.invoice_id, lock_invoice(alloc.invoice_id))
        rows.append({"patient_id": alloc.patient_id, "payment_id": alloc.payment_id, "invoice_id": alloc.invoice_id,
                     "amount_cents": -share.cents, "reverses_id": alloc.id})
        undone += share
    if rows:
        db.session.execute(_INSERT_ALLOCATIONS, rows)
    for invoice in touched.values():
        if invoice.status == InvoiceStatus.PAID:
            invoice.status = InvoiceStatus.OPEN
    return undone


def unapply_invoice(invoice: Invoice, *, today: date, description: str) -> None:
    """Turn everything paid on an invoice into patient credit and reverse its adjustments
    (for voiding it); one journal entry when anything moves."""
    paid = _outstanding_allocations(invoice_id=invoice.id)
    adjusted = Money(int(db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Adjustment.amount_cents), 0)).where(Adjustment.invoice_id == invoice.id)
    )))
    if paid or adjusted:
        journal.ensure_period_open(today)  # before anything is written
    moved = _unapply(paid)
    if moved or adjusted:
        journal.post(today, description, invoice, [
            (journal.RECEIVABLES, moved + adjusted, invoice.patient_id),
            (journal.PATIENT_CREDITS, -moved, invoice.patient_id),
            (journal.DISCOUNTS, -adjusted, None),
        ])


def _lock_payment(payment: Payment) -> Payment:
    return db.session.scalars(
        sa.select(Payment).where(Payment.id == payment.id).with_for_update(of=Payment).execution_options(populate_existing=True)
    ).one()


def refund_payment(payment: Payment, amount: Money, reason: str, *, today: date,
                   check_number: str = "", return_reference: str = "") -> Refund:
    """Give money back on a money order or CareCredit payment (card payments are refunded through
    Stripe: services/card_payments.py): first out of the patient's credit, then by reopening what the
    payment paid (newest first). Posts receivables/credits against the method's refund account.
    Raises ServiceError for a payment that is not settled, more than remains refundable, no reason,
    or missing method details (check number for money orders, return reference for CareCredit)."""
    _lock_patient(payment.patient_id)
    payment = _lock_payment(payment)
    check_refund(payment, amount, reason, refundable=Money(payment.amount_cents) - payment_refunded(payment.id))
    if payment.method == PaymentMethod.CARD:
        raise ServiceError("Card payments are refunded through Stripe, from the payment's page.")
    if payment.method == PaymentMethod.MONEY_ORDER and not check_number.strip():
        raise ServiceError("Enter the number of the clinic check that refunds the money order.", "check_number")
    if payment.method == PaymentMethod.CARECREDIT and not return_reference.strip():
        raise ServiceError("Enter the return reference from the CareCredit provider site.", "return_reference")
    return post_refund(payment, amount, reason, today=today, check_number=check_number.strip(),
                       return_reference=return_reference.strip())


def check_refund(payment: Payment, amount: Money, reason: str, *, refundable: Money) -> None:
    """Raise ServiceError unless `amount` can be refunded on the (locked) payment."""
    if payment.status not in SETTLED:
        raise ServiceError("Only a completed payment can be refunded.")
    if not amount.is_positive:
        raise ServiceError("Enter an amount greater than zero.", "amount")
    if amount > refundable:
        raise ServiceError(f"At most {refundable} of this payment can be refunded.", "amount")
    if not reason.strip():
        raise ServiceError("Say why the money is refunded.", "reason")


def post_refund(payment: Payment, amount: Money, reason: str, *, today: date, **details) -> Refund:
    """Write a refund the caller has checked (patient and payment locked): out of the patient's credit
    first, then by reopening what the payment paid; the journal entry, the status and the receipt."""
    journal.ensure_period_open(today)
    refunded_before = payment_refunded(payment.id)
    shortfall = amount - patient_credit(payment.patient_id)
    reopened = Money.zero()
    if shortfall.is_positive:
        reopened = _unapply(_outstanding_allocations(payment_id=payment.id), shortfall)
        if reopened < shortfall:
            reopened += _unapply(_outstanding_allocations(patient_id=payment.patient_id), shortfall - reopened)
    refund = Refund(payment_id=payment.id, kind=RefundKind.REFUND, amount_cents=amount.cents, refund_date=today,
                    reason=reason.strip(), created_by_id=audit.current_actor_id(), **details)
    db.session.add(refund)
    fully = refunded_before + amount == Money(payment.amount_cents)
    payment.status = PaymentStatus.REFUNDED if fully else PaymentStatus.PARTIALLY_REFUNDED
    journal.post(today, f"Refund of {payment.method.label.lower()} payment #{payment.id}", refund, [
        (journal.RECEIVABLES, reopened, payment.patient_id),
        (journal.PATIENT_CREDITS, amount - reopened, payment.patient_id),
        (REFUNDED_FROM[payment.method], -amount, None),
    ])
    receipts.issue_for_refund(refund)
    audit.record("payment.refund", payment, changes={"amount": amount.plain(), "reason": reason.strip(),
                                                     "reopened": reopened.plain()})
    return refund


def return_money_order(payment: Payment, reason: str, *, today: date) -> Refund:
    """A money order came back (counterfeit, stopped): reopen everything it paid and take its amount
    back out of undeposited funds (out of Bank when it was already deposited). Raises ServiceError for another method, a payment not settled or
    partly refunded (the check paid out needs the bookkeeper), or no reason."""
    _lock_patient(payment.patient_id)
    payment = _lock_payment(payment)
    if payment.method != PaymentMethod.MONEY_ORDER:
        raise ServiceError("Only a money order can be returned; refund other payments.")
    if payment.status != PaymentStatus.SUCCEEDED:
        raise ServiceError("Only a money order that was not refunded can be returned. Part of this one was "
                           "already paid back by check: ask the bookkeeper to record the return.")
    if not reason.strip():
        raise ServiceError("Say why the money order came back.", "reason")
    journal.ensure_period_open(today)
    amount = Money(payment.amount_cents)
    reopened = take_back(payment, amount)
    refund = Refund(payment_id=payment.id, kind=RefundKind.RETURN, amount_cents=amount.cents, refund_date=today,
                    reason=reason.strip(), created_by_id=audit.current_actor_id())
    db.session.add(refund)
    payment.status = PaymentStatus.RETURNED
    journal.post(today, f"Returned money order, payment #{payment.id}", refund, [
        (journal.RECEIVABLES, reopened, payment.patient_id),
        (journal.PATIENT_CREDITS, amount - reopened, payment.patient_id),
        (journal.BANK if _deposited(payment) else RECEIVED_INTO[payment.method], -amount, None),
    ])
    receipts.issue_for_refund(refund)
    audit.record("payment.return", payment, changes={"amount": amount.plain(), "reason": reason.strip(),
                                                     "reopened": reopened.plain()})
    return refund


def _deposited(payment: Payment) -> bool:
    """Whether the money order went to the bank in a deposit (a return then comes out of Bank)."""
    return db.session.scalar(
        sa.select(DepositBatch.id).join(DepositBatchItem).where(
            DepositBatchItem.payment_id == payment.id, DepositBatchItem.released_on.is_(None),
            DepositBatch.status == DepositStatus.DEPOSITED)
    ) is not None


def take_back(payment: Payment, amount: Money) -> Money:
    """Money of a payment that went back to the payer without a refund from us (a returned money
    order, a lost card dispute): undo what it paid, newest first, and what the patient's credit cannot
    cover of the rest. Returns the amount reopened on invoices; the caller posts the entry."""
    reopened = _unapply(_outstanding_allocations(payment_id=payment.id), amount)
    shortfall = amount - patient_credit(payment.patient_id) - reopened
    if shortfall.is_positive:
        reopened += _unapply(_outstanding_allocations(patient_id=payment.patient_id), shortfall)
    return reopened


def adjust_invoice(invoice: Invoice, kind: AdjustmentKind, amount: Money, reason: str, *, today: date) -> Adjustment:
    """A courtesy discount or write-off on an open invoice (discounts and write-offs / receivables).
    Raises ServiceError for no reason, a non-positive amount, or more than is due."""
    invoice = lock_invoice(primary_key(invoice))
    if invoice.status != InvoiceStatus.OPEN:
        raise ServiceError("Only an open invoice can be adjusted.")
    due = invoice_balance(invoice)
    if not amount.is_positive or amount > due:
        raise ServiceError(f"Enter an amount between $0.01 and {due}.", "amount")
    if not reason.strip():
        raise ServiceError("Say why the invoice is adjusted.", "reason")
    journal.ensure_period_open(today)
    adjustment = Adjustment(invoice_id=invoice.id, kind=kind, amount_cents=amount.cents, adjustment_date=today,
                            reason=reason.strip(), created_by_id=audit.current_actor_id())
    db.session.add(adjustment)
    invoice.status = InvoiceStatus.OPEN if due - amount else InvoiceStatus.PAID
    journal.post(today, f"{kind.label} on {invoice.number}", adjustment, [
        (journal.DISCOUNTS, amount, None),
        (journal.RECEIVABLES, -amount, invoice.patient_id),
    ])
    audit.record("invoice.adjust", invoice, changes={"kind": kind.value, "amount": amount.plain(),
                                                     "reason": reason.strip()})
    return adjustment
