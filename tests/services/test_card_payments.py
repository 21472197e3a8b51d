"""Card payments from what Stripe's events say: PaymentIntents, refunds, disputes. The Stripe objects
are built as Stripe's API documents them (tests/stripe_support.py); the webhook itself is tested in
tests/integrations/test_stripe_webhooks.py."""

import pytest
import sqlalchemy as sa

from billing.extensions import db
from billing.models import (
    CardChannel, CardRefundRequest, CardRefundStatus, Dispute, DisputeOutcome, InvoiceStatus, Payment,
    PaymentMethod, PaymentStatus, Refund,
)
from billing.money import Money
from billing.services import card_payments, journal, receipts
from tests.services.conftest import TODAY, ledger_snapshot, refused, unbalanced_entries
from tests.services.test_payments import allocations_of, entry_lines, usd
from tests.stripe_support import charge_object, dispute_object, intent_object, refund_object


def refunds_of(payment: Payment) -> list[tuple[int, str | None, str]]:
    return [tuple(r) for r in db.session.execute(
        sa.select(Refund.amount_cents, Refund.stripe_refund_id, Refund.reason).where(Refund.payment_id == payment.id)
        .order_by(Refund.id))]


def pending(patient, invoice=None, dollars: str = "450.00", *, attach: bool = True) -> tuple[Payment, dict]:
    """A pending card payment and its PaymentIntent as Stripe would send it once paid."""
    payment = card_payments.start(patient, usd(dollars), invoice=invoice, channel=CardChannel.DESK, today=TODAY)
    intent = intent_object(payment.id, payment.amount_cents)
    if attach:
        card_payments.attach_intent(payment, intent["id"])
    return payment, intent


@pytest.fixture
def paid(make_patient, invoice_for):
    """A $450 invoice paid by card: (patient, invoice, payment, intent)."""
    patient = make_patient()
    invoice = invoice_for(patient)
    payment, intent = pending(patient, invoice)
    card_payments.intent_succeeded(intent, today=TODAY)
    return patient, invoice, payment, intent


# --- starting ------------------------------------------------------------------------------------------


def test_start_refuses_more_than_is_due_and_writes_nothing(make_patient, invoice_for):
    patient = make_patient()
    invoice = invoice_for(patient)
    with refused("amount", match=r"at most what is due: \$450\.00"):
        card_payments.start(patient, usd("450.01"), invoice=invoice, channel=CardChannel.DESK, today=TODAY)
    payment, _ = pending(patient, invoice)
    assert (payment.method, payment.status) == (PaymentMethod.CARD, PaymentStatus.PENDING)
    assert payment.card.idempotency_key.startswith("pi-") and journal.entries_for(payment) == []


# --- payment_intent.* ------------------------------------------------------------------------------------


def test_a_succeeded_intent_pays_the_invoice_posts_stripe_clearing_and_issues_a_receipt(make_patient, invoice_for):
    patient = make_patient()
    invoice = invoice_for(patient)
    payment, intent = pending(patient, invoice)
    intent["latest_charge"] = {"id": "ch_3PaidWithVisa", "object": "charge", "payment_method_details": {
        "type": "card", "card": {"brand": "visa", "last4": "4242"}}}

    outcome, settled = card_payments.intent_succeeded(intent, today=TODAY)

    assert settled is payment and outcome == f"payment #{payment.id} succeeded"
    assert payment.status == PaymentStatus.SUCCEEDED and invoice.status == InvoiceStatus.PAID
    assert allocations_of(payment) == [(invoice.id, 45000)]
    assert entry_lines(payment) == [{("1020", 45000, None), ("1100", -45000, patient.id)}]
    assert journal.balance(journal.STRIPE_CLEARING) == usd("450.00")
    assert journal.balance(journal.RECEIVABLES, patient_id=patient.id) == Money.zero()
    assert (payment.card.charge_id, payment.card.brand, payment.card.last4) == ("ch_3PaidWithVisa", "visa", "4242")
    assert receipts.receipt_of_payment(payment.id) is not None
    assert unbalanced_entries() == []


def test_the_same_success_twice_allocates_once(paid):
    patient, invoice, payment, intent = paid
    before = ledger_snapshot()

    outcome, settled = card_payments.intent_succeeded(intent, today=TODAY)

    assert settled is None and outcome == f"payment #{payment.id} already succeeded"
    assert ledger_snapshot() == before
    assert allocations_of(payment) == [(invoice.id, 45000)]


def test_a_success_that_arrives_before_the_intent_is_attached_is_found_by_its_metadata(make_patient, invoice_for):
    patient = make_patient()
    invoice = invoice_for(patient)
    payment, intent = pending(patient, invoice, attach=False)

    outcome, settled = card_payments.intent_succeeded(intent, today=TODAY)
    card_payments.attach_intent(payment, intent["id"])  # the request that created the intent, committing late

    assert settled is payment and payment.card.payment_intent_id == intent["id"]
    assert payment.card.charge_id == intent["latest_charge"]
    assert invoice.status == InvoiceStatus.PAID and allocations_of(payment) == [(invoice.id, 45000)]


def test_metadata_naming_a_payment_of_another_intent_is_not_trusted(make_patient, invoice_for):
    patient = make_patient()
    payment, _ = pending(patient, invoice_for(patient))
    stranger = intent_object(payment.id, payment.amount_cents)  # same metadata, another intent
    before = ledger_snapshot()

    outcome, settled = card_payments.intent_succeeded(stranger, today=TODAY)

    assert (outcome, settled) == ("not a payment of this app", None)
    assert payment.status == PaymentStatus.PENDING and ledger_snapshot() == before


def test_an_intent_for_another_amount_is_a_contradiction_and_writes_nothing(make_patient, invoice_for):
    patient = make_patient()
    payment, intent = pending(patient, invoice_for(patient))
    intent["amount"] = intent["amount_received"] = 40000
    before = ledger_snapshot()

    with pytest.raises(ValueError, match=r"received \$400\.00, payment #\d+ is for \$450\.00"):
        card_payments.intent_succeeded(intent, today=TODAY)

    assert payment.status == PaymentStatus.PENDING and ledger_snapshot() == before


def test_a_decline_keeps_the_payment_unpaid_and_another_card_can_still_succeed(make_patient, invoice_for):
    patient = make_patient()
    invoice = invoice_for(patient)
    payment, intent = pending(patient, invoice)
    failed = {**intent, "status": "requires_payment_method", "amount_received": 0, "latest_charge": None,
              "last_payment_error": {"type": "card_error", "code": "card_declined",
                                     "message": "Your card was declined."}}

    assert card_payments.intent_failed(failed) == f"payment #{payment.id} failed"
    assert (payment.status, payment.card.failure_message) == (PaymentStatus.FAILED, "Your card was declined.")
    assert allocations_of(payment) == [] and journal.entries_for(payment) == []
    assert invoice.status == InvoiceStatus.OPEN

    card_payments.intent_succeeded(intent, today=TODAY)
    assert (payment.status, payment.card.failure_message) == (PaymentStatus.SUCCEEDED, "")
    assert invoice.status == InvoiceStatus.PAID


def test_a_failure_or_cancellation_after_success_is_ignored(paid):
    patient, invoice, payment, intent = paid
    before = ledger_snapshot()
    late = {**intent, "status": "requires_payment_method",
            "last_payment_error": {"type": "card_error", "message": "Your card has insufficient funds."}}

    assert card_payments.intent_failed(late).endswith("already succeeded; failure ignored")
    assert card_payments.intent_canceled({**intent, "status": "canceled"}).endswith("cancellation ignored")

    assert (payment.status, payment.card.failure_message) == (PaymentStatus.SUCCEEDED, "")
    assert ledger_snapshot() == before


def test_a_cancelled_intent_leaves_the_payment_failed(make_patient, invoice_for):
    patient = make_patient()
    payment, intent = pending(patient, invoice_for(patient))

    card_payments.intent_canceled({**intent, "status": "canceled", "latest_charge": None})

    assert payment.status == PaymentStatus.FAILED and "cancelled in Stripe" in payment.card.failure_message
    assert journal.entries_for(payment) == []


def test_a_success_after_the_invoice_was_paid_otherwise_becomes_credit(make_patient, invoice_for, pay_mo):
    patient = make_patient()
    invoice = invoice_for(patient)
    payment, intent = pending(patient, invoice)
    pay_mo(patient, "450.00")  # the patient paid by money order while the card payment was pending

    card_payments.intent_succeeded(intent, today=TODAY)

    assert payment.status == PaymentStatus.SUCCEEDED and allocations_of(payment) == []
    assert entry_lines(payment) == [{("1020", 45000, None), ("2100", -45000, patient.id)}]
    assert journal.balance(journal.PATIENT_CREDITS, patient_id=patient.id) == -usd("450.00")


# --- refunds asked of Stripe ----------------------------------------------------------------------------------


def test_a_refund_request_holds_its_amount_until_stripe_answers(paid):
    patient, invoice, payment, intent = paid

    request = card_payments.request_refund(payment, usd("300.00"), "Series cancelled")

    assert (request.status, request.amount_cents) == (CardRefundStatus.PENDING, 30000)
    assert card_payments.card_refundable(payment) == usd("150.00")
    with refused("amount", match=r"At most \$150\.00"):
        card_payments.request_refund(payment, usd("150.01"), "Twice")
    assert refunds_of(payment) == [] and journal.balance(journal.STRIPE_CLEARING) == usd("450.00")

    card_payments.refund_failed(request, "Stripe refused the request: charge already refunded")
    assert card_payments.card_refundable(payment) == usd("450.00")
    assert refunds_of(payment) == []


def test_a_confirmed_refund_is_posted_once(paid):
    patient, invoice, payment, intent = paid
    request = card_payments.request_refund(payment, usd("100.00"), "Overcharged")

    refund = card_payments.refund_done(request, "re_3Partial", today=TODAY)
    again = card_payments.refund_done(request, "re_3Partial", today=TODAY)

    assert again is refund and refunds_of(payment) == [(10000, "re_3Partial", "Overcharged")]
    assert (request.status, request.refund_id) == (CardRefundStatus.SUCCEEDED, refund.id)
    assert payment.status == PaymentStatus.PARTIALLY_REFUNDED and invoice.status == InvoiceStatus.OPEN
    assert journal.balance(journal.STRIPE_CLEARING) == usd("350.00")
    assert journal.balance(journal.RECEIVABLES, patient_id=patient.id) == usd("100.00")
    assert unbalanced_entries() == []


def test_a_disputed_payment_cannot_be_refunded(paid):
    patient, invoice, payment, intent = paid
    card_payments.dispute_opened(dispute_object(intent), today=TODAY)

    with refused(match="disputed"):
        card_payments.request_refund(payment, usd("10.00"), "Goodwill")


# --- charge.refunded ----------------------------------------------------------------------------------------


def test_a_dashboard_refund_is_posted_once_and_only_the_difference_later(paid):
    patient, invoice, payment, intent = paid
    first = refund_object(charge_object(intent), 10000, refund_id="re_1Dashboard")

    card_payments.charge_refunded(charge_object(intent, refunds=[first]), today=TODAY)
    card_payments.charge_refunded(charge_object(intent, refunds=[first]), today=TODAY)  # another event, same state
    assert refunds_of(payment) == [(10000, "re_1Dashboard", card_payments.DASHBOARD_REFUND_REASON)]
    assert payment.status == PaymentStatus.PARTIALLY_REFUNDED

    rest = refund_object(charge_object(intent), 35000, refund_id="re_2Dashboard")
    outcome = card_payments.charge_refunded(charge_object(intent, refunds=[first, rest]), today=TODAY)

    assert outcome == f"payment #{payment.id}: 1 refund(s) posted"
    assert [r[:2] for r in refunds_of(payment)] == [(10000, "re_1Dashboard"), (35000, "re_2Dashboard")]
    assert payment.status == PaymentStatus.REFUNDED and invoice.status == InvoiceStatus.OPEN
    assert journal.balance(journal.STRIPE_CLEARING) == Money.zero()
    assert journal.balance(journal.RECEIVABLES, patient_id=patient.id) == usd("450.00")


def test_an_event_without_the_refund_list_posts_what_the_total_says_is_missing(paid):
    patient, invoice, payment, intent = paid

    card_payments.charge_refunded(charge_object(intent, with_refund_list=False, amount_refunded=10000), today=TODAY)
    card_payments.charge_refunded(charge_object(intent, with_refund_list=False, amount_refunded=10000), today=TODAY)
    assert refunds_of(payment) == [(10000, None, card_payments.DASHBOARD_REFUND_REASON)]

    # A later event that does list it (expanded) must not post it a second time under its id.
    listed = refund_object(charge_object(intent), 10000, refund_id="re_SeenWithoutId")
    assert card_payments.charge_refunded(charge_object(intent, refunds=[listed]), today=TODAY).endswith("up to date")
    assert len(refunds_of(payment)) == 1 and journal.balance(journal.STRIPE_CLEARING) == usd("350.00")

    # An older event (a smaller total) arriving late changes nothing either.
    card_payments.charge_refunded(charge_object(intent, with_refund_list=False, amount_refunded=5000), today=TODAY)
    assert len(refunds_of(payment)) == 1


def test_charge_refunded_completes_our_own_request_instead_of_posting_a_dashboard_refund(paid):
    patient, invoice, payment, intent = paid
    by_metadata = card_payments.request_refund(payment, usd("50.00"), "Drug not given")
    in_progress = card_payments.request_refund(payment, usd("25.00"), "Parking validated")
    card_payments.refund_in_progress(in_progress, "re_StripeAccepted")
    listed = refund_object(charge_object(intent), 5000, refund_id="re_FromOurRequest",
                           metadata={"app_refund_request_id": str(by_metadata.id)})

    card_payments.charge_refunded(charge_object(intent, refunds=[listed], amount_refunded=7500), today=TODAY)

    assert refunds_of(payment) == [(5000, "re_FromOurRequest", "Drug not given"),
                                   (2500, "re_StripeAccepted", "Parking validated")]
    assert {r.status for r in db.session.scalars(sa.select(CardRefundRequest))} == {CardRefundStatus.SUCCEEDED}
    assert card_payments.card_refundable(payment) == usd("375.00")


def test_stripe_refunding_more_than_is_refundable_is_a_contradiction(paid):
    patient, invoice, payment, intent = paid
    card_payments.charge_refunded(charge_object(intent, with_refund_list=False, amount_refunded=40000), today=TODAY)

    before = ledger_snapshot()

    with pytest.raises(ValueError, match=r"Stripe refunded \$100\.00 on payment #\d+, which has \$50\.00 refundable"):
        card_payments.charge_refunded(charge_object(intent, with_refund_list=False, amount_refunded=50000),
                                      today=TODAY)
    assert ledger_snapshot() == before


def test_a_refund_for_a_payment_not_yet_succeeded_is_refused_for_a_retry(make_patient, invoice_for):
    patient = make_patient()
    payment, intent = pending(patient, invoice_for(patient))
    with pytest.raises(ValueError):
        card_payments.charge_refunded(charge_object(intent, refunds=[refund_object(charge_object(intent), 100)]),
                                      today=TODAY)
    assert refunds_of(payment) == []


# --- charge.dispute.* --------------------------------------------------------------------------------------


def test_an_open_dispute_holds_the_amount_and_flags_the_payment(paid):
    patient, invoice, payment, intent = paid
    dispute = dispute_object(intent, reason="product_not_received")

    outcome = card_payments.dispute_opened(dispute, today=TODAY)
    before = ledger_snapshot()
    again = card_payments.dispute_opened(dispute, today=TODAY)

    assert outcome == f"payment #{payment.id} disputed" and again.endswith("already recorded")
    assert ledger_snapshot() == before
    flagged = card_payments.open_dispute(payment.id)
    assert (flagged.dispute_id, flagged.amount_cents, flagged.reason) == (dispute["id"], 45000, "product_not_received")
    assert journal.balance(journal.DISPUTED) == usd("450.00")
    assert journal.balance(journal.STRIPE_CLEARING) == Money.zero()
    assert payment.status == PaymentStatus.SUCCEEDED and invoice.status == InvoiceStatus.PAID


def test_a_won_dispute_returns_the_held_amount(paid):
    patient, invoice, payment, intent = paid
    dispute = dispute_object(intent)
    card_payments.dispute_opened(dispute, today=TODAY)

    outcome = card_payments.dispute_closed({**dispute, "status": "won"}, today=TODAY)
    again = card_payments.dispute_closed({**dispute, "status": "won"}, today=TODAY)

    assert outcome == f"dispute {dispute['id']} won" and again.endswith("already closed")
    record = db.session.scalar(sa.select(Dispute).where(Dispute.dispute_id == dispute["id"]))
    assert (record.outcome, record.closed_on) == (DisputeOutcome.WON, TODAY)
    assert card_payments.open_dispute(payment.id) is None
    assert journal.balance(journal.DISPUTED) == Money.zero()
    assert journal.balance(journal.STRIPE_CLEARING) == usd("450.00")
    assert payment.status == PaymentStatus.SUCCEEDED and invoice.status == InvoiceStatus.PAID
    assert len(journal.entries_for(record)) == 2


def test_a_lost_dispute_reopens_the_invoice_and_returns_the_payment(paid):
    patient, invoice, payment, intent = paid
    dispute = dispute_object(intent)
    card_payments.dispute_opened(dispute, today=TODAY)

    card_payments.dispute_closed({**dispute, "status": "lost"}, today=TODAY)

    record = db.session.scalar(sa.select(Dispute).where(Dispute.dispute_id == dispute["id"]))
    assert record.outcome == DisputeOutcome.LOST
    assert payment.status == PaymentStatus.RETURNED and invoice.status == InvoiceStatus.OPEN
    assert journal.balance(journal.DISPUTED) == Money.zero()
    assert journal.balance(journal.STRIPE_CLEARING) == Money.zero()
    assert journal.balance(journal.RECEIVABLES, patient_id=patient.id) == usd("450.00")
    assert allocations_of(payment) == [(invoice.id, 45000), (invoice.id, -45000)]
    assert unbalanced_entries() == []


def test_a_dispute_closed_before_we_saw_it_open_is_opened_then_closed(paid):
    patient, invoice, payment, intent = paid
    dispute = dispute_object(intent, status="lost")

    card_payments.dispute_closed(dispute, today=TODAY)
    late_created = card_payments.dispute_opened({**dispute, "status": "needs_response"}, today=TODAY)

    record = db.session.scalar(sa.select(Dispute).where(Dispute.dispute_id == dispute["id"]))
    assert late_created.endswith("already recorded") and record.outcome == DisputeOutcome.LOST
    assert [lines for lines in entry_lines(record)] == [
        {("1040", 45000, None), ("1020", -45000, None)},
        {("1100", 45000, patient.id), ("1040", -45000, None)},
    ]
    assert payment.status == PaymentStatus.RETURNED and invoice.status == InvoiceStatus.OPEN


def test_a_dispute_on_a_payment_not_yet_succeeded_is_refused_for_a_retry(make_patient, invoice_for):
    patient = make_patient()
    payment, intent = pending(patient, invoice_for(patient))
    before = ledger_snapshot()

    with pytest.raises(ValueError, match="has not succeeded here yet"):
        card_payments.dispute_opened(dispute_object(intent), today=TODAY)

    assert ledger_snapshot() == before and card_payments.open_dispute(payment.id) is None


def test_charge_succeeded_keeps_the_cards_brand_and_last4_and_moves_no_money(paid):
    patient, invoice, payment, intent = paid  # latest_charge came as a bare id, as in Stripe's events
    assert (payment.card.brand, payment.card.last4) == ("", "")
    before = ledger_snapshot()

    outcome = card_payments.charge_succeeded(charge_object(intent))

    assert (payment.card.charge_id, payment.card.brand, payment.card.last4) == (intent["latest_charge"], "visa", "4242")
    assert outcome == f"payment #{payment.id}: card visa 4242"
    assert ledger_snapshot() == before
    assert card_payments.charge_succeeded({**charge_object(intent), "payment_intent": "pi_someone_else"}) == \
        "not a payment of this app"
