"""Prometheus metrics of every process, declared once: what the operator's screens, the dashboard and the
rollback gate read.

A function process counts its HTTP requests and, in the orders service, the saga's stage durations; it
answers `GET /metrics` itself (the serving port, next to /health, never an API route). gunicorn may run
several worker processes, so with PROMETHEUS_MULTIPROC_DIR set every worker writes its samples there and
/metrics adds them up. The router counts event deliveries and knows each handler's consumer lag; the relay
knows the outboxes and, in the cluster, the lag of each Trigger's consumer group; both serve /metrics on
FUSION_METRICS_ADDRESS.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cache
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("fusion.metrics")

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
METRICS_ADDRESS = "FUSION_METRICS_ADDRESS"
METRICS_PATH = "/metrics"
UNMATCHED = "unmatched"  # the route label of a request no route of the service matched

# The names the status screen, the gate, the dashboard and the runbook use.
HTTP_REQUESTS = "fusion_http_requests_total"
HTTP_DURATION = "fusion_http_request_duration_seconds"
DELIVERIES = "fusion_event_deliveries_total"
DELIVERY_DURATION = "fusion_event_delivery_duration_seconds"
CONSUMER_LAG = "fusion_consumer_lag_messages"
OUTBOX_WAITING = "fusion_outbox_waiting_rows"
OUTBOX_OLDEST = "fusion_outbox_oldest_age_seconds"
RELAY_PUBLISH = "fusion_relay_publish_duration_seconds"
SAGA_STAGE = "fusion_saga_stage_duration_seconds"

# Delivery outcomes: answered 2xx; failed, to be tried again; failed the last retry, dead-lettered;
# refused with a status that is never retried (400, a 2xx that is not a CloudEvent…), dead-lettered at once.
DONE, RETRIED, DEAD_LETTERED, REJECTED = "done", "retried", "dead_lettered", "rejected"
# The saga's stages, by the statuses that begin and end them.
SAGA_STAGES = {("created", "confirmed"): "placed_to_confirmed", ("confirmed", "paid"): "confirmed_to_paid",
               ("paid", "shipped"): "paid_to_shipped"}

_http_requests = Counter(HTTP_REQUESTS, "HTTP requests a function answered",
                         ["service", "function", "route", "status"])
_http_duration = Histogram(HTTP_DURATION, "time a function took to answer", ["service", "function", "route"])
_deliveries = Counter(DELIVERIES, "event delivery attempts by how they ended",
                      ["handler", "outcome", "attempt"])
_delivery_duration = Histogram(DELIVERY_DURATION, "time one delivery attempt took", ["handler", "outcome"])
_relay_publish = Histogram(RELAY_PUBLISH, "time from producing a batch of outbox rows to the broker's acks",
                           ["schema"])
_saga_stage = Histogram(SAGA_STAGE, "time an order spent in a stage of the saga", ["stage"],
                        buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600))


@cache
def counting() -> bool:
    """Whether this process counts (FUSION_METRICS), read once: the bench compares a process that does not."""
    from fusion.config import metrics_on

    return metrics_on()


# The series of one label set, looked up once per process: `labels()` costs more than the count itself.
# (Created on first use, in the worker that counts: in multiprocess mode a series belongs to its pid.)
@cache
def _request_series(service: str, function: str, route: str, status: int) -> tuple[Any, Any]:
    return (_http_requests.labels(service, function, route, str(status)),
            _http_duration.labels(service, function, route))


@cache
def _delivery_series(handler: str, outcome: str, attempt: int) -> tuple[Any, Any]:
    return _deliveries.labels(handler, outcome, str(attempt)), _delivery_duration.labels(handler, outcome)


def observe_request(service: str, function: str, route: str, status: int, seconds: float) -> None:
    if not counting():
        return
    requests, duration = _request_series(service, function, route, status)
    requests.inc()
    duration.observe(seconds)


def observe_delivery(handler: str, outcome: str, attempt: int, seconds: float) -> None:
    if not counting():
        return
    deliveries, duration = _delivery_series(handler, outcome, attempt)
    deliveries.inc()
    duration.observe(seconds)


def observe_publish(schema: str, seconds: float) -> None:
    if not counting():
        return
    _relay_publish.labels(schema).observe(seconds)


def observe_status_change(previous: str, current: str, seconds: float) -> None:
    """An order moved from `previous` to `current` after `seconds` in `previous`; only saga stages count."""
    stage = SAGA_STAGES.get((previous, current))
    if stage is not None and counting():
        _saga_stage.labels(stage).observe(max(0.0, seconds))


def exposition() -> tuple[bytes, str]:
    """The text of /metrics and its content type: every worker's samples in multiprocess mode."""
    if os.environ.get(MULTIPROC_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def is_metrics_request(method: str, path: str) -> bool:
    return method == "GET" and path.rstrip("/") == METRICS_PATH


class Gauges(Collector):
    """A gauge family read when Prometheus scrapes: `read()` gives each label tuple its value."""

    def __init__(self, name: str, documentation: str, labels: Iterable[str],
                 read: Callable[[], Mapping[tuple[str, ...], float]]):
        self.name, self.documentation, self.labels, self.read = name, documentation, list(labels), read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labels)
        try:
            values = self.read()
        except Exception as exc:  # a scrape must answer even when a source is down; the series is left out
            log.warning("%s not measured: %s", self.name, exc)
            values = {}
        for labels, value in values.items():
            family.add_metric(list(labels), value)
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # read on scrape only: registering must not call `read`


def register_gauges(*collectors: Gauges) -> None:
    for collector in collectors:
        REGISTRY.register(collector)


def serve_metrics(address: str | None = None) -> int | None:
    """Serve /metrics of this process on `address` ("host:port", default FUSION_METRICS_ADDRESS); the port, or
    None when no address is set."""
    address = address if address is not None else os.environ.get(METRICS_ADDRESS, "").strip()
    if not address:
        return None
    host, _, port = address.rpartition(":")
    start_http_server(int(port), addr=host or "0.0.0.0")
    return int(port)


def labelled(values: Mapping[str, float]) -> dict[tuple[str, ...], float]:
    """One-label gauge values: {"orders": 3} → {("orders",): 3}."""
    return {(name,): value for name, value in values.items()}
