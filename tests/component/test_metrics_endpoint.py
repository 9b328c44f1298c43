"""A service process answers GET /metrics itself, beside its routes and never as one of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from fusion import metrics
from fusion.config import ConfigError, metrics_on
from fusion.observe import parse


def test_a_request_is_counted_by_function_route_and_status(client: Callable[..., FlaskClient]) -> None:
    orders = client("orders")
    assert orders.get("/orders?customerId=metrics-bob").status_code == 200
    assert orders.get("/orders/not-a-uuid").status_code == 404
    answer = orders.get("/metrics")
    assert answer.status_code == 200 and answer.content_type.startswith("text/plain")
    samples = parse(answer.get_data(as_text=True))

    def counted(**labels: str) -> float:
        return sum(s.value for s in samples if s.name == metrics.HTTP_REQUESTS
                   and all(s.labels.get(k) == v for k, v in labels.items()))

    assert counted(service="orders", function="list-orders", route="GET /orders", status="200") >= 1
    assert counted(service="orders", function="get-order", route="GET /orders/{id}", status="404") >= 1
    assert counted(route="/metrics") == 0 and counted(route="GET /metrics") == 0


def test_metrics_is_read_only_and_not_an_api_route(client: Callable[..., FlaskClient]) -> None:
    answer = client("catalog").post("/metrics", json={})
    assert answer.status_code == 404
    assert answer.get_json()["error"] == "not_found"


def test_a_process_with_metrics_off_counts_nothing(client: Callable[..., FlaskClient], monkeypatch: Any) -> None:
    catalog = client("catalog")

    def listed() -> float:
        samples = parse(catalog.get("/metrics").get_data(as_text=True))
        return sum(s.value for s in samples
                   if s.name == metrics.HTTP_REQUESTS and s.labels.get("route") == "GET /products")

    catalog.get("/products")
    before = listed()
    assert before >= 1
    monkeypatch.setenv("FUSION_METRICS", "off")
    metrics.counting.cache_clear()
    try:
        catalog.get("/products")
        assert listed() == before
    finally:
        monkeypatch.delenv("FUSION_METRICS")
        metrics.counting.cache_clear()
    catalog.get("/products")
    assert listed() == before + 1


def test_fusion_metrics_takes_on_or_off_only() -> None:
    assert metrics_on({"FUSION_METRICS": "OFF"}) is False and metrics_on({}) is True
    with pytest.raises(ConfigError, match="FUSION_METRICS must be one of on, off"):
        metrics_on({"FUSION_METRICS": "maybe"})
