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


def vector(*series: tuple[dict[str, str], str]) -> dict[str, object]:
    result = [{"metric": labels, "value": [0, value]} for labels, value in series]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def answer_to(query: str) -> dict[str, object]:
    if query.startswith("up"):
        return vector(({"pod": "orders-1"}, "1"), ({"pod": "orders-2"}, "0"))
    if "histogram_quantile" in query:
        return vector(({"function": "create-order"}, "0.25"), ({"function": "list-orders"}, "NaN"))
    if 'status=~"5.."' in query:
        return vector(({"function": "create-order"}, "3"))
    if "increase(fusion_http_requests_total" in query:
        return vector(({"function": "create-order", "service": "orders"}, "300"),
                      ({"function": "list-orders", "service": "orders"}, "0"))
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
    assert taken.functions["create-order"].p95 == 0.25
    assert taken.functions["list-orders"].p95 is None  # no requests: Prometheus says NaN
    assert taken.unhealthy == ["orders-2"]
    assert taken.lag == {"reserve-stock": 6000}
    assert all('namespace="shop"' in query for query in queries), queries
    assert any("[1800s]" in query for query in queries), queries


def test_a_refused_query_is_an_unavailable_source(prometheus: tuple[str, list[str]]) -> None:
    url, _ = prometheus
    with pytest.raises(SourceUnavailable, match="refused"):
        Prometheus(url).query("broken")
    with pytest.raises(SourceUnavailable, match="did not answer"):
        Prometheus("http://127.0.0.1:1").query("up")
