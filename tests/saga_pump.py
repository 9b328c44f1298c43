"""Real sagas in one process, for component tests that follow events across services: every service's
functions-framework app (test clients), the outboxes published as the relay does (marked published,
oldest first across services) and each event delivered to every handler that subscribes to its topic
(the registry's routing, as the router and the Knative Triggers have it), through the handler's real
HTTP entry point; and localstripe's webhooks handed to the payments webhook as they came. No broker:
the outbox rows are the events.

`times=2` delivers every event and every webhook twice, as an at-least-once transport may.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from stripe_fixtures import WebhookReceiver

from fusion.binding import Event, to_http
from fusion.db import pool
from fusion.registry import load_all, services
from fusion.topics import topic
from fusion.uow import schema_of
from fusion.waiting import wait_until


class SagaPump:
    def __init__(self, make_client: Callable[[str], FlaskClient], webhooks: WebhookReceiver | None = None,
                 times: int = 1) -> None:
        self.clients = {service: make_client(service) for service in services()}
        self.handlers = [(spec.service, spec.event_path, {topic(t).type for t in spec.topics})
                         for spec in load_all().values() if spec.kind == "cloudevent"]
        self.webhooks = webhooks
        self.times = times
        self.webhooks_handed = len(webhooks.received()) if webhooks else 0  # those of earlier tests are not ours
        self.webhooks_before = self.webhooks_handed

    def client(self, service: str) -> FlaskClient:
        return self.clients[service]

    def step(self) -> int:
        """Publish and deliver what the outboxes hold, and hand on new webhooks; how much moved."""
        moved = 0
        for event in self._publish_outboxes():
            headers, body = to_http(event)
            for service, path, types in self.handlers:
                if event.type in types:
                    for _ in range(self.times):
                        answer = self.clients[service].post(path, headers=headers, data=body)
                        assert answer.status_code == 204, (path, answer.status_code, answer.get_data(as_text=True))
            moved += 1
        return moved + self.hand_webhooks()

    def run(self, rounds: int = 100) -> int:
        """Step until nothing moves; how much moved in all (webhooks still on their way are not waited for)."""
        moved = 0
        for _ in range(rounds):
            stepped = self.step()
            if stepped == 0:
                return moved
            moved += stepped
        raise AssertionError(f"events were still being published after {rounds} rounds")

    def until(self, condition: Callable[[], Any], timeout: float = 30.0, what: str = "the sagas") -> Any:
        def stepped() -> Any:
            self.step()
            return condition()

        return wait_until(stepped, timeout, 0.1, what)

    def webhooks_handed_on(self) -> int:
        """How many of localstripe's webhooks this pump has handed to payments."""
        return self.webhooks_handed - self.webhooks_before

    def hand_webhooks(self) -> int:
        if self.webhooks is None:
            return 0
        deliveries = self.webhooks.received()[self.webhooks_handed:]
        for delivery in deliveries:
            for _ in range(self.times):
                answer = self.clients["payments"].post("/payments/webhook", data=delivery.body, headers={
                    "Content-Type": "application/json", "Stripe-Signature": delivery.signature})
                assert answer.status_code == 200, (delivery.event["type"], answer.get_data(as_text=True))
        self.webhooks_handed += len(deliveries)
        return len(deliveries)

    def _publish_outboxes(self) -> list[Event]:
        events: list[tuple[Any, Event]] = []
        with pool().begin() as conn:
            for service in services():
                rows = conn.execute(
                    f"UPDATE {schema_of(service)}.outbox SET published_at = now() WHERE published_at IS NULL "
                    "RETURNING created_at, id, attributes, payload"
                ).all()
                events += [((row.created_at, row.id), Event(row.attributes, bytes(row.payload))) for row in rows]
        return [event for _, event in sorted(events, key=lambda pair: pair[0])]
