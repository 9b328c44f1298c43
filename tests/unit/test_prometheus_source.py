"""The figures read from a Prometheus HTTP API: the queries it is sent, and what its answers become.

The API is played by an in-process HTTP server answering `/api/v1/query` as Prometheus does."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fusion.observe import Prometheus, SourceUnavailable

HTTP_METRICS = ("fusion_http_requests_total", "fusion_http_request_duration_seconds")


def vector(*series: tuple[dict[str, str], str]) -> dict[str, object]:
    result = [{"metric": labels, "value": [0, value]} for labels, value in series]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def answer_to(query: str) -> dict[str, object]:
    if query.startswith("up"):
        return vector(({"pod": "orders-1"}, "1"), ({"pod": "orders-2"}, "0"))
    orders = {"service": "orders", "function": "create-order"}
    listing = {"service": "orders", "function": "list-orders"}
    if "increase(fusion_http_request_duration_seconds_bucket" in query:
        # 300 requests: 200 within 0.1 s, 290 within 0.5 s; the 95th percentile is 0.1 + 0.4 * 85/90 s.
        return vector(({**orders, "le": "0.1"}, "200"), ({**orders, "le": "0.5"}, "290"),
                      ({**orders, "le": "+Inf"}, "300"), ({**listing, "le": "+Inf"}, "0"))
    if "increase(fusion_http_requests_total" in query:
        return vector(({**orders, "status": "201"}, "297"), ({**orders, "status": "503"}, "3"),
                      ({**listing, "status": "200"}, "0"))
    if "fusion_consumer_lag_messages" in query:
        return vector(({"handler": "reserve-stock"}, "6000"))
    return vector()


@pytest.fixture
def prometheus() -> Iterator[tuple[str, list[str]]]:
    queries: list[str] = []

    class Api(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)["query"][0]
            queries.append(query)
            body = json.dumps({"status": "error", "error": "bad_data"} if "broken" in query
                              else answer_to(query)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", queries
    server.shutdown()


def test_a_snapshot_from_prometheus(prometheus: tuple[str, list[str]]) -> None:
    url, queries = prometheus
    taken = Prometheus(url, 'namespace="shop"').snapshot(1800)
    assert taken.functions["create-order"].requests == 300
    assert taken.functions["create-order"].errors == 3
    assert taken.functions["create-order"].p95 == pytest.approx(0.1 + 0.4 * 85 / 90)
    assert taken.services["orders"].requests == 300 and taken.services["orders"].errors == 3
    assert taken.functions["list-orders"].p95 is None  # no requests in the window
    assert taken.unhealthy == ["orders-2"]
    assert taken.lag == {"reserve-stock": 6000}
    assert all('namespace="shop"' in query for query in queries), queries
    assert sum("[1800s]" in query for query in queries) == 2, queries
    assert len(queries) == 7, queries


def test_the_backlog_asks_for_no_http_figures(prometheus: tuple[str, list[str]]) -> None:
    url, queries = prometheus
    backlog = Prometheus(url, 'namespace="shop"').backlog()
    assert backlog.lag == {"reserve-stock": 6000} and backlog.unhealthy == ["orders-2"]
    assert not backlog.functions and not backlog.services
    assert len(queries) == 5 and not any(metric in query for query in queries for metric in HTTP_METRICS), queries


def test_the_operations_status_reads_only_its_environment(prometheus: tuple[str, list[str]],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from functions.operations.flow import platform_status

    url, queries = prometheus
    monkeypatch.setenv("OPERATIONS_PROMETHEUS_URL", url)
    monkeypatch.setenv("OPERATIONS_PROMETHEUS_SELECTOR", 'namespace="fusioncommerce-staging"')
    status = platform_status()
    assert status.unavailable == [] and status.snapshot.lag == {"reserve-stock": 6000}
    assert queries and all('namespace="fusioncommerce-staging"' in query for query in queries), queries
    assert not any(metric in query for query in queries for metric in HTTP_METRICS), queries


def test_a_refused_query_is_an_unavailable_source(prometheus: tuple[str, list[str]]) -> None:
    url, _ = prometheus
    with pytest.raises(SourceUnavailable, match="refused"):
        Prometheus(url).query("broken")
    with pytest.raises(SourceUnavailable, match="did not answer"):
        Prometheus("http://127.0.0.1:1").query("up")
