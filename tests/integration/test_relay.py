"""The outbox relay against the real database and broker."""

from __future__ import annotations

import threading
import time
import uuid

from fusion.binding import from_kafka
from fusion.contracts import InventoryReleased, StockLine
from fusion.db import pool
from fusion.kafka import consumer, ensure_topics
from fusion.local.process import ManagedProcess
from fusion.relay import OutboxRelay, PublishFailed
from fusion.topics import all_topic_names
from fusion.uow import unit_of_work

TOPIC = "inventory.released"


def stage_event(subject: str) -> str:
    payload = InventoryReleased(order_id=subject, items=[StockLine(sku="S", quantity=1)], reason="test")
    with unit_of_work("inventory") as uow:
        event = uow.publish(TOPIC, subject, payload)
    return event.id


def unpublished() -> int:
    with pool().connect() as conn:
        return int(conn.execute("SELECT count(*) FROM inventory.outbox WHERE published_at IS NULL").scalar_one())


def test_an_event_of_a_rolled_back_transaction_is_never_written(clean_db: str) -> None:
    payload = InventoryReleased(order_id="o", items=[], reason="test")
    try:
        with unit_of_work("inventory") as uow:
            uow.publish(TOPIC, "o", payload)
            raise RuntimeError("the change fails")
    except RuntimeError:
        pass
    assert unpublished() == 0


def test_relay_keeps_rows_while_the_broker_is_unreachable(clean_db: str) -> None:
    stage_event(f"down-{uuid.uuid4()}")
    relay = OutboxRelay(clean_db, "127.0.0.1:1", ["inventory"], flush_timeout=1.0)
    relay._kafka()
    try:
        try:
            relay.publish_pending()
        except PublishFailed:
            pass
        else:
            raise AssertionError("publishing to an unreachable broker must fail")
    finally:
        relay._producer.purge()
        relay.close()
    assert unpublished() == 1


def test_relay_publishes_right_after_commit_in_binary_mode(clean_db: str, broker: ManagedProcess) -> None:
    ensure_topics(broker.url, all_topic_names())
    reader = consumer(broker.url, f"relay-test-{uuid.uuid4()}")
    reader.subscribe([TOPIC])
    stop = threading.Event()
    relay = OutboxRelay(clean_db, broker.url, ["inventory"])
    worker = threading.Thread(target=relay.run, args=(stop, 30.0), daemon=True)
    worker.start()
    try:
        time.sleep(0.5)  # let the relay LISTEN; the long sweep interval proves the NOTIFY wakes it
        subject = f"order-{uuid.uuid4()}"
        event_id = stage_event(subject)
        found = None
        deadline = time.monotonic() + 20
        while found is None and time.monotonic() < deadline:
            message = reader.poll(0.2)
            if message is not None and not message.error() and message.key() == subject.encode():
                found = message
    finally:
        stop.set()
        worker.join(10)
        reader.close()
    assert found is not None
    event = from_kafka(found.value(), found.headers())
    assert event.id == event_id
    assert event.type == "com.fusioncommerce.inventory.released"
    assert event.source == "/fusioncommerce/inventory"
    headers = dict(found.headers())
    assert headers["ce_partitionkey"] == subject.encode()
    assert headers["content-type"] == b"application/json"
    assert unpublished() == 0
