"""A service process answers GET /metrics itself, beside its routes and never as one of them."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient

from fusion import metrics
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
