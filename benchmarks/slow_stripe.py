"""Payments against a slow Stripe: 300 ms added in front of localstripe, one payments process whose pool
holds 4 connections, 50 clients starting the payments of 200 payable orders at once.

Holding a connection (and the order's rows) while Stripe answers would cap the process at
pool / latency payments per second; the figure shows what it does instead.
"""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

from fusion.local.ports import any_free_port
from fusion.local.stripe_proxy import Answer, StripeProxy
from fusion.registry import service_named

ROOT = Path(__file__).resolve().parent.parent
STRIPE_DELAY_SECONDS = 0.3
POOL_SIZE = 2  # DB_POOL_SIZE: the pool holds twice this
ORDERS = 200
CLIENTS = 50


class SlowStripe(StripeProxy):
    """Every request forwarded to Stripe (localstripe) after `delay` seconds."""

    def __init__(self, upstream: str, delay: float) -> None:
        self.delay = delay
        super().__init__(upstream)

    def before(self, method: str, path: str) -> Answer | None:
        time.sleep(self.delay)
        return None


def payable_orders(database_url: str, count: int) -> list[tuple[str, str]]:
    """(order id, customer id) of `count` orders whose details and reservation payments has heard of."""
    orders = [(str(uuid.uuid4()), f"bench-payer-{n}") for n in range(count)]
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO payments.orders (order_id, customer_id, total_minor, currency, reserved) "
                        "VALUES (%s, %s, %s, 'USD', true)",
                        [(order_id, customer, 1000 + n) for n, (order_id, customer) in enumerate(orders)])
    return orders


def start_payments(port: int, env: dict[str, str], stripe_url: str) -> subprocess.Popen[bytes]:
    """One payments process of its own, reaching Stripe at `stripe_url`, its pool 2 x POOL_SIZE connections."""
    process_env = {**env, "STRIPE_API_BASE": stripe_url, "DB_POOL_SIZE": str(POOL_SIZE), "THREADS": str(CLIENTS),
                   "STRIPE_AUTO_CONFIRM": "false"}  # one Stripe call per payment: the create
    return subprocess.Popen([sys.executable, "-m", "functions_framework", "--source", service_named("payments").source,
                             "--target", "serve", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT,
                            env=process_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for_health(port: int, process: subprocess.Popen[bytes]) -> None:
    from fusion.waiting import wait_until

    def healthy() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the payments process exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/health")
            return conn.getresponse().status == 200
        except OSError:
            return False

    wait_until(healthy, 60, 0.05, "the payments process answering /health")


def pay(port: int, order_id: str, authorization: str) -> tuple[int, float]:
    """POST /payments for the order: (status, milliseconds)."""
    body = json.dumps({"orderId": order_id})
    headers = {"Content-Type": "application/json", "Authorization": authorization}
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/payments", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status, (time.perf_counter() - started) * 1000
    finally:
        conn.close()


def bench_slow_stripe(database_url: str, stripe_url: str, env: dict[str, str], mint: Callable[[str], str]) -> None:
    """`mint(customer_id)`: the Authorization header value of a token of that customer."""
    from benchmarks.run import report  # run.py calls this module: imported once both are loaded

    proxy = SlowStripe(stripe_url, STRIPE_DELAY_SECONDS)
    port = any_free_port()
    process = start_payments(port, env, proxy.url)
    try:
        wait_for_health(port, process)
        orders = payable_orders(database_url, ORDERS)
        tokens = {customer: mint(customer) for _, customer in orders}  # minted before the clock
        started = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as clients:
            answers = list(clients.map(lambda order: pay(port, order[0], tokens[order[1]]), orders))
        elapsed = time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(10)
        proxy.stop()
    started_ok = [ms for status, ms in answers if status == 201]
    others = sorted({status for status, _ in answers if status != 201})
    connections = POOL_SIZE * 2
    bound = connections / STRIPE_DELAY_SECONDS
    cut = statistics.quantiles(sorted(ms for _, ms in answers), n=100, method="inclusive")
    report(f"payments with Stripe +{STRIPE_DELAY_SECONDS * 1000:.0f} ms, {CLIENTS} clients",
           f"> {bound:.1f}/s ({connections} connections / {STRIPE_DELAY_SECONDS:g} s)",
           f"{len(started_ok) / elapsed:7.1f} payments/s   p50 {cut[49]:7.1f} ms   p95 {cut[94]:7.1f} ms   "
           f"({len(started_ok)}/{len(answers)} started{'; others answered ' + str(others) if others else ''})")
