"""The platform's figures over a window, in one shape for `fusion status` and `fusion gate`: read from every
local process's /metrics (two scrapes, the window apart) or from a Prometheus HTTP API (`rate` and `increase`
over the window).
"""

from __future__ import annotations

import json
import math
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from prometheus_client.parser import text_string_to_metric_families

from fusion import metrics
from fusion.knative.resources import RELAY
from fusion.local.ports import METRICS_PORTS, metrics_port
from fusion.registry import FunctionSpec, load_all

SCRAPE_TIMEOUT = 2.0  # a process that does not answer /health or /metrics within it counts as failing
QUANTILE = 0.95
DEAD = (metrics.DEAD_LETTERED, metrics.REJECTED)
PART_HOSTS = {"relay": RELAY, "router": "router"}  # the Deployment / Compose service running each


class SourceUnavailable(RuntimeError):
    """The figures could not be read (Prometheus down, a query refused)."""


@dataclass(frozen=True)
class Figures:
    """HTTP requests in the window: how many, how many answered 5xx, and the 95th percentile latency (s)."""

    requests: float = 0.0
    errors: float = 0.0
    p95: float | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


@dataclass(frozen=True)
class Snapshot:
    window: float  # seconds
    services: dict[str, Figures] = field(default_factory=dict)
    functions: dict[str, Figures] = field(default_factory=dict)
    health: dict[str, bool] = field(default_factory=dict)  # process or pod → answering
    lag: dict[str, float] = field(default_factory=dict)  # handler → messages not committed
    dead_letters: dict[str, float] = field(default_factory=dict)  # handler → dead-lettered since start
    outbox: dict[str, tuple[float, float]] = field(default_factory=dict)  # schema → (waiting, oldest age s)

    @property
    def overall(self) -> Figures:
        return Figures(sum(f.requests for f in self.functions.values()),
                       sum(f.errors for f in self.functions.values()))

    @property
    def unhealthy(self) -> list[str]:
        return sorted(name for name, ok in self.health.items() if not ok)


# reading samples


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float


def parse(text: str) -> list[Sample]:
    """The samples of a /metrics text."""
    return [Sample(s.name, s.labels, s.value) for family in text_string_to_metric_families(text)
            for s in family.samples]


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """Prometheus's histogram_quantile over cumulative bucket counts (upper bound → count): linear within the
    bucket the rank falls in; the highest finite bound when it falls in +Inf; None without observations."""
    ordered = sorted(buckets.items())
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def _key(sample: Sample) -> tuple[str, tuple[tuple[str, str], ...]]:
    return sample.name, tuple(sorted(sample.labels.items()))


def increase(before: Iterable[Sample], after: Iterable[Sample]) -> list[Sample]:
    """Counter samples as their increase from `before` to `after`; a series that went down (its process was
    restarted) counts from zero."""
    earlier = {_key(s): s.value for s in before}
    grown = []
    for sample in after:
        start = earlier.get(_key(sample), 0.0)
        grown.append(Sample(sample.name, sample.labels, sample.value - start if sample.value >= start
                            else sample.value))
    return grown


def http_figures(samples: Iterable[Sample], by: str) -> dict[str, Figures]:
    """Requests, 5xx answers and p95 per value of the label `by` ("service" or "function")."""
    requests: dict[str, float] = defaultdict(float)
    errors: dict[str, float] = defaultdict(float)
    buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for s in samples:
        name = s.labels.get(by, "")
        if s.name == metrics.HTTP_REQUESTS and name:
            requests[name] += s.value
            if s.labels.get("status", "").startswith("5"):
                errors[name] += s.value
        elif s.name == metrics.HTTP_DURATION + "_bucket" and name:
            buckets[name][float(s.labels["le"])] += s.value
    return {name: Figures(requests[name], errors[name], quantile(QUANTILE, buckets[name])) for name in requests}


def _by_label(samples: Iterable[Sample], metric: str, label: str, outcomes: tuple[str, ...] = ()) -> dict[str, float]:
    """Sum of `metric` per value of `label` (only the given outcomes, when any)."""
    totals: dict[str, float] = defaultdict(float)
    for s in samples:
        if s.name == metric and (not outcomes or s.labels.get("outcome") in outcomes):
            totals[s.labels.get(label, "")] += s.value
    return dict(totals)


def from_scrapes(before: list[Sample], after: list[Sample], window: float, health: dict[str, bool]) -> Snapshot:
    """The figures between two scrapes of every process, `window` seconds apart."""
    grown = increase(before, after)
    waiting = _by_label(after, metrics.OUTBOX_WAITING, "schema")
    oldest = _by_label(after, metrics.OUTBOX_OLDEST, "schema")
    return Snapshot(
        window=window,
        services=http_figures(grown, "service"),
        functions=http_figures(grown, "function"),
        health=health,
        lag=_by_label(after, metrics.CONSUMER_LAG, "handler"),
        dead_letters=_by_label(after, metrics.DELIVERIES, "handler", DEAD),
        outbox={schema: (waiting[schema], oldest.get(schema, 0.0)) for schema in waiting},
    )


# the local platform


@dataclass(frozen=True)
class Target:
    name: str
    metrics_url: str
    health_url: str | None  # None: answering /metrics is its health (the relay, the router)


def local_targets(template: str | None = None) -> list[Target]:
    """Every process of the platform that has /metrics: one per service, the relay, the router. Where `fusion
    dev` runs them, or where `template` (FUSION_SERVICE_URL_TEMPLATE, e.g. "http://{service}:{port}") says."""
    from fusion.router import service_url_from

    service_url = service_url_from(template)
    first: dict[str, FunctionSpec] = {}  # one function per service: they all share its URL
    for spec in load_all().values():
        first.setdefault(spec.service, spec)
    targets = [Target(name, service_url(spec) + metrics.METRICS_PATH, service_url(spec) + "/health")
               for name, spec in first.items()]
    targets += [Target(part, _part_url(part, template) + metrics.METRICS_PATH, None) for part in METRICS_PORTS]
    return targets


def _part_url(part: str, template: str | None) -> str:
    if not template:
        return f"http://127.0.0.1:{metrics_port(part)}"
    return template.format(service=PART_HOSTS[part], port=METRICS_PORTS[part])


def pods_by_service(pods: Mapping[str, bool], specs: Iterable[FunctionSpec]) -> dict[str, bool]:
    """Pod health as service health: a service is healthy when every pod of its functions answers (Knative
    names a pod after its function's revision, `<function>-<revision>-deployment-…`). A service scaled to
    zero has no pod, and no entry: its health is not known."""
    owners = sorted(((spec.name, spec.service) for spec in specs), key=lambda owner: -len(owner[0]))
    owners += [(host, part) for part, host in PART_HOSTS.items()]
    health: dict[str, bool] = {}
    for pod, up in pods.items():
        service = next((service for name, service in owners if pod.startswith(name + "-")), None)
        if service is not None:
            health[service] = health.get(service, True) and up
    return health


def service_health(snapshot: Snapshot) -> Snapshot:
    """The snapshot with its pods' health read as each service's (a Prometheus's `up` names pods)."""
    return replace(snapshot, health=pods_by_service(snapshot.health, load_all().values()))


def _fetch(url: str) -> tuple[int, str] | None:
    try:
        with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class Scrape:
    samples: list[Sample]
    health: dict[str, bool]
    at: float  # monotonic


def scrape(targets: list[Target]) -> Scrape:
    """/metrics and /health of every target at once."""
    def one(target: Target) -> tuple[str, list[Sample], bool]:
        got = _fetch(target.metrics_url)
        samples = parse(got[1]) if got is not None and got[0] == 200 else []
        if target.health_url is None:
            return target.name, samples, got is not None and got[0] == 200
        health = _fetch(target.health_url)
        return target.name, samples, health is not None and health[0] == 200

    with ThreadPoolExecutor(max_workers=len(targets) or 1) as pool:
        results = list(pool.map(one, targets))
    return Scrape([s for _, samples, _ in results for s in samples], {name: ok for name, _, ok in results},
                  time.monotonic())


def local_snapshot(before: Scrape, after: Scrape) -> Snapshot:
    return from_scrapes(before.samples, after.samples, after.at - before.at, after.health)


def watch_locally(window: float, targets: list[Target] | None = None) -> Snapshot:
    """Scrape, wait `window` seconds, scrape again: the figures of that window."""
    targets = local_targets() if targets is None else targets
    before = scrape(targets)
    print(f"watching the local platform for {window:g} s…", file=sys.stderr, flush=True)
    time.sleep(window)
    return local_snapshot(before, scrape(targets))


# Prometheus


Answer = list[tuple[dict[str, str], float]]  # a vector query's series: labels, value


def _by(answer: Answer, label: str) -> dict[str, float]:
    return {labels.get(label, ""): value for labels, value in answer}


def promql_window(seconds: float) -> str:
    return f"{max(1, round(seconds))}s"


class Prometheus:
    """Queries of a Prometheus HTTP API (`/api/v1/query`); `selector` narrows every series, e.g.
    'namespace="fusioncommerce-production"'."""

    def __init__(self, url: str, selector: str = ""):
        self.url = url.rstrip("/")
        self.selector = selector

    def query(self, promql: str) -> Answer:
        address = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        try:
            with urllib.request.urlopen(address, timeout=10) as response:
                answer = json.loads(response.read())
        except (OSError, ValueError) as exc:
            raise SourceUnavailable(f"Prometheus at {self.url} did not answer {promql!r}: {exc}") from None
        if answer.get("status") != "success":
            raise SourceUnavailable(f"Prometheus refused {promql!r}: {answer.get('error')}")
        return [(item["metric"], float(item["value"][1])) for item in answer["data"]["result"]
                if not math.isnan(float(item["value"][1]))]

    def _of(self, metric: str, extra: str = "") -> str:
        matchers = ", ".join(part for part in (self.selector, extra) if part)
        return f"{metric}{{{matchers}}}"

    def _all(self, queries: list[str]) -> list[Answer]:
        """The answers to several queries, asked at once."""
        with ThreadPoolExecutor(max_workers=len(queries)) as pool:
            return list(pool.map(self.query, queries))

    def _backlog_queries(self) -> list[str]:
        dead = self._of(metrics.DELIVERIES, 'outcome=~"' + "|".join(DEAD) + '"')
        return [self._of("up"), f"max by (handler) ({self._of(metrics.CONSUMER_LAG)})",
                f"sum by (handler) ({dead})", f"max by (schema) ({self._of(metrics.OUTBOX_WAITING)})",
                f"max by (schema) ({self._of(metrics.OUTBOX_OLDEST)})"]

    @staticmethod
    def _backlog(answers: list[Answer]) -> Snapshot:
        up, lag, dead, waiting, oldest = answers
        health = {labels.get("pod") or labels.get("instance", "?"): value == 1 for labels, value in up}
        outbox = _by(waiting, "schema")
        ages = _by(oldest, "schema")
        return Snapshot(window=0.0, health=health, lag=_by(lag, "handler"), dead_letters=_by(dead, "handler"),
                        outbox={schema: (count, ages.get(schema, 0.0)) for schema, count in outbox.items()})

    def backlog(self) -> Snapshot:
        """What waits, now: each pod's `up`, each handler's lag and dead letters, each outbox; no HTTP figures."""
        return self._backlog(self._all(self._backlog_queries()))

    def _http_queries(self, window: float) -> list[str]:
        span = promql_window(window)
        return [f"sum by (service, function, status) (increase({self._of(metrics.HTTP_REQUESTS)}[{span}]))",
                f"sum by (service, function, le) (increase({self._of(metrics.HTTP_DURATION + '_bucket')}[{span}]))"]

    @staticmethod
    def _samples(requests: Answer,
                 buckets: Answer) -> list[Sample]:
        """The answers as the samples a /metrics scrape gives, for http_figures."""
        return ([Sample(metrics.HTTP_REQUESTS, labels, value) for labels, value in requests]
                + [Sample(metrics.HTTP_DURATION + "_bucket", labels, value) for labels, value in buckets])

    def snapshot(self, window: float) -> Snapshot:
        """The backlog, and the HTTP figures of the last `window` seconds (seven queries, asked at once)."""
        answers = self._all([*self._backlog_queries(), *self._http_queries(window)])
        grown = self._samples(answers[-2], answers[-1])
        return replace(self._backlog(answers[:-2]), window=window, services=http_figures(grown, "service"),
                       functions=http_figures(grown, "function"))
