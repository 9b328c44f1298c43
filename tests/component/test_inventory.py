"""Inventory functions through functions-framework, on the real database.

Events reach the handlers as binary-mode CloudEvents over HTTP, as the router delivers them; the
events a handler published are read back from the inventory outbox.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from fusion.binding import Event, new_event, to_http
from fusion.contracts import (
    Contract,
    LabelCreated,
    OrderCancelled,
    OrderCreated,
    OrderItem,
    PaymentFailed,
    ProductCreated,
)
from fusion.db import pool
from fusion.topics import topic

Clients = Callable[[str], FlaskClient]


def event_of(topic_name: str, payload: Contract, subject: str) -> Event:
    return new_event(topic_name, topic(topic_name).producer, subject, payload)


def deliver(service: FlaskClient, function: str, event: Event) -> TestResponse:
    headers, body = to_http(event)
    return service.post(f"/_functions/{function}", headers=headers, data=body)


def published(topic_name: str) -> list[dict[str, Any]]:
    with pool().connect() as conn:
        rows = conn.execute(
            "SELECT payload FROM inventory.outbox WHERE topic = :t ORDER BY id", {"t": topic_name}
        ).scalars().all()
    return [Event({}, bytes(payload)).json() for payload in rows]


def order_created(*lines: tuple[str, int], order_id: str | None = None) -> Event:
    order_id = order_id or str(uuid.uuid4())
    items = [OrderItem(sku=sku, quantity=qty, price=Decimal("1.00")) for sku, qty in lines]
    total = Decimal(sum(qty for _, qty in lines))
    payload = OrderCreated(order_id=order_id, customer_id="cust-1", total=total, currency="USD", items=items)
    return event_of("order.created", payload, order_id)


def cancelled(order_id: str, previous: str = "confirmed") -> Event:
    payload = OrderCancelled(order_id=order_id, customer_id="cust-1", previous_status=previous, reason="changed mind")
    return event_of("order.cancelled", payload, order_id)


def payment_failed(order_id: str) -> Event:
    return event_of("payment.failed", PaymentFailed(payment_id="pay-1", order_id=order_id, reason="card declined"),
                    order_id)


def label_created(order_id: str) -> Event:
    payload = LabelCreated(order_id=order_id, shipment_id="shp-1", tracking_number="TRK1", carrier="fusion-post",
                           label_url="http://127.0.0.1:3005/shipments/shp-1/label")
    return event_of("shipping.label.created", payload, order_id)


@pytest.fixture
def inventory(client: Clients) -> FlaskClient:
    return client("inventory")


def add_product(inventory: FlaskClient, sku: str, stock: int) -> None:
    product = ProductCreated(id=str(uuid.uuid4()), sku=sku, name=sku, price=Decimal("1.00"), currency="USD",
                             inventory=stock, created_at=datetime.now(UTC))
    assert deliver(inventory, "add-stock-for-product", event_of("product.created", product, product.id)
                   ).status_code == 204


def stock(inventory: FlaskClient, sku: str) -> tuple[int, int, int]:
    """(quantity on hand, reserved, available)."""
    response = inventory.get(f"/inventory/{sku}")
    assert response.status_code == 200
    row = response.get_json()
    return row["quantity"], row["reserved"], row["available"]


def reserve(inventory: FlaskClient, event: Event) -> None:
    assert deliver(inventory, "reserve-stock", event).status_code == 204


# stock levels


def test_product_created_adds_a_stock_row_listed_by_get_inventory(inventory: FlaskClient) -> None:
    assert inventory.get("/inventory").get_json() == []
    add_product(inventory, "B-1", 7)
    add_product(inventory, "A-1", 100)
    rows = inventory.get("/inventory").get_json()
    assert [(r["sku"], r["quantity"], r["reserved"], r["available"]) for r in rows] == [
        ("A-1", 100, 0, 100), ("B-1", 7, 0, 7)
    ]
    assert all(r["updatedAt"].endswith("Z") for r in rows)
    assert [r["sku"] for r in inventory.get("/inventory?limit=1&offset=1").get_json()] == ["B-1"]
    assert [r["sku"] for r in inventory.get("/inventory?sku=B-1").get_json()] == ["B-1"]
    assert inventory.get("/inventory/NOPE").status_code == 404


def test_put_inventory_sets_stock_on_hand(inventory: FlaskClient) -> None:
    add_product(inventory, "A-1", 10)
    response = inventory.put("/inventory", json={"sku": "A-1", "quantity": 25, "extra": True})
    assert response.status_code == 200
    assert {k: response.get_json()[k] for k in ("sku", "quantity", "reserved", "available")} == {
        "sku": "A-1", "quantity": 25, "reserved": 0, "available": 25
    }
    assert inventory.put("/inventory", json={"sku": "NEW-1", "quantity": 0}).status_code == 200
    assert stock(inventory, "NEW-1") == (0, 0, 0)
    add_product(inventory, "NEW-1", 50)  # a level set by hand is kept
    assert stock(inventory, "NEW-1") == (0, 0, 0)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sku": "A-1", "quantity": -1}, "quantity"),
        ({"sku": "A-1", "quantity": 2.5}, "quantity"),
        ({"sku": "A-1", "quantity": "ten"}, "quantity"),
        ({"sku": "A-1"}, "quantity"),
        ({"quantity": 3}, "sku"),
        ({"sku": " ", "quantity": 3}, "sku"),
    ],
)
def test_put_inventory_refuses_invalid_levels_with_400(
    inventory: FlaskClient, body: dict[str, Any], field: str
) -> None:
    add_product(inventory, "A-1", 10)
    response = inventory.put("/inventory", json=body)
    assert response.status_code == 400 and response.get_json()["field"] == field
    assert stock(inventory, "A-1") == (10, 0, 10)


def test_put_inventory_below_what_is_reserved_is_409(inventory: FlaskClient) -> None:
    add_product(inventory, "A-1", 10)
    reserve(inventory, order_created(("A-1", 6)))
    response = inventory.put("/inventory", json={"sku": "A-1", "quantity": 5})
    assert response.status_code == 409 and "6" in response.get_json()["message"]
    assert inventory.put("/inventory", json={"sku": "A-1", "quantity": 6}).status_code == 200
    assert stock(inventory, "A-1") == (6, 6, 0)


# reserving


@pytest.mark.parametrize(("in_stock", "left"), [(100, 95), (5, 0)])
def test_order_within_stock_is_reserved(inventory: FlaskClient, in_stock: int, left: int) -> None:
    add_product(inventory, "A-1", in_stock)
    event = order_created(("A-1", 5))
    reserve(inventory, event)
    assert stock(inventory, "A-1") == (in_stock, 5, left)
    assert published("inventory.reserved") == [{"orderId": event.subject, "items": [{"sku": "A-1", "quantity": 5}]}]
    assert published("inventory.insufficient") == []


def test_order_beyond_stock_is_insufficient_and_changes_nothing(inventory: FlaskClient) -> None:
    add_product(inventory, "A-1", 3)
    event = order_created(("A-1", 5))
    reserve(inventory, event)
    assert stock(inventory, "A-1") == (3, 0, 3)
    assert published("inventory.insufficient") == [
        {"orderId": event.subject, "sku": "A-1", "requested": 5, "available": 3}
    ]
    assert published("inventory.reserved") == []


def test_unknown_sku_is_insufficient(inventory: FlaskClient) -> None:
    event = order_created(("GHOST-1", 1))
    reserve(inventory, event)
    assert published("inventory.insufficient") == [
        {"orderId": event.subject, "sku": "GHOST-1", "requested": 1, "available": 0}
    ]
    assert inventory.get("/inventory").get_json() == []


def test_multi_item_order_with_one_short_item_reserves_nothing(inventory: FlaskClient) -> None:
    add_product(inventory, "A-1", 10)
    add_product(inventory, "B-1", 1)
    add_product(inventory, "C-1", 10)
    event = order_created(("C-1", 2), ("B-1", 2), ("A-1", 2))
    reserve(inventory, event)
    assert [stock(inventory, sku) for sku in ("A-1", "B-1", "C-1")] == [(10, 0, 10), (1, 0, 1), (10, 0, 10)]
    assert published("inventory.insufficient") == [
        {"orderId": event.subject, "sku": "B-1", "requested": 2, "available": 1}
    ]


def test_lines_of_the_same_sku_are_reserved_together(inventory: FlaskClient) -> None:
    add_product(inventory, "A-1", 5)
    reserve(inventory, order_created(("A-1", 3), ("A-1", 3)))
    assert stock(inventory, "A-1") == (5, 0, 5)
    reserve(inventory, order_created(("A-1", 2), ("A-1", 3)))
    assert stock(inventory, "A-1") == (5, 5, 0)
    assert published("inventory.reserved")[0]["items"] == [{"sku": "A-1", "quantity": 5}]


def test_the_same_cloudevent_delivered_twice_reserves_once(inventory: FlaskClient) -> None:
    add_product(inventory, "A-1", 100)
    event = order_created(("A-1", 5))
    reserve(inventory, event)
    reserve(inventory, event)
    republished = order_created(("A-1", 5), order_id=event.subject)  # same order, new event id
    reserve(inventory, republished)
    assert stock(inventory, "A-1") == (100, 5, 95)
    assert len(published("inventory.reserved")) == 1


def test_bad_order_created_payload_is_refused_with_400(inventory: FlaskClient) -> None:
    add_product(inventory, "A-1", 100)
    no_items = order_created(("A-1", 1))
    no_items = Event(no_items.attributes, b'{"orderId":"o-1","customerId":"c","total":0,"currency":"USD","items":[]}')
    assert deliver(inventory, "reserve-stock", no_items).status_code == 400
    negative = order_created(("A-1", -3))
    assert deliver(inventory, "reserve-stock", negative).status_code == 400
    assert stock(inventory, "A-1") == (100, 0, 100)


def test_fifty_concurrent_orders_of_one_against_ten_never_oversell(client: Clients, inventory: FlaskClient) -> None:
    add_product(inventory, "HOT-1", 10)
    events = [order_created(("HOT-1", 1)) for _ in range(50)]
    workers = [client("inventory") for _ in range(10)]
    start = threading.Barrier(10)

    def deliver_share(worker: int) -> list[int]:
        start.wait()
        return [deliver(workers[worker], "reserve-stock", e).status_code for e in events[worker::10]]

    with ThreadPoolExecutor(max_workers=10) as pool:
        codes = [code for share in pool.map(deliver_share, range(10)) for code in share]
    assert codes == [204] * 50
    assert len(published("inventory.reserved")) == 10
    assert len(published("inventory.insufficient")) == 40
    assert stock(inventory, "HOT-1") == (10, 10, 0)


def test_concurrent_multi_item_orders_in_opposite_sku_order_do_not_deadlock(
    client: Clients, inventory: FlaskClient
) -> None:
    add_product(inventory, "A-1", 30)
    add_product(inventory, "B-1", 30)
    events = [order_created(("A-1", 1), ("B-1", 1)) if n % 2 else order_created(("B-1", 1), ("A-1", 1))
              for n in range(40)]
    workers = [client("inventory") for _ in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(lambda n: deliver(workers[n % 8], "reserve-stock", events[n]).status_code, range(40)))
    assert codes == [204] * 40
    assert stock(inventory, "A-1") == stock(inventory, "B-1") == (30, 30, 0)
    assert len(published("inventory.reserved")) == 30 and len(published("inventory.insufficient")) == 10


# releasing and selling


@pytest.mark.parametrize(("function", "make", "reason"), [
    ("release-stock-on-cancel", cancelled, "order cancelled: changed mind"),
    ("release-stock-on-payment-failure", payment_failed, "payment failed: card declined"),
])
def test_cancellation_or_failed_payment_releases_the_reservation_once(
    inventory: FlaskClient, function: str, make: Callable[[str], Event], reason: str
) -> None:
    add_product(inventory, "A-1", 100)
    add_product(inventory, "B-1", 10)
    order = order_created(("A-1", 5), ("B-1", 2))
    reserve(inventory, order)
    assert stock(inventory, "A-1") == (100, 5, 95)
    assert order.subject is not None
    release = make(order.subject)
    assert deliver(inventory, function, release).status_code == 204
    assert deliver(inventory, function, release).status_code == 204
    assert deliver(inventory, function, make(order.subject)).status_code == 204
    assert stock(inventory, "A-1") == (100, 0, 100) and stock(inventory, "B-1") == (10, 0, 10)
    assert published("inventory.released") == [{
        "orderId": order.subject, "reason": reason,
        "items": [{"sku": "A-1", "quantity": 5}, {"sku": "B-1", "quantity": 2}],
    }]


def test_cancellation_before_the_order_means_the_late_order_reserves_nothing(inventory: FlaskClient) -> None:
    add_product(inventory, "A-1", 10)
    order = order_created(("A-1", 4))
    assert order.subject is not None
    assert deliver(inventory, "release-stock-on-cancel", cancelled(order.subject, "created")).status_code == 204
    reserve(inventory, order)
    assert stock(inventory, "A-1") == (10, 0, 10)
    assert published("inventory.reserved") == published("inventory.insufficient") == []
    assert published("inventory.released") == []


def test_refused_order_releases_nothing(inventory: FlaskClient) -> None:
    add_product(inventory, "A-1", 1)
    order = order_created(("A-1", 4))
    assert order.subject is not None
    reserve(inventory, order)
    assert deliver(inventory, "release-stock-on-cancel", cancelled(order.subject)).status_code == 204
    assert stock(inventory, "A-1") == (1, 0, 1) and published("inventory.released") == []


def test_shipping_turns_the_reservation_into_a_sale(inventory: FlaskClient) -> None:
    add_product(inventory, "A-1", 100)
    order = order_created(("A-1", 5))
    assert order.subject is not None
    reserve(inventory, order)
    label = label_created(order.subject)
    assert deliver(inventory, "sell-reserved-stock", label).status_code == 204
    assert deliver(inventory, "sell-reserved-stock", label_created(order.subject)).status_code == 204
    assert stock(inventory, "A-1") == (95, 0, 95)


def test_a_cancellation_that_meets_a_fresh_label_puts_the_sold_stock_back(inventory: FlaskClient) -> None:
    add_product(inventory, "A-1", 100)
    order = order_created(("A-1", 5))
    assert order.subject is not None
    reserve(inventory, order)
    assert deliver(inventory, "sell-reserved-stock", label_created(order.subject)).status_code == 204
    assert stock(inventory, "A-1") == (95, 0, 95)
    cancel = cancelled(order.subject, "paid")
    assert deliver(inventory, "release-stock-on-cancel", cancel).status_code == 204
    assert deliver(inventory, "release-stock-on-cancel", cancelled(order.subject, "paid")).status_code == 204
    assert stock(inventory, "A-1") == (100, 0, 100)
    assert len(published("inventory.released")) == 1


def test_shipping_without_a_reservation_changes_nothing(inventory: FlaskClient) -> None:
    add_product(inventory, "A-1", 10)
    assert deliver(inventory, "sell-reserved-stock", label_created(str(uuid.uuid4()))).status_code == 204
    assert stock(inventory, "A-1") == (10, 0, 10)


def test_health_answers_ok(inventory: FlaskClient) -> None:
    body = inventory.get("/health").get_json()
    assert body["status"] == "ok" and body["service"] == "inventory"


def test_an_order_for_a_product_inventory_has_not_heard_of_yet_takes_its_stock_from_the_catalog(
        client: Clients, inventory: FlaskClient) -> None:
    sku = f"NEW-{uuid.uuid4().hex[:8]}"
    created = client("catalog").post("/products", json={"sku": sku, "name": "Fresh", "price": 5, "currency": "USD",
                                                        "inventory": 4})
    assert created.status_code == 201  # product.created is not delivered to inventory

    reserve(inventory, order_created((sku, 3)))

    assert stock(inventory, sku) == (4, 3, 1)
    assert published("inventory.insufficient") == []


def test_an_order_for_a_sku_the_catalog_does_not_know_either_is_refused_for_stock(inventory: FlaskClient) -> None:
    reserve(inventory, order_created(("NOWHERE", 1)))
    [refused] = published("inventory.insufficient")
    assert refused["sku"] == "NOWHERE" and refused["available"] == 0
