"""The local event router: what Knative Eventing does in the cluster, on a laptop.

Routing comes from the function registry (the same declarations the Triggers are rendered
from): one consumer group per handler, events of one partition key delivered in order while
different keys go in parallel, the handler's retry and backoff policy, `<topic>.dlq` after the
last retry, the Knative Kafka data plane's response rules, and scheduled functions fired on
their cron schedule as PingSources would.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import urllib3

from fusion import metrics
from fusion.auth import delivery_audience
from fusion.binding import Event, from_kafka, now_iso, to_http
from fusion.cron import Cron
from fusion.dataplane import Attempt, Verdict, dead_letter, judge, reply_event
from fusion.kafka import admin_client, consumer, ensure_topics, partition_ends, produce, producer
from fusion.registry import Delivery, FunctionSpec
from fusion.topics import DLQ_SUFFIX, PING_TYPE, all_topic_names, ping_source_address, topic, topic_for_type
from fusion.wakeup import WakeListener

if TYPE_CHECKING:
    from fusion.local.issuer import DeliveryTokens

log = logging.getLogger("fusion.router")
LANES = 8
COMMIT_INTERVAL = 0.2
TOPICS_CHECK_INTERVAL = 2.0  # at most one topic creation pass this often
PARTITIONS_CHECK_INTERVAL = 2.0
METADATA_TIMEOUT = 2.0
LAG_INTERVAL = 1.0  # seconds between two measurements of a handler's consumer lag
# With wake-ups (fusion.wakeup): a consumer that read nothing for QUIET_AFTER seconds, with nothing in flight,
# parks its partitions (gives up their assignment, keeping its place), so it sends the broker no fetches,
# until a wake-up names one of its topics. For records whose publisher sent no wake-up, the topic watcher
# reads the ends of all partitions in one request each pass, and a parked consumer whose place is behind an
# end resumes. (librdkafka's pause and resume would do, but a resumed partition is fetched again only after
# about half a second; one assigned again at once.)
QUIET_AFTER = 0.5
PAUSED_WAIT = 5.0  # a paused consumer's loop (commits, ends) turns this often; a wake-up ends the wait at once


@dataclass(frozen=True)
class Subscription:
    name: str
    url: str
    topics: tuple[str, ...]
    types: frozenset[str]
    delivery: Delivery
    audience: str  # of the delivery token the handler checks


def group_of(handler: str) -> str:
    """The consumer group of a handler's subscription."""
    return f"fusion.{handler}"


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


def delivery_outcome(verdict: Verdict, retries_left: bool) -> str:
    """How one attempt ended, as the delivery metrics count it."""
    if verdict in (Verdict.DONE, Verdict.REPLY):
        return metrics.DONE
    if verdict is Verdict.RETRY:
        return metrics.RETRIED if retries_left else metrics.DEAD_LETTERED
    return metrics.REJECTED


class Sender:
    """HTTP delivery with retries, backoff and dead letters, shared by events and pings."""

    def __init__(self, kafka_producer: Any, stop: threading.Event, tokens: DeliveryTokens | None = None,
                 twice: bool = False, woken: Callable[[list[str]], None] | None = None):
        self.http = urllib3.PoolManager(maxsize=LANES * 4, retries=False)
        self.producer = kafka_producer
        self.stop = stop
        self.tokens = tokens  # the sender identity handlers check; None sends none (they refuse then)
        self.twice = twice  # every delivered event is delivered once more, as a redelivery would
        self.delivered = 0
        self.dead_lettered = 0
        self.woken = woken  # told the topics of the replies it published, once the broker acknowledged them

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
                audience: str | None = None, handler: str = "") -> Verdict:
        """How the delivery ended; RETRY only when the router stopped first (the event is not done)."""
        retry = 0
        while True:
            started = time.perf_counter()
            attempt = self.post(url, event, policy.timeout, audience)
            verdict = judge(attempt)
            metrics.observe_delivery(handler, delivery_outcome(verdict, retry < policy.retries), retry + 1,
                                     time.perf_counter() - started)
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
                log.info("retry %d of %s to %s in %.1f s (status %s)", retry, event.id, url, wait, attempt.status,
                         extra={"fields": {"eventId": event.id, "handler": handler, "failedAttempt": retry}})
                if self.stop.wait(wait):
                    return Verdict.RETRY
                continue
            log.warning("%s gave up on %s after %d attempts", handler, event.id, retry + 1,
                        extra={"fields": {"eventId": event.id, "handler": handler, "failedAttempt": retry + 1,
                                          "deadLettered": True}})
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
        name = topic_for_type(event.type).name
        produce(self.producer, name, event, on_delivery=self._acknowledged)
        self.producer.poll(0)

    def _acknowledged(self, error: Any, message: Any) -> None:
        if error is None and self.woken is not None:
            self.woken([message.topic()])


@dataclass
class OffsetTracker:
    """Commits, per partition, only offsets below the oldest event still in flight.

    Each assignment of a partition has a generation of its own: a record read under an earlier one (its
    partition was dropped since, after a broker loss its offsets start at 0 again) neither settles the
    offset it shares with a record read now, nor is delivered."""

    in_flight: dict[tuple[str, int], set[int]] = field(default_factory=dict)
    highest: dict[tuple[str, int], int] = field(default_factory=dict)
    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    generations: dict[tuple[str, int], int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def started(self, part: tuple[str, int], offset: int) -> int:
        """The generation the record is read under."""
        with self.lock:
            self.in_flight.setdefault(part, set()).add(offset)
            self.highest[part] = max(offset, self.highest.get(part, -1))
            return self.generations.get(part, 0)

    def current(self, part: tuple[str, int], generation: int) -> bool:
        with self.lock:
            return self.generations.get(part, 0) == generation

    def finished(self, part: tuple[str, int], generation: int, offset: int) -> None:
        with self.lock:
            if self.generations.get(part, 0) == generation:
                self.in_flight.get(part, set()).discard(offset)

    def busy(self) -> bool:
        """Whether any record is still in flight."""
        with self.lock:
            return any(self.in_flight.values())

    def oldest_in_flight(self, part: tuple[str, int]) -> int | None:
        with self.lock:
            pending = self.in_flight.get(part)
            return min(pending) if pending else None

    def restart(self, parts: list[tuple[str, int]]) -> None:
        """Start `parts` over under a new generation, as they are assigned or dropped."""
        with self.lock:
            for part in parts:
                self.in_flight.pop(part, None)
                self.highest.pop(part, None)
                self.committed.pop(part, None)
                self.generations[part] = self.generations.get(part, 0) + 1

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


@dataclass(frozen=True)
class TopicsSeen:
    """One reading of the broker's topics, numbered: a consumer compares the number, asking the broker nothing."""

    generation: int = 0
    partitions: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))  # topic -> count
    losses: int = 0  # times the platform's topics were found missing and created again


def behind(places: Mapping[tuple[str, int], int], ends: Mapping[tuple[str, int], int]) -> bool:
    """Whether a partition holds a record past the place its consumer reads next (a place below 0 is the
    partition's start: behind once the partition holds anything)."""
    return any(ends.get(part, 0) > max(place, 0) for part, place in places.items())


def missing_topics(topics: Mapping[str, Any], names: Iterable[str]) -> list[str]:
    """The topics of `names` the broker does not have: absent or unknown to it. Another error (a leader not
    elected yet) passes, and the topic is still there."""
    from confluent_kafka import KafkaError

    return [name for name in names if name not in topics or (
        topics[name].error is not None and topics[name].error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART)]


def partition_counts(topics: Mapping[str, Any], previous: Mapping[str, int]) -> dict[str, int]:
    """Each present topic's partition count; a topic answered with a passing error keeps the count it had."""
    counts = {name: len(meta.partitions) for name, meta in topics.items() if meta.error is None}
    for name in set(topics) - set(counts) - set(missing_topics(topics, topics)):
        if name in previous:
            counts[name] = previous[name]
    return counts


class TopicRestorer:
    """Watches the broker's topics for all of a router's consumers, and creates the platform's topics again
    once they are missing.

    One listing every PARTITIONS_CHECK_INTERVAL seconds serves every consumer: it is published as `seen`,
    whose generation moves when a partition count or `losses` changes, and the partitions' ends as `ends`.
    A memory-only broker (the embedded one) forgets its topics and groups when it restarts. They are
    created here at once, with the partitions `fusion topics create` gives them (not the broker's
    auto-created count), and counted in `losses`: each consumer then reads its partitions again from their
    start (the lost broker's positions are gone).
    """

    def __init__(self, brokers: str, stop: threading.Event):
        self.brokers = brokers
        self.stop = stop
        self.names = all_topic_names()
        self.seen = TopicsSeen()
        self.ends: Mapping[tuple[str, int], int] = MappingProxyType({})  # partition -> high-water mark
        self.last_pass = -TOPICS_CHECK_INTERVAL
        self.thread = threading.Thread(target=self._watch, name="topic-watcher", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)

    def _watch(self) -> None:
        admin = admin_client(self.brokers)
        while not self.stop.is_set():
            self.check(admin)
            self.stop.wait(PARTITIONS_CHECK_INTERVAL)

    def check(self, admin: Any) -> None:
        """List the topics once, restore the missing ones, and publish what the broker has."""
        topics = self._list(admin)
        if topics is None:
            return
        losses = self.seen.losses
        if missing_topics(topics, self.names) and self._restore():
            losses += 1
            topics = self._list(admin) or topics
        counts = partition_counts(topics, self.seen.partitions)
        if counts != self.seen.partitions or losses != self.seen.losses:
            self.seen = TopicsSeen(self.seen.generation + 1, MappingProxyType(counts), losses)
        self._read_ends(admin, counts)

    def _read_ends(self, admin: Any, counts: Mapping[str, int]) -> None:
        from confluent_kafka import KafkaException

        parts = [(name, part) for name, count in counts.items() if name in self.names for part in range(count)]
        try:
            self.ends = MappingProxyType(partition_ends(admin, parts, METADATA_TIMEOUT))
        except KafkaException as exc:
            log.debug("ends of the partitions not read: %s", exc)

    def _list(self, admin: Any) -> Mapping[str, Any] | None:
        from confluent_kafka import KafkaException

        try:
            return dict(admin.list_topics(timeout=METADATA_TIMEOUT).topics)
        except KafkaException as exc:
            log.debug("topics not listed: %s", exc)
            return None

    def _restore(self) -> bool:
        """Whether topics were created; at most one pass every TOPICS_CHECK_INTERVAL seconds."""
        if time.monotonic() - self.last_pass < TOPICS_CHECK_INTERVAL:
            return False
        try:
            created = ensure_topics(self.brokers, self.names, timeout=3)
        except Exception as exc:
            log.info("topics not created, broker still unavailable: %s", exc)
            return False
        finally:
            self.last_pass = time.monotonic()
        if created:
            log.warning("the broker had lost %d topics (a restart?); created them again", len(created))
        return bool(created)


class HandlerConsumer:
    """One consumer group for one handler, with LANES ordered lanes keyed by partition key.

    It assigns itself every partition of its topics, and commits as the group, but does not join the
    group: the one router is its only member, and the local broker's group coordination is what a
    restart breaks (Tansu may keep a member that left as the group's leader, so a new one never gets
    partitions). It follows the partitions its router's TopicRestorer sees.
    """

    def __init__(self, sub: Subscription, brokers: str, sender: Sender, stop: threading.Event,
                 restorer: TopicRestorer, pauses: bool = False):
        self.sub = sub
        self.pauses = pauses  # whether it pauses when quiet: only when publishers send wake-ups
        self.woken = threading.Event()
        self.brokers = brokers
        self.sender = sender
        self.stop = stop
        self.restorer = restorer
        self.tracker = OffsetTracker()
        self.lanes: list[queue.Queue[Any]] = [queue.Queue(maxsize=1000) for _ in range(LANES)]
        self.threads: list[threading.Thread] = []
        self.assigned = threading.Event()
        self.lag = 0  # messages of its topics its group has not committed yet, as the broker tells
        self.paused = False  # its partitions parked: not assigned in librdkafka, read again from `next_offsets`
        self.next_offsets: dict[tuple[str, int], int] = {}  # per partition, the offset it reads next

    def start(self) -> None:
        self.threads = [threading.Thread(target=self._consume, name=f"consume-{self.sub.name}", daemon=True)]
        self.threads += [
            threading.Thread(target=self._lane, args=(lane,), name=f"lane-{self.sub.name}-{n}", daemon=True)
            for n, lane in enumerate(self.lanes)
        ]
        for thread in self.threads:
            thread.start()

    def join(self, timeout: float) -> None:
        """Wait for its threads once the router's `stop` is set; an idle lane is woken by an item of None."""
        for lane in self.lanes:
            with contextlib.suppress(queue.Full):  # a full lane is not waiting: it sees `stop` at its next item
                lane.put_nowait(None)
        for thread in self.threads:
            thread.join(timeout)

    def _lane_for(self, key: bytes | None, offset: int) -> queue.Queue[Any]:
        if self.sub.delivery.ordered and key:
            return self.lanes[zlib.crc32(key) % LANES]
        return self.lanes[offset % LANES]

    def _consume(self) -> None:
        kafka = consumer(self.brokers, group_of(self.sub.name))
        assigned: set[tuple[str, int]] = set()
        followed, losses = -1, self.restorer.seen.losses
        from_start = False  # after a loss: what the broker holds as committed was sent for the lost topic
        last_commit = last_lag = time.monotonic() - COMMIT_INTERVAL
        quiet_at = time.monotonic() + QUIET_AFTER  # when it may park, unless it reads or is woken before
        try:
            while not self.stop.is_set():
                seen = self.restorer.seen
                if seen.generation != followed:
                    if seen.losses != losses:
                        losses, from_start = seen.losses, True
                        self._unassign(kafka, assigned, set(assigned))  # positions of a broker that is gone
                    if self._follow_partitions(kafka, assigned, seen.partitions, from_start):
                        followed, from_start = seen.generation, False
                        quiet_at = self._resume(kafka, assigned, QUIET_AFTER)
                if self.paused:
                    if self.woken.wait(PAUSED_WAIT) or behind(self._places(assigned), self.restorer.ends):
                        quiet_at = self._resume(kafka, assigned, QUIET_AFTER)
                    message = kafka.poll(0)  # its callbacks; a record still queued is delivered, never dropped
                    if message is not None:
                        self._dispatch(message)
                        quiet_at = self._resume(kafka, assigned, QUIET_AFTER)
                else:
                    message = kafka.poll(0.2)
                    if message is not None:
                        self._dispatch(message)
                        quiet_at = time.monotonic() + QUIET_AFTER
                    elif self.woken.is_set():
                        self.woken.clear()
                        quiet_at = time.monotonic() + QUIET_AFTER
                    elif self.pauses and assigned and time.monotonic() >= quiet_at and not self.tracker.busy():
                        self._pause(kafka, assigned)
                if time.monotonic() - last_commit >= COMMIT_INTERVAL:
                    self._commit(kafka)
                    last_commit = time.monotonic()
                if time.monotonic() - last_lag >= LAG_INTERVAL and not self.paused:  # parked: nothing fetched
                    self._measure_lag(kafka)
                    last_lag = time.monotonic()
            self._commit(kafka)
        finally:
            kafka.close()

    def wake(self) -> None:
        """Records arrived on one of its topics (a wake-up, acknowledged by the broker before it was sent)."""
        self.woken.set()

    def _pause(self, kafka: Any, assigned: set[tuple[str, int]]) -> None:
        """Park its partitions until woken, or until the topic watcher sees records past its place."""
        from confluent_kafka import TopicPartition

        self._measure_lag(kafka)  # the last figure until it fetches again: parked, it reads no high-water marks
        kafka.incremental_unassign([TopicPartition(t, p) for t, p in sorted(assigned)])
        self.paused = True

    def _places(self, assigned: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return {part: self.next_offsets.get(part, -1) for part in assigned}

    def _resume(self, kafka: Any, assigned: set[tuple[str, int]], for_seconds: float) -> float:
        """Fetch again, each partition from where it stopped; when it may park next. A wake-up sent before this
        is read by the fetches that follow, since its records were acknowledged before it was sent."""
        from confluent_kafka import TopicPartition

        self.woken.clear()
        if self.paused and assigned:
            kafka.incremental_assign([TopicPartition(t, p, self.next_offsets[(t, p)]) for t, p in sorted(assigned)])
        self.paused = False
        return time.monotonic() + for_seconds

    def _follow_partitions(self, kafka: Any, assigned: set[tuple[str, int]], counts: Mapping[str, int],
                           from_start: bool) -> bool:
        """Assign the partitions of the handler's topics that appeared, from the group's committed offsets
        (the topic's start when none, or `from_start`), and drop the ones that vanished; False when they are
        to be tried again.

        A commit sent as the broker went down can reach the restarted one: `from_start` after a loss, as
        its topics are new, else that commit would skip their first records."""
        from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition

        present = {(name, part) for name in self.sub.topics for part in range(counts.get(name, 0))}
        self._unassign(kafka, assigned, assigned - present)
        new = sorted(present - assigned)
        if not new:
            return True
        starts = [TopicPartition(t, p, OFFSET_BEGINNING) for t, p in new]
        if not from_start:
            try:
                committed = kafka.committed([TopicPartition(t, p) for t, p in new], timeout=METADATA_TIMEOUT)
            except KafkaException as exc:
                log.debug("committed offsets of %s not read: %s", self.sub.name, exc)
                return False
            starts = [TopicPartition(c.topic, c.partition, self._start_of(kafka, c, OFFSET_BEGINNING))
                      for c in committed]
        self.tracker.restart(new)
        self._resume(kafka, assigned, QUIET_AFTER)  # assigned wholly, or parked wholly: never in part
        kafka.incremental_assign(starts)
        self.next_offsets.update({(tp.topic, tp.partition): tp.offset for tp in starts})
        assigned.update(new)
        self.assigned.set()
        return True

    def _start_of(self, kafka: Any, committed: Any, beginning: int) -> int:
        """Where to read a partition from: its committed offset, else its start. An offset past the
        partition's end was committed to a broker that has since restarted empty (a commit can reach the
        new broker before the loss is noticed): it would skip the new broker's first records, so read all."""
        from confluent_kafka import KafkaException

        if committed.offset < 0:
            return beginning
        try:
            _, high = kafka.get_watermark_offsets(committed, timeout=METADATA_TIMEOUT, cached=False)
        except KafkaException as exc:
            log.debug("end of %s[%d] not read: %s", committed.topic, committed.partition, exc)
            return int(committed.offset)
        if committed.offset > high:
            log.warning("%s: committed offset %d of %s[%d] is past its end %d (a restarted broker); reading it "
                        "from the start", self.sub.name, committed.offset, committed.topic, committed.partition, high)
            return beginning
        return int(committed.offset)

    def _unassign(self, kafka: Any, assigned: set[tuple[str, int]], parts: set[tuple[str, int]]) -> None:
        """Drop `parts` without committing: after a broker loss their offsets would be the lost broker's."""
        if not parts:
            return
        from confluent_kafka import TopicPartition

        if not self.paused:  # parked partitions are not assigned in librdkafka
            kafka.incremental_unassign([TopicPartition(t, p) for t, p in parts])
        self.tracker.restart(list(parts))
        assigned.difference_update(parts)

    def _dispatch(self, message: Any) -> None:
        if message.error():
            log.debug("consumer %s: %s", self.sub.name, message.error())
            return
        part = (message.topic(), message.partition())
        self.next_offsets[part] = message.offset() + 1
        generation = self.tracker.started(part, message.offset())
        lane = self._lane_for(message.key(), message.offset())
        while not self.stop.is_set():
            try:
                lane.put((part, generation, message), timeout=0.1)
                return
            except queue.Full:
                continue

    def _measure_lag(self, kafka: Any) -> None:
        """High-water offsets minus the first offset not yet committable, over the assigned partitions.

        Both are known here without asking the broker: the high-water mark comes with every fetch, and what
        is committed next is the oldest event in flight, else the consumer's position."""
        from confluent_kafka import KafkaException

        try:
            lag = 0
            for part in kafka.assignment():
                low, high = kafka.get_watermark_offsets(part, cached=True)
                if high >= 0:  # nothing fetched yet: no high-water mark known
                    lag += max(0, high - self._first_unsettled(kafka, part, low))
        except KafkaException as exc:
            log.debug("lag of %s not measured: %s", self.sub.name, exc)
            return
        self.lag = lag

    def _first_unsettled(self, kafka: Any, part: Any, low: int) -> int:
        oldest = self.tracker.oldest_in_flight((part.topic, part.partition))
        if oldest is not None:
            return oldest
        (position,) = kafka.position([part])
        return int(position.offset) if position.offset >= 0 else max(low, 0)

    def _commit(self, kafka: Any) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        ready = self.tracker.to_commit()
        if ready:
            try:
                kafka.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in ready.items()], asynchronous=True)
            except KafkaException as exc:
                log.debug("commit skipped: %s", exc)

    def _lane(self, lane: queue.Queue[Any]) -> None:
        while True:
            item = lane.get()  # no timeout: an idle router's hundreds of lanes would otherwise wake ten times a second
            if item is None or self.stop.is_set():
                return
            part, generation, message = item
            if not self.tracker.current(part, generation):
                continue  # its partition was dropped since: it is read again where the new assignment starts
            try:
                settled = self._handle(message)
            except Exception:
                log.exception("router failed on a record of %s", message.topic())
                settled = True
            if settled:  # an unsettled event stays in flight, so its offset is never committed
                self.tracker.finished(part, generation, message.offset())

    def _handle(self, message: Any) -> bool:
        """False when the router stopped before the event was delivered or dead-lettered."""
        try:
            event = from_kafka(message.value(), message.headers())
        except Exception as exc:
            log.error("unreadable record on %s@%s: %s", message.topic(), message.offset(), exc)
            return True
        if event.type not in self.sub.types:
            return True  # the Trigger's type filter
        for _ in range(2 if self.sender.twice else 1):
            verdict = self.sender.deliver(event, self.sub.url, self.sub.delivery, message.topic() + DLQ_SUFFIX,
                                          self.sub.audience, handler=self.sub.name)
            if verdict not in (Verdict.DONE, Verdict.REPLY):
                break
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
                            dlq=None, audience=delivery_audience(spec.name), handler=spec.name)

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
                 tokens: DeliveryTokens | None = None, deliver_twice: bool = False,
                 wake_address: tuple[str, int] | None = None):
        self.stop = threading.Event()
        self.sender = Sender(producer(brokers), self.stop, tokens, deliver_twice, woken=self.wake)
        self.restorer = TopicRestorer(brokers, self.stop)
        self.consumers = [HandlerConsumer(sub, brokers, self.sender, self.stop, self.restorer,
                                          pauses=wake_address is not None)
                          for sub in subscriptions(specs, base_url)]
        self.listener = WakeListener(wake_address, self.wake, self.stop) if wake_address is not None else None
        self.scheduler = Scheduler(specs, self.sender, base_url, self.stop, schedule_interval)
        self._scheduler_thread = threading.Thread(target=self.scheduler.run, name="scheduler", daemon=True)
        self._acks_thread = threading.Thread(target=self._serve_acks, name="producer-acks", daemon=True)

    def wake(self, topics: Iterable[str]) -> None:
        """Resume the consumers of `topics`, which just received records."""
        named = set(topics)
        for handler in self.consumers:
            if named.intersection(handler.sub.topics):
                handler.wake()

    def start(self) -> None:
        if self.listener is not None:
            self.listener.start()
        self.restorer.start()
        for handler in self.consumers:
            handler.start()
        self._scheduler_thread.start()
        self._acks_thread.start()

    def _serve_acks(self) -> None:
        """The producer's delivery reports, as they come: a reply wakes the consumers of its topic."""
        while not self.stop.is_set():
            self.sender.producer.poll(0.5)

    def lag(self) -> dict[str, int]:
        """Each handler's consumer lag, as last measured."""
        return {handler.sub.name: handler.lag for handler in self.consumers}

    def register_metrics(self) -> None:
        """Each handler's consumer lag as a gauge, read on each scrape."""
        metrics.register_gauges(metrics.Gauges(
            metrics.CONSUMER_LAG, "messages a handler's consumer group has not committed yet", ["handler", "group"],
            lambda: {(name, group_of(name)): float(lag) for name, lag in self.lag().items()}))

    def wait_until_assigned(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all(handler.assigned.wait(max(0.0, deadline - time.monotonic())) for handler in self.consumers)

    def close(self) -> None:
        self.stop.set()
        for handler in self.consumers:
            handler.woken.set()  # a parked consumer's wait ends at once, so it sees `stop`
        for handler in self.consumers:
            handler.join(5)
        self.restorer.join(5)
        if self.listener is not None:
            self.listener.join(5)
        self._scheduler_thread.join(5)
        self._acks_thread.join(5)
        self.sender.producer.flush(5)
