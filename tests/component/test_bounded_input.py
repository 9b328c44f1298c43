"""Bounded input through functions-framework, on the real database: every refusal a clear 4xx in the JSON
error shape naming the field, fast, and nothing written.

Amounts are bounded before any arithmetic (an unbounded `1e999990` cost ~35 s of CPU per item), text holds
no control characters (PostgreSQL refuses NUL), JSON nesting and body size are limited, and paths Werkzeug
cannot route answer the JSON 404.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import functions_framework
import pytest
from flask.testing import FlaskClient
from support import Tokens
from werkzeug.test import TestResponse

from fusion.db import pool
from fusion.registry import service_named
from fusion.web import MAX_BODY_BYTES

Clients = Callable[..., FlaskClient]
PROJECT_ROOT = Path(__file__).resolve().parents[2]
NUL = "a\x00b"
PRODUCT = {"sku": "TSHIRT-1", "name": "Organic T-shirt", "description": "Soft\ncotton", "price": 19.99,
           "currency": "USD", "inventory": 100, "category": "apparel"}
ORDER: dict[str, Any] = {"customerId": "alice", "currency": "USD",
                         "items": [{"sku": "TSHIRT-1", "quantity": 1, "price": 19.99}]}


def rows(table: str) -> int:
    with pool().connect() as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").scalar())


def refused(response: TestResponse, status: int, field: str) -> dict[str, Any]:
    """The JSON error of a refusal, checked for its status and the field it names."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body: dict[str, Any] = response.get_json()
    assert body["field"] == field and body["message"].startswith(f"{field}: ")
    return body


def with_item(**change: Any) -> dict[str, Any]:
    return {**ORDER, "items": [{**ORDER["items"][0], **change}]}


def campaign(**change: Any) -> dict[str, Any]:
    return {"productId": str(uuid.uuid4()), "minParticipants": 2, "maxParticipants": 5, "discountPercentage": 15,
            "expiresAt": "2030-01-01T00:00:00Z", **change}


# 1. amounts, bounded before any arithmetic

AMOUNTS = [
    ("catalog", "/products", {**PRODUCT, "price": "1e999990"}, "price", ["catalog.products", "catalog.outbox"]),
    ("catalog", "/products", {**PRODUCT, "price": "-1e999990"}, "price", ["catalog.products", "catalog.outbox"]),
    ("orders", "/orders", with_item(price="1e999990"), "items[0].price", ["orders.orders", "orders.outbox"]),
    ("orders", "/orders", with_item(price="1e-999990"), "items[0].price", ["orders.orders", "orders.outbox"]),
    ("group-commerce", "/campaigns", campaign(discountPercentage="1e999990"), "discountPercentage",
     ["group_commerce.campaigns", "group_commerce.outbox"]),
]


@pytest.mark.parametrize(("service", "path", "body", "field", "tables"), AMOUNTS,
                         ids=[f"{case[0]}-{case[3]}-{case[2].get('price', '')}" for case in AMOUNTS])
def test_a_huge_amount_is_refused_at_once_naming_the_field(
    client: Clients, service: str, path: str, body: dict[str, Any], field: str, tables: list[str]
) -> None:
    api = client(service)
    started = time.perf_counter()
    response = api.post(path, json=body)
    assert time.perf_counter() - started < 1  # a check, against ~35 s of CPU before the bound
    refused(response, 400, field)
    assert all(rows(table) == 0 for table in tables)


@pytest.mark.parametrize("name", ["minPrice", "maxPrice"])
def test_a_huge_price_filter_is_400_not_500(client: Clients, name: str) -> None:
    started = time.perf_counter()
    response = client("catalog").get(f"/products?{name}=1e999990")
    assert time.perf_counter() - started < 1
    refused(response, 400, name)


def test_a_digit_beyond_the_decimal_context_is_refused_by_the_currency_rule(client: Clients) -> None:
    catalog, orders = client("catalog"), client("orders")
    precise = "19.990000000000000000000000000000001"
    body = refused(catalog.post("/products", json={**PRODUCT, "price": precise}), 400, "price")
    assert "more than 2 decimal places, which USD does not allow" in body["message"]
    body = refused(orders.post("/orders", json=with_item(price=precise)), 400, "items[0].price")
    assert "more than 2 decimal places" in body["message"]
    assert rows("catalog.products") == rows("orders.orders") == rows("orders.outbox") == 0


# 2. control characters


TEXT_FIELDS = [
    ("catalog", "POST", "/products", {**PRODUCT, "sku": NUL}, "sku"),
    ("catalog", "POST", "/products", {**PRODUCT, "name": NUL}, "name"),
    ("catalog", "POST", "/products", {**PRODUCT, "description": NUL}, "description"),
    ("catalog", "POST", "/products", {**PRODUCT, "category": NUL}, "category"),
    ("catalog", "POST", "/products", {**PRODUCT, "name": "two\nlines"}, "name"),
    ("catalog", "POST", "/products", {**PRODUCT, "sku": "C1-\u008a"}, "sku"),
    ("orders", "POST", "/orders", {**ORDER, "customerId": NUL}, "customerId"),
    ("orders", "POST", "/orders", with_item(sku=NUL), "items[0].sku"),
    ("orders", "POST", f"/orders/{uuid.uuid4()}/cancel", {"reason": NUL}, "reason"),
    ("inventory", "PUT", "/inventory", {"sku": NUL, "quantity": 5}, "sku"),
    ("group-commerce", "POST", f"/campaigns/{uuid.uuid4()}/join", {"userId": NUL}, "userId"),
    ("payments", "POST", "/payments", {"orderId": NUL}, "orderId"),
    ("shipping", "POST", "/shipments", {"orderId": NUL}, "orderId"),
    ("shipping", "POST", "/carrier/updates", {"trackingNumber": NUL, "status": "in_transit"}, "trackingNumber"),
    ("shipping", "POST", "/carrier/updates", {"trackingNumber": "T1", "status": "in_transit", "location": NUL},
     "location"),
    ("shipping", "POST", "/carrier/updates", {"trackingNumber": "T1", "status": "in_transit", "description": NUL},
     "description"),
]


@pytest.mark.parametrize(("service", "method", "path", "body", "field"), TEXT_FIELDS,
                         ids=[f"{case[0]}-{case[2]}-{case[4]}" for case in TEXT_FIELDS])
def test_a_control_character_in_a_body_is_400_naming_the_field(
    client: Clients, service: str, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    response = client(service).open(path, method=method, json=body)
    assert refused(response, 400, field)["message"] == f"{field}: must not contain control characters"


QUERIES = [
    ("catalog", "/products?q=a%00b", "q"),
    ("catalog", "/products?category=a%00b", "category"),
    ("catalog", "/products?minPrice=1%00", "minPrice"),
    ("orders", "/orders?customerId=a%00b", "customerId"),
    ("orders", "/orders?status=paid%00", "status"),
    ("inventory", "/inventory?sku=a%00b", "sku"),
    ("group-commerce", "/campaigns?productId=a%00b", "productId"),
    ("group-commerce", "/campaigns?status=active%00", "status"),
    ("payments", "/payments?orderId=a%00b", "orderId"),
    ("shipping", "/shipments?orderId=a%00b", "orderId"),
    ("catalog", "/products?q=" + "x" * 201, "q"),
]


@pytest.mark.parametrize(("service", "path", "field"), QUERIES, ids=[f"{case[0]}-{case[2]}" for case in QUERIES])
def test_a_control_character_in_a_query_parameter_is_400_naming_it(
    client: Clients, service: str, path: str, field: str
) -> None:
    refused(client(service).get(path), 400, field)


@pytest.mark.parametrize(("service", "path"), [("inventory", "/inventory/a%00b"), ("shipping", "/tracking/a%00b"),
                                               ("catalog", "/products/a%01b")])
def test_a_control_character_in_a_path_names_nothing(client: Clients, service: str, path: str) -> None:
    response = client(service).get(path)
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"


def test_free_text_keeps_its_line_breaks_and_nothing_is_written_for_a_refusal(client: Clients) -> None:
    catalog = client("catalog")
    refused(catalog.post("/products", json={**PRODUCT, "sku": NUL}), 400, "sku")
    assert rows("catalog.products") == rows("catalog.outbox") == 0
    created = catalog.post("/products", json={**PRODUCT, "description": "Soft\r\ncotton,\tfair trade"})
    assert created.status_code == 201 and created.get_json()["description"] == "Soft\r\ncotton,\tfair trade"


# 3. pages


@pytest.mark.parametrize(("query", "field"), [("limit=99999999999999999999", "limit"), (f"offset={2**63}", "offset"),
                                              ("limit=-1", "limit"), ("offset=1e3", "offset")])
def test_page_parameters_out_of_range_are_400(client: Clients, query: str, field: str) -> None:
    refused(client("orders").get(f"/orders?{query}"), 400, field)
    refused(client("catalog").get(f"/products?{query}"), 400, field)


# 4. nesting


@pytest.mark.parametrize("raw", ["[" * 1000 + "]" * 1000, '{"items":' + "[" * 1000 + "]" * 1000 + "}",
                                 '{"currency":"USD","items":[' + '{"a":' * 200 + "1" + "}" * 200 + "]}"])
def test_a_deeply_nested_body_is_400(client: Clients, tokens: Tokens, raw: str) -> None:
    orders = client("orders", token=tokens.customer("alice"))
    body = refused(orders.post("/orders", data=raw, content_type="application/json"), 400, "body")
    assert body["message"] == "body: nested too deeply"
    assert rows("orders.orders") == rows("orders.outbox") == rows("orders.idempotency_keys") == 0


# 5. body size


class EndlessBody:
    """A request body that never ends, counting what is read of it."""

    def __init__(self) -> None:
        self.served = 0

    def read(self, size: int = -1) -> bytes:
        size = 64 * 1024 if size < 0 else size
        self.served += size
        return b" " * size

    def tell(self) -> int:
        return 0

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0


TWENTY_MIB = {"CONTENT_LENGTH": str(20 << 20)}  # what the request says it carries


def too_large(response: TestResponse) -> None:
    body = refused(response, 413, "body")
    assert body["error"] == "payload_too_large"


def test_a_body_over_one_mebibyte_is_413_before_it_is_read(client: Clients) -> None:
    orders = client("orders")
    unread = EndlessBody()
    too_large(orders.post("/orders", input_stream=unread, content_type="application/json",
                          headers={"Idempotency-Key": "big"}, environ_overrides=TWENTY_MIB))
    assert unread.served == 0
    too_large(orders.post("/orders", data=b" " * (20 << 20), content_type="application/json"))
    assert rows("orders.orders") == rows("orders.outbox") == rows("orders.idempotency_keys") == 0


def test_a_chunked_body_is_read_no_further_than_the_limit(client: Clients) -> None:
    endless = EndlessBody()
    too_large(client("catalog").post("/products", input_stream=endless, content_type="application/json",
                                     headers={"Transfer-Encoding": "chunked"},
                                     environ_overrides={"wsgi.input_terminated": True}))
    assert MAX_BODY_BYTES < endless.served <= MAX_BODY_BYTES + 64 * 1024
    assert rows("catalog.products") == 0


def test_a_body_just_under_the_limit_is_served(client: Clients) -> None:
    raw = json.dumps(PRODUCT).encode()
    padded = raw + b" " * (MAX_BODY_BYTES - len(raw))
    assert client("catalog").post("/products", data=padded, content_type="application/json").status_code == 201


def test_an_oversized_delivery_is_413_so_it_is_dead_lettered(client: Clients) -> None:
    headers = {"ce-id": "1", "ce-type": "com.fusioncommerce.inventory.reserved", "ce-source": "/inventory",
               "ce-specversion": "1.0", "Content-Type": "application/json"}
    response = client("orders").post("/_functions/confirm-order", data=b" " * (2 << 20), headers=headers)
    too_large(response)
    assert rows("orders.inbox") == 0


def test_a_path_no_function_serves_refuses_an_oversized_body_too(client: Clients) -> None:
    unread = EndlessBody()
    response = client("orders").post("/nowhere", input_stream=unread, environ_overrides=TWENTY_MIB)
    too_large(response)
    assert unread.served == 0


# 6. paths Werkzeug cannot route


ODD_PATHS = ["/orders/%0A%C2%8A", "/orders/x%0Ay", "/robots.txt", "/favicon.ico", "/nowhere"]


def not_found(response: TestResponse) -> None:
    assert response.status_code == 404 and response.mimetype == "application/json"
    assert response.get_json()["error"] == "not_found"


@pytest.mark.parametrize("path", ODD_PATHS)
def test_every_unmatched_path_of_a_service_process_is_the_json_404(client: Clients, path: str) -> None:
    not_found(client("orders").get(path))


def test_a_wrong_method_stays_the_json_405(client: Clients) -> None:
    response = client("orders").delete("/orders")
    assert response.status_code == 405 and response.get_json()["error"] == "method_not_allowed"


@pytest.fixture
def create_order_alone(tokens: Tokens) -> FlaskClient:
    """A single-function process, as a Knative Service runs it (FUNCTION_TARGET=create_order)."""
    app = functions_framework.create_app("create_order", str(PROJECT_ROOT / service_named("orders").source))
    alone: FlaskClient = app.test_client()
    return alone


@pytest.mark.parametrize("path", [path for path in ODD_PATHS if path != "/nowhere"])
def test_every_unmatched_path_of_a_single_function_process_is_the_json_404(
    create_order_alone: FlaskClient, path: str
) -> None:
    not_found(create_order_alone.get(path))


def test_a_single_function_process_answers_405_and_413_in_json(create_order_alone: FlaskClient,
                                                                tokens: Tokens) -> None:
    staff = {"Authorization": f"Bearer {tokens.all_staff()}"}
    response = create_order_alone.delete("/orders", headers=staff)
    assert response.status_code == 405 and response.get_json()["error"] == "method_not_allowed"
    too_large(create_order_alone.post("/orders", data=b" " * (2 << 20), headers=staff))
