"""The gateway in front of real services (functions-framework apps over real HTTP, a real PostgreSQL):
what a client gets through it is what the service answers, and nothing internal is reachable."""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from support import ServedOverHttp, Tokens, free_port

from fusion.local.gateway import Gateway, GatewayServer, RouteTable, serve
from fusion.registry import FunctionSpec, load_all, service_named
from fusion.web import MAX_BODY_BYTES

# The headers a client relies on, which must come through unchanged.
IMPORTANT = ("content-type", "content-length", "location", "idempotent-replayed", "allow", "www-authenticate", "date",
             "server")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def important(self) -> dict[str, str]:
        return {name: value for name, value in self.headers.items() if name in IMPORTANT}


def served(service: str) -> ServedOverHttp:
    """The service's functions-framework app over real HTTP, as `fusion dev` serves it."""
    import functions_framework

    return ServedOverHttp(functions_framework.create_app("serve", service_named(service).source))


def call(port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
         chunked: bool = False, chunks: list[bytes] | None = None) -> Answer:
    """One request on a connection of its own; its body sent chunked (in two pieces, or as `chunks`) when asked."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        if chunked or chunks:
            assert body is not None
            connection.request(method, path, body=iter(chunks or [body[:7], body[7:]]), headers=headers or {},
                               encode_chunked=True)
        else:
            connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def raw(port: int, request: bytes, patience: float = 30) -> bytes:
    """Everything the gateway sends back on one connection for `request`, up to the moment it closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=patience) as sock:
        sock.sendall(request)
        received = b""
        while piece := sock.recv(65536):
            received += piece
        return received


def statuses(received: bytes) -> list[bytes]:
    """The status codes of the answers received (each answer's status line follows the body before it)."""
    return re.findall(rb"HTTP/1\.1 (\d{3}) ", received)


class Hanging(BaseHTTPRequestHandler):
    """A service that takes far too long: it answers only once the test lets it."""

    release = threading.Event()

    def do_GET(self) -> None:
        self.release.wait(30)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@dataclass
class Front:
    """The gateway and the services behind it."""

    port: int
    ports: dict[str, int]  # where each service answers directly
    orders: ServedOverHttp

    def direct(self, service: str) -> int:
        return self.ports[service]


@pytest.fixture
def front(clean_db: str, catalog_http: str) -> Iterator[Front]:
    orders = served("orders")
    catalog_port = int(catalog_http.rsplit(":", 1)[1])
    Hanging.release = threading.Event()
    hanging = ThreadingHTTPServer(("127.0.0.1", free_port()), Hanging)
    threading.Thread(target=hanging.serve_forever, daemon=True).start()
    ports = {"catalog": catalog_port, "orders": orders.port, "inventory": hanging.server_address[1]}
    nobody = free_port()  # nothing listens there: every other service is down

    def url_of(spec: FunctionSpec) -> str:
        return f"http://127.0.0.1:{ports.get(spec.service, nobody)}"

    server: GatewayServer = serve("127.0.0.1", free_port(), Gateway(RouteTable(list(load_all().values()), url_of),
                                                                    answer_timeout=0.5))
    yield Front(server.server_address[1], ports, orders)
    server.shutdown()
    server.server_close()
    Hanging.release.set()
    hanging.shutdown()
    hanging.server_close()
    orders.stop()  # again, when a test stopped it already: harmless


def _product(sku: str) -> bytes:
    return json.dumps({"sku": sku, "name": "Gateway mug", "price": 12.5, "currency": "USD",
                       "inventory": 4}).encode()


def _staff(tokens: Tokens) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.staff('catalog:write')}", "Content-Type": "application/json"}


def test_an_answer_through_the_gateway_is_the_services_own(front: Front, tokens: Tokens) -> None:
    sku = f"GW-{uuid.uuid4().hex[:8]}"
    created = call(front.port, "POST", "/products", _product(sku), _staff(tokens))
    assert created.status == 201, created.body
    path = f"/products?sku={sku}"
    through, direct = call(front.port, "GET", path), call(front.direct("catalog"), "GET", path)
    assert (through.status, through.body) == (direct.status, direct.body) == (200, through.body)
    assert through.json()[0]["sku"] == sku
    assert {k: v for k, v in through.important().items() if k != "date"} == \
        {k: v for k, v in direct.important().items() if k != "date"}
    one = f"/products/{created.json()['id']}"
    assert call(front.port, "GET", one).body == call(front.direct("catalog"), "GET", one).body


def test_authorization_and_idempotency_keys_pass_through(front: Front, tokens: Tokens) -> None:
    sku = f"GW-{uuid.uuid4().hex[:8]}"
    anonymous = call(front.port, "POST", "/products", _product(sku), {"Content-Type": "application/json"})
    assert anonymous.status == 401 and anonymous.headers["www-authenticate"].startswith("Bearer")
    keyed = {**_staff(tokens), "Idempotency-Key": f"key-{sku}"}
    first = call(front.port, "POST", "/products", _product(sku), keyed)
    again = call(front.port, "POST", "/products", _product(sku), keyed)
    assert first.status == again.status == 201
    assert again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
    listed = call(front.direct("catalog"), "GET", f"/products?sku={sku}").json()
    assert len(listed) == 1  # the second request changed nothing


def test_a_chunked_body_is_forwarded_to_the_service(front: Front, tokens: Tokens) -> None:
    sku = f"GW-{uuid.uuid4().hex[:8]}"
    created = call(front.port, "POST", "/products", _product(sku), _staff(tokens), chunked=True)
    assert created.status == 201, created.body
    assert created.json()["sku"] == sku


def test_a_chunked_body_over_the_limit_is_a_413_from_the_gateway_itself(front: Front) -> None:
    """Refused before any service is asked: shipping is down, and the answer is still the 413."""
    piece = b"x" * (64 * 1024)
    pieces = [piece] * (MAX_BODY_BYTES // len(piece)) + [b"y"]  # one byte more than the services take
    answer = call(front.port, "POST", "/shipments", b"", {"Content-Type": "application/json"}, chunks=pieces)
    assert answer.status == 413 and answer.json()["error"] == "payload_too_large"


@pytest.mark.parametrize("size", [b"zz", b"-1", b"", b"0x10", b"1" * 17])
def test_a_badly_chunked_body_is_a_400(front: Front, size: bytes) -> None:
    received = raw(front.port, b"POST /products HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n"
                   + size + b"\r\n{}\r\n0\r\n\r\n")
    assert statuses(received) == [b"400"]
    assert json.loads(received.split(b"\r\n\r\n", 1)[1])["field"] == "body"


SMUGGLED = b"GET /healthz HTTP/1.1\r\nHost: shop\r\n\r\n"


@pytest.mark.parametrize(("start", "status"), [
    (b"POST /nope HTTP/1.1", b"404"), (b"DELETE /products HTTP/1.1", b"405"), (b"GET /healthz HTTP/1.1", b"200"),
    (b"POST http://shop/products HTTP/1.1", b"400"), (b"POST /metrics HTTP/1.1", b"404"),
])
@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_a_body_the_gateway_does_not_read_is_never_taken_for_the_next_request(
    front: Front, start: bytes, status: bytes, framing: str
) -> None:
    """A request answered without reading its body ends the connection, so a request hidden in the body
    is never answered (a chunked one need not even be well chunked, since it is never read)."""
    framed = b"Content-Length: %d" % len(SMUGGLED) if framing == "length" else b"Transfer-Encoding: chunked"
    request = start + b"\r\nHost: shop\r\n" + framed + b"\r\n\r\n" + SMUGGLED
    assert statuses(raw(front.port, request)) == [status]


def test_a_request_without_a_body_keeps_the_connection(front: Front) -> None:
    received = raw(front.port, b"GET /nope HTTP/1.1\r\nHost: shop\r\n\r\n" + SMUGGLED.replace(
        b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
    assert statuses(received) == [b"404", b"200"]


@pytest.mark.parametrize("sent", [b"", b"GET /products HTTP/1.1\r\nHost: sh"], ids=["idle", "slow headers"])
def test_a_silent_client_is_let_go(sent: bytes) -> None:
    server = serve("127.0.0.1", free_port(), Gateway(RouteTable([], lambda spec: ""), client_timeout=0.2))
    try:
        assert statuses(raw(server.server_address[1], sent)) == []  # closed without an answer
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("target", ["http://shop/metrics", "http://shop/products", "*"])
def test_a_target_that_is_not_a_path_is_a_400(front: Front, target: str) -> None:
    answer = call(front.port, "GET", target)
    assert answer.status == 400 and answer.json()["field"] == "path"


def test_a_doubled_slash_is_matched_as_the_path_it_is_forwarded_as(front: Front) -> None:
    assert call(front.port, "GET", "//metrics").status == 404  # /metrics, internal; not "/" on the host "metrics"
    assert call(front.port, "GET", "//products").status == 200


def test_one_connection_carries_many_requests_to_several_services(front: Front, tokens: Tokens) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", front.port, timeout=30)
    try:
        for path in ("/products", "/orders", "/products?limit=1", "/orders"):
            connection.request("GET", path, headers={"Authorization": f"Bearer {tokens.customer('alice')}"})
            response = connection.getresponse()
            assert response.status == 200, (path, response.read())
            assert isinstance(json.loads(response.read()), list)
    finally:
        connection.close()


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/_functions/reserve-stock"), ("GET", "/metrics"), ("GET", "/health"), ("GET", "/_functions"),
    ("GET", "/%6detrics"), ("POST", "/%5Ffunctions/reserve-stock"),
])
def test_internal_paths_are_not_routed(front: Front, method: str, path: str) -> None:
    answer = call(front.port, method, path, b"{}" if method == "POST" else None)
    assert answer.status == 404
    assert answer.json()["error"] == "not_found"


def test_the_services_answer_internal_paths_themselves(front: Front) -> None:
    """What the gateway hides is there on the service's own port."""
    assert call(front.direct("catalog"), "GET", "/metrics").status == 200
    assert call(front.direct("catalog"), "GET", "/health").status == 200


def test_unknown_paths_and_methods_answer_like_the_services(front: Front) -> None:
    unknown = call(front.port, "GET", "/no/such/thing")
    assert unknown.status == 404 and unknown.headers["content-type"] == "application/json"
    assert unknown.json() == {"error": "not_found", "message": "no route for GET /no/such/thing"}
    wrong = call(front.port, "DELETE", "/products")
    assert wrong.status == 405 and wrong.headers["allow"] == "GET, POST"
    assert wrong.json()["error"] == "method_not_allowed"


def test_the_gateways_own_health(front: Front) -> None:
    health = call(front.port, "GET", "/healthz")
    assert health.status == 200 and health.json()["status"] == "ok"
    stamp = health.json()["timestamp"]
    assert stamp.endswith("Z") and datetime.fromisoformat(stamp).utcoffset() is not None  # as the services write it


def test_a_service_that_is_down_is_a_502_naming_it(front: Front) -> None:
    answer = call(front.port, "GET", "/tracking/FC000000000")
    assert answer.status == 502
    assert answer.json()["error"] == "bad_gateway" and "shipping" in answer.json()["message"]


def test_a_service_stopped_behind_a_kept_alive_connection_is_a_502(front: Front, tokens: Tokens) -> None:
    customer = {"Authorization": f"Bearer {tokens.customer('alice')}"}
    assert call(front.port, "GET", "/orders", headers=customer).status == 200  # a connection is now pooled
    front.orders.stop()
    answer = call(front.port, "GET", "/orders", headers=customer)
    assert answer.status == 502 and "orders" in answer.json()["message"]


def test_a_service_too_slow_is_a_504(front: Front) -> None:
    answer = call(front.port, "GET", "/inventory/SOME-SKU")
    assert answer.status == 504
    assert answer.json()["error"] == "gateway_timeout" and "inventory" in answer.json()["message"]
