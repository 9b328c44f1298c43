"""The operator's numbers on the running platform: every process's /metrics after real traffic, the router's
consumer lag behind a stopped service, `fusion status`, and the rollback gate passing a steady platform and
failing one that answers 5xx or lags."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from platform_runner import PROJECT_ROOT, RunningPlatform, eventually, stopped
from test_backbone import new_product, place, settled

from fusion import metrics
from fusion.local.ports import METRICS_PORTS
from fusion.observe import Sample, parse
from fusion.registry import load_all, services


def listings() -> dict[str, str]:
    """Each service's first listing (a GET route without parameters), by service."""
    found: dict[str, str] = {}
    for spec in load_all().values():
        for route in spec.routes:
            if spec.kind == "http" and route.method == "GET" and "{" not in route.path:
                found.setdefault(spec.service, route.path)
    return found


def scraped(platform: RunningPlatform, part: str) -> list[Sample]:
    port = METRICS_PORTS[part] if part in METRICS_PORTS else services()[part].port
    with urllib.request.urlopen(f"http://127.0.0.1:{port + platform.offset}/metrics", timeout=5) as response:
        return parse(response.read().decode())


def total(samples: list[Sample], name: str, **labels: str) -> float:
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def lag_of(platform: RunningPlatform, handler: str) -> float:
    return total(scraped(platform, "router"), metrics.CONSUMER_LAG, handler=handler)


def fusion(platform: RunningPlatform, *args: str, database: str = "") -> subprocess.Popen[str]:
    """A `fusion` command against the platform (and its database, for the integrity check)."""
    env = {**os.environ, "FUSION_PORT_OFFSET": str(platform.offset), "DATABASE_URL": database}
    return subprocess.Popen([sys.executable, "-m", "fusion.cli", *args], cwd=PROJECT_ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finished(process: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out + err


def list_everything(platform: RunningPlatform, times: int = 1, only: dict[str, str] | None = None) -> None:
    """GET each service's listing `times` times; every answer counts, whatever its status."""
    for _ in range(times):
        for service, path in (listings() if only is None else only).items():
            platform.request("GET", service, path)


def answering(platform: RunningPlatform) -> dict[str, str]:
    """The listings that answer 200: the steady traffic the gate is shown to pass."""
    return {service: path for service, path in listings().items()
            if platform.request("GET", service, path)[0] == 200}


def test_every_process_exposes_its_series_after_traffic(platform: RunningPlatform) -> None:
    product = new_product(platform, inventory=10)
    _, order = place(platform, product["sku"], 1, 10.0, customer="metrics-customer")
    settled(platform, order["id"])
    list_everything(platform)
    assert set(listings()) == set(services())
    for service, path in listings().items():
        samples = scraped(platform, service)
        assert total(samples, metrics.HTTP_REQUESTS, service=service) > 0, service
        assert total(samples, metrics.HTTP_DURATION + "_count", service=service) > 0, service
        assert any(s.name == metrics.HTTP_DURATION + "_bucket" and s.labels["route"] == f"GET {path}"
                   for s in samples), service
    assert total(scraped(platform, "orders"), metrics.SAGA_STAGE + "_count", stage="placed_to_confirmed") > 0
    router = scraped(platform, "router")
    assert total(router, metrics.DELIVERIES, handler="reserve-stock", outcome=metrics.DONE, attempt="1") > 0
    assert total(router, metrics.DELIVERY_DURATION + "_count", handler="reserve-stock") > 0
    handlers = {spec.name for spec in load_all().values() if spec.kind == "cloudevent"}
    assert handlers <= {s.labels["handler"] for s in router if s.name == metrics.CONSUMER_LAG}
    relay = scraped(platform, "relay")
    assert total(relay, metrics.RELAY_PUBLISH + "_count", schema="orders") > 0
    assert {"orders", "inventory", "catalog"} <= {s.labels["schema"] for s in relay if s.name == metrics.OUTBOX_WAITING}
    assert any(s.name == metrics.OUTBOX_OLDEST for s in relay)


def test_the_routers_lag_rises_behind_a_stopped_service_and_falls_after(platform: RunningPlatform,
                                                                        tmp_path: Path) -> None:
    product = new_product(platform, inventory=10)
    eventually(lambda: lag_of(platform, "reserve-stock"), lambda lag: lag == 0)
    baseline = tmp_path / "baseline.json"
    assert finished(fusion(platform, "gate", "--record-baseline", str(baseline), "--window", "1s"))[0] == 0
    with stopped(platform, "inventory"):
        _, order = place(platform, product["sku"], 1, 10.0, customer="lag-customer")
        place(platform, product["sku"], 1, 10.0, customer="lag-customer")
        eventually(lambda: lag_of(platform, "reserve-stock"), lambda lag: lag >= 1)
        code, report = finished(fusion(platform, "gate", "--baseline", str(baseline), "--window", "1s",
                                       "--max-lag", "0", "--no-integrity"))
        assert code == 1, report
        assert "FAIL consumer lag" in report and "reserve-stock" in report, report
        assert "roll back: consumer lag" in report, report
    eventually(lambda: lag_of(platform, "reserve-stock"), lambda lag: lag == 0, timeout=60)
    settled(platform, order["id"])


def test_status_names_every_service_and_handler(platform: RunningPlatform) -> None:
    code, screen = finished(fusion(platform, "status", "--interval", "1"))
    assert code == 0, screen
    rows: dict[str, list[str]] = {}
    for line in screen.splitlines():
        if line.strip():
            rows.setdefault(line.split()[0], line.split())  # the first: a schema has its service's name
    for service in services():
        assert rows[service][1] == "ok", screen
    assert rows["relay"][1] == "ok" and rows["router"][1] == "ok", screen
    assert "reserve-stock" in rows, screen
    assert "\norders " in screen[screen.index("\noutbox"):], screen


def gate_watching(platform: RunningPlatform, *args: str, database: str = "") -> subprocess.Popen[str]:
    """`fusion gate … --window`, returned once it took its first scrape (it says so on stderr)."""
    process = fusion(platform, "gate", *args, database=database)
    assert process.stderr is not None
    first_line = process.stderr.readline()
    assert "watching" in first_line, first_line + process.stderr.read()
    return process


def test_the_gate_passes_a_steady_platform_and_fails_one_answering_5xx(platform: RunningPlatform,
                                                                        e2e_database: str, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    steady_traffic = answering(platform)
    recording = gate_watching(platform, "--record-baseline", str(baseline), "--window", "8s")
    list_everything(platform, times=20, only=steady_traffic)
    assert finished(recording)[0] == 0
    steady = gate_watching(platform, "--baseline", str(baseline), "--window", "8s", database=e2e_database)
    list_everything(platform, times=20, only=steady_traffic)
    code, report = finished(steady)
    assert code == 0, report
    assert "the deploy holds" in report, report
    # A stopped catalog: an order for a sku the orders service has not heard of yet waits for the catalog's
    # answer until its lookup times out, and is answered 503: two of forty requests, and the scheduled runs.
    failing = gate_watching(platform, "--baseline", str(baseline), "--window", "15s", "--no-integrity")
    with stopped(platform, "catalog"):
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda _: place(platform, f"SKU-{uuid.uuid4().hex[:10]}", 1, 10.0)[0],
                                    range(2)))
        assert answers == [503, 503]
        for _ in range(38):
            platform.get("orders", "/orders")
        code, report = finished(failing)
    assert code == 1, report
    assert "FAIL error rate" in report and "create-order 100.0%" in report, report
    assert "roll back: error rate" in report, report
