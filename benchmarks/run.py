"""`make bench`: measure the performance budget on this machine and print the figures.

Starts its own platform (embedded PostgreSQL, broker and localstripe, fresh state in a temporary
folder, service ports shifted by 400 so it runs beside `make dev`), loads it, and prints p50/p95/p99
for each figure of the budget. Nothing here asserts: the machine is shared and noisy.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg.rows import namedtuple_row

from benchmarks import ceiling, charts, cpu, startup, verify_scale
from benchmarks.slow_stripe import bench_slow_stripe
from fusion.auth import STAFF_SCOPES, TokenVerifier
from fusion.config import DEFAULT_AUDIENCE
from fusion.local.issuer import IssuerServer
from fusion.local.platform import Platform
from fusion.local.ports import gateway_port
from fusion.registry import service_named

OFFSET = 400
ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "benchmarks" / "output"  # the charts of the last run
LATENCIES: dict[str, list[float]] = {}  # the samples of each figure, in ms
TARGETS: list[tuple[str, str, str, bool]] = []  # (figure, target, measured, met), printed at the end
SAGA: dict[str, float] = {}  # what the sustained saga measured, for the database ceiling's comparison
_tokens: dict[str, str] = {}  # bearer tokens of the platform's local issuer, by customer ("" = staff)
_issuer: IssuerServer | None = None


def bearer(body: Any) -> str:
    """A real token: the customer an order names, else staff holding every scope."""
    customer = body.get("customerId", "") if isinstance(body, dict) else ""
    if customer not in _tokens:
        assert _issuer is not None, "the platform's issuer is not up"
        scopes = () if customer else STAFF_SCOPES
        _tokens[customer] = _issuer.key.mint(_issuer.issuer, DEFAULT_AUDIENCE, customer or "bench-staff", scopes)
    return f"Bearer {_tokens[customer]}"


def port(service: str) -> int:
    return service_named(service).port + OFFSET


class Client:
    """A keep-alive HTTP/1.1 client for one service, or for the gateway at `at` (one per thread)."""

    def __init__(self, service: str, at: int | None = None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port(service) if at is None else at, timeout=30)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, float]:
        payload = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json", "Authorization": bearer(body)}  # minted before the clock
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body=payload, headers=headers)
            response = self.conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # the server closed an idle keep-alive connection: open a new one, as any client does
            self.conn.close()
            self.conn.request(method, path, body=payload, headers=headers)
            response = self.conn.getresponse()
        raw = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        return response.status, (json.loads(raw) if raw else None), elapsed


def report_load(when: str) -> None:
    """The machine's load average, printed with the figures: they mean little on a machine busy elsewhere."""
    one, five, fifteen = os.getloadavg()
    print(f"{when}: {one:.1f} (1 min), {five:.1f} (5 min), {fifteen:.1f} (15 min) on {os.cpu_count()} cores",
          flush=True)


def report_machine_speed(rounds: int = 5) -> None:
    """CPU time of a fixed pure-Python loop (best of `rounds`): two runs' figures compare only as far as
    their machines ran this alike (shared hosts differ from day to day)."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        sum(n * n for n in range(2_000_000))
        best = min(best, time.process_time() - started)
    print(f"machine speed: a fixed pure-Python loop (2 million squares summed) took {best * 1000:.0f} ms of CPU "
          "(best of 5; lower is faster)", flush=True)


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    cut = statistics.quantiles(ordered, n=100, method="inclusive")
    return f"p50 {cut[49]:7.2f} ms   p95 {cut[94]:7.2f} ms   p99 {cut[98]:7.2f} ms   (n={len(ordered)})"


def report(name: str, budget: str, figure: str) -> None:
    print(f"{name:<44} {figure}   budget {budget}", flush=True)


def target(figure: str, wanted: str, measured: str, met: bool) -> None:
    """A figure of the targets table printed at the end of the run."""
    TARGETS.append((figure, wanted, measured, met))


def p95(samples: list[float]) -> float:
    return statistics.quantiles(sorted(samples), n=100, method="inclusive")[94]


def report_targets() -> None:
    print("\ntargets, this run:", flush=True)
    width = max(len(figure) for figure, *_ in TARGETS)
    for figure, wanted, measured, met in TARGETS:
        print(f"  {figure:<{width}}  {wanted:<14} {measured:<44} {'met' if met else 'NOT met'}", flush=True)


def report_samples(name: str, budget: str, samples: list[float]) -> None:
    """Print a figure's percentiles and keep its samples for the latency chart."""
    LATENCIES[name] = samples
    report(name, budget, percentiles(samples))


def seed_products(database_url: str, count: int) -> None:
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        with cur.copy("COPY catalog.products (id, sku, name, description, price_minor, price_exponent, currency, "
                      "inventory, category) FROM STDIN") as copy:
            for n in range(count):
                copy.write_row((uuid.uuid4(), f"BENCH-{n:06d}", f"Bench product {n}", "seeded for the benchmark",
                                100 + n % 5000, 2, "USD", 100, f"cat-{n % 20}"))
        conn.commit()
    # What autovacuum does within a minute of a bulk load: a settled catalog, whose visibility map lets a deep
    # page skip its offset on the listing index alone.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE catalog.products")


def bench_catalog_reads(requests: int = 600) -> None:
    client = Client("catalog")
    for _ in range(20):
        client.call("GET", "/products?limit=50")
    first_page = [client.call("GET", "/products?limit=50")[2] for _ in range(requests)]
    report_samples("GET /products page of 50 (10,000 products)", "p95 <= 5 ms", first_page)
    deep = [client.call("GET", f"/products?limit=50&offset={n * 16 % 9950}")[2] for n in range(requests // 2)]
    report_samples("GET /products deep pages (offset to 9,950)", "p95 <= 5 ms", deep)
    worst = max(p95(first_page), p95(deep))
    target("GET /products, any page of 50 of 10,000", "p95 <= 5 ms", f"p95 {worst:.1f} ms (first or deep, the worse)",
           worst <= 5)
    filtered = [client.call("GET", f"/products?category=cat-{n % 20}&minPrice=10&limit=50")[2]
                for n in range(requests // 2)]
    report_samples("GET /products?category&minPrice", "-", filtered)


def bench_gateway(requests: int = 600) -> None:
    """The same page of products directly and through the gateway, one after the other: what the hop adds."""
    direct, through = Client("catalog"), Client("catalog", at=gateway_port())
    for _ in range(20):
        direct.call("GET", "/products?limit=50")
        through.call("GET", "/products?limit=50")
    pairs = [(direct.call("GET", "/products?limit=50")[2], through.call("GET", "/products?limit=50")[2])
             for _ in range(requests)]
    report_samples("GET /products page of 50, direct", "-", [d for d, _ in pairs])
    report_samples("GET /products page of 50, through the gateway", "-", [t for _, t in pairs])
    report("what the gateway adds (same request, paired)", "-", percentiles([t - d for d, t in pairs]))


def create_sale_products(count: int) -> list[str]:
    client = Client("catalog")
    skus, latencies = [], []
    for n in range(count):
        sku = f"SALE-{uuid.uuid4().hex[:8]}-{n}"
        status, _, elapsed = client.call("POST", "/products", {"sku": sku, "name": sku, "price": 2.5,
                                                               "currency": "USD", "inventory": 1_000_000})
        assert status == 201
        skus.append(sku)
        latencies.append(elapsed)
    report_samples("POST /products", "(original p95 300 ms)", latencies)
    orders = Client("orders")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        probe = orders.call("POST", "/orders", {"customerId": "probe", "currency": "USD",
                                                 "items": [{"sku": skus[-1], "quantity": 1, "price": 2.5}]})
        if probe[0] == 201:
            break
        time.sleep(0.1)
    return skus


def place_orders(skus: list[str], clients: int, per_client: int, pace: float | None = None) -> list[tuple[str, float]]:
    """`clients` threads each placing `per_client` orders; returns (order id, latency ms)."""
    results: list[tuple[str, float]] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        client = Client("orders")
        for i in range(per_client):
            started = time.monotonic()
            # a customer holds at most CUSTOMER_OPEN_ORDERS unpaid orders: five each here
            body = {"customerId": f"bench-{n}-{i // 5}", "currency": "USD",
                    "items": [{"sku": skus[(n + i) % len(skus)], "quantity": 1, "price": 2.5}]}
            status, order, elapsed = client.call("POST", "/orders", body)
            assert status == 201, order
            with lock:
                results.append((order["id"], elapsed))
            if pace:
                time.sleep(max(0.0, pace - (time.monotonic() - started)))

    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(work, range(clients)))
    return results


def wait_for_statuses(database_url: str, ids: list[str], wanted: set[str], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    with psycopg.connect(database_url, autocommit=True) as conn:
        while True:
            done = conn.execute("SELECT count(*) FROM orders.orders WHERE id = ANY(%s::uuid[]) AND status = ANY(%s)",
                                (ids, list(wanted))).fetchone()[0]  # type: ignore[index]
            if done == len(ids) or time.monotonic() > deadline:
                return int(done)
            time.sleep(0.2)


def event_latencies(database_url: str, ids: list[str]) -> tuple[list[float], list[float]]:
    """(outbox commit -> handler start, placed -> confirmed), in ms, for the given orders."""
    with psycopg.connect(database_url) as conn:
        hop = conn.execute(
            "SELECT extract(epoch FROM (i.processed_at - o.created_at)) * 1000 FROM orders.outbox o "
            "JOIN inventory.inbox i ON i.event_id = o.event_id WHERE o.topic = 'order.created' "
            "AND o.key = ANY(%s)", (ids,)).fetchall()
        confirm = conn.execute(
            "SELECT extract(epoch FROM (h.at - o.created_at)) * 1000 FROM orders.orders o "
            "JOIN orders.order_history h ON h.order_id = o.id AND h.status = 'confirmed' "
            "WHERE o.id = ANY(%s::uuid[])", (ids,)).fetchall()
    return [float(r[0]) for r in hop], [float(r[0]) for r in confirm]


def bench_event_latency(database_url: str, skus: list[str], rate: int = 10, seconds: int = 15) -> None:
    """Event latencies at a steady, moderate load (the saga keeps up)."""
    placed = place_orders(skus, clients=2, per_client=rate * seconds // 2, pace=2 / rate)
    ids = [order_id for order_id, _ in placed]
    wait_for_statuses(database_url, ids, {"shipped", "delivered"}, 120)
    hop, confirm = event_latencies(database_url, ids)
    report_samples(f"outbox commit -> handler start, {rate} orders/s", "p95 <= 15 ms", hop)
    target(f"one event hop at {rate} orders/s", "p95 <= 15 ms", f"p95 {p95(hop):.1f} ms", p95(hop) <= 15)
    report_samples(f"placed -> confirmed, {rate} orders/s", "p95 <= 100 ms", confirm)


def bench_order_burst(database_url: str, skus: list[str]) -> None:
    """50 clients placing orders as fast as they can, while the saga runs for every order."""
    placed = place_orders(skus, clients=50, per_client=20)
    latencies = [ms for _, ms in placed]
    report_samples("POST /orders, 50 concurrent clients", "p95 <= 50 ms", latencies)
    target("POST /orders, 50 concurrent clients", "p95 <= 50 ms", f"p95 {p95(latencies):.0f} ms", p95(latencies) <= 50)
    ids = [order_id for order_id, _ in placed]
    wait_for_statuses(database_url, ids, {"shipped", "delivered"}, 300)
    hop, confirm = event_latencies(database_url, ids)
    report_samples("outbox commit -> handler start, in that burst", "-", hop)
    report_samples("placed -> confirmed, in that burst", "-", confirm)


def bench_sustained_saga(platform: Platform, skus: list[str], rate: int = 60, seconds: int = 50) -> None:
    """`rate` orders a second offered for `seconds`, to shipped; the CPU each process spent per order shipped,
    and the database transactions each order took."""
    database_url = platform.env["DATABASE_URL"]
    clients = 10
    before, commits_before = cpu.read(platform), ceiling.committed_transactions(database_url)
    started = time.monotonic()
    placed = place_orders(skus, clients=clients, per_client=rate * seconds // clients, pace=clients / rate)
    ids = [order_id for order_id, _ in placed]
    shipped = wait_for_statuses(database_url, ids, {"shipped", "delivered"}, 900)
    elapsed = time.monotonic() - started
    _, used = cpu.read(platform).since(before)
    lost = len(ids) - shipped
    achieved = shipped / elapsed
    report(f"whole saga to shipped, offered {rate}/s for {seconds} s", ">= 60 orders/s, none lost",
           f"{achieved:7.1f} orders/s   {shipped}/{len(ids)} shipped, {lost} not")
    target("whole saga to shipped, sustained", ">= 60 orders/s", f"{achieved:.1f} orders/s, {lost} of {len(ids)} lost",
           achieved >= 60 and lost == 0)
    report_cpu_per_order(used, max(shipped, 1))
    SAGA["orders/s"] = achieved
    SAGA["transactions/order"] = (ceiling.committed_transactions(database_url) - commits_before) / max(shipped, 1)
    report_consistency(database_url)


def report_cpu_per_order(used: dict[str, float], orders: int) -> None:
    print("CPU per order shipped, by process (ms):", flush=True)
    for part, spent in sorted(used.items(), key=lambda item: -item[1]):
        kind = "stand-in" if cpu.is_third_party(part) else "ours"
        print(f"  {part:<16} {spent * 1000 / orders:7.2f}   {kind}", flush=True)
    ours, theirs = cpu.split(used)
    ours_ms, theirs_ms = ours * 1000 / orders, theirs * 1000 / orders
    report("CPU per order, our processes", "<= 15 ms",
           f"{ours_ms:7.1f} ms   (+ {theirs_ms:.1f} ms in PostgreSQL, the broker and localstripe: "
           f"{ours_ms + theirs_ms:.1f} ms in all)")
    target("CPU per order, our processes", "<= 15 ms", f"{ours_ms:.1f} ms (all: {ours_ms + theirs_ms:.1f} ms)",
           ours_ms <= 15)


def report_consistency(database_url: str) -> None:
    """Every invariant of `fusion verify` after the load: each order shipped once, stock and payments agree."""
    from fusion.db import Connection
    from fusion.verify import Limits, violations

    with psycopg.connect(database_url, row_factory=namedtuple_row) as raw:
        found = violations(Connection(raw), Limits(confirmed_seconds=3600, step_seconds=600))
    state = "every invariant holds" if not found else "; ".join(v.describe() for v in found[:5])
    report("fusion verify after the sustained saga", "no violation", f"{len(found)} violations: {state}")


def bench_idle(platform: Platform, settle: float = 10, seconds: float = 30) -> None:
    """CPU of the whole platform with no traffic at all, once it has settled after starting."""
    time.sleep(settle)
    before = cpu.read(platform)
    time.sleep(seconds)
    wall, used = cpu.read(platform).since(before)
    busiest = sorted(used.items(), key=lambda item: -item[1])[:4]
    share = sum(used.values()) / wall * 100
    report("CPU of the whole platform, idle", "<= 2 % of a core",
           f"{share:5.2f} % of one core   (busiest: " + ", ".join(f"{part} {spent / wall * 100:.2f} %"
                                                             for part, spent in busiest) + ")")
    target("CPU of the whole platform, idle", "<= 2 % of a core", f"{share:.2f} % of one core", share <= 2)


def bench_database_ceiling(database_url: str) -> None:
    """PostgreSQL's own ceiling, and the saga's throughput against it."""
    tps = ceiling.tpcb_ceiling(database_url)
    per_order = SAGA.get("transactions/order", 0.0)
    report("PostgreSQL ceiling, pgbench TPC-B-like (8 clients)", "-", f"{tps:7.0f} transactions/s")
    if per_order:
        bound = tps / per_order
        report("the saga's transactions per order", "-",
               f"{per_order:7.1f}   so PostgreSQL alone would carry about {bound:.0f} orders/s; the saga ran at "
               f"{SAGA['orders/s']:.1f} ({SAGA['orders/s'] / bound:.1%} of that)")


def start_function(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The catalog's product listing in a process of its own, as a Knative revision starts it."""
    return subprocess.Popen([sys.executable, "-m", "functions_framework", "--source", service_named("catalog").source,
                             "--target", "list_products", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for_first_answer(port: int) -> None:
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/products?limit=50")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.005)


def bench_cold_start(env: dict[str, str], runs: int = 5) -> None:
    startup.compile_bytecode(ROOT)  # as the image is built: a container never writes bytecode
    starts, summed, distinct = [], [], []
    for n in range(runs):
        cold_port = 3990 - n
        started = time.perf_counter()
        process = start_function(cold_port, env)
        try:
            wait_for_first_answer(cold_port)
            starts.append((time.perf_counter() - started) * 1000)
            tree = psutil.Process(process.pid)
            processes = [tree, *tree.children(recursive=True)]
            summed.append(startup.rss_mb(processes))
            distinct.append(startup.distinct_resident_mb(processes))
        finally:
            process.terminate()
            process.wait(10)
    framework = startup.import_ms(ROOT, "functions_framework")
    function = startup.import_ms(ROOT, "functions_framework, functions.catalog.main")
    report("cold start: process start -> first 2xx", "<= 250 ms",
           f"median {statistics.median(starts):7.1f} ms   max {max(starts):7.1f} ms   (n={runs})")
    report("  of which importing functions-framework", "-", f"{framework:7.1f} ms (a fresh interpreter, median of 5)")
    report("  of which importing the catalog's modules", "-", f"{function - framework:7.1f} ms")
    target("cold start, median of 5", "<= 250 ms", f"{statistics.median(starts):.0f} ms "
           f"(imports: framework {framework:.0f}, ours {function - framework:.0f})", statistics.median(starts) <= 250)
    measured = [mb for mb in distinct if mb is not None]
    once = f"{statistics.median(measured):7.1f} MB" if len(measured) == runs else "not readable (needs root)"
    report("memory of one function after its first request", "<= 70 MB RSS",
           f"{once} resident, each page once   (arbiter + worker RSS summed: {statistics.median(summed):.1f} MB)")
    figure = statistics.median(measured) if len(measured) == runs else statistics.median(summed)
    target("memory of one function", "<= 70 MB RSS", f"{figure:.0f} MB (RSS summed: {statistics.median(summed):.0f})",
           figure <= 70)


def median_interval(samples: list[float], rounds: int = 2000) -> tuple[float, float, float]:
    """The median of `samples` and a 95 % bootstrap interval around it."""
    import random

    rng = random.Random(1)
    medians = sorted(statistics.median(rng.choices(samples, k=len(samples))) for _ in range(rounds))
    return statistics.median(samples), medians[int(rounds * 0.025)], medians[int(rounds * 0.975)]


def bench_metrics_cost(env: dict[str, str], requests: int = 1500) -> None:
    """What counting costs: the same listing served by two processes, one with FUSION_METRICS=off, asked in
    turn (so both see the same machine), and one observation timed alone. Tracing is off in both."""
    from fusion import metrics

    counted, uncounted = 3980, 3981
    processes = [start_function(counted, {**env, "FUSION_METRICS": "on"}),
                 start_function(uncounted, {**env, "FUSION_METRICS": "off"})]
    try:
        for served in (counted, uncounted):
            wait_for_first_answer(served)
        on, off = Client("catalog", at=counted), Client("catalog", at=uncounted)
        for _ in range(50):
            on.call("GET", "/products?limit=50")
            off.call("GET", "/products?limit=50")
        pairs = [(on.call("GET", "/products?limit=50")[2], off.call("GET", "/products?limit=50")[2])
                 for _ in range(requests)]
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)
    report_samples("GET /products page of 50, metrics on", "-", [a for a, _ in pairs])
    report_samples("GET /products page of 50, metrics off", "-", [b for _, b in pairs])
    middle, low, high = median_interval([a - b for a, b in pairs])
    report("what counting adds to a request (paired)", "no measurable slowdown",
           f"median {middle:+6.3f} ms   95 % interval {low:+6.3f} .. {high:+6.3f} ms   (n={requests})")
    calls = 100_000
    started = time.perf_counter()
    for _ in range(calls):
        metrics.observe_request("bench", "list-products", "GET /products", 200, 0.004)
    each = (time.perf_counter() - started) / calls * 1e6
    report("one observation (counter and histogram)", "-", f"{each:7.2f} µs of CPU")


def bench_token_verification(samples: int = 2000) -> None:
    """What checking a bearer token adds to a request, keys cached: a token seen for the first time (RS256),
    and one verified before (the steady state of the event plane and of a shopper's session)."""
    assert _issuer is not None
    verifier = TokenVerifier(_issuer.issuer, DEFAULT_AUDIENCE)
    tokens = [_issuer.key.mint(_issuer.issuer, DEFAULT_AUDIENCE, f"bench-verify-{n}") for n in range(samples)]
    verifier.claims(tokens[0])  # the keys fetched
    first, again = [], []
    for token in tokens[1:]:
        started = time.perf_counter()
        verifier.claims(token)
        first.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        verifier.claims(token)
        again.append((time.perf_counter() - started) * 1000)
    report_samples("bearer token verification, first time (RS256)", "p50 <= 0.3 ms", first)
    report_samples("bearer token verification, seen before", "-", again)


def bench_verify(database_url: str) -> None:
    """`fusion verify` over 100,000 more orders (written straight into the database, after the sagas)."""
    timed(f"seeding {verify_scale.ORDERS:,} orders", lambda: verify_scale.seed(database_url))
    timings, _ = verify_scale.measure(database_url)
    report(f"fusion verify, {verify_scale.ORDERS:,} orders", "-",
           f"best {min(timings):6.2f} s   worst {max(timings):6.2f} s   (n={len(timings)})")


def report_metrics() -> None:
    """Whether the processes serve /metrics while measured (they always count), and what one scrape of all costs."""
    from fusion.observe import local_targets, scrape

    targets = local_targets()
    started = time.perf_counter()
    taken = scrape(targets)
    elapsed = (time.perf_counter() - started) * 1000
    state = "on" if taken.samples else "off (no /metrics answered)"
    print(f"metrics: {state}; {len(taken.samples)} samples, {sum(taken.health.values())}/{len(targets)} processes "
          f"healthy; one scrape of every /metrics and /health took {elapsed:.0f} ms", flush=True)


def timed(step: str, action: Callable[[], Any]) -> Any:
    print(f"… {step}", flush=True)
    return action()


@contextmanager
def bench_platform() -> Iterator[Platform]:
    """A platform of its own (fresh state, ports shifted by OFFSET), its issuer minting the bench's tokens."""
    global _issuer
    with tempfile.TemporaryDirectory(prefix="fusion-bench-") as state:
        env = {**os.environ, "FUSION_STATE_DIR": state, "FUSION_PORT_OFFSET": str(OFFSET), "LOG_LEVEL": "warn",
               "FUSION_PG_PORT": "5499", "FUSION_BROKER_PORT": "9499", "FUSION_STRIPE_PORT": "8499",
               "FUSION_ISSUER_PORT": "8498"}
        for name in ("DATABASE_URL", "KAFKA_BROKERS", "STRIPE_SECRET_KEY", "OIDC_ISSUER", "OIDC_AUDIENCE",
                     "FUSION_ROUTER_WAKE_ADDRESS"):
            env.pop(name, None)
        os.environ.update(env)
        platform = Platform(ROOT, env=env)
        try:
            timed("starting the platform", lambda: platform.start(progress=False))
            _issuer = platform.issuer
            yield platform
        finally:
            platform.stop()
            _issuer = None


def main() -> int:
    report_load("load average before the run")
    report_machine_speed()
    with bench_platform() as platform:
        report_metrics()
        timed("measuring the idle platform", lambda: bench_idle(platform))
        bench_token_verification()
        database_url = platform.env["DATABASE_URL"]
        timed("seeding 10,000 products", lambda: seed_products(database_url, 10_000))
        bench_catalog_reads()
        bench_gateway()
        skus = timed("creating products for sale", lambda: create_sale_products(50))
        flow = charts.Flow(database_url).start()
        try:
            bench_event_latency(database_url, skus)
            bench_order_burst(database_url, skus)
            bench_sustained_saga(platform, skus)
        finally:
            flow.stop()
        bench_slow_stripe(database_url, platform.env["STRIPE_API_BASE"], platform.env,
                          lambda customer: bearer({"customerId": customer}))
        bench_cold_start(platform.env)
        bench_metrics_cost(platform.env)
        bench_database_ceiling(database_url)
        bench_verify(database_url)
        report_load("load average after the run")
        for chart in charts.write(OUTPUT, LATENCIES, flow):
            print(f"wrote {chart.relative_to(ROOT)}", flush=True)
        report_targets()
    return 0


if __name__ == "__main__":
    sys.exit(main())
