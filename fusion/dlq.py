"""Dead letters: list what landed on `<topic>.dlq` and replay it to its topic once the cause is fixed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from fusion.binding import Event, from_kafka
from fusion.config import settings
from fusion.kafka import consumer, produce, producer
from fusion.progress import Progress
from fusion.topics import DLQ_SUFFIX

ERROR_ATTRIBUTES = ("knativeerrordest", "knativeerrorcode", "knativeerrordata")


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
    count = 0
    for _kafka, message, event in read_all(dlq_topic, f"fusion.dlq-list.{uuid.uuid4()}"):
        count += 1
        attrs = event.attributes
        print(f"{message.offset():>6}  {event.type}  id={event.id}  subject={event.subject or '-'}  "
              f"code={attrs.get('knativeerrorcode', '-')}  dest={attrs.get('knativeerrordest', '-')}")
    print(f"{count} dead letters on {dlq_topic}")
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
            kafka.commit(message=message, asynchronous=False)
            progress.advance()
    print(f"replayed {progress.count} dead letters from {dlq_topic} to {topic_name}")
    return 0


def stored(dlq_topic: str, limit: int, timeout: float = 5.0) -> list[tuple[int, int, Event]]:
    """Up to `limit` dead letters of the topic, oldest first, as (partition, offset, event): read from each
    partition's first offset to its end, without joining a consumer group (nothing is committed)."""
    from confluent_kafka import TopicPartition

    kafka = consumer(settings().kafka_brokers, f"fusion.dlq-read.{uuid.uuid4()}")
    try:
        partitions = kafka.list_topics(dlq_topic, timeout=timeout).topics[dlq_topic].partitions
        ends: dict[int, int] = {}
        starts = []
        for partition in partitions:
            low, high = kafka.get_watermark_offsets(TopicPartition(dlq_topic, partition), timeout=timeout)
            if high > low:
                ends[partition] = high
                starts.append(TopicPartition(dlq_topic, partition, low))
        found: list[tuple[int, int, Event]] = []
        if starts:
            kafka.assign(starts)
            found = _read_until(kafka, ends, limit, timeout)
        return sorted(found, key=lambda letter: (letter[0], letter[1]))
    finally:
        kafka.close()


def _read_until(kafka: Any, ends: dict[int, int], limit: int, timeout: float) -> list[tuple[int, int, Event]]:
    """Records until every partition reached its end offset, `limit` were read, or `timeout` s passed quietly."""
    found: list[tuple[int, int, Event]] = []
    quiet = 0.0
    while ends and len(found) < limit and quiet < timeout:
        message = kafka.poll(0.1)
        if message is None or message.error():
            quiet += 0.1
            continue
        quiet = 0.0
        found.append((message.partition(), message.offset(), from_kafka(message.value(), message.headers())))
        if message.offset() + 1 >= ends.get(message.partition(), 0):
            ends.pop(message.partition(), None)
    return found


class NotDeadLettered(LookupError):
    """Ids a replay names that are not on the dead-letter topic."""

    def __init__(self, dlq_topic: str, missing: list[str]):
        super().__init__(f"not on {dlq_topic}: {', '.join(missing)}")
        self.dlq_topic = dlq_topic
        self.missing = missing


def replay_events(name: str, event_ids: set[str]) -> list[Event]:
    """Re-publish the dead letters with these ids to their topic (as they were before they failed); the events
    replayed. Nothing is published when one of the ids is not on the dead-letter topic (NotDeadLettered)."""
    topic_name, dlq_topic = topics_of(name)
    letters = {event.id: event for _, _, event in stored(dlq_topic, limit=10_000)}
    missing = sorted(event_ids - set(letters))
    if missing:
        raise NotDeadLettered(dlq_topic, missing)
    kafka_producer = producer(settings().kafka_brokers)
    events = [original(letters[event_id]) for event_id in sorted(event_ids)]
    for event in events:
        produce(kafka_producer, topic_name, event)
    if kafka_producer.flush(10) != 0:
        raise RuntimeError(f"the broker did not acknowledge the replay to {topic_name}")
    return events
