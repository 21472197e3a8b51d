"""The payout worker: fetch the balance transactions of payouts a webhook announced and post them.
It commits (one payout at a time), so it runs outside any request's transaction: after the webhook's
response and from `flask billing stripe fetch-payouts`."""

import sqlalchemy as sa
from flask import current_app

from billing.extensions import db
from billing.integrations import stripe_gateway
from billing.models import StripePayout
from billing.services import ServiceError
from billing.services.payouts import post_payout


def fetch_unposted(limit: int = 50) -> tuple[list[str], list[tuple[str, str]]]:
    """Fetch from Stripe and post every payout remembered from a webhook and not yet posted.

    Call it with
    a session holding nothing of its own (the CLI; after the webhook's response). Stripe is asked
    outside any transaction; each payout is posted and committed on its own, so one that fails
    (Stripe refused, figures that do not add up, a closed month) is logged and left unposted for the
    next run while the others are posted. Returns (payout ids posted, [(payout id, why it failed)]).
    """
    due = list(db.session.scalars(
        sa.select(StripePayout.payout_id).where(StripePayout.posted.is_(False), StripePayout.source == "api")
        .order_by(StripePayout.arrival_date, StripePayout.id).limit(limit)))
    db.session.rollback()  # end the read before talking to Stripe
    posted, failed = [], []
    for payout_id in due:
        try:
            transactions = stripe_gateway.payout_balance_transactions(payout_id)
            payout = db.session.scalars(sa.select(StripePayout).where(StripePayout.payout_id == payout_id)).one()
            if post_payout(payout, transactions):
                posted.append(payout_id)
            db.session.commit()
        except stripe_gateway.NotConfigured as err:
            db.session.rollback()
            failed.append((payout_id, err.message))
            break  # every other payout would fail the same way
        except (stripe_gateway.GatewayError, ServiceError) as err:
            db.session.rollback()
            current_app.logger.warning("Stripe payout %s not posted: %s", payout_id, err.message)
            failed.append((payout_id, err.message))
        except Exception as err:  # noqa: BLE001 - one bad payout must not stop the others
            db.session.rollback()
            current_app.logger.exception("Stripe payout %s could not be posted", payout_id)
            failed.append((payout_id, str(err) or type(err).__name__))
    return posted, failed
