"""The outbox relay against the real database and broker."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import TopicPartition
from psycopg.conninfo import conninfo_to_dict
from support import free_port

from fusion import config, db
from fusion.binding import from_kafka
from fusion.config import to_libpq_url
from fusion.contracts import InventoryReleased, StockLine
from fusion.db import pool
from fusion.kafka import consumer, ensure_topics
from fusion.local.postgres import start_postgres
from fusion.local.process import ManagedProcess
from fusion.migrate import upgrade
from fusion.relay import OutboxRelay, PublishFailed
from fusion.topics import all_topic_names
from fusion.uow import unit_of_work
from fusion.waiting import wait_until

TOPIC = "inventory.released"
RELAY_APP = "relay-under-test"


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


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    wait_until(condition, timeout, 0.05, "the relay")


def topic_end(brokers: str) -> int:
    reader = consumer(brokers, f"relay-test-{uuid.uuid4()}")
    try:
        return int(reader.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=10)[1])
    finally:
        reader.close()


def published_keys(brokers: str, start: int) -> list[str]:
    """The keys of every record on the topic from offset `start` to its end."""
    reader = consumer(brokers, f"relay-test-{uuid.uuid4()}")
    end = topic_end(brokers)
    reader.assign([TopicPartition(TOPIC, 0, start)])
    keys: list[str] = []
    deadline = time.monotonic() + 20
    try:
        while start + len(keys) < end and time.monotonic() < deadline:
            message = reader.poll(0.2)
            if message is not None and not message.error():
                keys.append((message.key() or b"").decode())
    finally:
        reader.close()
    assert start + len(keys) == end, "the topic was not read to its end"
    return keys


@contextmanager
def relay_database_down(database_url: str) -> Iterator[None]:
    """No new connections to the database, and the relay's are terminated; the test's own pool stays."""
    url = to_libpq_url(database_url)
    name = conninfo_to_dict(url)["dbname"]
    with psycopg.connect(url, dbname="postgres", autocommit=True) as admin:  # a database may not close itself
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        try:
            killed = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                   "WHERE application_name = %s", (RELAY_APP,)).fetchone()
            assert killed is not None and killed[0] >= 2  # its listener and its publishing connection
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')


def test_relay_survives_a_database_outage_and_publishes_each_event_once(
    clean_db: str, broker: ManagedProcess, caplog: pytest.LogCaptureFixture
) -> None:
    ensure_topics(broker.url, all_topic_names())
    start = topic_end(broker.url)
    subjects = [f"outage-{n}-{uuid.uuid4()}" for n in range(3)]
    stop = threading.Event()
    relay = OutboxRelay(f"{clean_db}?application_name={RELAY_APP}", broker.url, ["inventory"])
    worker = threading.Thread(target=relay.run, args=(stop, 0.5), daemon=True)
    worker.start()

    def outage_reports() -> int:
        return sum("database unavailable for the relay" in r.getMessage() for r in caplog.records)

    caplog.set_level(logging.WARNING, logger="fusion.relay")
    try:
        stage_event(subjects[0])
        wait_for(lambda: unpublished() == 0)
        with relay_database_down(clean_db):
            stage_event(subjects[1])  # committed while the relay cannot reach the database
            wait_for(lambda: outage_reports() >= 2)  # it failed to reconnect at least once
            assert unpublished() == 1
        wait_for(lambda: unpublished() == 0)
        stage_event(subjects[2])
        wait_for(lambda: unpublished() == 0)
    finally:
        stop.set()
        worker.join(10)
    keys = published_keys(broker.url, start)
    assert sorted(key for key in keys if key in subjects) == sorted(subjects)


@pytest.fixture
def own_postgres(tmp_path: Path, database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[ManagedProcess]]:
    """A PostgreSQL of the test's own, to be stopped and started again; DATABASE_URL points at it meanwhile."""
    server = [start_postgres(tmp_path / "pg", free_port(), log_file=tmp_path / "pg.log")]
    upgrade(server[0].url)
    monkeypatch.setenv("DATABASE_URL", server[0].url)
    config.settings.cache_clear()
    db.reset_pool()
    yield server
    db.reset_pool()
    server[0].stop()
    monkeypatch.undo()
    config.settings.cache_clear()


def test_relay_survives_a_postgres_restart_and_publishes_each_event_once(
    own_postgres: list[ManagedProcess], broker: ManagedProcess, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    ensure_topics(broker.url, all_topic_names())
    start = topic_end(broker.url)
    subjects = [f"restart-{n}-{uuid.uuid4()}" for n in range(3)]
    server = own_postgres
    port = int(server[0].url.rsplit(":", 1)[1].split("/")[0])
    stop = threading.Event()
    relay = OutboxRelay(server[0].url, broker.url, ["inventory"])
    worker = threading.Thread(target=relay.run, args=(stop, 0.5), daemon=True)
    worker.start()
    caplog.set_level(logging.WARNING, logger="fusion.relay")
    try:
        stage_event(subjects[0])
        wait_for(lambda: unpublished() == 0)
        server[0].stop()
        wait_for(lambda: sum("database unavailable for the relay" in r.getMessage() for r in caplog.records) >= 2)
        server[0] = start_postgres(tmp_path / "pg", port, log_file=tmp_path / "pg-again.log")
        db.reset_pool()  # the test's own connections died with the server
        stage_event(subjects[1])
        wait_for(lambda: unpublished() == 0)
        stage_event(subjects[2])
        wait_for(lambda: unpublished() == 0)
    finally:
        stop.set()
        worker.join(10)
    keys = published_keys(broker.url, start)
    assert sorted(key for key in keys if key in subjects) == sorted(subjects)


def test_relay_wakes_the_router_with_the_topics_it_published_once_acknowledged(
    clean_db: str, broker: ManagedProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fusion import wakeup

    ensure_topics(broker.url, all_topic_names())
    heard: list[list[str]] = []
    stop = threading.Event()
    listener = wakeup.WakeListener(("127.0.0.1", 0), heard.append, stop)
    listener.start()
    monkeypatch.setattr(wakeup, "_sender", wakeup.WakeSender(("127.0.0.1", listener.port)))
    relay = OutboxRelay(clean_db, broker.url, ["inventory"])
    try:
        stage_event(f"order-{uuid.uuid4()}")
        stage_event(f"order-{uuid.uuid4()}")
        assert relay.publish_pending(["inventory"]) == 2
        wait_for(lambda: heard == [[TOPIC]])  # one wake-up per batch, each topic once
        assert relay.publish_pending(["inventory"]) == 0
    finally:
        relay.close()
        stop.set()
        listener.join(5)
    assert heard == [[TOPIC]], "nothing published, nobody woken"
