"""The gateway in front of real services (functions-framework apps over real HTTP, a real PostgreSQL):
what a client gets through it is what the service answers, and nothing internal is reachable."""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from support import ServedOverHttp, Tokens, free_port

from fusion.local.gateway import Gateway, GatewayServer, RouteTable, serve
from fusion.registry import FunctionSpec, load_all, service_named

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
         chunked: bool = False) -> Answer:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        if chunked:
            assert body is not None
            connection.request(method, path, body=iter([body[:7], body[7:]]), headers=headers or {},
                               encode_chunked=True)
        else:
            connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


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


def test_a_chunked_body_is_streamed_to_the_service(front: Front, tokens: Tokens) -> None:
    sku = f"GW-{uuid.uuid4().hex[:8]}"
    created = call(front.port, "POST", "/products", _product(sku), _staff(tokens), chunked=True)
    assert created.status == 201, created.body
    assert created.json()["sku"] == sku


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
