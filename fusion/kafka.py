"""Kafka clients (confluent-kafka) with the settings this platform relies on, and topic creation."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from fusion.binding import Event, to_kafka
from fusion.config import ConfigError

log = logging.getLogger("fusion.kafka")
DeliveryCallback = Callable[[Any, Any], None]
PROTOCOLS = ("plaintext", "ssl", "sasl_ssl", "sasl_plaintext")
MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


def security(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """librdkafka's TLS and SASL settings from the environment; plaintext is for development only."""
    env = os.environ if env is None else env
    environment = env.get("FUSION_ENV", "").strip().lower() or "development"
    protocol = env.get("KAFKA_SECURITY_PROTOCOL", "").strip().lower() or "plaintext"
    if protocol not in PROTOCOLS:
        raise ConfigError(f"KAFKA_SECURITY_PROTOCOL must be one of {', '.join(PROTOCOLS)}; got {protocol!r}")
    if environment != "development" and protocol != "sasl_ssl":
        raise ConfigError(f"KAFKA_SECURITY_PROTOCOL must be sasl_ssl outside development (FUSION_ENV={environment})")
    config = {"security.protocol": protocol}
    if protocol.startswith("sasl"):
        mechanism = env.get("KAFKA_SASL_MECHANISM", "").strip().upper() or MECHANISMS[0]
        if mechanism not in MECHANISMS:
            raise ConfigError(f"KAFKA_SASL_MECHANISM must be one of {', '.join(MECHANISMS)}; got {mechanism!r}")
        user, password = env.get("KAFKA_SASL_USERNAME", "").strip(), env.get("KAFKA_SASL_PASSWORD", "")
        if not user or not password:
            raise ConfigError("KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD must be set for SASL")
        config.update({"sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password})
    if protocol.endswith("ssl") and env.get("KAFKA_SSL_CA_LOCATION", "").strip():
        config["ssl.ca.location"] = env["KAFKA_SSL_CA_LOCATION"].strip()
    return config


def produce(kafka: Producer, topic: str, event: Event, on_delivery: DeliveryCallback | None = None) -> None:
    """Queue `event` on `topic` in binary content mode (record key = partition key); the caller flushes."""
    message = to_kafka(event)
    if on_delivery is None:
        kafka.produce(topic, value=message.value, key=message.key, headers=message.headers)
    else:
        kafka.produce(topic, value=message.value, key=message.key, headers=message.headers, on_delivery=on_delivery)


def producer(brokers: str, **overrides: Any) -> Producer:
    config: dict[str, Any] = {
        "bootstrap.servers": brokers,
        **security(),
        "enable.idempotence": False,
        "acks": "all",
        "linger.ms": 1,
        # A record that cannot be delivered in time fails fast, so its outbox row stays unpublished
        # and is retried by the relay, instead of waiting in librdkafka's queue.
        "message.timeout.ms": 5000,
        "socket.timeout.ms": 5000,
        "reconnect.backoff.max.ms": 1000,
        "topic.metadata.refresh.interval.ms": 5000,
        # Topics come from ensure_topics with their partition count; a broker that auto-creates them on a
        # producer's metadata request (Tansu after a restart) would give them its own count.
        "allow.auto.create.topics": False,
    }
    config.update(overrides)
    return Producer(config)


def consumer(brokers: str, group: str, **overrides: Any) -> Consumer:
    config: dict[str, Any] = {
        "bootstrap.servers": brokers,
        **security(),
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        # The broker holds a group join for about session.timeout.ms / 2 (23 s with the defaults).
        "session.timeout.ms": 2000,
        "heartbeat.interval.ms": 500,
        "max.poll.interval.ms": 10000,
        # The local broker does not always answer a waiting fetch when data arrives, so a long wait
        # is paid as latency: 25 ms keeps one event hop near 10 ms (p50). The router pauses the consumers
        # of quiet topics (fusion.wakeup), so an idle platform does not pay for the short wait.
        "fetch.wait.max.ms": 25,
        "reconnect.backoff.max.ms": 1000,
        # The router's topic watcher follows the partitions; this refresh only finds moved leaders.
        "topic.metadata.refresh.interval.ms": 60000,
        "allow.auto.create.topics": False,
    }
    config.update(overrides)
    return Consumer(config)


def admin_client(brokers: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": brokers, **security(), "socket.timeout.ms": 5000})


def ensure_topics(brokers: str, names: Iterable[str], partitions: int = 1, timeout: float = 10.0) -> list[str]:
    """Create the topics that do not exist yet; returns the ones created."""
    admin = admin_client(brokers)
    existing = set(admin.list_topics(timeout=timeout).topics)
    missing = [name for name in names if name not in existing]
    if not missing:
        return []
    futures = admin.create_topics([NewTopic(name, partitions, 1) for name in missing], request_timeout=timeout)
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
            created.append(name)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    log.info("created topics %s", created)
    return created


def group_lag(brokers: str, groups: Iterable[str], timeout: float = 5.0) -> dict[str, int]:
    """Each consumer group's lag: the high-water offsets of the partitions it committed on, minus its commits.

    A group that committed nothing yet is left out (the Knative Kafka Broker creates a Trigger's group on
    its first delivery)."""
    from confluent_kafka import ConsumerGroupTopicPartitions

    admin = admin_client(brokers)
    lags: dict[str, int] = {}
    for group in groups:
        future = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)],
                                                   request_timeout=timeout)[group]
        committed = [part for part in future.result(timeout=timeout).topic_partitions if part.offset >= 0]
        if not committed:
            continue
        highs = partition_ends(admin, [(p.topic, p.partition) for p in committed], timeout)
        lags[group] = sum(max(0, highs[(p.topic, p.partition)] - p.offset) for p in committed)
    return lags


def partition_ends(admin: AdminClient, parts: Iterable[tuple[str, int]], timeout: float) -> dict[tuple[str, int], int]:
    """Each partition's high-water mark (the offset its next record gets), in one request per broker."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

    newest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
    futures = admin.list_offsets({TopicPartition(t, p): newest for t, p in parts}, request_timeout=timeout)
    return {(part.topic, part.partition): int(future.result(timeout=timeout).offset)
            for part, future in futures.items()}
