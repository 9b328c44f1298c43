"""`fusion dev` supervises what it runs: a process killed with kill -9 is started again, the rest stays up.

This runs on a platform of its own, everything embedded (PostgreSQL with its data on disk, the
broker, localstripe), since its processes are killed on purpose."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import psycopg
import pytest
from platform_runner import RunningPlatform, eventually, own_issuer, start_platform
from support import free_port
from test_backbone import new_product, order_status, place

from fusion.local.platform import Supervised
from fusion.local.process import spawn

OFFSET = 350
OTHERS = ("catalog", "inventory", "group-commerce", "payments", "shipping")


@pytest.fixture(scope="module")
def supervised(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningPlatform, Path, int]]:
    folder = tmp_path_factory.mktemp("supervision")
    pg_port = free_port()
    env = {
        "FUSION_STATE_DIR": str(folder / "state"), "FUSION_PG_PORT": str(pg_port),
        "FUSION_BROKER_PORT": str(free_port()), "FUSION_STRIPE_PORT": str(free_port()),
        "DATABASE_URL": "", "KAFKA_BROKERS": "", "STRIPE_SECRET_KEY": "", "STRIPE_API_BASE": "",
        "STRIPE_WEBHOOK_SECRET": "", "STRIPE_AUTO_CONFIRM": "", "LOG_LEVEL": "info", **own_issuer(),
    }
    running = start_platform(env, OFFSET, folder / "platform.out", timeout=120)
    yield running, folder / "state", pg_port
    assert running.stop() == 0


def health(platform: RunningPlatform, service: str) -> int:
    try:
        return platform.request("GET", service, "/health")[0]
    except OSError:
        return 0


def table_rows(platform: RunningPlatform, part: str) -> list[list[str]]:
    """Every row the platform printed for `part` in its tables, oldest first."""
    rows = [line.split() for line in platform.output.read_text().splitlines()]
    return [fields for fields in rows if len(fields) >= 3 and fields[0] == part and fields[2].isdigit()]


def placed_and_shipped(platform: RunningPlatform, sku: str) -> None:
    # a pooled connection that PostgreSQL's restart closed fails its request once: 503, try again
    _, order = eventually(lambda: place(platform, sku, 1, 10.0, customer="after-restart"), lambda r: r[0] == 201)
    assert eventually(lambda: order_status(platform, order["id"]), lambda s: s == "shipped", timeout=60) == "shipped"


def test_a_killed_service_is_started_again_while_the_others_keep_answering(
    supervised: tuple[RunningPlatform, Path, int],
) -> None:
    platform, _, _ = supervised
    product = new_product(platform, inventory=10)
    orders = platform.pid_of("orders")
    killed = time.monotonic()
    os.kill(orders, signal.SIGKILL)  # the gunicorn arbiter; its workers are orphaned

    def back() -> bool:
        rows = table_rows(platform, "orders")
        return rows[-1][2] != str(orders) and health(platform, "orders") == 200

    eventually(back, bool, timeout=60)
    print(f"orders answered /health again {time.monotonic() - killed:.1f} s after kill -9")
    assert platform.process.poll() is None, "the platform stays up"
    assert [health(platform, service) for service in OTHERS] == [200] * len(OTHERS)
    placed_and_shipped(platform, product["sku"])
    output = platform.output.read_text()
    assert "orders exited with code -9 (SIGKILL); restarting it in 0.5 s (restart 1)" in output
    restarted = table_rows(platform, "orders")[-1]
    assert f"orders restarted (restart 1, pid {restarted[2]})" in output
    assert restarted[3:] == ["1"], "the table shows one restart"


def test_killed_postgres_is_started_again_with_its_data(supervised: tuple[RunningPlatform, Path, int]) -> None:
    platform, state, pg_port = supervised
    product = new_product(platform, inventory=10)
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{pg_port}/ecommerce", autocommit=True) as conn:
        conn.execute("CHECKPOINT")  # on disk: what asynchronous commit could lose to a kill is not the point here
    postmaster = int((state / "postgres" / "postmaster.pid").read_text().split()[0])
    killed = time.monotonic()
    os.kill(postmaster, signal.SIGKILL)
    eventually(platform.output.read_text, lambda output: "postgres restarted (restart 1" in output, timeout=60)
    eventually(lambda: health(platform, "orders") == 200, bool, timeout=60)
    print(f"the functions reached PostgreSQL again {time.monotonic() - killed:.1f} s after kill -9")
    assert platform.process.poll() is None
    kept = eventually(lambda: platform.request("GET", "catalog", f"/products/{product['id']}"), lambda r: r[0] == 200)
    assert kept[1]["sku"] == product["sku"]
    placed_and_shipped(platform, product["sku"])


def test_a_killed_localstripe_is_started_again_and_the_saga_runs(
    supervised: tuple[RunningPlatform, Path, int],
) -> None:
    platform, _, _ = supervised
    os.kill(_pid_in_table(platform, "stripe"), signal.SIGKILL)
    eventually(platform.output.read_text, lambda output: "stripe restarted (restart 1" in output, timeout=60)
    assert platform.process.poll() is None
    # it starts empty: localstripe hears of the payments webhook again
    product = new_product(platform, inventory=10)
    placed_and_shipped(platform, product["sku"])


def test_a_killed_broker_is_started_again_and_the_saga_runs(supervised: tuple[RunningPlatform, Path, int]) -> None:
    """Last on this platform: the memory-only broker comes back without topics or groups; the router
    creates the topics again and its groups rejoin them."""
    platform, _, _ = supervised
    product = new_product(platform, inventory=10)
    os.kill(_pid_in_table(platform, "broker"), signal.SIGKILL)
    eventually(platform.output.read_text, lambda output: "broker restarted (restart 1" in output, timeout=60)
    back = time.monotonic()
    assert platform.process.poll() is None
    assert health(platform, "orders") == 200
    placed_and_shipped(platform, product["sku"])
    print(f"an order placed once the broker was back shipped {time.monotonic() - back:.1f} s after its restart")


def _pid_in_table(platform: RunningPlatform, part: str) -> int:
    [first, *_] = [line.split() for line in platform.output.read_text().splitlines() if line.startswith(part + " ")]
    return int(first[-1])


def test_a_part_that_keeps_exiting_is_given_up_with_the_end_of_its_log(tmp_path: Path) -> None:
    log = tmp_path / "flaky.log"
    command = [sys.executable, "-c", "print('no config file, giving up'); raise SystemExit(3)"]
    start = partial(spawn, "flaky", "nowhere", command, log)
    part = Supervised(start(), start, log)
    now, delays = 0.0, []
    with pytest.raises(RuntimeError) as gave_up:
        while True:
            assert part.server.process is not None
            part.server.process.wait(30)
            assert not part.tend(now) and part.due is not None
            delays.append(part.due - now)
            now = part.due
            assert part.tend(now)
    assert delays == [0.5, 1, 2, 4, 8] and part.restarts == 5
    message = str(gave_up.value)
    assert message.startswith("flaky exited with code 3 after 5 restarts within 60 s")
    assert "no config file, giving up" in message and str(log) in message


def test_restarts_far_apart_are_not_a_crash_loop(tmp_path: Path) -> None:
    log = tmp_path / "rare.log"
    start = partial(spawn, "rare", "nowhere", [sys.executable, "-c", "raise SystemExit(1)"], log)
    part = Supervised(start(), start, log)
    for restart in range(1, 8):
        assert part.server.process is not None
        part.server.process.wait(30)
        now = restart * 61.0
        part.tend(now)
        assert part.due == now + 0.5, "the delay starts over once the last restart is out of the window"
        assert part.tend(now + 0.5) and part.restarts == restart
    part.server.stop()
