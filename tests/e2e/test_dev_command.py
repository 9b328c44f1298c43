"""`make dev` as a newcomer runs it: everything embedded, Ctrl-C stops it all, data survives a restart."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
from platform_runner import PROJECT_ROOT, RunningPlatform, eventually, own_issuer, with_local_tokens
from support import free_port

from fusion.local.sample import PRODUCTS, SKU_PREFIX

OFFSET = 300


def start_make_dev(env: dict[str, str], output: Path) -> RunningPlatform:
    sink = output.open("w")
    process = subprocess.Popen(["make", "--no-print-directory", "dev"], cwd=PROJECT_ROOT,
                               env={**os.environ, **env}, stdout=sink, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    running = RunningPlatform(process, OFFSET, output)
    deadline = time.monotonic() + 120
    while "is ready" not in output.read_text():
        assert process.poll() is None and time.monotonic() < deadline, output.read_text()[-4000:]
        time.sleep(0.2)
    return with_local_tokens(running, {**os.environ, **env})


def press_ctrl_c(running: RunningPlatform) -> float:
    """SIGINT to the whole foreground process group, as a terminal does; returns how long the stop took."""
    started = time.monotonic()
    os.killpg(running.process.pid, signal.SIGINT)
    # make itself dies of the SIGINT, as in a terminal; `fusion dev` below it must stop cleanly
    assert running.process.wait(30) in (0, -signal.SIGINT, 130)
    assert running.output.read_text().rstrip().endswith("stopped."), running.output.read_text()[-3000:]
    return time.monotonic() - started


def leftovers(markers: list[str]) -> list[str]:
    """Processes whose command line holds a marker; a marker ending in a number does not match a longer
    number (the port 3300 is not 33009, another test's localstripe)."""
    found = []
    patterns = [re.compile(re.escape(marker) + r"(?!\d)") for marker in markers]
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        command = " ".join(proc.info["cmdline"] or [])
        if any(pattern.search(command) for pattern in patterns):
            found.append(f"{proc.info['pid']}: {command}")
    return found


def test_make_dev_runs_the_flow_stops_cleanly_and_keeps_its_data(tmp_path: Path) -> None:
    state = tmp_path / "state"
    pg_port, broker_port, stripe_port = free_port(), free_port(), free_port()
    env = {
        "FUSION_STATE_DIR": str(state), "FUSION_PORT_OFFSET": str(OFFSET), "FUSION_PG_PORT": str(pg_port),
        "FUSION_BROKER_PORT": str(broker_port), "FUSION_STRIPE_PORT": str(stripe_port),
        "DATABASE_URL": "", "KAFKA_BROKERS": "", "STRIPE_SECRET_KEY": "", "CATALOG_URL": "", **own_issuer(),
    }
    markers = [str(state), f"127.0.0.1:{broker_port}", f"--port {3000 + OFFSET}", f"--port={stripe_port}",
               f"--port {stripe_port}"]
    first = start_make_dev(env, tmp_path / "first.out")
    try:
        table = first.output.read_text()
        for part in ("catalog", "orders", "inventory", "relay", "router", "postgres", "broker", "issuer", "sample"):
            assert part in table
        assert sample_skus(first) == SAMPLE_SKUS, "a fresh state gets the sample catalog"
        [campaign] = first.get("group-commerce", "/campaigns?status=active")
        assert campaign["maxParticipants"] == 20
        sku = f"KEEP-{uuid.uuid4().hex[:8]}"
        status, product = first.post("catalog", "/products", {"sku": sku, "name": "Kept", "price": 5, "currency":
                                                              "EUR", "inventory": 10})
        assert status == 201
        order = eventually(
            lambda: first.post("orders", "/orders", {"customerId": "c-keep", "currency": "EUR",
                                                     "items": [{"sku": sku, "quantity": 2, "price": 5}]}),
            lambda result: result[0] == 201)[1]
        eventually(lambda: first.get("orders", f"/orders/{order['id']}")["status"], lambda s: s != "created")
    finally:
        stop_seconds = press_ctrl_c(first)
    print(f"make dev stopped {stop_seconds:.1f} s after Ctrl-C")  # press_ctrl_c bounds it
    assert leftovers(markers) == []

    second = start_make_dev(env, tmp_path / "second.out")
    try:
        assert second.get("catalog", f"/products/{product['id']}")["sku"] == sku
        kept = second.get("orders", f"/orders/{order['id']}")
        assert kept["customerId"] == "c-keep" and kept["status"] != "created"
        assert sample_skus(second) == SAMPLE_SKUS, "loaded once, not again on a restart"
    finally:
        press_ctrl_c(second)
    assert leftovers(markers) == []

    reset = subprocess.run([sys.executable, "-m", "fusion.cli", "reset", "--yes"], cwd=PROJECT_ROOT,
                           env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert reset.returncode == 0 and not state.exists(), reset.stderr
    third = start_make_dev(env, tmp_path / "third.out")
    try:
        status, _ = third.request("GET", "catalog", f"/products/{product['id']}")
        assert status == 404, "a reset state starts from nothing"
        assert sample_skus(third) == SAMPLE_SKUS
    finally:
        press_ctrl_c(third)
    assert leftovers(markers) == []


SAMPLE_SKUS = sorted(SKU_PREFIX + suffix for suffix, *_ in PRODUCTS)


def sample_skus(platform: RunningPlatform) -> list[str]:
    return sorted(p["sku"] for p in platform.get("catalog", "/products?limit=200") if p["sku"].startswith(SKU_PREFIX))
