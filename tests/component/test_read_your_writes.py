"""Read-your-writes across services: a product created or repriced a moment ago can be ordered and
campaigned for at once, before its event reaches orders or group buying.

The catalog runs over real HTTP (the session's `catalog_http`, which CATALOG_URL names); orders and group
buying run in-process and ask it over the network. A catalog that cannot answer is a port with nothing
listening, a stopped server, a server that never answers, or one that answers 503.
"""

from __future__ import annotations

import socket
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from support import ServedOverHttp, deliver, free_port

from fusion import config
from fusion.binding import Event, new_event
from fusion.contracts import ProductCreated, ProductUpdated
from fusion.db import pool

Clients = Callable[..., FlaskClient]
ORDER_TABLES = ("orders.orders", "orders.order_items", "orders.outbox", "orders.idempotency_keys", "orders.products")
CAMPAIGN_TABLES = ("group_commerce.campaigns", "group_commerce.outbox", "group_commerce.idempotency_keys",
                   "group_commerce.products")


# helpers


def count(table: str) -> int:
    with pool().connect() as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").scalar())


def row(statement: str, **params: Any) -> Any:
    with pool().connect() as conn:
        return conn.execute(statement, params).one()


def published(schema: str, topic: str) -> list[Event]:
    with pool().connect() as conn:
        rows = conn.execute(f"SELECT attributes, payload FROM {schema}.outbox WHERE topic = :t ORDER BY id",
                            {"t": topic}).all()
    return [Event(dict(r.attributes), bytes(r.payload)) for r in rows]



def new_product(catalog: FlaskClient, price: float = 19.99, currency: str = "USD") -> dict[str, Any]:
    sku = f"FRESH-{uuid.uuid4().hex[:8]}"
    response = catalog.post("/products", json={"sku": sku, "name": f"Fresh {sku}", "price": price,
                                               "currency": currency, "inventory": 10, "category": "kitchen"})
    assert response.status_code == 201, response.get_json()
    product: dict[str, Any] = response.get_json()
    return product


def order(orders: FlaskClient, sku: str, price: float, key: str | None = None) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    return orders.post("/orders", headers=headers, json={"customerId": "cust-1", "currency": "USD",
                                                         "items": [{"sku": sku, "quantity": 2, "price": price}]})


def campaign(gc: FlaskClient, product_id: str, key: str | None = None) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    expires = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    return gc.post("/campaigns", headers=headers, json={"productId": product_id, "minParticipants": 2,
                                                        "maxParticipants": 5, "discountPercentage": 10,
                                                        "expiresAt": expires})


def orders_price(sku: str) -> tuple[int, datetime]:
    found = row("SELECT price_minor, updated_at FROM orders.products WHERE sku = :sku", sku=sku)
    return found.price_minor, found.updated_at


def campaign_copy_price(product_id: str) -> int:
    return int(row("SELECT price_minor FROM group_commerce.products WHERE id = :id", id=product_id).price_minor)


@pytest.fixture
def catalog(client: Clients) -> FlaskClient:
    return client("catalog")


@pytest.fixture
def orders(client: Clients) -> FlaskClient:
    return client("orders")


@pytest.fixture
def gc(client: Clients) -> FlaskClient:
    return client("group-commerce")


@pytest.fixture
def point_catalog_at(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """`point_catalog_at(url)`: orders and group buying ask the catalog there until the test ends."""

    def point(url: str, timeout: str | None = None) -> None:
        monkeypatch.setenv("CATALOG_URL", url)
        if timeout is not None:
            monkeypatch.setenv("CATALOG_TIMEOUT_SECONDS", timeout)
        config.settings.cache_clear()

    yield point
    monkeypatch.undo()
    config.settings.cache_clear()


def nothing_listening() -> str:
    return f"http://127.0.0.1:{free_port()}"


def stopped_server() -> str:
    served = ServedOverHttp(lambda environ, start_response: [])
    served.stop()
    return served.url


def overloaded_server(request: pytest.FixtureRequest) -> str:
    def answer_503(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("503 Service Unavailable", [("Content-Type", "application/json")])
        return [b'{"error":"unavailable","message":"database unavailable, try again"}']

    served = ServedOverHttp(answer_503)
    request.addfinalizer(served.stop)
    return served.url


def silent_server(request: pytest.FixtureRequest) -> str:
    """Takes connections (the kernel's backlog) and never answers: the lookup runs into its timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    request.addfinalizer(listener.close)
    return f"http://127.0.0.1:{listener.getsockname()[1]}"


UNREACHABLE: dict[str, Callable[[pytest.FixtureRequest], str]] = {
    "nothing listening": lambda request: nothing_listening(),
    "a stopped server": lambda request: stopped_server(),
    "a server answering 503": overloaded_server,
    "a server that never answers": silent_server,
}


# ordering and campaigning for a product the projections have not heard of


def test_a_product_just_created_can_be_ordered_in_the_next_request(catalog: FlaskClient, orders: FlaskClient) -> None:
    product = new_product(catalog, price=19.99)
    assert count("orders.products") == 0  # product.created has not been delivered

    response = order(orders, product["sku"], 19.99)

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["total"] == 39.98
    assert orders_price(product["sku"])[0] == 1999  # the catalog's answer is kept in the projection


def test_a_sku_the_catalog_does_not_know_is_still_refused(catalog: FlaskClient, orders: FlaskClient) -> None:
    new_product(catalog)
    response = order(orders, "NO-SUCH-SKU", 19.99)
    assert response.status_code == 422
    assert response.get_json()["error"] == "unknown_sku" and response.get_json()["field"] == "items[0].sku"
    assert count("orders.orders") == count("orders.products") == 0


def test_a_product_just_created_gets_a_campaign_in_the_next_request(catalog: FlaskClient, gc: FlaskClient) -> None:
    product = new_product(catalog, price=40)
    assert count("group_commerce.products") == 0

    response = campaign(gc, product["id"])

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["productId"] == product["id"] and body["sku"] == product["sku"]
    assert body["originalPrice"] == 40 and body["groupPrice"] == 36
    assert campaign_copy_price(product["id"]) == 4000


def test_a_product_the_catalog_does_not_know_gets_no_campaign(catalog: FlaskClient, gc: FlaskClient) -> None:
    response = campaign(gc, str(uuid.uuid4()))
    assert response.status_code == 400
    assert response.get_json()["field"] == "productId" and "unknown product" in response.get_json()["message"]
    assert count("group_commerce.campaigns") == 0


# a catalog that cannot answer


@pytest.mark.parametrize("unreachable", list(UNREACHABLE))
def test_an_order_the_catalog_cannot_check_is_503_with_retry_after_and_writes_nothing(
    catalog: FlaskClient, orders: FlaskClient, point_catalog_at: Callable[..., None], request: pytest.FixtureRequest,
    unreachable: str,
) -> None:
    product = new_product(catalog)
    point_catalog_at(UNREACHABLE[unreachable](request), timeout="0.5")

    response = order(orders, product["sku"], 19.99, key="first-try")

    assert response.status_code == 503, response.get_json()
    assert response.get_json()["error"] == "catalog_unavailable"
    assert int(response.headers["Retry-After"]) >= 1
    assert [count(table) for table in ORDER_TABLES] == [0] * len(ORDER_TABLES)

    point_catalog_at(catalog_url_of_the_session(request))
    assert order(orders, product["sku"], 19.99, key="first-try").status_code == 201  # the same key, once back


@pytest.mark.parametrize("unreachable", list(UNREACHABLE))
def test_a_campaign_the_catalog_cannot_check_is_503_with_retry_after_and_writes_nothing(
    catalog: FlaskClient, gc: FlaskClient, point_catalog_at: Callable[..., None], request: pytest.FixtureRequest,
    unreachable: str,
) -> None:
    product = new_product(catalog)
    point_catalog_at(UNREACHABLE[unreachable](request), timeout="0.5")

    response = campaign(gc, product["id"], key="first-try")

    assert response.status_code == 503, response.get_json()
    assert response.get_json()["error"] == "catalog_unavailable"
    assert int(response.headers["Retry-After"]) >= 1
    assert [count(table) for table in CAMPAIGN_TABLES] == [0] * len(CAMPAIGN_TABLES)

    point_catalog_at(catalog_url_of_the_session(request))
    assert campaign(gc, product["id"], key="first-try").status_code == 201


def slow_catalog(request: pytest.FixtureRequest, delay: float) -> str:
    """The session's catalog behind a server that answers each lookup `delay` seconds late."""
    catalog = catalog_url_of_the_session(request)

    def late(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        time.sleep(delay)
        query = environ.get("QUERY_STRING", "")
        with urllib.request.urlopen(f"{catalog}{environ['PATH_INFO']}?{query}", timeout=10) as answer:
            start_response(f"{answer.status} OK", [("Content-Type", "application/json")])
            return [answer.read()]

    served = ServedOverHttp(late)
    request.addfinalizer(served.stop)
    return served.url


def test_the_lookup_waits_as_long_as_catalog_timeout_seconds_says(
    catalog: FlaskClient, orders: FlaskClient, point_catalog_at: Callable[..., None], request: pytest.FixtureRequest,
) -> None:
    product = new_product(catalog)
    late = slow_catalog(request, delay=1.0)

    point_catalog_at(late, timeout="0.3")
    assert order(orders, product["sku"], 19.99, key="impatient").status_code == 503
    point_catalog_at(late, timeout="5")
    assert order(orders, product["sku"], 19.99, key="patient").status_code == 201


def catalog_url_of_the_session(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("catalog_http"))


def test_a_known_product_at_its_price_needs_no_catalog(
    catalog: FlaskClient, orders: FlaskClient, point_catalog_at: Callable[..., None],
) -> None:
    product = new_product(catalog, price=19.99)
    [created] = published("catalog", "product.created")
    assert deliver(orders, "record-product-price", created) == 204
    point_catalog_at(nothing_listening())

    assert order(orders, product["sku"], 19.99).status_code == 201


# a new price


def reprice(catalog: FlaskClient, product_id: str, price: float) -> dict[str, Any]:
    response = catalog.patch(f"/products/{product_id}", json={"price": price})
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def test_a_new_price_holds_at_once_before_product_updated_is_delivered(
    catalog: FlaskClient, orders: FlaskClient,
) -> None:
    product = new_product(catalog, price=19.99)
    [created] = published("catalog", "product.created")
    assert deliver(orders, "record-product-price", created) == 204  # the projection has the old price
    reprice(catalog, product["id"], 17.50)

    accepted = order(orders, product["sku"], 17.50)
    refused = order(orders, product["sku"], 19.99)

    assert accepted.status_code == 201, accepted.get_json()
    assert refused.status_code == 422
    assert refused.get_json()["error"] == "price_mismatch" and "17.5" in refused.get_json()["message"]
    assert orders_price(product["sku"])[0] == 1750


def test_the_old_price_is_refused_when_the_projection_has_not_heard_of_the_product(
    catalog: FlaskClient, orders: FlaskClient,
) -> None:
    product = new_product(catalog, price=19.99)
    reprice(catalog, product["id"], 21)

    refused = order(orders, product["sku"], 19.99)

    assert refused.status_code == 422 and refused.get_json()["error"] == "price_mismatch"
    assert order(orders, product["sku"], 21).status_code == 201


def test_a_campaign_after_a_new_price_starts_from_the_new_price(catalog: FlaskClient, gc: FlaskClient) -> None:
    product = new_product(catalog, price=40)
    reprice(catalog, product["id"], 50)

    response = campaign(gc, product["id"])

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["originalPrice"] == 50


def test_a_redelivered_older_product_created_never_replaces_a_newer_price(
    catalog: FlaskClient, orders: FlaskClient, gc: FlaskClient, point_catalog_at: Callable[..., None],
) -> None:
    product = new_product(catalog, price=19.99)
    reprice(catalog, product["id"], 17.50)
    [created] = published("catalog", "product.created")
    [updated] = published("catalog", "product.updated")

    for event in (updated, created, created):  # the newer event first, then the older one, twice
        assert deliver(orders, "record-product-price", event) == 204
        assert deliver(gc, "campaign-product-projection", event) == 204

    assert orders_price(product["sku"]) == (1750, datetime.fromisoformat(updated.json()["updatedAt"]))
    assert campaign_copy_price(product["id"]) == 1750
    point_catalog_at(nothing_listening())  # the projections alone decide now
    assert order(orders, product["sku"], 17.50).status_code == 201
    assert campaign(gc, product["id"]).get_json()["originalPrice"] == 17.5


def test_a_price_looked_up_is_not_replaced_by_the_late_product_created(
    catalog: FlaskClient, orders: FlaskClient,
) -> None:
    product = new_product(catalog, price=19.99)
    reprice(catalog, product["id"], 17.50)
    assert order(orders, product["sku"], 17.50).status_code == 201  # looked up, recorded

    [created] = published("catalog", "product.created")
    assert deliver(orders, "record-product-price", created) == 204

    assert orders_price(product["sku"])[0] == 1750


def test_a_late_product_updated_never_replaces_a_newer_price_in_group_buying(gc: FlaskClient) -> None:
    product_id, now = str(uuid.uuid4()), datetime.now(UTC)
    newer = ProductUpdated(id=product_id, sku="K-2", name="Kettle", price=Decimal("30"), currency="EUR",
                           updated_at=now)
    older = newer.model_copy(update={"price": Decimal("25"), "updated_at": now - timedelta(minutes=1)})
    created = ProductCreated(id=product_id, sku="K-2", name="Kettle", price=Decimal("20"), currency="EUR",
                             inventory=1, created_at=now - timedelta(hours=1))
    for topic, payload in (("product.updated", newer), ("product.updated", older), ("product.created", created)):
        event = new_event(topic, "catalog", product_id, payload)
        assert deliver(gc, "campaign-product-projection", event) == 204
        assert campaign_copy_price(product_id) == 3000


# changing a product


def test_patch_changes_the_product_and_publishes_product_updated(catalog: FlaskClient) -> None:
    product = new_product(catalog, price=19.99)

    response = catalog.patch(f"/products/{product['id']}",
                             json={"price": 17.5, "name": "Renamed", "description": None, "category": "books"})

    assert response.status_code == 200, response.get_json()
    changed = response.get_json()
    assert (changed["price"], changed["name"], changed["description"], changed["category"]) == (
        17.5, "Renamed", None, "books")
    assert changed["sku"] == product["sku"] and changed["currency"] == "USD" and changed["inventory"] == 10
    assert changed["updatedAt"] > changed["createdAt"] == product["createdAt"] == product["updatedAt"]
    assert catalog.get(f"/products/{product['id']}").get_json() == changed
    [event] = published("catalog", "product.updated")
    assert event.attributes["subject"] == product["id"] == event.attributes["partitionkey"]
    payload = event.json()
    assert payload["price"] == 17.5 and payload["sku"] == product["sku"] and payload["name"] == "Renamed"
    assert datetime.fromisoformat(payload["updatedAt"]) == datetime.fromisoformat(changed["updatedAt"])


def test_each_change_moves_updated_at_forward_and_keeps_what_it_leaves_out(catalog: FlaskClient) -> None:
    product = new_product(catalog, price=19.99)
    first = reprice(catalog, product["id"], 18)
    second = catalog.patch(f"/products/{product['id']}", json={"name": "Only the name"}).get_json()
    assert second["price"] == 18 and second["category"] == "kitchen" and second["name"] == "Only the name"
    assert second["updatedAt"] > first["updatedAt"] > product["updatedAt"]
    assert len(published("catalog", "product.updated")) == 2


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({}, "body", ["nothing to change"]),
        ({"unknownField": 1}, "body", ["nothing to change"]),
        ({"price": -1}, "price", ["greater than or equal to 0"]),
        ({"price": 1.999}, "price", ["decimal places"]),
        ({"price": "abc"}, "price", ["must be a number"]),
        ({"price": None}, "price", ["null"]),
        ({"name": ""}, "name", ["at least 1 character"]),
        ({"name": None}, "name", ["null"]),
        ({"name": "x" * 201}, "name", ["at most 200 characters"]),
        ({"category": "c" * 101}, "category", ["at most 100 characters"]),
        ({"name": "a\x00b"}, "name", ["control characters"]),
        ({"currency": "EUR", "price": 5}, "body", ["currency cannot be changed"]),
        ({"sku": "OTHER"}, "body", ["sku cannot be changed"]),
        ({"inventory": 5}, "body", ["inventory"]),
    ],
)
def test_an_invalid_change_is_400_naming_the_field_and_changes_nothing(
    catalog: FlaskClient, body: dict[str, Any], field: str, words: list[str],
) -> None:
    product = new_product(catalog, price=19.99)

    response = catalog.patch(f"/products/{product['id']}", json=body)

    assert response.status_code == 400, response.get_json()
    error = response.get_json()
    assert error["error"] == "validation_error" and error["field"] == field
    assert words and all(word in error["message"] for word in words), error["message"]
    assert catalog.get(f"/products/{product['id']}").get_json() == product
    assert published("catalog", "product.updated") == []


@pytest.mark.parametrize("product_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_a_change_of_an_unknown_product_is_404(catalog: FlaskClient, product_id: str) -> None:
    response = catalog.patch(f"/products/{product_id}", json={"price": 5})
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"
    assert published("catalog", "product.updated") == []


def test_a_change_is_staff_only(client: Clients, tokens: Any) -> None:
    product = new_product(client("catalog"))
    as_customer = client("catalog", token=tokens.customer("alice"))
    assert as_customer.patch(f"/products/{product['id']}", json={"price": 1}).status_code == 403
    other_staff = client("catalog", token=tokens.staff("orders:manage"))
    assert other_staff.patch(f"/products/{product['id']}", json={"price": 1}).status_code == 403


# looking a product up


def test_the_listing_finds_exactly_one_sku_or_one_id(catalog: FlaskClient) -> None:
    product = new_product(catalog)
    longer = catalog.post("/products", json={"sku": product["sku"] + "0", "name": "Longer sku", "price": 1,
                                             "currency": "USD", "inventory": 1}).get_json()

    assert [p["id"] for p in catalog.get("/products", query_string={"sku": product["sku"]}).get_json()] == [
        product["id"]]
    assert [p["id"] for p in catalog.get("/products", query_string={"id": longer["id"]}).get_json()] == [
        longer["id"]]
    assert catalog.get("/products", query_string={"sku": product["sku"].lower()}).get_json() == []
    assert catalog.get("/products", query_string={"sku": "FRESH-%"}).get_json() == []
    refused = catalog.get("/products", query_string={"id": "not-a-uuid"})
    assert refused.status_code == 400 and refused.get_json()["field"] == "id"
