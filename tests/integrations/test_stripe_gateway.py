"""The Stripe gateway against localstripe: real HTTP through the official SDK."""

import pytest

from billing.integrations import stripe_gateway as gateway
from billing.money import Money


def test_a_payment_intent_is_created_with_our_metadata_and_exact_cents(stripe_app, localstripe):
    intent = gateway.create_payment_intent(Money.parse("450.07"), idempotency_key="pi-test-1",
                                           metadata={"app_payment_id": "12"})
    assert intent.id.startswith("pi_") and intent.amount_cents == 45007
    assert intent.client_secret.startswith(intent.id + "_secret_")
    stored = localstripe.api("GET", f"/v1/payment_intents/{intent.id}")
    assert stored["metadata"] == {"app_payment_id": "12"} and stored["currency"] == "usd"
    assert gateway.retrieve_payment_intent(intent.id).status == "requires_payment_method"


def test_a_refund_is_made_through_stripe(stripe_app, localstripe):
    intent = gateway.create_payment_intent(Money.parse("100.00"), idempotency_key="pi-test-2", metadata={})
    confirmed = localstripe.pay(intent.id)
    assert confirmed["status"] == "succeeded"
    refund = gateway.create_refund(intent.id, Money.parse("40.00"), idempotency_key="re-test-1", metadata={})
    assert (refund.status, refund.amount_cents) == ("succeeded", 4000)


def test_stripe_unreachable_is_a_gateway_error_that_says_nothing_was_charged(app):
    app.config["STRIPE_API_BASE"] = "http://127.0.0.1:9"
    with pytest.raises(gateway.Unreachable, match="did not answer, so nothing is recorded as paid"):
        gateway.create_payment_intent(Money.parse("10.00"), idempotency_key="pi-test-3", metadata={})


def test_amounts_convert_exactly_and_refuse_what_stripe_would():
    assert gateway.to_stripe_amount(Money.parse("0.01")) == 1
    assert gateway.from_stripe_amount(123456) == Money.parse("1234.56")
    for bad in (Money.zero(), Money(-100)):
        with pytest.raises(ValueError):
            gateway.to_stripe_amount(bad)
    with pytest.raises(ValueError):
        gateway.from_stripe_amount(12.5)
