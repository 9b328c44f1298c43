"""Dead letters: list what landed on `<topic>.dlq` and replay it to its topic once the cause is fixed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from fusion.binding import Event, from_kafka
from fusion.config import settings
from fusion.kafka import consumer, produce, producer
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
    count = 0
    for kafka, message, event in read_all(dlq_topic, f"fusion.dlq-replay.{topic_name}"):
        produce(kafka_producer, topic_name, original(event))
        if kafka_producer.flush(10) != 0:
            print(f"broker did not acknowledge the replay of {event.id}; stopping")
            return 1
        kafka.commit(message=message, asynchronous=False)
        count += 1
    print(f"replayed {count} dead letters from {dlq_topic} to {topic_name}")
    return 0
