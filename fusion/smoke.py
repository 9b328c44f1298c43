"""`fusion smoke`: the post-deploy smoke test of a running platform.

It checks the health of every service, then sends one product and one order through the whole
platform: the product's event reaches inventory and orders, the order is idempotent, its events
advance its status and reserve its stock, and the order is cancelled again so that a smoke run
leaves no reserved stock behind. HTTP goes through urllib only, so it runs in a slim image; every
request has a timeout and every wait polls up to `--timeout`, so a broken platform never hangs it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

from fusion.registry import services

LOCAL_HOST = "127.0.0.1"
DEFAULT_TIMEOUT = 60.0
# A service scaled to zero may hold its first request for a cold start; no request waits longer.
REQUEST_TIMEOUT = 30.0
POLL_INTERVAL = 0.2
EXCERPT_CHARS = 200

PRODUCT_PRICE = 1.00
WRONG_PRICE = 2.00  # the price probe must never match, so it never creates an order
CURRENCY = "USD"
PRODUCT_STOCK = 5
ADVANCED = ("confirmed", "paid", "shipped", "delivered")
ENDED = ("failed", "cancelled")

STEPS = ("health", "create product", "product events", "create order", "order advances", "stock reserved",
         "cancel order")

Outcome = Literal["pass", "fail", "skip"]
T = TypeVar("T")


class StepFailed(Exception):
    """A check did not hold; the message says what was asked where and what came back."""


class StepSkipped(Exception):
    """A step this one builds on did not pass, so running it would only repeat that failure."""


@dataclass(frozen=True)
class StepResult:
    name: str
    outcome: Outcome
    seconds: float
    detail: str


@dataclass(frozen=True)
class SmokeReport:
    targets: dict[str, str]
    steps: list[StepResult]

    @property
    def ok(self) -> bool:
        return all(step.outcome == "pass" for step in self.steps)

    def count(self, outcome: Outcome) -> int:
        return sum(step.outcome == outcome for step in self.steps)

    def summary(self) -> str:
        line = f"smoke: {self.count('pass')} passed, {self.count('fail')} failed"
        skipped = self.count("skip")
        return f"{line}, {skipped} skipped" if skipped else line

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "passed": self.count("pass"),
            "failed": self.count("fail"),
            "skipped": self.count("skip"),
            "targets": self.targets,
            "steps": [asdict(step) for step in self.steps],
        }


# --- HTTP -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    method: str
    url: str
    status: int | None  # None: no HTTP answer at all (refused, timed out, unknown host)
    body: Any  # the parsed JSON body, or None
    text: str  # the raw body, or what went wrong on the network
    headers: dict[str, str] = field(default_factory=dict)

    def value(self, name: str) -> Any:
        return self.body.get(name) if isinstance(self.body, dict) else None

    @property
    def transient(self) -> bool:
        """An answer worth polling again: nothing yet, overloaded, or a server error (a cold start, a restart)."""
        return self.status is None or self.status == 429 or self.status >= 500

    def describe(self) -> str:
        answer = "no answer" if self.status is None else f"HTTP {self.status}"
        excerpt = " ".join(self.text.split())
        if len(excerpt) > EXCERPT_CHARS:
            excerpt = excerpt[:EXCERPT_CHARS] + "..."
        return f"{self.method} {self.url} -> {answer}" + (f": {excerpt}" if excerpt else "")


class Http:
    """JSON over urllib; never raises for an HTTP or network failure, it returns a Reply saying so."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def call(self, method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
        data = None if body is None else json.dumps(body).encode()
        all_headers = {"Accept": "application/json", **(headers or {})}
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return _reply(method, url, response.status, response.read(), dict(response.headers))
        except urllib.error.HTTPError as error:
            return _reply(method, url, error.code, _read_error_body(error), dict(error.headers or {}))
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            return Reply(method, url, None, None, self._network_problem(error))

    def _network_problem(self, error: Exception) -> str:
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        if isinstance(reason, TimeoutError):
            return f"timed out after {self.timeout:g} s"
        return str(reason) or type(reason).__name__


def _read_error_body(error: urllib.error.HTTPError) -> bytes:
    try:
        return error.read()
    except (OSError, http.client.HTTPException):
        return b""


def _reply(method: str, url: str, status: int, raw: bytes, headers: dict[str, str]) -> Reply:
    text = raw.decode("utf-8", errors="replace")
    try:
        body = json.loads(text) if text.strip() else None
    except ValueError:
        body = None
    return Reply(method, url, status, body, text, headers)


# --- the steps --------------------------------------------------------------------------------------


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


class SmokeTest:
    """One run: a product and an order of its own (sku SMOKE-<id>, customer smoke-<id>)."""

    def __init__(self, urls: dict[str, str], timeout: float,
                 on_step: Callable[[StepResult], None] | None = None) -> None:
        self.urls = urls
        self.timeout = timeout
        self.on_step = on_step
        self.http = Http(min(REQUEST_TIMEOUT, timeout))
        run_id = uuid.uuid4().hex[:8]
        self.sku = f"SMOKE-{run_id}"
        self.customer = f"smoke-{run_id}"
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
        deadline = started + self.timeout
        while True:
            reply = probe()
            if reached(reply):
                return reply, time.monotonic() - started
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StepFailed(f"{what}: not within {self.timeout:g} s; last {reply.describe()}")
            time.sleep(min(POLL_INTERVAL, remaining))

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
        })
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
        return {"customerId": self.customer, "currency": CURRENCY,
                "items": [{"sku": self.sku, "quantity": 1, "price": price}]}

    def probe_price_check(self) -> Reply:
        return self.http.call("POST", self.url("orders", "/orders"), self.order_body(WRONG_PRICE))

    # 4
    def create_order(self) -> str:
        _needs(self.stock_before, "product events")
        url, body, headers = self.url("orders", "/orders"), self.order_body(PRODUCT_PRICE), {
            "Idempotency-Key": self.idempotency_key}
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
            lambda: self.http.call("GET", self.url("orders", f"/orders/{order_id}")), _order_advanced)
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
                               {"reason": "smoke test clean-up"})
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


# --- the command ------------------------------------------------------------------------------------


def service_urls(base_url: str | None = None, port_offset: int | None = None,
                 overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Where each service answers: one gateway URL for all, or the local ports (shifted), then the overrides."""
    if base_url:
        urls = {name: base_url.rstrip("/") for name in services()}
    else:
        urls = {name: f"http://{LOCAL_HOST}:{service.port + (port_offset or 0)}"
                for name, service in services().items()}
    urls.update({name: url.rstrip("/") for name, url in (overrides or {}).items()})
    return urls


def _http_url(value: str) -> str:
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise argparse.ArgumentTypeError(f"expected an http(s) URL such as http://localhost:3000, got {value!r}")
    return value


def _service_url(value: str) -> tuple[str, str]:
    name, sep, url = value.partition("=")
    if not sep or name.strip() not in services():
        raise argparse.ArgumentTypeError(
            f"expected SERVICE=URL with SERVICE one of {', '.join(services())}, got {value!r}")
    return name.strip(), _http_url(url.strip())


def _port_offset(value: str) -> int:
    ports = [service.port for service in services().values()]
    try:
        offset = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
    if min(ports) + offset < 1 or max(ports) + offset > 65535:
        raise argparse.ArgumentTypeError(f"{offset} shifts the ports out of 1..65535")
    return offset


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {value!r}") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value!r}")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fusion smoke", description="Post-deploy smoke test: health, a product and an order through the platform.")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--base-url", type=_http_url, metavar="URL",
                       help="one gateway URL serving every route (e.g. an ingress)")
    where.add_argument("--port-offset", type=_port_offset, metavar="N",
                       help=f"a local platform on {LOCAL_HOST}, ports shifted by N (default: the original ports)")
    parser.add_argument("--service-url", type=_service_url, action="append", default=[], metavar="SERVICE=URL",
                        help="where one service answers (repeatable; overrides the above)")
    parser.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help="how long each asynchronous step may take (default %(default)g)")
    parser.add_argument("--json", action="store_true", help="print a machine-readable summary instead")
    return parser


def _print_step(result: StepResult) -> None:
    print(f"{result.outcome.upper():<4}  {result.name:<15} {result.seconds:7.2f} s  {result.detail}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the smoke test: 0 when every step passed, 1 when one did not, 2 for bad arguments."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # argparse exits on bad arguments (2) and after --help (0)
        return stop.code if isinstance(stop.code, int) else 2
    urls = service_urls(args.base_url, args.port_offset, dict(args.service_url))
    if not args.json:
        print("smoke test of " + ", ".join(f"{name} {url}" for name, url in urls.items()), flush=True)
    report = SmokeTest(urls, args.timeout, on_step=None if args.json else _print_step).run()
    print(json.dumps(report.as_json(), indent=2) if args.json else report.summary(), flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
