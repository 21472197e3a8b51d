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
