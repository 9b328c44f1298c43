"""localstripe for tests: a real (fake) Stripe API on a free port, the settings pointing at it, a
receiver for the webhooks it sends, and Stripe's signature scheme for payloads a test builds.

Use in a test module with `from stripe_fixtures import localstripe, localstripe_server, stripe_webhooks`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from support import free_port

from functions.payments.gateway import reset_stripe_client
from functions.payments.rules import STRIPE_WEBHOOK_EVENTS
from fusion import config
from fusion.local.stripe import start_localstripe

WEBHOOK_SECRET = "whsec_fusioncommerce_tests"
SECRET_KEY = "sk_test_fusioncommerce_tests"
WEBHOOK_EVENTS = list(STRIPE_WEBHOOK_EVENTS)
STRIPE_SETTINGS = ("STRIPE_API_BASE", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_AUTO_CONFIRM")


def _use_stripe_settings(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    config.settings.cache_clear()
    reset_stripe_client()


@pytest.fixture(scope="session")
def localstripe_server(database: str, infra_dir: Path) -> Iterator[str]:
    """localstripe for the session; STRIPE_* settings point at it (auto-confirmation on) until the end."""
    server = start_localstripe(free_port(), log_file=infra_dir / "stripe.log")
    saved = {name: os.environ.get(name) for name in STRIPE_SETTINGS}
    _use_stripe_settings({"STRIPE_API_BASE": server.url, "STRIPE_SECRET_KEY": SECRET_KEY,
                          "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, "STRIPE_AUTO_CONFIRM": "true"})
    yield server.url
    _use_stripe_settings(saved)
    server.stop()


@pytest.fixture
def localstripe(localstripe_server: str) -> str:
    """localstripe with no objects left from earlier tests (registered webhooks stay)."""
    request = urllib.request.Request(f"{localstripe_server}/_config/data", method="DELETE")
    urllib.request.urlopen(request, timeout=5).close()
    return localstripe_server


@dataclass(frozen=True)
class WebhookDelivery:
    body: bytes
    signature: str

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


class WebhookReceiver:
    """Collects the webhooks localstripe sends, to hand them to the webhook function as they came."""

    def __init__(self) -> None:
        self._deliveries: list[WebhookDelivery] = []
        self._changed = threading.Condition()

    def add(self, delivery: WebhookDelivery) -> None:
        with self._changed:
            self._deliveries.append(delivery)
            self._changed.notify_all()

    def received(self) -> list[WebhookDelivery]:
        with self._changed:
            return list(self._deliveries)

    def wait_for(self, event_type: str, intent_id: str, timeout: float = 20.0) -> WebhookDelivery:
        """The webhook of `event_type` about `intent_id` (localstripe sends it about 1 s after the event)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for delivery in self._deliveries:
                    event = delivery.event
                    if event.get("type") == event_type and event["data"]["object"].get("id") == intent_id:
                        return delivery
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"localstripe sent no {event_type} webhook for {intent_id}")
                self._changed.wait(remaining)


def _handler(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.add(WebhookDelivery(body, self.headers.get("Stripe-Signature", "")))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler


@pytest.fixture(scope="session")
def stripe_webhooks(localstripe_server: str) -> Iterator[WebhookReceiver]:
    """A receiver registered with localstripe for payment_intent.succeeded / payment_failed webhooks."""
    receiver = WebhookReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _handler(receiver))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    registration = json.dumps({"url": f"http://127.0.0.1:{server.server_port}/webhook",
                               "secret": WEBHOOK_SECRET, "events": WEBHOOK_EVENTS}).encode()
    request = urllib.request.Request(f"{localstripe_server}/_config/webhooks/tests", data=registration,
                                     method="POST", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).close()
    yield receiver
    server.shutdown()
    server.server_close()


def sign(body: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header in Stripe's scheme: v1 = HMAC-SHA256 of "<t>.<body>" with the secret."""
    moment = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{moment}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={moment},v1={digest}"


def stripe_event(event_type: str, obj: dict[str, Any], event_id: str | None = None) -> bytes:
    """The body of a Stripe webhook carrying `obj`."""
    event = {
        "id": event_id or f"evt_test_{os.urandom(8).hex()}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "livemode": False,
        "type": event_type,
        "data": {"object": obj},
    }
    return json.dumps(event).encode()
