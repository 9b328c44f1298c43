"""The smoke scenario: health, then one product and one order of its own through the platform."""

from __future__ import annotations

import time
import urllib.parse
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from fusion.smoke.client import Http, Reply
from fusion.smoke.report import Outcome, SmokeReport, StepResult
from fusion.waiting import wait_until

# A service scaled to zero may hold its first request for a cold start; no request waits longer.
REQUEST_TIMEOUT = 30.0
POLL_INTERVAL = 0.2

PRODUCT_PRICE = 1.00
WRONG_PRICE = 2.00  # the price probe must never match, so it never creates an order
CURRENCY = "USD"
PRODUCT_STOCK = 5
ADVANCED = ("confirmed", "paid", "shipped", "delivered")
ENDED = ("failed", "cancelled")

STEPS = ("health", "create product", "product events", "create order", "order advances", "stock reserved",
         "cancel order")

T = TypeVar("T")


class StepFailed(Exception):
    """A check did not hold; the message says what was asked where and what came back."""


class StepSkipped(Exception):
    """A step this one builds on did not pass, so running it would only repeat that failure."""


def _needs(value: T | None, step: str) -> T:
    if value is None:
        raise StepSkipped(f"not run: {step!r} did not pass")
    return value


def _run_step(name: str, check: Callable[[], str]) -> StepResult:
    started = time.monotonic()
    outcome: Outcome = "pass"
    try:
        detail = check()
    except StepSkipped as skip:
        outcome, detail = "skip", str(skip)
    except StepFailed as failure:
        outcome, detail = "fail", str(failure)
    except Exception as error:  # an answer of an unexpected shape still ends in a report, not a traceback
        outcome, detail = "fail", f"unexpected {type(error).__name__}: {error}"
    return StepResult(name, outcome, round(time.monotonic() - started, 3), detail)


@dataclass(frozen=True)
class Credentials:
    """Bearer tokens the smoke test presents: staff with catalog:write, and the customer that orders."""

    staff: str
    customer: str

    def as_staff(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.staff}"}

    def as_customer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.customer}"}


class SmokeTest:
    """One run: a product of its own (sku SMOKE-<id>) and an order of it by the customer token's customer."""

    def __init__(self, urls: dict[str, str], timeout: float, credentials: Credentials,
                 on_step: Callable[[StepResult], None] | None = None) -> None:
        self.urls = urls
        self.credentials = credentials
        self.timeout = timeout
        self.on_step = on_step
        self.http = Http(min(REQUEST_TIMEOUT, timeout))
        run_id = uuid.uuid4().hex[:8]
        self.sku = f"SMOKE-{run_id}"
        self.idempotency_key = f"smoke-order-{run_id}"
        # what each step leaves for the next ones; None until the step that produces it passes
        self.product: dict[str, Any] | None = None
        self.stock_before: dict[str, Any] | None = None
        self.order_id: str | None = None
        self.advanced_order: dict[str, Any] | None = None

    def run(self) -> SmokeReport:
        checks: dict[str, Callable[[], str]] = {
            "health": self.check_health,
            "create product": self.create_product,
            "product events": self.see_product_events,
            "create order": self.create_order,
            "order advances": self.see_order_advance,
            "stock reserved": self.see_stock_reserved,
            "cancel order": self.cancel_order,
        }
        results = []
        for name in STEPS:
            result = _run_step(name, checks[name])
            results.append(result)
            if self.on_step is not None:
                self.on_step(result)
        return SmokeReport(dict(self.urls), results)

    def url(self, service: str, path: str) -> str:
        return self.urls[service] + path

    def wait_for(self, what: str, probe: Callable[[], Reply], reached: Callable[[Reply], bool]) -> tuple[Reply, float]:
        """Poll until `reached` accepts a reply (it raises StepFailed for an answer that will not change)."""
        started = time.monotonic()
        last: Reply | None = None

        def attempt() -> Reply | None:
            nonlocal last
            last = probe()
            return last if reached(last) else None

        try:
            reply = wait_until(attempt, self.timeout, POLL_INTERVAL, what)
        except TimeoutError as timeout:
            assert last is not None  # wait_until probes at least once
            raise StepFailed(f"{timeout}; last {last.describe()}") from None
        return reply, time.monotonic() - started

    # 1
    def check_health(self) -> str:
        services_at: dict[str, list[str]] = {}
        for service, base in self.urls.items():
            services_at.setdefault(base + "/health", []).append(service)
        with ThreadPoolExecutor(max_workers=len(services_at)) as pool:
            replies = dict(zip(services_at, pool.map(lambda url: self.http.call("GET", url), services_at),
                               strict=True))
        problems = [f"{', '.join(services)}: {replies[url].describe()}"
                    for url, services in services_at.items() if not _healthy(replies[url])]
        if problems:
            raise StepFailed("; ".join(problems))
        if len(services_at) == 1:
            return f"status ok at {next(iter(services_at))} (one URL for every service)"
        return f"status ok from {len(services_at)} URLs: {', '.join(self.urls)}"

    # 2
    def create_product(self) -> str:
        reply = self.http.call("POST", self.url("catalog", "/products"), {
            "sku": self.sku, "name": f"Smoke test {self.sku}", "price": PRODUCT_PRICE, "currency": CURRENCY,
            "inventory": PRODUCT_STOCK,
        }, self.credentials.as_staff())
        if reply.status != 201 or not isinstance(reply.body, dict):
            raise StepFailed(f"expected 201: {reply.describe()}")
        self.product = reply.body
        return f"{self.sku} (id {reply.value('id')}), {PRODUCT_STOCK} in stock at {PRODUCT_PRICE:.2f} {CURRENCY}"

    # 3
    def see_product_events(self) -> str:
        _needs(self.product, "create product")
        stock_reply, stock_seconds = self.wait_for(
            f"stock of {self.sku} in inventory", self.read_stock, _stock_present)
        stock = stock_reply.body
        if stock.get("available") != PRODUCT_STOCK or stock.get("reserved") != 0:
            raise StepFailed(f"expected {PRODUCT_STOCK} available and 0 reserved: {stock_reply.describe()}")
        _, price_seconds = self.wait_for(
            f"orders to know {self.sku} (422 price_mismatch for a wrong price)", self.probe_price_check,
            _price_checked)
        self.stock_before = stock
        return (f"inventory has {stock['available']} available after {stock_seconds:.2f} s; "
                f"orders checks its price after {price_seconds:.2f} s")

    def read_stock(self) -> Reply:
        return self.http.call("GET", self.url("inventory", f"/inventory/{urllib.parse.quote(self.sku, safe='')}"))

    def order_body(self, price: float) -> dict[str, Any]:
        # no customerId: the order is the customer token's
        return {"currency": CURRENCY, "items": [{"sku": self.sku, "quantity": 1, "price": price}]}

    def probe_price_check(self) -> Reply:
        return self.http.call("POST", self.url("orders", "/orders"), self.order_body(WRONG_PRICE),
                              self.credentials.as_customer())

    # 4
    def create_order(self) -> str:
        _needs(self.stock_before, "product events")
        url, body, headers = self.url("orders", "/orders"), self.order_body(PRODUCT_PRICE), {
            "Idempotency-Key": self.idempotency_key, **self.credentials.as_customer()}
        first = self.http.call("POST", url, body, headers)
        order_id = first.value("id")
        if first.status != 201 or not isinstance(order_id, str):
            raise StepFailed(f"expected 201 with an order id: {first.describe()}")
        self.order_id = order_id
        replay = self.http.call("POST", url, body, headers)
        if replay.status not in (200, 201) or replay.value("id") != order_id:
            raise StepFailed(f"order {order_id} created, but the same Idempotency-Key answered differently: "
                             f"{replay.describe()}")
        replayed = " (Idempotent-Replayed)" if replay.headers.get("Idempotent-Replayed") == "true" else ""
        return f"order {order_id} {first.value('status')}; same Idempotency-Key gave the same order{replayed}"

    # 5
    def see_order_advance(self) -> str:
        order_id = _needs(self.order_id, "create order")
        reply, seconds = self.wait_for(
            f"order {order_id} to advance past created",
            lambda: self.http.call("GET", self.url("orders", f"/orders/{order_id}"), None,
                                   self.credentials.as_customer()), _order_advanced)
        self.advanced_order = reply.body
        return f"{reply.value('status')} after {seconds:.2f} s; history {_history_timings(reply.value('history'))}"

    # 6
    def see_stock_reserved(self) -> str:
        _needs(self.advanced_order, "order advances")
        before = _needs(self.stock_before, "product events")
        expected = int(before["available"]) - 1

        def dropped_by_one(reply: Reply) -> bool:
            if not _stock_present(reply):
                return False
            available = reply.value("available")
            if not isinstance(available, int):
                raise StepFailed(f"no available count: {reply.describe()}")
            if available < expected:
                raise StepFailed(f"available went from {before['available']} to {available}, "
                                 f"not {expected}: {reply.describe()}")
            return available == expected

        reply, _ = self.wait_for(f"available stock of {self.sku} to drop to {expected}", self.read_stock,
                                 dropped_by_one)
        return (f"available {before['available']} -> {reply.value('available')} "
                f"(on hand {before['quantity']} -> {reply.value('quantity')}, "
                f"reserved {before['reserved']} -> {reply.value('reserved')})")

    # 7
    def cancel_order(self) -> str:
        order_id = _needs(self.order_id, "create order")
        reply = self.http.call("POST", self.url("orders", f"/orders/{order_id}/cancel"),
                               {"reason": "smoke test clean-up"}, self.credentials.as_customer())
        if reply.status == 200:
            previous = _previous_status(reply.value("history"))
            return f"order {order_id} cancelled (was {previous}); order.cancelled releases its stock"
        if reply.status == 409:
            return f"order {order_id} left as is, no longer cancellable: {reply.value('message') or reply.text}"
        raise StepFailed(f"expected 200 or 409: {reply.describe()}")


def _healthy(reply: Reply) -> bool:
    return reply.status == 200 and reply.value("status") == "ok"


def _stock_present(reply: Reply) -> bool:
    if reply.status == 200 and isinstance(reply.body, dict):
        return True
    if reply.status == 404 or reply.transient:
        return False
    raise StepFailed(f"unexpected answer: {reply.describe()}")


def _price_checked(reply: Reply) -> bool:
    error = reply.value("error")
    if reply.status == 422 and error == "price_mismatch":
        return True
    if (reply.status == 422 and error == "unknown_sku") or reply.transient:
        return False
    if reply.status == 201:
        raise StepFailed(f"an order with a wrong price was accepted (order {reply.value('id')}): {reply.describe()}")
    raise StepFailed(f"expected 422 price_mismatch or unknown_sku: {reply.describe()}")


def _order_advanced(reply: Reply) -> bool:
    if reply.status == 200 and isinstance(reply.body, dict):
        status = reply.value("status")
        if status in ENDED:
            raise StepFailed(f"the order ended {status}; history {_history_timings(reply.value('history'))}")
        return bool(status in ADVANCED)
    if reply.transient:
        return False
    raise StepFailed(f"unexpected answer: {reply.describe()}")


def _history_timings(history: Any) -> str:
    """`created -> confirmed +0.41 s -> paid +1.20 s`, times since the order was created (server clock)."""
    if not isinstance(history, list) or not history:
        return "(none)"
    try:
        moments = [datetime.fromisoformat(entry["at"]) for entry in history]
    except (KeyError, TypeError, ValueError):
        return " -> ".join(str(entry.get("status") if isinstance(entry, dict) else entry) for entry in history)
    start = moments[0]
    parts = [str(history[0]["status"])]
    for entry, moment in zip(history[1:], moments[1:], strict=True):
        reason = f" ({entry['reason']})" if entry.get("reason") else ""
        parts.append(f"{entry['status']} +{(moment - start).total_seconds():.2f} s{reason}")
    return " -> ".join(parts)


def _previous_status(history: Any) -> str:
    if isinstance(history, list) and len(history) >= 2 and isinstance(history[-2], dict):
        return str(history[-2].get("status"))
    return "unknown"
