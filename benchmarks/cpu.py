"""CPU time of each process of the local platform, read from the kernel's counters (psutil).

A part is its process and every descendant (gunicorn's workers, PostgreSQL's backends). The backends that
ended while measured count too: their parent reaped them, so their time is in its children's times.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psutil

from fusion.local.platform import Platform

# Not ours in production: the managed database, Kafka/Redpanda and Stripe stand in for them here.
THIRD_PARTY = ("postgres", "broker", "stripe")


def _cpu_seconds(pid: int) -> float:
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in tree:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def _pids(platform: Platform) -> dict[str, int]:
    found = {}
    for part in [*platform.backing, *platform.children]:
        process = part.server.process
        if process is not None:
            found[part.name] = process.pid
    return found


def is_third_party(part: str) -> bool:
    return part.startswith(THIRD_PARTY)


@dataclass(frozen=True)
class Reading:
    at: float
    seconds: dict[str, float]  # part -> CPU seconds used so far

    def since(self, earlier: Reading) -> tuple[float, dict[str, float]]:
        """Wall seconds between the two readings, and the CPU seconds each part used in between."""
        used = {part: max(0.0, spent - earlier.seconds.get(part, 0.0)) for part, spent in self.seconds.items()}
        return self.at - earlier.at, used


def read(platform: Platform) -> Reading:
    return Reading(time.monotonic(), {part: _cpu_seconds(pid) for part, pid in _pids(platform).items()})


def split(used: dict[str, float]) -> tuple[float, float]:
    """(our processes, the third-party stand-ins), in CPU seconds."""
    ours = sum(spent for part, spent in used.items() if not is_third_party(part))
    return ours, sum(used.values()) - ours
