"""Faults while orders flow: every accepted order still ends shipped exactly once.

One platform of its own, since its parts are killed, frozen and restarted on purpose: the embedded
PostgreSQL (supervised by `fusion dev`, data on disk), a broker this module stops and starts, and
FUSION_DELIVER_TWICE on, so that every fault also meets duplicate events and webhooks. For each
fault a small load of orders runs across it; the test then checks each accepted order (its status
history, one succeeded payment, one shipment), the stock (moved once per order) and the dead-letter
topics (empty), and prints how long the platform took to recover. Recovery times are printed, not
asserted.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import TopicPartition
from platform_runner import RunningPlatform, eventually, own_issuer, start_platform
from support import free_port
from test_backbone import new_product, order_status, place, stock
from test_supervision import health, table_rows

from fusion.kafka import consumer
from fusion.local.broker import start_broker
from fusion.local.process import ManagedProcess
from fusion.registry import load_all
from fusion.topics import DLQ_SUFFIX, all_topic_names

OFFSET = 400
PRICE = 10.0
ORDERS_PER_FAULT = 30
ORDERS_PER_SECOND = 10.0
STOCK = 500
SETTLE_TIMEOUT = 180.0  # generous: a 2-core machine, a fault, duplicate deliveries and retries' backoff
HAPPY_HISTORY = ["confirmed", "created", "paid", "shipped"]  # sorted: a late fact may come in another order


@dataclass
class FaultPlatform:
    platform: RunningPlatform
    broker: list[ManagedProcess]  # the current broker; the outage test replaces it
    broker_port: int
    pg_port: int
    state: Path

    @property
    def postgres_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/ecommerce"


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultPlatform]:
    folder = tmp_path_factory.mktemp("faults")
    broker_port, pg_port = free_port(), free_port()
    broker = [start_broker(broker_port, log_file=folder / "broker.log")]
    env = {
        "FUSION_STATE_DIR": str(folder / "state"), "FUSION_PG_PORT": str(pg_port),
        "FUSION_STRIPE_PORT": str(free_port()), "KAFKA_BROKERS": broker[0].url, "DATABASE_URL": "",
        "STRIPE_SECRET_KEY": "", "STRIPE_API_BASE": "", "STRIPE_WEBHOOK_SECRET": "", "STRIPE_AUTO_CONFIRM": "",
        "LOG_LEVEL": "info", "FUSION_DELIVER_TWICE": "true", "FUSION_SCHEDULE_INTERVAL": "1", **own_issuer(),
    }
    running = start_platform(env, OFFSET, folder / "platform.out", timeout=120)
    yield FaultPlatform(running, broker, broker_port, pg_port, folder / "state")
    assert running.stop() == 0
    broker[0].stop()


@dataclass
class OrderLoad:
    """Orders of one unit each, placed at a steady rate in a thread of their own, one customer each."""

    platform: RunningPlatform
    sku: str
    count: int = ORDERS_PER_FAULT
    per_second: float = ORDERS_PER_SECOND
    accepted: list[str] = field(default_factory=list)
    refused: int = 0  # not accepted (the service or its database was down): nothing to check
    thread: threading.Thread | None = None

    def start(self) -> OrderLoad:
        self.thread = threading.Thread(target=self._run, name="order-load", daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        for _ in range(self.count):
            try:
                status, body = place(self.platform, self.sku, 1, PRICE, customer=f"fault-{uuid.uuid4().hex[:8]}")
            except OSError:
                status, body = 0, None
            if status == 201:
                self.accepted.append(body["id"])
            else:
                self.refused += 1
            time.sleep(1 / self.per_second)

    def placed(self, share: float) -> bool:
        """True once `share` of its orders were attempted (the moment to inject a fault)."""
        return len(self.accepted) + self.refused >= share * self.count

    def join(self) -> list[str]:
        assert self.thread is not None
        self.thread.join(self.count / self.per_second + 120)
        assert not self.thread.is_alive(), "the load did not finish"
        return self.accepted


def during_load(faulty: FaultPlatform, fault: Callable[[], float]) -> tuple[list[str], str, float]:
    """Run a load with `fault` injected once a third of it is placed; `fault` returns when it ended."""
    product = new_product(faulty.platform, inventory=STOCK)
    load = OrderLoad(faulty.platform, product["sku"]).start()
    eventually(lambda: load.placed(1 / 3), bool, timeout=60)
    before_the_fault = len(load.accepted)
    assert before_the_fault > 0, "no order of the load was accepted before the fault"
    ended = fault()
    return load.join(), product["sku"], ended


def recovered_after(platform: RunningPlatform, sku: str, ended: float) -> tuple[str, float]:
    """An order placed as soon as one is accepted after the fault: its id, and seconds from the end of the
    fault until it shipped."""
    _, order = eventually(lambda: _try_place(platform, sku), lambda result: result[0] == 201, timeout=90)
    eventually(lambda: order_status(platform, order["id"]), lambda s: s == "shipped", timeout=SETTLE_TIMEOUT)
    return str(order["id"]), time.monotonic() - ended


def _try_place(platform: RunningPlatform, sku: str) -> tuple[int, Any]:
    try:
        return place(platform, sku, 1, PRICE, customer=f"probe-{uuid.uuid4().hex[:8]}")
    except OSError:
        return 0, None


def assert_each_order_shipped_once(faulty: FaultPlatform, orders: list[str], sku: str, started: float) -> None:
    platform = faulty.platform
    for order_id in orders:
        eventually(lambda o=order_id: order_status(platform, o), lambda s: s == "shipped", timeout=SETTLE_TIMEOUT)
    settled = time.monotonic() - started
    for order_id in orders:
        history = [step["status"] for step in platform.get("orders", f"/orders/{order_id}")["history"]]
        assert sorted(history) == HAPPY_HISTORY, (order_id, history)
        payments = platform.get("payments", f"/payments?orderId={order_id}")
        assert [p["status"] for p in payments] == ["succeeded"], (order_id, payments)
        assert len(platform.get("shipping", f"/shipments?orderId={order_id}")) == 1, order_id
    # a label's sale reaches inventory after the order is shipped; a delivery that met the fault is retried
    row = eventually(lambda: stock(platform, sku), lambda r: r["reserved"] == 0, timeout=SETTLE_TIMEOUT)
    assert row["quantity"] == STOCK - len(orders), "the stock moved once per order"
    assert dead_letters(faulty.broker[0].url) == {}
    print(f"{len(orders)} orders shipped once each, {settled:.1f} s after the load started")


def dead_letters(brokers: str) -> dict[str, int]:
    """The dead-letter topics that hold records, with how many."""
    reader = consumer(brokers, f"e2e-dlq-{uuid.uuid4()}")
    try:
        counts = {}
        for name in (t for t in all_topic_names() if t.endswith(DLQ_SUFFIX)):
            low, high = reader.get_watermark_offsets(TopicPartition(name, 0), timeout=10)
            if high > low:
                counts[name] = high - low
        return counts
    finally:
        reader.close()


def report(fault: str, order_id: str, seconds: float) -> None:
    print(f"{fault}: recovered in {seconds:.1f} s (an order placed right after the fault, {order_id}, shipped)")


def service_pid(platform: RunningPlatform, service: str) -> int:
    """The pid of the service's gunicorn arbiter now (the last row of the platform's tables)."""
    return int(table_rows(platform, service)[-1][2])


def worker_of(arbiter: int) -> int:
    children = Path(f"/proc/{arbiter}/task/{arbiter}/children").read_text().split()
    assert children, f"gunicorn arbiter {arbiter} has no worker"
    return int(children[0])


def delivery_timeout(service: str) -> float:
    return max(spec.policy.timeout for spec in load_all().values() if spec.service == service and spec.kind != "http")


def test_every_event_and_webhook_is_delivered_twice(faulty: FaultPlatform) -> None:
    started = time.monotonic()
    orders, sku, _ = during_load(faulty, time.monotonic)
    assert_each_order_shipped_once(faulty, orders, sku, started)
    logs = faulty.state / "logs"
    duplicates = (logs / "inventory.log").read_text().count("duplicate delivery of")
    assert duplicates >= len(orders), "reserve-stock met every order.created twice"
    # the second copy of a webhook may still be on its way when the order has shipped
    eventually(lambda: (logs / "stripe.log").read_text().count('webhook "payment_intent.succeeded" successfully '
                                                               'delivered'),
               lambda succeeded: succeeded >= 2 * len(orders), timeout=30)


def test_a_killed_worker_is_replaced(faulty: FaultPlatform) -> None:
    def kill_worker() -> float:
        os.kill(worker_of(service_pid(faulty.platform, "inventory")), signal.SIGKILL)
        return time.monotonic()

    started = time.monotonic()
    orders, sku, ended = during_load(faulty, kill_worker)
    order_id, seconds = recovered_after(faulty.platform, sku, ended)
    report("kill -9 of the inventory worker", order_id, seconds)
    assert_each_order_shipped_once(faulty, [*orders, order_id], sku, started)


def test_a_killed_arbiter_is_started_again(faulty: FaultPlatform) -> None:
    platform = faulty.platform
    arbiter = service_pid(platform, "payments")

    def kill_arbiter() -> float:
        os.kill(arbiter, signal.SIGKILL)
        return time.monotonic()

    started = time.monotonic()
    orders, sku, ended = during_load(faulty, kill_arbiter)
    eventually(lambda: service_pid(platform, "payments") != arbiter and health(platform, "payments") == 200, bool,
               timeout=60)
    order_id, seconds = recovered_after(platform, sku, ended)
    report("kill -9 of the payments arbiter", order_id, seconds)
    assert platform.process.poll() is None, "the platform stays up"
    assert_each_order_shipped_once(faulty, [*orders, order_id], sku, started)


def test_a_function_frozen_beyond_its_delivery_timeout(faulty: FaultPlatform) -> None:
    group = os.getpgid(service_pid(faulty.platform, "inventory"))  # the arbiter and its worker
    frozen_for = delivery_timeout("inventory") + 2

    def freeze() -> float:
        os.killpg(group, signal.SIGSTOP)
        try:
            time.sleep(frozen_for)
        finally:
            os.killpg(group, signal.SIGCONT)
        return time.monotonic()

    started = time.monotonic()
    orders, sku, ended = during_load(faulty, freeze)
    order_id, seconds = recovered_after(faulty.platform, sku, ended)
    report(f"SIGSTOP of inventory for {frozen_for:g} s, then SIGCONT", order_id, seconds)
    assert_each_order_shipped_once(faulty, [*orders, order_id], sku, started)


def test_every_database_connection_is_terminated(faulty: FaultPlatform) -> None:
    def terminate_backends() -> float:
        with psycopg.connect(faulty.postgres_url, autocommit=True) as admin:
            row = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'").fetchone()
        assert row is not None and row[0] > 0
        return time.monotonic()

    started = time.monotonic()
    orders, sku, ended = during_load(faulty, terminate_backends)
    order_id, seconds = recovered_after(faulty.platform, sku, ended)
    report("every PostgreSQL backend terminated", order_id, seconds)
    assert_each_order_shipped_once(faulty, [*orders, order_id], sku, started)


def test_postgres_restarts(faulty: FaultPlatform) -> None:
    platform = faulty.platform
    restarts = platform.output.read_text().count("postgres restarted")

    def restart_postgres() -> float:
        postmaster = int((faulty.state / "postgres" / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, signal.SIGINT)  # a fast shutdown; `fusion dev` starts it again
        eventually(lambda: platform.output.read_text().count("postgres restarted") > restarts, bool, timeout=60)
        return time.monotonic()

    started = time.monotonic()
    orders, sku, ended = during_load(faulty, restart_postgres)
    order_id, seconds = recovered_after(platform, sku, ended)
    report("PostgreSQL stopped and started again", order_id, seconds)
    assert_each_order_shipped_once(faulty, [*orders, order_id], sku, started)


def test_the_broker_stops_for_ten_seconds(faulty: FaultPlatform, tmp_path: Path) -> None:
    """Last: the memory-only broker forgets its topics and groups. What it held when it stopped is lost,
    so the load runs only while it is down and after it is back; the relay keeps the events meanwhile."""
    platform = faulty.platform
    product = new_product(platform, inventory=STOCK)
    started = time.monotonic()
    faulty.broker[0].stop()
    try:
        during = OrderLoad(platform, product["sku"], count=15).start()
        time.sleep(10)
    finally:
        faulty.broker[0] = start_broker(faulty.broker_port, log_file=tmp_path / "broker-again.log")
    back = time.monotonic()
    order_id, seconds = recovered_after(platform, product["sku"], back)
    report("the broker stopped for 10 s", order_id, seconds)
    after = OrderLoad(platform, product["sku"], count=15).start()
    orders = [*during.join(), order_id, *after.join()]
    assert_each_order_shipped_once(faulty, orders, product["sku"], started)
