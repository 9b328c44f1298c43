"""Dead letters: list what landed on `<topic>.dlq` and replay it to its topic once the cause is fixed."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from fusion import wakeup
from fusion.binding import Event, from_kafka
from fusion.config import settings
from fusion.kafka import consumer, produce, producer
from fusion.progress import Progress
from fusion.topics import DLQ_SUFFIX

ERROR_ATTRIBUTES = ("knativeerrordest", "knativeerrorcode", "knativeerrordata")
REPLAY_SEARCH_LIMIT = 10_000  # dead letters a replay by id reads at most, from the oldest


def topics_of(name: str) -> tuple[str, str]:
    """(event topic, dead-letter topic) for either name."""
    base = name.removesuffix(DLQ_SUFFIX)
    return base, base + DLQ_SUFFIX


def read_all(dlq_topic: str, group: str, idle: float = 2.0) -> Iterator[tuple[Any, Any, Event]]:
    """Every record of the topic from the group's position to the end (stops after `idle` s without one)."""
    kafka = consumer(settings().kafka_brokers, group, **{"enable.partition.eof": True})
    kafka.subscribe([dlq_topic])
    try:
        quiet = 0.0
        while quiet < idle:
            message = kafka.poll(0.25)
            if message is None or message.error():
                quiet += 0.25
                continue
            quiet = 0.0
            yield kafka, message, from_kafka(message.value(), message.headers())
    finally:
        kafka.close()


def list_dead_letters(name: str) -> int:
    _, dlq_topic = topics_of(name)
    letters = stored([dlq_topic])
    for letter in letters:
        event = letter.event
        attrs = event.attributes
        print(f"{letter.offset:>6}  {event.type}  id={event.id}  subject={event.subject or '-'}  "
              f"code={attrs.get('knativeerrorcode', '-')}  dest={attrs.get('knativeerrordest', '-')}")
    print(f"{len(letters)} dead letters on {dlq_topic}")
    return 0


def original(event: Event) -> Event:
    return Event({k: v for k, v in event.attributes.items() if k not in ERROR_ATTRIBUTES}, event.data)


def replay(name: str) -> int:
    """Re-publish each dead letter not replayed before to its topic (the replay group remembers the position)."""
    topic_name, dlq_topic = topics_of(name)
    kafka_producer = producer(settings().kafka_brokers)
    with Progress(f"replaying {dlq_topic}") as progress:
        for kafka, message, event in read_all(dlq_topic, f"fusion.dlq-replay.{topic_name}"):
            produce(kafka_producer, topic_name, original(event))
            if kafka_producer.flush(10) != 0:
                progress.close()
                print(f"broker did not acknowledge the replay of {event.id}; stopping")
                return 1
            wakeup.sender().published([topic_name])
            kafka.commit(message=message, asynchronous=False)
            progress.advance()
    print(f"replayed {progress.count} dead letters from {dlq_topic} to {topic_name}")
    return 0


@dataclass(frozen=True)
class Letter:
    """A record of a dead-letter topic."""

    topic: str
    partition: int
    offset: int
    event: Event


def stored(dlq_topics: Iterable[str], limit: int | None = None, timeout: float = 5.0) -> list[Letter]:
    """Up to `limit` dead letters of the topics (all, without one), oldest first per topic and the topics in
    the order given: read from each partition's first offset, without joining a consumer group (nothing is
    committed). A topic the broker does not have holds none."""
    order = {topic: index for index, topic in enumerate(dlq_topics)}
    with _reader() as kafka:
        spans = _within(_ranges(kafka, list(order), timeout), limit)
        letters = list(_records(kafka, spans, timeout))
    return sorted(letters, key=lambda letter: (order[letter.topic], letter.partition, letter.offset))


@contextlib.contextmanager
def _reader() -> Iterator[Any]:
    kafka = consumer(settings().kafka_brokers, f"fusion.dlq-read.{uuid.uuid4()}")
    try:
        yield kafka
    finally:
        kafka.close()


Span = tuple[str, int, int, int]  # topic, partition, first offset, end offset


def _ranges(kafka: Any, dlq_topics: list[str], timeout: float) -> list[Span]:
    """Each non-empty partition of the topics the broker has, with its first and end offsets."""
    from confluent_kafka import TopicPartition

    known = kafka.list_topics(timeout=timeout).topics
    spans = []
    for topic in dlq_topics:
        if topic not in known or known[topic].error is not None:
            continue
        for partition in sorted(known[topic].partitions):
            low, high = kafka.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
            if high > low:
                spans.append((topic, partition, low, high))
    return spans


def _within(spans: list[Span], limit: int | None) -> list[Span]:
    """The spans cut to the first `limit` records, in their order."""
    if limit is None:
        return spans
    cut: list[Span] = []
    left = limit
    for topic, partition, low, high in spans:
        if left <= 0:
            break
        cut.append((topic, partition, low, min(high, low + left)))
        left -= cut[-1][3] - low
    return cut


def _records(kafka: Any, spans: list[Span], timeout: float) -> Iterator[Letter]:
    """The records of the spans, as they arrive, until each span is read or `timeout` s pass quietly."""
    from confluent_kafka import TopicPartition

    if not spans:
        return
    kafka.assign([TopicPartition(topic, partition, low) for topic, partition, low, _ in spans])
    ends = {(topic, partition): high for topic, partition, _, high in spans}
    quiet = 0.0
    while ends and quiet < timeout:
        message = kafka.poll(0.1)
        if message is None or message.error():
            quiet += 0.1
            continue
        quiet = 0.0
        where = (message.topic(), message.partition())
        end = ends.get(where)
        if end is None or message.offset() >= end:
            continue  # past the span: read after it was cut or finished
        if message.offset() + 1 >= end:
            ends.pop(where)
        yield Letter(where[0], where[1], message.offset(), from_kafka(message.value(), message.headers()))


class NotDeadLettered(LookupError):
    """Ids a replay names that are not on the dead-letter topic."""

    def __init__(self, dlq_topic: str, missing: list[str]):
        super().__init__(f"not on {dlq_topic}: {', '.join(missing)}")
        self.dlq_topic = dlq_topic
        self.missing = missing


class SearchLimitReached(LookupError):
    """Ids a replay names that are not among the oldest dead letters it reads; the topic holds more."""

    def __init__(self, dlq_topic: str, missing: list[str], limit: int):
        super().__init__(f"not among the oldest {limit} dead letters on {dlq_topic}, which holds more: "
                         f"{', '.join(missing)}")
        self.dlq_topic = dlq_topic
        self.missing = missing
        self.limit = limit


def replay_events(name: str, event_ids: set[str], limit: int | None = None, timeout: float = 5.0) -> list[Event]:
    """Re-publish the dead letters with these ids to their topic (as they were before they failed); the events
    replayed. The topic is read from its oldest letter until every id is found, or `limit` letters were read
    (SearchLimitReached). Nothing is published when an id is not found (NotDeadLettered)."""
    topic_name, dlq_topic = topics_of(name)
    limit = REPLAY_SEARCH_LIMIT if limit is None else limit
    letters, searched_all = _find(dlq_topic, event_ids, limit, timeout)
    missing = sorted(event_ids - set(letters))
    if missing and not searched_all:
        raise SearchLimitReached(dlq_topic, missing, limit)
    if missing:
        raise NotDeadLettered(dlq_topic, missing)
    kafka_producer = producer(settings().kafka_brokers)
    events = [original(letters[event_id]) for event_id in sorted(event_ids)]
    for event in events:
        produce(kafka_producer, topic_name, event)
    if kafka_producer.flush(10) != 0:
        raise RuntimeError(f"the broker did not acknowledge the replay to {topic_name}")
    wakeup.sender().published([topic_name])
    return events


def _find(dlq_topic: str, event_ids: set[str], limit: int, timeout: float) -> tuple[dict[str, Event], bool]:
    """The dead letters with these ids among the topic's oldest `limit`, read no further than the last of
    them; and whether those were all the topic holds."""
    found: dict[str, Event] = {}
    with _reader() as kafka:
        spans = _ranges(kafka, [dlq_topic], timeout)
        for letter in _records(kafka, _within(spans, limit), timeout):
            if letter.event.id in event_ids:
                found[letter.event.id] = letter.event
                if len(found) == len(event_ids):
                    break
    return found, sum(high - low for _, _, low, high in spans) <= limit
