"""The local event router: what Knative Eventing does in the cluster, on a laptop.

Routing comes from the function registry (the same declarations the Triggers are rendered
from): one consumer group per handler, events of one partition key delivered in order while
different keys go in parallel, the handler's retry and backoff policy, `<topic>.dlq` after the
last retry, the Knative Kafka data plane's response rules, and scheduled functions fired on
their cron schedule as PingSources would.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import urllib3

from fusion.auth import delivery_audience
from fusion.binding import Event, from_kafka, now_iso, to_http
from fusion.cron import Cron
from fusion.dataplane import Attempt, Verdict, dead_letter, judge, reply_event
from fusion.kafka import consumer, produce, producer
from fusion.registry import Delivery, FunctionSpec
from fusion.topics import DLQ_SUFFIX, PING_TYPE, ping_source_address, topic, topic_for_type

if TYPE_CHECKING:
    from fusion.local.issuer import DeliveryTokens

log = logging.getLogger("fusion.router")
LANES = 8
COMMIT_INTERVAL = 0.2


@dataclass(frozen=True)
class Subscription:
    name: str
    url: str
    topics: tuple[str, ...]
    types: frozenset[str]
    delivery: Delivery
    audience: str  # of the delivery token the handler checks


def subscriptions(specs: list[FunctionSpec], base_url: Callable[[FunctionSpec], str]) -> list[Subscription]:
    """One subscription per event handler, from the registry."""
    return [
        Subscription(spec.name, base_url(spec) + spec.event_path, spec.topics,
                     frozenset(topic(t).type for t in spec.topics), spec.policy, delivery_audience(spec.name))
        for spec in specs
        if spec.kind == "cloudevent"
    ]


def local_url(spec: FunctionSpec) -> str:
    return f"http://127.0.0.1:{spec.service_spec.local_port}"


def service_url_from(template: str | None) -> Callable[[FunctionSpec], str]:
    """Where a function's service listens: `template` such as "http://{service}:{port}" (Compose), else local."""
    if not template:
        return local_url
    return lambda spec: template.format(service=spec.service, port=spec.service_spec.port)


class Sender:
    """HTTP delivery with retries, backoff and dead letters, shared by events and pings."""

    def __init__(self, kafka_producer: Any, stop: threading.Event, tokens: DeliveryTokens | None = None):
        self.http = urllib3.PoolManager(maxsize=LANES * 4, retries=False)
        self.producer = kafka_producer
        self.stop = stop
        self.tokens = tokens  # the sender identity handlers check; None sends none (they refuse then)
        self.delivered = 0
        self.dead_lettered = 0

    def post(self, url: str, event: Event, timeout: float, audience: str | None = None) -> Attempt:
        headers, body = to_http(event)
        if self.tokens is not None and audience is not None:
            headers["Authorization"] = self.tokens.authorization(audience)
        try:
            response = self.http.request("POST", url, body=body, headers=headers, timeout=timeout,
                                         preload_content=True)
        except urllib3.exceptions.HTTPError as exc:
            return Attempt(None, {}, b"", error=str(exc))
        return Attempt(response.status, dict(response.headers), response.data or b"")

    def deliver(self, event: Event, url: str, policy: Delivery, dlq: str | None,
                audience: str | None = None) -> Verdict:
        """How the delivery ended; RETRY only when the router stopped first (the event is not done)."""
        retry = 0
        while True:
            attempt = self.post(url, event, policy.timeout, audience)
            verdict = judge(attempt)
            if verdict is Verdict.REPLY:
                self.publish(reply_event(attempt))
            if verdict in (Verdict.DONE, Verdict.REPLY):
                self.delivered += 1
                return verdict
            if verdict is Verdict.RETRY and retry < policy.retries:
                if self.stop.is_set():
                    return Verdict.RETRY  # retries left: the next router delivers it, not the dead letters
                retry += 1
                wait = policy.wait_before(retry)
                log.info("retry %d of %s to %s in %.1f s (status %s)", retry, event.id, url, wait, attempt.status)
                if self.stop.wait(wait):
                    return Verdict.RETRY
                continue
            self.send_to_dead_letters(event, url, attempt, dlq)
            return Verdict.DEAD

    def send_to_dead_letters(self, event: Event, url: str, attempt: Attempt, dlq: str | None) -> None:
        self.dead_lettered += 1
        if dlq is None:
            log.error("delivery of %s to %s failed (status %s); no dead-letter topic", event.id, url, attempt.status)
            return
        log.warning("dead-lettering %s to %s after status %s", event.id, dlq, attempt.status)
        produce(self.producer, dlq, dead_letter(event, url, attempt))
        self.producer.flush(5)

    def publish(self, event: Event | None) -> None:
        if event is None:
            return
        produce(self.producer, topic_for_type(event.type).name, event)
        self.producer.poll(0)


@dataclass
class OffsetTracker:
    """Commits, per partition, only offsets below the oldest event still in flight."""

    in_flight: dict[tuple[str, int], set[int]] = field(default_factory=dict)
    highest: dict[tuple[str, int], int] = field(default_factory=dict)
    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def started(self, part: tuple[str, int], offset: int) -> None:
        with self.lock:
            self.in_flight.setdefault(part, set()).add(offset)
            self.highest[part] = max(offset, self.highest.get(part, -1))

    def finished(self, part: tuple[str, int], offset: int) -> None:
        with self.lock:
            self.in_flight.get(part, set()).discard(offset)

    def forget(self, parts: list[tuple[str, int]]) -> None:
        with self.lock:
            for part in parts:
                self.in_flight.pop(part, None)
                self.highest.pop(part, None)
                self.committed.pop(part, None)

    def to_commit(self) -> dict[tuple[str, int], int]:
        """Partitions whose committable offset moved since the last call."""
        with self.lock:
            ready = {}
            for part, top in self.highest.items():
                pending = self.in_flight.get(part)
                offset = min(pending) if pending else top + 1
                if offset != self.committed.get(part):
                    ready[part] = offset
                    self.committed[part] = offset
            return ready


class HandlerConsumer:
    """One consumer group for one handler, with LANES ordered lanes keyed by partition key."""

    def __init__(self, sub: Subscription, brokers: str, sender: Sender, stop: threading.Event):
        self.sub = sub
        self.brokers = brokers
        self.sender = sender
        self.stop = stop
        self.tracker = OffsetTracker()
        self.lanes: list[queue.Queue[Any]] = [queue.Queue(maxsize=1000) for _ in range(LANES)]
        self.threads: list[threading.Thread] = []
        self.assigned = threading.Event()

    def start(self) -> None:
        self.threads = [threading.Thread(target=self._consume, name=f"consume-{self.sub.name}", daemon=True)]
        self.threads += [
            threading.Thread(target=self._lane, args=(lane,), name=f"lane-{self.sub.name}-{n}", daemon=True)
            for n, lane in enumerate(self.lanes)
        ]
        for thread in self.threads:
            thread.start()

    def join(self, timeout: float) -> None:
        for thread in self.threads:
            thread.join(timeout)

    def _lane_for(self, key: bytes | None, offset: int) -> queue.Queue[Any]:
        if self.sub.delivery.ordered and key:
            return self.lanes[zlib.crc32(key) % LANES]
        return self.lanes[offset % LANES]

    def _consume(self) -> None:
        kafka = consumer(self.brokers, f"fusion.{self.sub.name}")

        def on_assign(_consumer: Any, partitions: list[Any]) -> None:
            self.assigned.set()

        def on_revoke(_consumer: Any, partitions: list[Any]) -> None:
            self._commit(kafka)
            self.tracker.forget([(p.topic, p.partition) for p in partitions])

        kafka.subscribe(list(self.sub.topics), on_assign=on_assign, on_revoke=on_revoke)
        last_commit = time.monotonic()
        try:
            while not self.stop.is_set():
                message = kafka.poll(0.2)
                if message is not None:
                    self._dispatch(message)
                if time.monotonic() - last_commit >= COMMIT_INTERVAL:
                    self._commit(kafka)
                    last_commit = time.monotonic()
            self._commit(kafka)
        finally:
            kafka.close()

    def _dispatch(self, message: Any) -> None:
        if message.error():
            log.debug("consumer %s: %s", self.sub.name, message.error())
            return
        part = (message.topic(), message.partition())
        self.tracker.started(part, message.offset())
        lane = self._lane_for(message.key(), message.offset())
        while not self.stop.is_set():
            try:
                lane.put((part, message), timeout=0.1)
                return
            except queue.Full:
                continue

    def _commit(self, kafka: Any) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        ready = self.tracker.to_commit()
        if ready:
            try:
                kafka.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in ready.items()], asynchronous=True)
            except KafkaException as exc:
                log.debug("commit skipped: %s", exc)

    def _lane(self, lane: queue.Queue[Any]) -> None:
        while not self.stop.is_set():
            try:
                part, message = lane.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                settled = self._handle(message)
            except Exception:
                log.exception("router failed on a record of %s", message.topic())
                settled = True
            if settled:  # an unsettled event stays in flight, so its offset is never committed
                self.tracker.finished(part, message.offset())

    def _handle(self, message: Any) -> bool:
        """False when the router stopped before the event was delivered or dead-lettered."""
        try:
            event = from_kafka(message.value(), message.headers())
        except Exception as exc:
            log.error("unreadable record on %s@%s: %s", message.topic(), message.offset(), exc)
            return True
        if event.type not in self.sub.types:
            return True  # the Trigger's type filter
        verdict = self.sender.deliver(event, self.sub.url, self.sub.delivery, message.topic() + DLQ_SUFFIX,
                                      self.sub.audience)
        return verdict is not Verdict.RETRY


def ping_event(spec: FunctionSpec, namespace: str = "local") -> Event:
    return Event({
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": ping_source_address(namespace, spec.name),
        "type": PING_TYPE,
        "time": now_iso(),
        "datacontenttype": "application/json",
    }, b"{}")


class Scheduler:
    """Fires scheduled functions on their cron schedule, or every `interval` seconds when given."""

    def __init__(self, specs: list[FunctionSpec], sender: Sender, base_url: Callable[[FunctionSpec], str],
                 stop: threading.Event, interval: float | None = None):
        self.jobs = [(spec, Cron(spec.schedule or "* * * * *")) for spec in specs if spec.kind == "scheduled"]
        self.sender = sender
        self.base_url = base_url
        self.stop = stop
        self.interval = interval
        self.fired = 0

    def fire(self, spec: FunctionSpec) -> None:
        self.fired += 1
        self.sender.deliver(ping_event(spec), self.base_url(spec) + spec.event_path, spec.policy,
                            dlq=None, audience=delivery_audience(spec.name))

    def run(self) -> None:
        last_minute = None
        while not self.stop.is_set():
            if self.interval:
                for spec, _ in self.jobs:
                    self.fire(spec)
                self.stop.wait(self.interval)
                continue
            now = datetime.now(UTC).replace(second=0, microsecond=0)
            if now != last_minute:
                last_minute = now
                for spec, cron in self.jobs:
                    if cron.matches(now):
                        threading.Thread(target=self.fire, args=(spec,), daemon=True).start()
            self.stop.wait(1.0)


class Router:
    def __init__(self, specs: list[FunctionSpec], brokers: str, *,
                 base_url: Callable[[FunctionSpec], str] = local_url, schedule_interval: float | None = None,
                 tokens: DeliveryTokens | None = None):
        self.stop = threading.Event()
        self.sender = Sender(producer(brokers), self.stop, tokens)
        self.consumers = [HandlerConsumer(sub, brokers, self.sender, self.stop)
                          for sub in subscriptions(specs, base_url)]
        self.scheduler = Scheduler(specs, self.sender, base_url, self.stop, schedule_interval)
        self._scheduler_thread = threading.Thread(target=self.scheduler.run, name="scheduler", daemon=True)

    def start(self) -> None:
        for handler in self.consumers:
            handler.start()
        self._scheduler_thread.start()

    def wait_until_assigned(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all(handler.assigned.wait(max(0.0, deadline - time.monotonic())) for handler in self.consumers)

    def close(self) -> None:
        self.stop.set()
        for handler in self.consumers:
            handler.join(5)
        self._scheduler_thread.join(5)
        self.sender.producer.flush(5)
