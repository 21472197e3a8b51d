"""Money-order deposit batches: money orders on hand put together on one deposit slip, taken to the
bank, then marked deposited (Bank / Undeposited funds).

    create_batch    pick money orders on hand into a new open batch (DEP-YYYY-NNNN)
    mark_deposited  the bank took it: date and bank reference, one journal entry
    cancel_batch    an open batch given up: its money orders are on hand again

Only a batch's live items (released_on NULL) count: a money order taken out of an open batch may stay
listed in it, released.
"""

from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa

from billing.extensions import db
from billing.models import BankLine, BankMatchKind, DepositBatch, DepositBatchItem, DepositStatus, Payment, PaymentMethod, PaymentStatus
from billing.money import Money
from billing.reports.money_orders import ON_HAND
from billing.services import ServiceError, audit, journal, numbering
from billing.services import settlement  # noqa: F401 (its flush hook keeps the payments' month-end figures)


def _lock_payments(ids: Sequence[int]) -> list[Payment]:
    """The payments, locked in id order (as every locker does) and read afresh."""
    return list(db.session.scalars(
        sa.select(Payment).where(Payment.id.in_(sorted(set(ids)))).order_by(Payment.id)
        .with_for_update(of=Payment).execution_options(populate_existing=True)
    ))


def _lock_batch(batch: DepositBatch) -> DepositBatch:
    return db.session.scalars(
        sa.select(DepositBatch).where(DepositBatch.id == batch.id).with_for_update(of=DepositBatch)
        .execution_options(populate_existing=True)
    ).one()


def _describe(payment: Payment) -> str:
    serial = payment.money_order.serial if payment.money_order else ""
    return f"money order {serial} (payment #{payment.id})".replace("  ", " ")


def create_batch(payment_ids: Sequence[int], *, today: date) -> DepositBatch:
    """Put the chosen money orders on hand into a new open batch numbered DEP-YYYY-NNNN. Raises
    ServiceError for no money order chosen, or one that is not a money order, was returned, or is
    already in a batch. Writes the batch, its items and an audit event."""
    if not payment_ids:
        raise ServiceError("Choose at least one money order for the deposit.", "payments")
    payments = _lock_payments(payment_ids)
    if len(payments) != len(set(payment_ids)):
        raise ServiceError("A chosen money order no longer exists; reload the page and choose again.", "payments")
    batched = dict(db.session.execute(
        sa.select(DepositBatchItem.payment_id, DepositBatch.number).join(DepositBatch)
        .where(DepositBatchItem.payment_id.in_([p.id for p in payments]), DepositBatchItem.released_on.is_(None))
    ).all())
    for payment in payments:
        if payment.method != PaymentMethod.MONEY_ORDER:
            raise ServiceError(f"Payment #{payment.id} is not a money order; only money orders go on a deposit "
                               "slip.", "payments")
        if payment.status == PaymentStatus.RETURNED:
            raise ServiceError(f"{_describe(payment).capitalize()} was returned, so it cannot be deposited. "
                               "Leave it out.", "payments")
        if payment.status not in ON_HAND:
            raise ServiceError(f"{_describe(payment).capitalize()} is not a money order on hand.", "payments")
        if payment.id in batched:
            raise ServiceError(f"{_describe(payment).capitalize()} is already in deposit batch "
                               f"{batched[payment.id]}; a money order is deposited once. Reload the page and "
                               "choose again.", "payments")
    total = sum((Money(p.amount_cents) for p in payments), Money.zero())
    number = f"DEP-{today.year}-{numbering.next_value(f'deposit-{today.year}'):04d}"
    batch = DepositBatch(number=number, status=DepositStatus.OPEN, total_cents=total.cents,
                         created_by_id=audit.current_actor_id())
    batch.items = [DepositBatchItem(payment_id=p.id) for p in payments]
    try:
        with db.session.begin_nested():  # the unique payment key: a money order in one batch only
            db.session.add(batch)
    except sa.exc.IntegrityError:
        raise ServiceError("One of these money orders was put in another batch a moment ago. Reload the page "
                           "and choose again.", "payments") from None
    audit.record("deposit.create", batch, changes={"number": number, "total": total.plain(),
                                                   "payments": [p.id for p in payments]})
    return batch


def live_items(batch: DepositBatch) -> list[DepositBatchItem]:
    """The batch's items not released."""
    return [item for item in batch.items if item.released_on is None]


def batch_payments(batch: DepositBatch) -> list[Payment]:
    """The batch's money orders, oldest first (a cancelled batch: those it held when it was cancelled)."""
    query = (sa.select(Payment).join(DepositBatchItem, DepositBatchItem.payment_id == Payment.id)
             .where(DepositBatchItem.batch_id == batch.id).order_by(Payment.received_date, Payment.id))
    if batch.status != DepositStatus.CANCELLED:
        query = query.where(DepositBatchItem.released_on.is_(None))
    return list(db.session.scalars(query))


def mark_deposited(batch: DepositBatch, deposited_on: date | None, bank_reference: str, *,
                   today: date) -> DepositBatch:
    """The bank took the batch: post Bank / Undeposited funds for its total, dated the deposit date.
    Raises ServiceError for a batch already deposited, a missing date or one before its newest money
    order, in the future or in a closed month, a missing bank reference, or a money order in it that
    was returned meanwhile. Writes the batch's deposit, one journal entry and an audit event."""
    batch = _lock_batch(batch)
    if batch.status != DepositStatus.OPEN:
        raise ServiceError(f"{batch.number} was already marked deposited on {batch.deposited_on:%m/%d/%Y} "
                           f"(bank reference {batch.bank_reference}).")
    payments = _lock_payments([item.payment_id for item in live_items(batch)])
    if deposited_on is None:
        raise ServiceError("Enter the date the bank took the deposit.", "deposited_on")
    newest = max(p.received_date for p in payments)
    if deposited_on < newest:
        raise ServiceError(f"The deposit date is before {newest:%m/%d/%Y}, when the newest money order in the batch "
                           "was received. Enter the date on the bank's receipt.", "deposited_on")
    if deposited_on > today:
        raise ServiceError(f"The deposit date cannot be in the future (today is {today:%m/%d/%Y}).", "deposited_on")
    journal.ensure_period_open(deposited_on, "deposited_on")
    reference = bank_reference.strip()
    if not reference:
        raise ServiceError("Enter the bank's reference for the deposit (on its receipt).", "bank_reference")
    if len(reference) > 60:
        raise ServiceError("The bank reference is at most 60 characters.", "bank_reference")
    returned = [p for p in payments if p.status == PaymentStatus.RETURNED]
    if returned:
        raise ServiceError(f"{_describe(returned[0]).capitalize()} in this batch was returned, so the slip is "
                           "wrong. Cancel the batch and put together a new one without it.")
    total = Money(batch.total_cents)
    if total != sum((Money(p.amount_cents) for p in payments), Money.zero()):
        raise ValueError(f"{batch.number}: total {total} is not the sum of its money orders")
    batch.status = DepositStatus.DEPOSITED
    batch.deposited_on = deposited_on
    batch.bank_reference = reference
    batch.deposited_by_id = audit.current_actor_id()
    journal.post(deposited_on, f"Deposit {batch.number} ({len(payments)} money orders)", batch, [
        (journal.BANK, total, None),
        (journal.UNDEPOSITED, -total, None),
    ])
    audit.record("deposit.deposited", batch, changes={"number": batch.number, "total": total.plain(),
                                                      "deposited_on": deposited_on.isoformat(),
                                                      "bank_reference": reference})
    return batch


def cancel_batch(batch: DepositBatch, *, today: date) -> str:
    """Give up an open batch (nothing was posted for it): its money orders are on hand again. Returns its
    number. Raises ServiceError for a deposited batch. The batch stays, marked cancelled (its number is
    not reused); its items are released; an audit event keeps what they were."""
    batch = _lock_batch(batch)
    if batch.status != DepositStatus.OPEN:
        raise ServiceError(f"{batch.number} was deposited on {batch.deposited_on:%m/%d/%Y}; a deposit is "
                           "not cancelled. Record a correction with the bookkeeper.")
    matched = db.session.scalar(sa.select(BankLine.id).where(BankLine.match_kind == BankMatchKind.DEPOSIT_BATCH,
                                                              BankLine.match_id == batch.id))
    if matched is not None:
        raise ServiceError(f"{batch.number} is matched to a bank statement line; undo that match first.")
    items = live_items(batch)
    number, ids = batch.number, [item.payment_id for item in items]
    audit.record("deposit.cancel", batch, changes={"number": number, "total": Money(batch.total_cents).plain(),
                                                   "payments": ids})
    for item in items:
        item.released_on = today
    batch.status = DepositStatus.CANCELLED
    db.session.flush()
    return number


def open_batches() -> list[DepositBatch]:
    return list(db.session.scalars(sa.select(DepositBatch).where(DepositBatch.status == DepositStatus.OPEN)
                                   .order_by(DepositBatch.id)))


def recent_deposits(limit: int = 20) -> list[DepositBatch]:
    return list(db.session.scalars(
        sa.select(DepositBatch).where(DepositBatch.status == DepositStatus.DEPOSITED)
        .order_by(DepositBatch.deposited_on.desc(), DepositBatch.id.desc()).limit(limit)))
