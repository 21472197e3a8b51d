"""Money orders in the drawer: received and not yet deposited (deposit batches come later)."""

import sqlalchemy as sa
import sqlalchemy.orm as so

from billing.extensions import db
from billing.models import MoneyOrderDetails, Payment, PaymentMethod, PaymentStatus
from billing.money import Money
from billing.services import journal

# A refunded money order is still in the drawer: the clinic pays a refund by check from the bank.
# A returned one came back unpaid and is gone.
ON_HAND = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)


def money_orders_on_hand() -> list[Payment]:
    """Money order payments received and not returned, oldest first, with their details loaded."""
    return list(db.session.scalars(
        sa.select(Payment).join(MoneyOrderDetails)
        .where(Payment.method == PaymentMethod.MONEY_ORDER, Payment.status.in_(ON_HAND))
        .order_by(Payment.received_date, Payment.id).options(so.selectinload(Payment.patient))
    ))


def undeposited_funds() -> Money:
    """The books' Undeposited funds balance: what the money orders on hand should add up to."""
    return journal.balance(journal.UNDEPOSITED)
