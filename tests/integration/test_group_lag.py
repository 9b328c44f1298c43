"""A consumer group's lag as the relay exports it for the cluster's Triggers, read from the real broker."""

from __future__ import annotations

import uuid

from confluent_kafka import TopicPartition

from fusion.kafka import consumer, ensure_topics, group_lag, producer
from fusion.local.process import ManagedProcess
from fusion.waiting import wait_until


def test_lag_is_the_high_water_mark_minus_the_groups_commit(broker: ManagedProcess) -> None:
    topic_name = f"lag-{uuid.uuid4().hex[:8]}"
    ensure_topics(broker.url, [topic_name])
    writer = producer(broker.url)
    for n in range(5):  # one record per request: the embedded broker gives a whole batch a single offset
        writer.produce(topic_name, value=f"record {n}".encode())
        writer.flush(10)
    group, idle = f"lagging-{uuid.uuid4().hex[:8]}", f"idle-{uuid.uuid4().hex[:8]}"
    reader = consumer(broker.url, group)
    try:
        reader.commit(offsets=[TopicPartition(topic_name, 0, 2)], asynchronous=False)
    finally:
        reader.close()
    lags = wait_until(lambda: group_lag(broker.url, [group, idle]), 30, 0.5, "the group's committed offset")
    assert lags == {group: 3}  # two of five consumed; the group that committed nothing is left out
