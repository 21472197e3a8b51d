"""localstripe (the fake Stripe API from PyPI) on 127.0.0.1 for the Stripe tests, and signed events.

`localstripe` starts one server per test run, in its own process, on a free loopback port (its own
command binds every interface, so it is started from Python with host 127.0.0.1). Its data is wiped
before each test that uses it; webhook registrations survive a wipe and are replaced by
`register_webhook`. It never pickles its state to disk here.

`stripe_app` points the test app's Stripe settings at it. `signed_event` builds a webhook body and a
Stripe-Signature header the way Stripe does, for the events localstripe never sends.
"""

import hashlib
import hmac
import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
import requests

WEBHOOK_SECRET = "whsec_testing_only"  # TestingConfig.STRIPE_WEBHOOK_SECRET

_LAUNCH = """
import sys
from aiohttp import web
from localstripe import resources
from localstripe.server import app
resources.store.dump_to_disk = lambda: None  # keep nothing in /tmp/localstripe.pickle
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""


class LocalStripe:
    def __init__(self, url: str):
        self.url = url

    def reset(self) -> None:
        requests.delete(f"{self.url}/_config/data", timeout=5).raise_for_status()

    def register_webhook(self, url: str, secret: str = WEBHOOK_SECRET, events: list[str] | None = None) -> None:
        """Deliver events to `url` (only one endpoint is registered at a time)."""
        body = {"url": url, "secret": secret}
        if events:
            body["events"] = events
        requests.post(f"{self.url}/_config/webhooks/app", json=body, timeout=5).raise_for_status()

    def unregister_webhook(self) -> None:
        self.register_webhook("http://127.0.0.1:9/nowhere", events=["nothing.happens"])

    def pay(self, intent_id: str, payment_method: str = "pm_card_visa") -> dict:
        """Confirm a PaymentIntent with a test card, as Stripe.js does for the browser (localstripe
        takes the card as an update, then a confirm without parameters)."""
        self.api("POST", f"/v1/payment_intents/{intent_id}", payment_method=payment_method)
        return self.api("POST", f"/v1/payment_intents/{intent_id}/confirm")

    def api(self, method: str, path: str, **data) -> dict:
        """Call localstripe's API directly (as Stripe.js or the Dashboard would), with a secret key."""
        response = requests.request(method, f"{self.url}{path}", data=data, timeout=5,
                                    headers={"Authorization": "Bearer sk_test_not_a_real_key"})
        return response.json()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def localstripe_server(tmp_path_factory) -> Iterator[LocalStripe]:
    port = _free_port()
    log = (tmp_path_factory.mktemp("localstripe") / "localstripe.log").open("w")
    process = subprocess.Popen([sys.executable, "-c", _LAUNCH, str(port)], stdout=log, stderr=subprocess.STDOUT)
    server = LocalStripe(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 20
    while True:
        try:
            server.reset()
            break
        except requests.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("localstripe did not start; see its log in the pytest temp folder") from None
            time.sleep(0.1)
    try:
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def localstripe(localstripe_server) -> LocalStripe:
    """localstripe with no data and no webhook endpoint."""
    localstripe_server.reset()
    localstripe_server.unregister_webhook()
    return localstripe_server


@pytest.fixture
def stripe_app(app, localstripe):
    """The test app talking to localstripe."""
    app.config["STRIPE_API_BASE"] = localstripe.url
    yield app
    app.config["STRIPE_API_BASE"] = "http://127.0.0.1:9"


def signed_event(event_type: str, obj: dict, *, secret: str = WEBHOOK_SECRET, event_id: str | None = None,
                 created: int | None = None) -> tuple[bytes, dict[str, str]]:
    """A webhook body for `obj` and its headers, signed as Stripe signs (t=..., v1=HMAC-SHA256)."""
    created = created or int(time.time())
    event = {"id": event_id or f"evt_{uuid.uuid4().hex[:24]}", "object": "event", "api_version": "2024-06-20",
             "created": created, "type": event_type, "livemode": False, "pending_webhooks": 1,
             "data": {"object": obj}}
    body = json.dumps(event).encode()
    signature = hmac.new(secret.encode(), f"{created}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "Stripe-Signature": f"t={created},v1={signature}"}


# --- Stripe objects as its API documents them (https://docs.stripe.com/api), for the events ---------


def _stripe_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def intent_object(payment_id: int, amount_cents: int, *, intent_id: str | None = None, status: str = "succeeded",
                  charge: str | dict | None = None, error_message: str | None = None) -> dict:
    """A PaymentIntent as payment_intent.* events carry it: latest_charge is an id unless expanded."""
    intent_id = intent_id or _stripe_id("pi")
    succeeded = status == "succeeded"
    return {
        "id": intent_id, "object": "payment_intent", "amount": amount_cents, "amount_capturable": 0,
        "amount_received": amount_cents if succeeded else 0, "capture_method": "automatic_async",
        "client_secret": f"{intent_id}_secret_{uuid.uuid4().hex[:16]}", "confirmation_method": "automatic",
        "created": int(time.time()), "currency": "usd", "customer": None, "description": None,
        "last_payment_error": None if error_message is None else {
            "type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
            "message": error_message, "charge": _stripe_id("ch")},
        "latest_charge": charge if charge is not None else (_stripe_id("ch") if succeeded else None),
        "livemode": False, "metadata": {"app_payment_id": str(payment_id)}, "next_action": None,
        "payment_method": _stripe_id("pm"), "payment_method_types": ["card"], "status": status,
    }


def refund_object(charge: dict, amount_cents: int, *, refund_id: str | None = None, status: str = "succeeded",
                  metadata: dict | None = None) -> dict:
    return {"id": refund_id or _stripe_id("re"), "object": "refund", "amount": amount_cents,
            "balance_transaction": _stripe_id("txn"), "charge": charge["id"], "created": int(time.time()),
            "currency": "usd", "metadata": metadata or {}, "payment_intent": charge["payment_intent"],
            "reason": "requested_by_customer", "status": status}


def charge_object(intent: dict, *, refunds: list[dict] | None = None, with_refund_list: bool = True,
                  amount_refunded: int | None = None) -> dict:
    """A Charge as charge.* events carry it. Since API version 2022-11-15 `refunds` is left out
    unless expanded (with_refund_list=False); amount_refunded is always there."""
    charge_id = intent["latest_charge"] if isinstance(intent["latest_charge"], str) else intent["latest_charge"]["id"]
    refunds = refunds or []
    refunded = sum(r["amount"] for r in refunds) if amount_refunded is None else amount_refunded
    charge = {
        "id": charge_id, "object": "charge", "amount": intent["amount"], "amount_captured": intent["amount"],
        "amount_refunded": refunded, "balance_transaction": _stripe_id("txn"), "captured": True,
        "created": int(time.time()), "currency": "usd", "disputed": False, "livemode": False,
        "metadata": intent["metadata"], "paid": True, "payment_intent": intent["id"],
        "payment_method": intent["payment_method"],
        "payment_method_details": {"type": "card", "card": {"brand": "visa", "last4": "4242", "exp_month": 8,
                                                            "exp_year": 2030, "funding": "credit"}},
        "refunded": refunded >= intent["amount"], "status": "succeeded",
    }
    if with_refund_list:
        charge["refunds"] = {"object": "list", "data": refunds, "has_more": False, "total_count": len(refunds),
                             "url": f"/v1/charges/{charge_id}/refunds"}
    return charge


def dispute_object(intent: dict, amount_cents: int | None = None, *, dispute_id: str | None = None,
                   status: str = "needs_response", reason: str = "fraudulent") -> dict:
    """A Dispute as charge.dispute.* events carry it (status won or lost once closed)."""
    charge = intent["latest_charge"] if isinstance(intent["latest_charge"], str) else intent["latest_charge"]["id"]
    return {
        "id": dispute_id or _stripe_id("dp"), "object": "dispute", "amount": amount_cents or intent["amount"],
        "balance_transactions": [], "charge": charge, "created": int(time.time()), "currency": "usd",
        "evidence_details": {"due_by": int(time.time()) + 7 * 86400, "has_evidence": False, "past_due": False,
                             "submission_count": 0},
        "is_charge_refundable": False, "livemode": False, "metadata": {}, "payment_intent": intent["id"],
        "reason": reason, "status": status,
    }
