"""The local router against a real broker and a real HTTP subscriber: Knative's delivery contract."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from fusion.binding import Event, from_kafka, new_event, to_kafka
from fusion.contracts import InventoryReleased, StockLine
from fusion.kafka import consumer, ensure_topics, producer
from fusion.local.process import ManagedProcess
from fusion.registry import Delivery, FunctionSpec
from fusion.router import Router
from fusion.topics import all_topic_names

TOPIC = "inventory.released"


@dataclass
class Subscriber:
    """An HTTP subscriber whose answer is chosen per event subject; it records every attempt."""

    answers: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    attempts: dict[str, list[tuple[float, dict[str, str]]]] = field(default_factory=dict)
    delay: float = 0.0

    def handler(self) -> type[BaseHTTPRequestHandler]:
        subscriber = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                subject = self.headers.get("ce-subject", "")
                subscriber.attempts.setdefault(subject, []).append((time.monotonic(), dict(self.headers)))
                if subscriber.delay:
                    time.sleep(subscriber.delay)
                status, headers, body = subscriber.answers.get(subject, (204, {}, b""))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def subscriber() -> Iterator[tuple[Subscriber, str]]:
    sub = Subscriber()
    server = ThreadingHTTPServer(("127.0.0.1", 0), sub.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield sub, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def topics(broker: ManagedProcess) -> str:
    ensure_topics(broker.url, all_topic_names())
    return broker.url


def start_router(brokers: str, url: str, delivery: Delivery) -> Router:
    spec = FunctionSpec(name=f"test-{uuid.uuid4().hex[:8]}", target="t", service="inventory", kind="cloudevent",
                        topics=(TOPIC,), delivery=delivery)
    router = Router([spec], brokers, base_url=lambda _spec: url)
    router.start()
    assert router.wait_until_assigned(30)
    return router


def publish(brokers: str, subject: str) -> Event:
    event = new_event(TOPIC, "inventory", subject, InventoryReleased(order_id=subject, items=[
        StockLine(sku="SKU-1", quantity=1)], reason="test"))
    headers, key, value = to_kafka(event)
    kafka = producer(brokers)
    kafka.produce(TOPIC, value=value, key=key, headers=headers)
    assert kafka.flush(10) == 0
    return event


def records(brokers: str, topic_name: str, subject: str, timeout: float = 20.0, count: int = 1) -> list[Event]:
    kafka = consumer(brokers, f"test-reader-{uuid.uuid4()}")
    kafka.subscribe([topic_name])
    found: list[Event] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(found) < count:
            message = kafka.poll(0.2)
            if message is None or message.error():
                continue
            event = from_kafka(message.value(), message.headers())
            if event.subject == subject:
                found.append(event)
    finally:
        kafka.close()
    return found


def wait_for(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_failing_handler_is_retried_with_backoff_then_dead_lettered(topics: str, subscriber: Any) -> None:
    sub, url = subscriber
    subject = f"fail-{uuid.uuid4()}"
    sub.answers[subject] = (500, {"Content-Type": "text/plain"}, b"boom")
    router = start_router(topics, url, Delivery(retries=2, backoff="exponential", delay=0.2, timeout=5))
    try:
        event = publish(topics, subject)
        dead = records(topics, TOPIC + ".dlq", subject)
    finally:
        router.close()
    times = [at for at, _ in sub.attempts[subject]]
    assert len(times) == 3
    # exponential: before retry n wait delay * 2^n -> 0.4 s, then 0.8 s
    assert times[1] - times[0] >= 0.4 - 0.05
    assert times[2] - times[1] >= 0.8 - 0.05
    assert len(dead) == 1
    assert dead[0].id == event.id
    assert dead[0].attributes["knativeerrorcode"] == "500"
    assert dead[0].attributes["knativeerrordest"].startswith(url)
    assert dead[0].attributes["knativeerrordata"] == "Ym9vbQ=="  # base64("boom")


@pytest.mark.parametrize(
    ("status", "headers", "body", "code"),
    [
        (400, {}, b"", "400"),
        (200, {"Content-Type": "text/plain"}, b"OK", "200"),
    ],
    ids=["400-is-not-retried", "2xx-with-a-non-cloudevent-body-is-a-failure"],
)
def test_permanent_failures_are_dead_lettered_at_once(
    topics: str, subscriber: Any, status: int, headers: dict[str, str], body: bytes, code: str
) -> None:
    sub, url = subscriber
    subject = f"perm-{uuid.uuid4()}"
    sub.answers[subject] = (status, headers, body)
    router = start_router(topics, url, Delivery(retries=3, delay=0.2))
    try:
        publish(topics, subject)
        dead = records(topics, TOPIC + ".dlq", subject)
    finally:
        router.close()
    assert len(sub.attempts[subject]) == 1
    assert dead[0].attributes["knativeerrorcode"] == code


def test_a_cloudevent_in_the_response_is_published_as_a_reply(topics: str, subscriber: Any) -> None:
    sub, url = subscriber
    subject = f"reply-{uuid.uuid4()}"
    reply = {"ce-specversion": "1.0", "ce-id": str(uuid.uuid4()), "ce-source": "/test",
             "ce-type": "com.fusioncommerce.order.failed", "ce-subject": subject, "Content-Type": "application/json"}
    sub.answers[subject] = (200, reply, json.dumps({"orderId": subject, "customerId": "c", "reason": "r"}).encode())
    router = start_router(topics, url, Delivery(retries=1, delay=0.2))
    try:
        publish(topics, subject)
        replies = records(topics, "order.failed", subject)
    finally:
        router.close()
    assert [r.id for r in replies] == [reply["ce-id"]]
    assert len(sub.attempts[subject]) == 1


def test_events_of_one_key_arrive_in_order_and_are_delivered_in_binary_mode(topics: str, subscriber: Any) -> None:
    sub, url = subscriber
    sub.delay = 0.01
    subject = f"order-{uuid.uuid4()}"
    router = start_router(topics, url, Delivery(retries=0))
    try:
        sent = [publish(topics, subject).id for _ in range(20)]
        wait_for(lambda: len(sub.attempts.get(subject, [])) == 20)
    finally:
        router.close()
    received = [headers["ce-id"] for _, headers in sub.attempts[subject]]
    assert received == sent
    first = sub.attempts[subject][0][1]
    assert first["ce-type"] == "com.fusioncommerce.inventory.released"
    assert first["ce-partitionkey"] == subject
    assert first["Content-Type"] == "application/json"


def test_dead_letters_can_be_listed_and_replayed_once(
    topics: str, subscriber: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fusion import config, dlq

    sub, url = subscriber
    subject = f"replay-{uuid.uuid4()}"
    sub.answers[subject] = (422, {}, b"")
    router = start_router(topics, url, Delivery(retries=0))
    try:
        event = publish(topics, subject)
        assert records(topics, TOPIC + ".dlq", subject)
    finally:
        router.close()
    monkeypatch.setenv("KAFKA_BROKERS", topics)
    config.settings.cache_clear()
    try:
        assert dlq.list_dead_letters(TOPIC) == 0
        assert f"id={event.id}" in capsys.readouterr().out
        assert dlq.replay(TOPIC + ".dlq") == 0
        assert "replayed" in capsys.readouterr().out
        original, replayed = records(topics, TOPIC, subject, count=2)
        assert original.id == replayed.id == event.id
        assert not any(name.startswith("knativeerror") for name in replayed.attributes)
        assert dlq.replay(TOPIC) == 0
        assert "replayed 0 dead letters" in capsys.readouterr().out
    finally:
        monkeypatch.undo()
        config.settings.cache_clear()
