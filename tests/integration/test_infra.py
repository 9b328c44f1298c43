"""The local backing services start on 127.0.0.1, serve real clients and stop without leftovers."""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid
from pathlib import Path

import psutil
import psycopg
import pytest
import stripe
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from fusion.local.broker import start_broker
from fusion.local.ports import wait_for_port
from fusion.local.postgres import start_postgres
from fusion.local.process import ManagedProcess
from fusion.local.stripe import start_localstripe


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_tree(server: ManagedProcess) -> list[int]:
    assert server.process is not None
    root = psutil.Process(server.process.pid)
    return [root.pid, *(child.pid for child in root.children(recursive=True))]


def assert_gone(pids: list[int], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if is_running(pid)]
        time.sleep(0.05)
    assert not alive, f"processes still running: {alive}"


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (ProcessLookupError, psutil.NoSuchProcess):
        return False


def stop_and_check(server: ManagedProcess) -> None:
    pids = process_tree(server)
    server.stop()
    assert_gone(pids)
    server.stop()


def listening_addresses(pid: int) -> set[str]:
    connections = psutil.Process(pid).net_connections(kind="inet")
    return {conn.laddr.ip for conn in connections if conn.status == psutil.CONN_LISTEN}


def test_wait_for_port_times_out() -> None:
    with pytest.raises(TimeoutError, match=r"127\.0\.0\.1:\d+"):
        wait_for_port("127.0.0.1", free_port(), 0.2)


def test_postgres_keeps_data_across_restarts(tmp_path: Path) -> None:
    data_dir, port, log = tmp_path / "pg", free_port(), tmp_path / "pg.log"
    first = start_postgres(data_dir, port, log_file=log)
    try:
        assert first.url == f"postgresql://postgres@127.0.0.1:{port}/ecommerce"
        assert first.process is not None
        assert listening_addresses(first.process.pid) == {"127.0.0.1"}
        with psycopg.connect(first.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (id int PRIMARY KEY, name text)")
            conn.execute("INSERT INTO kept VALUES (1, 'first run')")
            row = conn.execute("SHOW max_connections").fetchone()
            assert row == ("200",)
    finally:
        stop_and_check(first)

    second = start_postgres(data_dir, port, log_file=log)
    try:
        with psycopg.connect(second.url) as conn:
            assert conn.execute("SELECT name FROM kept WHERE id = 1").fetchone() == ("first run",)
    finally:
        stop_and_check(second)


def test_postgres_recovers_from_a_killed_server_and_attaches_to_a_running_one(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "pg", free_port()
    crashed = start_postgres(data_dir, port, database="shop")
    with psycopg.connect(crashed.url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = on")
        conn.execute("CREATE TABLE survived (id int)")
    pids = process_tree(crashed)
    assert crashed.process is not None
    crashed.process.send_signal(signal.SIGKILL)
    crashed.process.wait()
    assert_gone(pids)
    assert (data_dir / "postmaster.pid").exists()

    server = start_postgres(data_dir, port, database="shop")
    try:
        attached = start_postgres(data_dir, port, database="shop")
        assert attached.process is None
        assert attached.url == server.url
        attached.stop()
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT count(*) FROM survived").fetchone() == (0,)
        with pytest.raises(RuntimeError, match="already served"):
            start_postgres(data_dir, free_port())
    finally:
        stop_and_check(server)


def test_broker_produces_and_consumes(tmp_path: Path) -> None:
    port = free_port()
    broker = start_broker(port, log_file=tmp_path / "broker.log")
    try:
        assert broker.url == f"127.0.0.1:{port}"
        assert broker.process is not None
        assert listening_addresses(broker.process.pid) == {"127.0.0.1"}
        topic = f"test.{uuid.uuid4().hex}"
        admin = AdminClient({"bootstrap.servers": broker.url})
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(10)

        producer = Producer({"bootstrap.servers": broker.url})
        producer.produce(topic, key=b"k", value=b"hello")
        assert producer.flush(10) == 0

        consumer = Consumer(
            {
                "bootstrap.servers": broker.url,
                "group.id": f"g-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "session.timeout.ms": 2000,
                "heartbeat.interval.ms": 500,
            }
        )
        try:
            consumer.subscribe([topic])
            deadline = time.monotonic() + 30
            message = None
            while message is None and time.monotonic() < deadline:
                polled = consumer.poll(0.2)
                if polled is not None and polled.error() is None:
                    message = polled
            assert message is not None
            assert (message.key(), message.value()) == (b"k", b"hello")
        finally:
            consumer.close()
    finally:
        stop_and_check(broker)


def test_localstripe_confirms_a_payment_intent(tmp_path: Path) -> None:
    port, pickle_before = free_port(), pickle_state()
    server = start_localstripe(port, log_file=tmp_path / "stripe.log")
    try:
        assert server.url == f"http://127.0.0.1:{port}"
        assert server.process is not None
        assert listening_addresses(server.process.pid) == {"127.0.0.1"}
        client = stripe.StripeClient("sk_test_12345", base_addresses={"api": server.url})
        intent = client.v1.payment_intents.create(
            params={"amount": 2599, "currency": "eur", "payment_method": "pm_card_visa"}
        )
        assert intent.status == "requires_confirmation"
        confirmed = client.v1.payment_intents.confirm(intent.id)
        assert confirmed.status == "succeeded"
        assert confirmed.amount == 2599
    finally:
        stop_and_check(server)
    assert pickle_state() == pickle_before


def pickle_state() -> float | None:
    path = Path("/tmp/localstripe.pickle")
    return path.stat().st_mtime if path.exists() else None


def test_stop_escalates_to_sigkill_and_kills_postgres_children(tmp_path: Path) -> None:
    server = start_postgres(tmp_path / "pg", free_port())
    assert server.process is not None
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute("SELECT 1")
        pids = process_tree(server)
        assert len(pids) > 1
        server.process.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        server.stop(timeout=0.5)
        took = time.monotonic() - started
        print(f"a stopped postgres was killed {took:.1f} s after the stop")
    assert server.process.returncode == -signal.SIGKILL
    assert_gone(pids)
