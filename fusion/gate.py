"""The rollback gate: the deployment guide's criteria, judged on the figures of a window after a deploy.

Roll back when, within 30 minutes of a deploy, any holds: the error rate (5xx answers) exceeds 1 % of
requests; a function's p95 latency exceeds twice its pre-deploy baseline; two or more pods (processes) fail
their health check; a consumer group lags more than 5,000 messages; the data's integrity is broken.
`evaluate` is pure: the figures, the baseline and the thresholds in, the failed criteria out.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fusion.observe import Snapshot, SourceUnavailable

ERROR_RATE, LATENCY, HEALTH, LAG, INTEGRITY = "error rate", "latency", "health", "consumer lag", "integrity"


@dataclass(frozen=True)
class Thresholds:
    max_error_rate: float = 0.01  # of all requests in the window
    p95_factor: float = 2.0  # times the function's baseline p95
    unhealthy: int = 2  # failing when at least this many pods or processes fail their health check
    max_lag: float = 5000  # messages, any handler
    # Not in the guide: a p95 is judged on at least this many requests, and never below this many seconds,
    # so that a quiet window or a jump from 4 to 9 ms does not roll a release back.
    min_requests: int = 20
    latency_floor: float = 0.1


@dataclass(frozen=True)
class Baseline:
    """The figures before the deploy the gate compares with."""

    p95: dict[str, float]  # function → seconds
    error_rate: float
    requests: float
    window: float
    recorded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @classmethod
    def of(cls, snapshot: Snapshot, min_requests: int = Thresholds.min_requests) -> Baseline:
        p95 = {name: figures.p95 for name, figures in snapshot.functions.items()
               if figures.p95 is not None and figures.requests >= min_requests}
        overall = snapshot.overall
        return cls(p95, overall.error_rate or 0.0, overall.requests, snapshot.window)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def read(cls, path: Path) -> Baseline:
        data: dict[str, Any] = json.loads(path.read_text())
        try:
            return cls({str(k): float(v) for k, v in data["p95"].items()}, float(data["error_rate"]),
                       float(data["requests"]), float(data["window"]), str(data["recorded_at"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{path} is not a baseline written by fusion gate --record-baseline: {exc}") from None


@dataclass(frozen=True)
class Failure:
    criterion: str
    detail: str

    def __str__(self) -> str:
        return f"{self.criterion}: {self.detail}"


def evaluate(snapshot: Snapshot, baseline: Baseline, thresholds: Thresholds,
             integrity: list[str] | None) -> list[Failure]:
    """Every criterion that fails; `integrity` is the list of violations found, None when not checked."""
    failures = [
        *_error_rate(snapshot, thresholds),
        *_latency(snapshot, baseline, thresholds),
        *_health(snapshot, thresholds),
        *_lag(snapshot, thresholds),
    ]
    if integrity:
        shown = "; ".join(integrity[:5]) + (f" (and {len(integrity) - 5} more)" if len(integrity) > 5 else "")
        failures.append(Failure(INTEGRITY, f"{len(integrity)} violations: {shown}"))
    return failures


def _error_rate(snapshot: Snapshot, thresholds: Thresholds) -> list[Failure]:
    overall = snapshot.overall
    rate = overall.error_rate
    if rate is None or rate <= thresholds.max_error_rate:
        return []
    worst = sorted(((f.error_rate or 0.0, name) for name, f in snapshot.functions.items() if f.errors),
                   reverse=True)[:3]
    named = ", ".join(f"{name} {share:.1%}" for share, name in worst)
    return [Failure(ERROR_RATE, f"{rate:.2%} of {overall.requests:.0f} requests answered 5xx "
                                f"(limit {thresholds.max_error_rate:.2%}; {named})")]


def _latency(snapshot: Snapshot, baseline: Baseline, thresholds: Thresholds) -> list[Failure]:
    slow = []
    for name, figures in sorted(snapshot.functions.items()):
        before = baseline.p95.get(name)
        if before is None or figures.p95 is None or figures.requests < thresholds.min_requests:
            continue
        if figures.p95 > max(thresholds.p95_factor * before, thresholds.latency_floor):
            slow.append(f"{name} p95 {figures.p95 * 1000:.0f} ms > {thresholds.p95_factor:g}x the baseline "
                        f"{before * 1000:.0f} ms")
    return [Failure(LATENCY, "; ".join(slow))] if slow else []


def _health(snapshot: Snapshot, thresholds: Thresholds) -> list[Failure]:
    failing = snapshot.unhealthy
    if len(failing) < thresholds.unhealthy:
        return []
    return [Failure(HEALTH, f"{len(failing)} failing their health check (limit {thresholds.unhealthy}): "
                            f"{', '.join(failing)}")]


def _lag(snapshot: Snapshot, thresholds: Thresholds) -> list[Failure]:
    behind = sorted((name, lag) for name, lag in snapshot.lag.items() if lag > thresholds.max_lag)
    if not behind:
        return []
    listed = ", ".join(f"{name} {lag:.0f}" for name, lag in behind)
    return [Failure(LAG, f"over {thresholds.max_lag:.0f} messages: {listed}")]


def integrity_violations() -> list[str]:
    """The data integrity check: every violation `fusion verify` finds in DATABASE_URL. A check that cannot
    run is one too: a gate that cannot see the data does not let the deploy hold."""
    from fusion.verify import violations

    try:
        return [violation.describe() for violation in violations()]
    except Exception as exc:
        return [f"the check did not run: {exc}"]


CRITERIA = (ERROR_RATE, LATENCY, HEALTH, LAG, INTEGRITY)


def report(failures: list[Failure], integrity_checked: bool) -> str:
    """One line per criterion, then the verdict naming every failed one."""
    failed = {failure.criterion: failure for failure in failures}
    lines = []
    for criterion in CRITERIA:
        if criterion in failed:
            lines.append(f"FAIL {failed[criterion]}")
        elif criterion == INTEGRITY and not integrity_checked:
            lines.append(f"---- {INTEGRITY}: not checked")
        else:
            lines.append(f"pass {criterion}")
    verdict = f"roll back: {', '.join(failed)}" if failed else "the deploy holds: no rollback criterion met"
    return "\n".join([*lines, verdict])


def run(read: Callable[[float], Snapshot], window: float, thresholds: Thresholds, *, record: Path | None,
        baseline: Path | None, check_integrity: bool = True) -> int:
    """Record the baseline (0), or judge the window against it: 0 when the deploy holds, 1 when any criterion
    fails, 2 when the figures or the baseline cannot be read."""
    try:
        snapshot = read(window)
        if record is not None:
            recorded = Baseline.of(snapshot, thresholds.min_requests)
            recorded.write(record)
            print(f"baseline written to {record}: error rate {recorded.error_rate:.2%} of {recorded.requests:.0f} "
                  f"requests, p95 of {len(recorded.p95)} functions")
            return 0
        if baseline is None:
            raise ValueError("a baseline file is needed (--baseline FILE), recorded before the deploy")
        before = Baseline.read(baseline)
    except (SourceUnavailable, OSError, ValueError) as exc:
        print(f"fusion gate: {exc}", file=sys.stderr)
        return 2
    violations = integrity_violations() if check_integrity else None
    failures = evaluate(snapshot, before, thresholds, violations)
    print(f"rollback gate over the last {window:.0f} s (baseline of {before.recorded_at}):")
    print(report(failures, violations is not None))
    return 1 if failures else 0
