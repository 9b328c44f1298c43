"""The local router against a real broker and a real HTTP subscriber: Knative's delivery contract."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]
from support import free_port

from fusion.binding import Event, from_kafka, new_event, to_kafka
from fusion.contracts import InventoryReleased, StockLine
from fusion.kafka import consumer, ensure_topics, producer
from fusion.local.broker import start_broker
from fusion.local.process import ManagedProcess
from fusion.registry import Delivery, FunctionSpec
from fusion.router import LANES, Router, missing_topics, partition_counts
from fusion.topics import all_topic_names
from fusion.waiting import wait_until

TOPIC = "inventory.released"


@dataclass
class Subscriber:
    """An HTTP subscriber whose answer is chosen per event subject; it records every attempt."""

    answers: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    attempts: dict[str, list[tuple[float, dict[str, str]]]] = field(default_factory=dict)
    delay: float = 0.0
    fail_first: dict[str, int] = field(default_factory=dict)  # event id -> attempts answered 500
    hang: set[str] = field(default_factory=set)  # subjects whose attempts wait for `release`
    hang_first: dict[str, int] = field(default_factory=dict)  # event id -> attempts that wait for `release`
    release: threading.Event = field(default_factory=threading.Event)
    holds: dict[str, threading.Event] = field(default_factory=dict)  # event id -> what its attempts wait for

    def answer(self, subject: str, event_id: str) -> tuple[int, dict[str, str], bytes]:
        if subject in self.hang or _take_one(self.hang_first, event_id):
            self.release.wait(60)
        if event_id in self.holds:
            self.holds[event_id].wait(60)
        if _take_one(self.fail_first, event_id):
            return 500, {}, b""
        return self.answers.get(subject, (204, {}, b""))

    def hold(self, event_id: str) -> threading.Event:
        """Attempts at `event_id` wait until the returned event is set."""
        return self.holds.setdefault(event_id, threading.Event())

    def ids(self, subject: str) -> list[str]:
        return [headers["ce-id"] for _, headers in self.attempts.get(subject, [])]

    def handler(self) -> type[BaseHTTPRequestHandler]:
        subscriber = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                subject = self.headers.get("ce-subject", "")
                subscriber.attempts.setdefault(subject, []).append((time.monotonic(), dict(self.headers)))
                if subscriber.delay:
                    time.sleep(subscriber.delay)
                status, headers, body = subscriber.answer(subject, self.headers.get("ce-id", ""))
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the router gave up on this attempt (its timeout) and closed the connection

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def _take_one(counts: dict[str, int], event_id: str) -> bool:
    """Count one attempt off `event_id`'s remaining ones; False when none are left."""
    if counts.get(event_id, 0) <= 0:
        return False
    counts[event_id] -= 1
    return True


class Backlogged(ThreadingHTTPServer):
    """Takes the connections of every consumer of a router at once (the default backlog of 5 refuses some of
    25 handlers posting together, which a delivery without retries dead-letters)."""

    request_queue_size = 128


@pytest.fixture
def subscriber() -> Iterator[tuple[Subscriber, str]]:
    sub = Subscriber()
    server = Backlogged(("127.0.0.1", 0), sub.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield sub, f"http://127.0.0.1:{server.server_address[1]}"
    sub.release.set()
    for hold in sub.holds.values():
        hold.set()
    server.shutdown()


@pytest.fixture
def topics(broker: ManagedProcess) -> str:
    ensure_topics(broker.url, all_topic_names())
    return broker.url


def handler_spec(delivery: Delivery, name: str | None = None) -> FunctionSpec:
    return FunctionSpec(name=name or f"test-{uuid.uuid4().hex[:8]}", target="t", service="inventory",
                        kind="cloudevent", topics=(TOPIC,), delivery=delivery)


def start_router(brokers: str, url: str, delivery: Delivery, name: str | None = None) -> Router:
    router = Router([handler_spec(delivery, name)], brokers, base_url=lambda _spec: url)
    router.start()
    assert router.wait_until_assigned(30)
    return router


def released(subject: str) -> Event:
    return new_event(TOPIC, "inventory", subject, InventoryReleased(order_id=subject, items=[
        StockLine(sku="SKU-1", quantity=1)], reason="test"))


def publish(brokers: str, subject: str) -> Event:
    return send(brokers, released(subject))


def send(brokers: str, event: Event) -> Event:
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
    wait_until(condition, timeout, 0.05, "the awaited deliveries")


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


# A router in its own process, to be killed with SIGKILL: no close, no last commit.
ROUTER_PROCESS = """
import sys, threading
from fusion.registry import Delivery, FunctionSpec
from fusion.router import Router
brokers, url, name, topic_name = sys.argv[1:5]
spec = FunctionSpec(name=name, target="t", service="inventory", kind="cloudevent", topics=(topic_name,),
                    delivery=Delivery(retries=100, backoff="linear", delay=0.2, timeout=5))
router = Router([spec], brokers, base_url=lambda _spec: url)
router.start()
print("assigned" if router.wait_until_assigned(30) else "unassigned", flush=True)
threading.Event().wait()
"""
IN_FLIGHT_POLICY = Delivery(retries=100, backoff="linear", delay=0.2, timeout=5)


def run_router_until(brokers: str, url: str, name: str, ending: str, condition: Any) -> None:
    """Run a router of handler `name` until `condition`, then close it (ending "closed") or kill it."""
    if ending == "closed":
        router = start_router(brokers, url, IN_FLIGHT_POLICY, name)
        try:
            wait_for(condition)
        finally:
            router.close()
        assert router.sender.dead_lettered == 0
        return
    process = subprocess.Popen([sys.executable, "-c", ROUTER_PROCESS, brokers, url, name, TOPIC],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "assigned"
        wait_for(condition)
    finally:
        process.kill()
        process.wait(10)


@pytest.mark.parametrize("ending", ["closed", "killed"])
def test_a_router_stopped_mid_delivery_loses_nothing(topics: str, subscriber: Any, ending: str) -> None:
    sub, url = subscriber
    name = f"test-{uuid.uuid4().hex[:8]}"
    subject = f"in-flight-{uuid.uuid4()}"
    sub.answers[subject] = (503, {}, b"")
    first, queued = released(subject), released(subject)
    sent = [send(topics, first).id, send(topics, queued).id]
    # stopped while the first event is being retried and the second waits behind it
    run_router_until(topics, url, name, ending, lambda: len(sub.attempts.get(subject, [])) >= 2)
    tried = len(sub.attempts[subject])
    assert set(sub.ids(subject)) == {first.id}
    del sub.answers[subject]
    router = start_router(topics, url, IN_FLIGHT_POLICY, name)
    try:
        wait_for(lambda: queued.id in sub.ids(subject), timeout=30)
    finally:
        router.close()
    assert sub.ids(subject)[tried:] == sent


def lane_of(key: str) -> int:
    return zlib.crc32(key.encode()) % LANES


def test_a_retried_event_holds_back_its_key_while_another_key_proceeds(topics: str, subscriber: Any) -> None:
    sub, url = subscriber
    held = f"held-{uuid.uuid4()}"
    other = next(key for key in (f"other-{uuid.uuid4()}" for _ in range(100)) if lane_of(key) != lane_of(held))
    first, second, elsewhere = released(held), released(held), released(other)
    sub.fail_first[first.id] = 2
    router = start_router(topics, url, Delivery(retries=3, backoff="linear", delay=0.3))
    try:
        for event in (first, second, elsewhere):
            send(topics, event)
        wait_for(lambda: len(sub.attempts.get(held, [])) == 4 and other in sub.attempts)
    finally:
        router.close()
    assert sub.ids(held) == [first.id] * 3 + [second.id]
    assert sub.ids(other) == [elsewhere.id]
    other_at = sub.attempts[other][0][0]
    first_succeeded_at = sub.attempts[held][2][0]
    assert other_at < first_succeeded_at  # the other key did not wait for the retries


def test_an_attempt_at_a_hanging_handler_is_cut_at_the_timeout_then_dead_lettered(
    topics: str, subscriber: Any
) -> None:
    sub, url = subscriber
    subject = f"hang-{uuid.uuid4()}"
    sub.hang.add(subject)  # held for 60 s, far beyond the records() wait below
    policy = Delivery(retries=1, backoff="linear", delay=0.2, timeout=1.0)
    router = start_router(topics, url, policy)
    try:
        event = publish(topics, subject)
        dead = records(topics, TOPIC + ".dlq", subject, timeout=30)
    finally:
        router.close()
    times = [at for at, _ in sub.attempts[subject]]
    print(f"attempts {len(times)}, {times[-1] - times[0]:.2f} s apart")
    assert len(times) == 2
    assert times[1] - times[0] >= policy.timeout + policy.wait_before(1) - 0.05
    assert [letter.id for letter in dead] == [event.id]
    assert "knativeerrorcode" not in dead[0].attributes  # no answer: the attempt was cut


def other_key_than(key: str) -> str:
    """A partition key whose events go to another lane than `key`'s."""
    return next(other for other in (f"other-{uuid.uuid4()}" for _ in range(100)) if lane_of(other) != lane_of(key))


def topic_end(brokers: str) -> int:
    reader = consumer(brokers, f"test-reader-{uuid.uuid4()}")
    try:
        return int(reader.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=10)[1])
    finally:
        reader.close()


def committed_offset(brokers: str, group: str) -> int:
    """The offset the group `group` committed on the topic's partition (negative: none yet)."""
    reader = consumer(brokers, group)  # never subscribes, so it does not join the group
    try:
        [committed] = reader.committed([TopicPartition(TOPIC, 0)], timeout=10)
        return int(committed.offset)
    finally:
        reader.close()


@pytest.mark.parametrize("ending", ["closed", "killed"])
def test_offsets_are_committed_only_below_an_event_in_flight(topics: str, subscriber: Any, ending: str) -> None:
    """Later events that were delivered are above the commit: a new router delivers them again, loses none."""
    sub, url = subscriber
    name = f"test-{uuid.uuid4().hex[:8]}"
    held = f"held-{uuid.uuid4()}"
    other = other_key_than(held)
    sub.answers[held] = (503, {}, b"")
    held_at = topic_end(topics)
    stuck = send(topics, released(held))
    later = [send(topics, released(other)) for _ in range(3)]

    def later_delivered_and_committed() -> bool:
        return (len(sub.ids(other)) == len(later) and len(sub.ids(held)) >= 2
                and committed_offset(topics, f"fusion.{name}") == held_at)

    run_router_until(topics, url, name, ending, later_delivered_and_committed)
    assert committed_offset(topics, f"fusion.{name}") == held_at, "nothing at or above the event in flight"
    del sub.answers[held]
    router = start_router(topics, url, IN_FLIGHT_POLICY, name)
    try:
        wait_for(lambda: stuck.id in sub.ids(held)[-1:] and len(sub.ids(other)) == 2 * len(later), timeout=30)
        wait_for(lambda: committed_offset(topics, f"fusion.{name}") == held_at + 1 + len(later))
    finally:
        router.close()
    assert set(sub.ids(held)) == {stuck.id}
    assert sub.ids(other) == [event.id for event in later] * 2, "redelivered in their order, none lost"


def test_retries_keep_the_order_of_one_key(topics: str, subscriber: Any) -> None:
    sub, url = subscriber
    subject = f"order-{uuid.uuid4()}"
    events = [released(subject) for _ in range(8)]
    for position, failures in ((0, 1), (3, 2), (6, 1)):
        sub.fail_first[events[position].id] = failures
    router = start_router(topics, url, Delivery(retries=3, backoff="linear", delay=0.1))
    try:
        for event in events:
            send(topics, event)
        wait_for(lambda: len(sub.ids(subject)) == len(events) + 4)
    finally:
        router.close()
    first_attempts = list(dict.fromkeys(sub.ids(subject)))
    assert first_attempts == [event.id for event in events], "no event is tried before the one ahead succeeded"
    assert sub.ids(subject).count(events[3].id) == 3
    assert router.sender.dead_lettered == 0


def test_a_hanging_attempt_is_cut_and_retried_while_later_events_flow(topics: str, subscriber: Any) -> None:
    sub, url = subscriber
    subject = f"hang-once-{uuid.uuid4()}"
    other = other_key_than(subject)
    first, second, elsewhere = released(subject), released(subject), released(other)
    sub.hang_first[first.id] = 1  # the first attempt hangs for 60 s; the retry is answered
    router = start_router(topics, url, Delivery(retries=2, backoff="linear", delay=0.2, timeout=1.0))
    try:
        for event in (first, second, elsewhere):
            send(topics, event)
        wait_for(lambda: second.id in sub.ids(subject) and other in sub.attempts, timeout=30)
    finally:
        router.close()
    assert sub.ids(subject) == [first.id, first.id, second.id]
    assert sub.ids(other) == [elsewhere.id]
    assert sub.attempts[other][0][0] < sub.attempts[subject][1][0], "the other key did not wait for the hang"
    assert router.sender.dead_lettered == 0


def test_a_router_delivers_again_after_its_memory_broker_restarts(subscriber: Any, tmp_path: Any) -> None:
    """The restarted broker has lost its topics and groups: the router creates the topics again, with their
    partition count, and its groups rejoin them."""
    sub, url = subscriber
    port = free_port()
    broker = start_broker(port, log_file=tmp_path / "broker.log")
    ensure_topics(broker.url, all_topic_names())
    router = start_router(broker.url, url, Delivery(retries=3, delay=0.2))
    try:
        before = publish(broker.url, f"before-{uuid.uuid4()}")
        wait_for(lambda: before.subject in sub.attempts)
        broker.stop()
        broker = start_broker(port, log_file=tmp_path / "broker-again.log")
        back = time.monotonic()
        after = publish_when_possible(broker.url, f"after-{uuid.uuid4()}")
        wait_for(lambda: after.subject in sub.attempts, timeout=60)
        print(f"delivered again {time.monotonic() - back:.1f} s after the broker was back")
        topics_now = AdminClient({"bootstrap.servers": broker.url}).list_topics(timeout=10).topics
        assert len(topics_now[TOPIC].partitions) == 1, "created as `fusion topics create` does, not auto-created"
    finally:
        router.close()
        broker.stop()
    assert sub.ids(after.subject) == [after.id]
    assert router.restorer.seen.losses == 1, "one restart, one start over of the partitions"


def test_one_broker_restart_is_one_loss_for_all_the_consumers_of_a_router(subscriber: Any, tmp_path: Any) -> None:
    """Each consumer starts its partitions over once: a loss counted again would make them drop the partitions
    they had just assigned on the restarted broker, and read its records again."""
    sub, url = subscriber
    port = free_port()
    broker = start_broker(port, log_file=tmp_path / "broker.log")
    ensure_topics(broker.url, all_topic_names())
    handlers = 25
    router = Router([handler_spec(Delivery(retries=0)) for _ in range(handlers)], broker.url,
                    base_url=lambda _spec: url)
    router.start()
    try:
        assert router.wait_until_assigned(30)
        broker.stop()
        broker = start_broker(port, log_file=tmp_path / "broker-again.log")
        after = publish_when_possible(broker.url, f"after-{uuid.uuid4()}")
        wait_for(lambda: len(sub.ids(after.subject)) == handlers, timeout=60)
    finally:
        router.close()
        broker.stop()
    assert router.restorer.seen.losses == 1


def test_records_read_before_a_broker_loss_settle_nothing_read_after_it(subscriber: Any, tmp_path: Any) -> None:
    """The restarted broker numbers the partition from 0 again. A record of the lost broker still waiting in a
    lane is not delivered, and settles no offset of a record read since: the commit stays below those."""
    sub, url = subscriber
    port = free_port()
    broker = start_broker(port, log_file=tmp_path / "broker.log")
    ensure_topics(broker.url, all_topic_names())
    key = f"held-{uuid.uuid4()}"
    held, queued = released(key), released(key)  # offsets 0 and 1 of the broker about to be lost
    stuck = released(other_key_than(key))  # offset 0 of the restarted broker, in another lane
    old_hold, new_hold = sub.hold(held.id), sub.hold(stuck.id)
    name = f"test-{uuid.uuid4().hex[:8]}"
    router = start_router(broker.url, url, Delivery(retries=0, timeout=60), name)
    tracker, part = router.consumers[0].tracker, (TOPIC, 0)
    try:
        send(broker.url, held)
        send(broker.url, queued)
        wait_for(lambda: held.id in sub.ids(key))
        broker.stop()
        broker = start_broker(port, log_file=tmp_path / "broker-again.log")
        send_when_possible(broker.url, stuck)
        wait_for(lambda: stuck.id in sub.ids(stuck.subject), timeout=60)
        after = send(broker.url, released(key))  # offset 1 again, behind `queued` in its lane
        old_hold.set()
        wait_for(lambda: after.id in sub.ids(key))
        wait_for(lambda: 1 not in tracker.in_flight.get(part, set()))
        assert tracker.oldest_in_flight(part) == 0, "the record held on the restarted broker is still in flight"
        new_hold.set()
        wait_for(lambda: committed_offset(broker.url, f"fusion.{name}") == 2)
    finally:
        router.close()
        broker.stop()
    assert sub.ids(key) == [held.id, after.id], "the lost broker's queued record was dropped, not delivered"
    assert sub.ids(stuck.subject) == [stuck.id]


def test_only_an_unknown_topic_is_missing_a_passing_error_keeps_its_partitions() -> None:
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import PartitionMetadata, TopicMetadata  # type: ignore[attr-defined]

    def metadata(partitions: int, error: int | None = None) -> Any:
        meta = TopicMetadata()
        meta.partitions = {n: PartitionMetadata() for n in range(partitions)}
        meta.error = None if error is None else KafkaError(error)
        return meta

    listed = {"present": metadata(2), "electing": metadata(0, KafkaError.LEADER_NOT_AVAILABLE),
              "unknown": metadata(0, KafkaError.UNKNOWN_TOPIC_OR_PART)}
    assert missing_topics(listed, ["present", "electing", "unknown", "absent"]) == ["unknown", "absent"]
    assert partition_counts(listed, {"electing": 3, "unknown": 1}) == {"present": 2, "electing": 3}


def publish_when_possible(brokers: str, subject: str) -> Event:
    return send_when_possible(brokers, released(subject))


def send_when_possible(brokers: str, event: Event) -> Event:
    """Send once the topic is back (producers do not create topics)."""
    headers, key, value = to_kafka(event)
    kafka = producer(brokers)

    def published() -> bool:
        outcome: list[Any] = []
        kafka.produce(TOPIC, value=value, key=key, headers=headers,
                      on_delivery=lambda error, _message: outcome.append(error))
        kafka.flush(10)
        return outcome == [None]

    wait_until(published, 60, 0.2, "the topic back on the restarted broker")
    return event
