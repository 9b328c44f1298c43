"""`fusion status`: one screen of the platform's figures — each service's health, request rate, error rate
and p95, each handler's consumer lag and dead letters, the outbox backlog — from the local processes or a
Prometheus; `--watch` redraws it in place."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from fusion.local.ports import METRICS_PORTS
from fusion.observe import (
    Figures,
    Prometheus,
    Scrape,
    Snapshot,
    local_snapshot,
    local_targets,
    scrape,
    service_health,
)
from fusion.registry import load_all, services

CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear the screen


def _milliseconds(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def _share(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


def _health(snapshot: Snapshot, name: str) -> str:
    if name not in snapshot.health:
        return "?"
    return "ok" if snapshot.health[name] else "FAILING"


def _service_rows(snapshot: Snapshot) -> list[str]:
    names = [*services(), *(part for part in METRICS_PORTS if part in snapshot.health)]
    rows = [f"{'service':<16}{'health':<9}{'req/s':>8}{'errors':>9}{'p95':>10}"]
    for name in names:
        figures = snapshot.services.get(name, Figures())
        rate = figures.requests / snapshot.window if snapshot.window else 0.0
        rows.append(f"{name:<16}{_health(snapshot, name):<9}{rate:>8.1f}{_share(figures.error_rate):>9}"
                    f"{_milliseconds(figures.p95):>10}")
    others = sorted(name for name in snapshot.unhealthy if name not in names)
    if others:
        rows.append(f"failing health: {', '.join(others)}")
    if not any(snapshot.health.values()):
        rows.append("nothing answered: is the platform running (fusion dev, and the same FUSION_PORT_OFFSET)?")
    return rows


def _handler_rows(snapshot: Snapshot) -> list[str]:
    handlers = sorted(spec.name for spec in load_all().values() if spec.kind == "cloudevent")
    width = max(len(name) for name in handlers) + 2
    rows = [f"{'handler':<{width}}{'lag':>8}{'dead letters':>14}"]
    for name in handlers:
        lag = snapshot.lag.get(name)
        rows.append(f"{name:<{width}}{'-' if lag is None else f'{lag:.0f}':>8}"
                    f"{snapshot.dead_letters.get(name, 0.0):>14.0f}")
    return rows


def _outbox_rows(snapshot: Snapshot) -> list[str]:
    rows = [f"{'outbox':<16}{'waiting':>8}{'oldest':>10}"]
    for schema, (waiting, oldest) in sorted(snapshot.outbox.items()):
        rows.append(f"{schema:<16}{waiting:>8.0f}{oldest:>9.0f}s")
    if not snapshot.outbox:
        rows.append("(the relay's /metrics did not answer)")
    return rows


def render(snapshot: Snapshot, source: str) -> str:
    moment = datetime.now(UTC).strftime("%H:%M:%S UTC")
    head = f"FusionCommerce — {source}, last {snapshot.window:.0f} s, {moment}"
    return "\n".join([head, "", *_service_rows(snapshot), "", *_handler_rows(snapshot), "",
                      *_outbox_rows(snapshot)]) + "\n"


def _local_source(interval: float) -> Callable[[], Snapshot]:
    """Each call: the figures since the previous scrape (the first waits `interval`)."""
    targets = local_targets()
    previous: list[Scrape] = [scrape(targets)]

    def next_snapshot() -> Snapshot:
        time.sleep(max(0.0, interval - (time.monotonic() - previous[0].at)))
        current = scrape(targets)
        snapshot = local_snapshot(previous[0], current)
        previous[0] = current
        return snapshot

    return next_snapshot


def show(prometheus: str | None, selector: str, window: float, interval: float, watch: bool) -> int:
    """Print the screen once, or redraw it every `interval` seconds until Ctrl-C."""
    if prometheus:
        source = Prometheus(prometheus, selector)
        label = f"Prometheus {prometheus}"

        def next_snapshot() -> Snapshot:
            return service_health(source.snapshot(window))  # `up` names pods: read per service
    else:
        label = "local platform"
        next_snapshot = _local_source(interval)
    try:
        while True:
            screen = render(next_snapshot(), label)
            sys.stdout.write(CLEAR + screen if watch else screen)
            sys.stdout.flush()
            if not watch:
                return 0
            if prometheus:
                time.sleep(interval)
    except KeyboardInterrupt:
        return 0
