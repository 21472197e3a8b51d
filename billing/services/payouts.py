"""Stripe payouts: what each payout settled (charges, refunds, disputes) and Stripe's fees, posted
to the journal once per payout (Merchant fees and Bank / Stripe clearing)."""

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from billing.extensions import db
from billing.models import StripePayout
from billing.timeutil import to_clinic_time


def payout_paid(payout: dict[str, Any]) -> str:
    """Stripe paid out to the bank: remember the payout; its balance transactions are fetched and
    posted after the webhook has answered (fetch_unposted)."""
    if db.session.scalar(sa.select(StripePayout.id).where(StripePayout.payout_id == payout["id"])) is not None:
        return f"payout {payout['id']} already recorded"
    arrival = to_clinic_time(datetime.fromtimestamp(int(payout["arrival_date"]), UTC)).date()
    db.session.add(StripePayout(payout_id=payout["id"], amount_cents=int(payout["amount"]), arrival_date=arrival,
                                source="api", posted=False))
    db.session.flush()
    return f"payout {payout['id']} recorded, to be posted"
