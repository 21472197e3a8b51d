"""Money orders in the drawer: received, not returned, and not yet put in a deposit batch."""

import sqlalchemy as sa
import sqlalchemy.orm as so

from billing.extensions import db
from billing.models import DepositBatch, DepositBatchItem, DepositStatus, MoneyOrderDetails, Payment, PaymentMethod, PaymentStatus
from billing.money import Money
from billing.services import journal

# A refunded money order is still in the drawer: the clinic pays a refund by check from the bank.
# A returned one came back unpaid and is gone.
ON_HAND = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)


def _on_hand(query: sa.Select) -> sa.Select:
    batched = sa.select(DepositBatchItem.payment_id).where(DepositBatchItem.released_on.is_(None))
    return query.where(Payment.method == PaymentMethod.MONEY_ORDER, Payment.status.in_(ON_HAND),
                       Payment.id.not_in(batched))


def money_orders_on_hand() -> list[Payment]:
    """Money order payments received, not returned and in no deposit batch, oldest first, with their
    details loaded."""
    return list(db.session.scalars(
        _on_hand(sa.select(Payment).join(MoneyOrderDetails))
        .order_by(Payment.received_date, Payment.id).options(so.selectinload(Payment.patient))
    ))


def on_hand_total() -> Money:
    """What the money orders on hand add up to (one SUM)."""
    return Money(int(db.session.scalar(_on_hand(sa.select(sa.func.coalesce(sa.func.sum(Payment.amount_cents), 0))))))


def undeposited_funds() -> Money:
    """The books' Undeposited funds balance less the batches put together and not yet deposited:
    what the money orders on hand should add up to."""
    in_open_batches = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(DepositBatch.total_cents), 0))
        .where(DepositBatch.status == DepositStatus.OPEN))
    return journal.balance(journal.UNDEPOSITED) - Money(int(in_open_batches))
