"""Stripe payouts: what each payout settled (charges, refunds, disputes) and Stripe's fees, posted
to the journal once per payout (Merchant fees and Bank / Stripe clearing).

Card payments, refunds and disputes post their gross amounts to Stripe clearing as they happen
(billing.services.card_payments). A payout takes those amounts out of Stripe clearing, puts what
reached the bank in Bank and Stripe's fees in Merchant fees, so Stripe clearing keeps what Stripe
still owes the clinic.

    payout_paid               payout.paid webhook: remember the payout, to be posted
    post_payout               post a payout from its balance transactions (the API's list)
    import_reconciliation_csv post the payouts of Stripe's itemized payout reconciliation CSV
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from billing.extensions import db
from billing.integrations import stripe_gateway
from billing.integrations.stripe_csv import CURRENCY, MalformedReport, SettledTransaction, parse_itemized
from billing.models import (
    CardDetails, Dispute, Payment, PaymentMethod, Refund, StripeBalanceTransaction, StripePayout,
)
from billing.money import Money
from billing.services import ServiceError, audit, journal
# Stripe charging the clinic for its own services (fees billed separately, card network costs):
# nothing we posted to Stripe clearing, so the whole amount is a merchant fee. The settlement of the
# payments whose balance transactions are stored here is kept by the settlement module's flush hook.
from billing.services.settlement import FEE_CATEGORIES


def stripe_date(timestamp: int) -> date:
    """The day a Stripe date field (arrival_date, available_on) names: they are midnight UTC of that day,
    which in the clinic's timezone would still be the evening before."""
    return datetime.fromtimestamp(int(timestamp), UTC).date()


def payout_paid(payout: dict[str, Any]) -> str:
    """Stripe paid out to the bank: remember the payout; its balance transactions are fetched and
    posted after the webhook has answered (billing.stripe_payouts.fetch_unposted). Writes the payout row once."""
    if db.session.scalar(sa.select(StripePayout.id).where(StripePayout.payout_id == payout["id"])) is not None:
        return f"payout {payout['id']} already recorded"
    db.session.add(StripePayout(payout_id=payout["id"], amount_cents=int(payout["amount"]),
                                arrival_date=stripe_date(payout["arrival_date"]), source="api", posted=False))
    db.session.flush()
    return f"payout {payout['id']} recorded, to be posted"


# --- posting -----------------------------------------------------------------------------------------


def post_payout(payout: StripePayout, transactions: list[dict[str, Any]]) -> bool:
    """Post a payout from its balance transactions as the API lists them (the payout's own included).
    Returns False, changing nothing, when the payout was already posted. Raises ServiceError when a
    transaction is not in US dollars, the settled nets (or the payout's own transaction) differ from
    the payout amount, a transaction was settled by another payout, or the month is closed. Writes the
    balance transactions, one journal entry dated the arrival date and an audit event."""
    payout = _lock(payout)
    if payout.posted:
        return False
    amount = Money(payout.amount_cents)
    for own in (t for t in transactions if _is_own(t, payout.payout_id)):
        if -Money(own["net"]) != amount:
            raise ServiceError(f"Payout {payout.payout_id} is {amount}, but its own balance transaction "
                               f"{own['id']} takes {-Money(own['net'])} from the Stripe balance; nothing was posted.")
    settled = [_from_api(t) for t in transactions if not _is_own(t, payout.payout_id)]
    _check(payout, amount, settled)
    _write(payout, settled)
    return True


@dataclass
class ImportResult:
    posted: list[StripePayout] = field(default_factory=list)  # posted by this import
    already_posted: list[StripePayout] = field(default_factory=list)  # left as they were

    def message(self) -> str:
        parts = []
        if self.posted:
            parts.append(f"Posted {len(self.posted)} payout{'s' if len(self.posted) != 1 else ''}: "
                         + ", ".join(f"{p.payout_id} ({Money(p.amount_cents)})" for p in self.posted) + ".")
        if self.already_posted:
            parts.append(f"{len(self.already_posted)} payout{'s were' if len(self.already_posted) != 1 else ' was'} "
                         "already posted and left unchanged: " + ", ".join(p.payout_id for p in self.already_posted)
                         + ".")
        return " ".join(parts)


def import_reconciliation_csv(text: str) -> ImportResult:
    """Post the payouts in Stripe's itemized payout reconciliation report (each payout's amount is
    the sum of its rows' nets); payouts already posted are left as they were. Raises ServiceError
    (field "report") naming the line and column of a malformed file, or the payout whose figures
    disagree with ours, before anything is written. Writes, per new payout, the payout, its balance
    transactions, one journal entry dated the payout's date and an audit event."""
    try:
        report = parse_itemized(text)
    except MalformedReport as err:
        raise ServiceError(str(err), "report") from None
    known = {p.payout_id: p for p in db.session.scalars(
        sa.select(StripePayout).where(StripePayout.payout_id.in_([r.payout_id for r in report]))
        .with_for_update().execution_options(populate_existing=True))}
    result, to_post = ImportResult(), []
    for item in report:
        amount = sum((t.net for t in item.transactions), Money.zero())
        payout = known.get(item.payout_id)
        if payout is not None and Money(payout.amount_cents) != amount:
            raise ServiceError(f"Line {item.line}: payout {item.payout_id} is {Money(payout.amount_cents)} in "
                               f"our records, but its rows in this file net {amount}. Nothing was imported.", "report")
        if payout is not None and payout.posted:
            result.already_posted.append(payout)
            continue
        payout = payout or StripePayout(payout_id=item.payout_id, amount_cents=amount.cents,
                                        arrival_date=item.arrival_date, source="csv", posted=False)
        _check(payout, amount, item.transactions, field="report")
        to_post.append((payout, item.transactions))
    for payout, transactions in to_post:
        db.session.add(payout)
        _write(payout, transactions)
        result.posted.append(payout)
    return result


def _lock(payout: StripePayout) -> StripePayout:
    return db.session.scalars(sa.select(StripePayout).where(StripePayout.id == payout.id).with_for_update()
                              .execution_options(populate_existing=True)).one()


def _is_own(transaction: dict[str, Any], payout_id: str) -> bool:
    return transaction.get("type") == "payout" and _id_of(transaction.get("source")) == payout_id


def _id_of(value: Any) -> str:
    """The id of a field the API may return as an id or, expanded, as the object."""
    return str((value.get("id") if isinstance(value, dict) else value) or "")


def _from_api(item: dict[str, Any]) -> SettledTransaction:
    currency = str(item.get("currency") or "")
    if currency.lower() != CURRENCY:
        raise ServiceError(f"Balance transaction {item['id']} is in {currency.upper() or 'no currency'}; only "
                           "US dollar payouts are posted.")
    source = item.get("source")
    expanded = source if isinstance(source, dict) else {}
    source_id = _id_of(source)
    charge_id = _id_of(expanded.get("charge")) or (source_id if source_id.startswith(("ch_", "py_")) else "")
    return SettledTransaction(
        transaction_id=item["id"], type=str(item.get("type") or "")[:40],
        reporting_category=str(item.get("reporting_category") or item.get("type") or "")[:40],
        gross=stripe_gateway.from_stripe_amount(item["amount"]), fee=stripe_gateway.from_stripe_amount(item["fee"]),
        net=stripe_gateway.from_stripe_amount(item["net"]), available_on=stripe_date(item["available_on"]),
        description=str(item.get("description") or "")[:200], source_id=source_id, charge_id=charge_id,
        payment_intent_id=_id_of(expanded.get("payment_intent")),
        app_payment_id=str((expanded.get("metadata") or {}).get("app_payment_id") or ""))


def _check(payout: StripePayout, amount: Money, settled: list[SettledTransaction], field: str | None = None) -> None:
    """Refuse (ServiceError) a payout whose transactions do not add up to it, that holds a transaction
    another payout settled, or that falls in a closed month."""
    for t in settled:
        if t.net != t.gross - t.fee:
            raise ServiceError(f"Balance transaction {t.transaction_id}: net {t.net} is not gross {t.gross} "
                               f"less fee {t.fee}.", field)
    net = sum((t.net for t in settled), Money.zero())
    if net != amount:
        raise ServiceError(f"Payout {payout.payout_id} is {amount}, but the transactions it settled net {net}; "
                           "nothing was posted.", field)
    elsewhere = db.session.execute(
        sa.select(StripeBalanceTransaction.transaction_id, StripePayout.payout_id)
        .join(StripePayout, StripePayout.id == StripeBalanceTransaction.payout_id)
        .where(StripeBalanceTransaction.transaction_id.in_([t.transaction_id for t in settled]),
               StripePayout.payout_id != payout.payout_id)).first()
    if elsewhere is not None:
        raise ServiceError(f"Balance transaction {elsewhere[0]} was already settled by payout {elsewhere[1]}, so "
                           f"payout {payout.payout_id} was not posted.", field)
    journal.ensure_period_open(payout.arrival_date, field)


def _write(payout: StripePayout, settled: list[SettledTransaction]) -> None:
    """Store the payout's balance transactions (each once) and post it: Merchant fees and Bank /
    Stripe clearing."""
    db.session.flush()
    stored = set(db.session.scalars(sa.select(StripeBalanceTransaction.transaction_id)
                                    .where(StripeBalanceTransaction.payout_id == payout.id)))
    fees = cleared = Money.zero()
    matched = 0
    for t in settled:
        if t.reporting_category in FEE_CATEGORIES:
            fees -= t.net
        else:
            fees += t.fee
            cleared += t.gross
        payment_id = _payment_for(t)
        matched += payment_id is not None
        if t.transaction_id not in stored:
            db.session.add(StripeBalanceTransaction(
                transaction_id=t.transaction_id, payout_id=payout.id, payment_id=payment_id, type=t.type,
                reporting_category=t.reporting_category, source_id=t.source_id, charge_id=t.charge_id,
                payment_intent_id=t.payment_intent_id, gross_cents=t.gross.cents, fee_cents=t.fee.cents,
                net_cents=t.net.cents, available_on=t.available_on, description=t.description))
    amount = Money(payout.amount_cents)
    payout.fee_cents = fees.cents
    payout.posted = True
    journal.post(payout.arrival_date, f"Stripe payout {payout.payout_id}: {len(settled)} transactions", payout, [
        (journal.MERCHANT_FEES, fees, None),
        (journal.BANK, amount, None),
        (journal.STRIPE_CLEARING, -cleared, None),
    ])
    audit.record("stripe.payout_posted", payout, changes={
        "amount": amount.plain(), "fees": fees.plain(), "transactions": len(settled), "matched": matched,
        "source": payout.source})


def _payment_for(t: SettledTransaction) -> int | None:
    """Our card payment a balance transaction belongs to: by charge, PaymentIntent, refund or dispute
    id, else by the payment id in the PaymentIntent's metadata. None when it is not ours."""
    lookups = [(CardDetails.payment_id, CardDetails.charge_id, t.charge_id),
               (CardDetails.payment_id, CardDetails.payment_intent_id, t.payment_intent_id)]
    if t.source_id.startswith(("re_", "pyr_")):
        lookups.append((Refund.payment_id, Refund.stripe_refund_id, t.source_id))
    if t.source_id.startswith(("dp_", "du_")):
        lookups.append((Dispute.payment_id, Dispute.dispute_id, t.source_id))
    for column, key, value in lookups:
        if value and (found := db.session.scalar(sa.select(column).where(key == value).limit(1))) is not None:
            return found
    if not t.app_payment_id.isdigit():
        return None
    query = (sa.select(Payment.id).join(CardDetails, CardDetails.payment_id == Payment.id)
             .where(Payment.id == int(t.app_payment_id), Payment.method == PaymentMethod.CARD))
    if t.payment_intent_id:  # metadata naming a payment of another intent is not trusted
        query = query.where(sa.or_(CardDetails.payment_intent_id.is_(None),
                                   CardDetails.payment_intent_id == t.payment_intent_id))
    return db.session.scalar(query)


# --- reading -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PayoutSummary:
    payout: StripePayout
    gross: Money  # of the transactions it settled (zero until posted)
    transactions: int
    matched: int  # transactions that belong to one of our card payments


def summaries(*, ids: list[int] | None = None, limit: int = 20) -> list[PayoutSummary]:
    """The most recent payouts (or those with `ids`), newest first, with their transactions' totals."""
    query = (
        sa.select(StripePayout,
                  sa.func.coalesce(sa.func.sum(StripeBalanceTransaction.gross_cents), 0),
                  sa.func.count(StripeBalanceTransaction.id),
                  sa.func.count(StripeBalanceTransaction.payment_id))
        .outerjoin(StripeBalanceTransaction, StripeBalanceTransaction.payout_id == StripePayout.id)
        .where(StripePayout.id.in_(ids) if ids is not None else sa.true())
        .group_by(StripePayout.id)
        .order_by(StripePayout.arrival_date.desc(), StripePayout.id.desc())
        .limit(limit))
    return [PayoutSummary(payout, Money(int(gross)), count, matched)
            for payout, gross, count, matched in db.session.execute(query)]


# --- the worker --------------------------------------------------------------------------------------
