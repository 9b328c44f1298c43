"""Orders functions through functions-framework, on the real database.

Events reach the handlers as binary-mode CloudEvents over HTTP, as the router delivers them; events a
function published are read back from the service's outbox (and, for the saga, handed on to the
inventory service's functions the same way).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from support import Tokens
from werkzeug.test import TestResponse

from functions.orders.flow import EXPIRY_REASON, Placement, place_priced
from functions.orders.handlers import expire_unpaid
from functions.orders.rules import OrderLine
from fusion import config
from fusion.auth import delivery_audience
from fusion.binding import Event, new_event, to_http
from fusion.contracts import (
    Contract,
    InventoryInsufficient,
    InventoryReserved,
    LabelCreated,
    PaymentFailed,
    PaymentSucceeded,
    ProductCreated,
    ShipmentDelivered,
    StockLine,
)
from fusion.db import pool
from fusion.local.issuer import ROUTER_SUBJECT, IssuerKey
from fusion.topics import PING_TYPE, topic
from fusion.uow import unit_of_work

Clients = Callable[[str], FlaskClient]
PRICES = {"TSHIRT-1": Decimal("19.99"), "MUG-1": Decimal("0.10"), "CAP-1": Decimal("7.50")}


# helpers


def event_of(topic_name: str, payload: Contract, subject: str) -> Event:
    return new_event(topic_name, topic(topic_name).producer, subject, payload)


def deliver(service: FlaskClient, function: str, event: Event) -> TestResponse:
    headers, body = to_http(event)
    return service.post(f"/_functions/{function}", headers=headers, data=body)


def outbox(schema: str, topic_name: str) -> list[Event]:
    with pool().connect() as conn:
        rows = conn.execute(
            f"SELECT attributes, payload FROM {schema}.outbox WHERE topic = :t ORDER BY id", {"t": topic_name}
        ).all()
    return [Event(row.attributes, bytes(row.payload)) for row in rows]


def payloads(schema: str, topic_name: str) -> list[dict[str, Any]]:
    return [event.json() for event in outbox(schema, topic_name)]


def status_of(order_id: str) -> str:
    with pool().connect() as conn:
        return str(conn.execute("SELECT status FROM orders.orders WHERE id = :id", {"id": order_id}).scalar())


def product(sku: str, price: Decimal, currency: str = "USD", inventory: int = 100) -> ProductCreated:
    return ProductCreated(id=str(uuid.uuid4()), sku=sku, name=f"Product {sku}", price=price, currency=currency,
                          inventory=inventory, created_at=datetime.now(UTC))


def order_body(*lines: tuple[str, int], customer: str = "cust-1", currency: str = "USD") -> dict[str, Any]:
    return {"customerId": customer, "currency": currency,
            "items": [{"sku": sku, "quantity": qty, "price": float(PRICES[sku])} for sku, qty in lines]}


@pytest.fixture
def orders(client: Clients) -> FlaskClient:
    """The orders service, knowing the catalog's products and prices."""
    service = client("orders")
    for sku, price in PRICES.items():
        created = product(sku, price)
        response = deliver(service, "record-product-price", event_of("product.created", created, created.id))
        assert response.status_code == 204
    return service


def place(orders: FlaskClient, *lines: tuple[str, int], **extra: Any) -> dict[str, Any]:
    response = orders.post("/orders", json=order_body(*lines, **extra))
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def reserved(order_id: str, *lines: tuple[str, int]) -> Event:
    items = [StockLine(sku=sku, quantity=qty) for sku, qty in lines]
    return event_of("inventory.reserved", InventoryReserved(order_id=order_id, items=items), order_id)


def paid(order_id: str) -> Event:
    payload = PaymentSucceeded(payment_id="pay-1", order_id=order_id, amount=Decimal("19.99"), currency="USD")
    return event_of("payment.succeeded", payload, order_id)


def shipped(order_id: str) -> Event:
    payload = LabelCreated(order_id=order_id, shipment_id="shp-1", tracking_number="TRK123", carrier="fusion-post",
                           label_url="http://127.0.0.1:3005/shipments/shp-1/label")
    return event_of("shipping.label.created", payload, order_id)


def delivered(order_id: str) -> Event:
    payload = ShipmentDelivered(order_id=order_id, shipment_id="shp-1", tracking_number="TRK123",
                                delivered_at=datetime.now(UTC))
    return event_of("shipping.delivered", payload, order_id)


def confirmed_order(orders: FlaskClient) -> str:
    order_id = str(place(orders, ("TSHIRT-1", 1))["id"])
    assert deliver(orders, "confirm-order", reserved(order_id, ("TSHIRT-1", 1))).status_code == 204
    return order_id


# placing orders


def test_valid_order_is_201_with_exact_total_and_publishes_order_created(orders: FlaskClient) -> None:
    response = orders.post("/orders", json={**order_body(("TSHIRT-1", 3), ("MUG-1", 3)), "note": "ignored"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["customerId"] == "cust-1" and body["currency"] == "USD" and body["status"] == "created"
    assert Decimal(str(body["total"])) == Decimal("60.27")  # 3 x 19.99 + 3 x 0.10, exact
    assert body["items"] == [{"sku": "TSHIRT-1", "quantity": 3, "price": 19.99},
                             {"sku": "MUG-1", "quantity": 3, "price": 0.1}]
    assert uuid.UUID(body["id"]) and response.headers["Location"] == f"/orders/{body['id']}"
    assert datetime.fromisoformat(body["createdAt"]).tzinfo is not None
    assert [h["status"] for h in body["history"]] == ["created"]
    [event] = outbox("orders", "order.created")
    assert event.type == "com.fusioncommerce.order.created" and event.source == "/fusioncommerce/orders"
    assert event.subject == body["id"] == event.partition_key
    assert event.json() == {"orderId": body["id"], "customerId": "cust-1", "total": 60.27, "currency": "USD",
                            "items": body["items"], "campaignId": None}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customerId": None}, "customerId"),
        ({"customerId": "  "}, "customerId"),
        ({"items": []}, "items"),
        ({"items": None}, "items"),
        ({"items": [{"sku": "TSHIRT-1", "quantity": 0, "price": 19.99}]}, "items[0].quantity"),
        ({"items": [{"sku": "TSHIRT-1", "quantity": -2, "price": 19.99}]}, "items[0].quantity"),
        ({"items": [{"sku": "TSHIRT-1", "quantity": 1.5, "price": 19.99}]}, "items[0].quantity"),
        ({"items": [{"sku": "TSHIRT-1", "quantity": 1, "price": -19.99}]}, "items[0].price"),
        ({"items": [{"sku": "TSHIRT-1", "quantity": 1}]}, "items[0].price"),
        ({"items": [{"sku": "TSHIRT-1", "quantity": 1, "price": 19.999}]}, "items[0].price"),
        ({"items": [{"sku": "", "quantity": 1, "price": 19.99}]}, "items[0].sku"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": None}, "currency"),
        ({"currency": "JPY", "items": [{"sku": "TSHIRT-1", "quantity": 1, "price": 10.5}]}, "items[0].price"),
    ],
)
def test_invalid_order_is_400_naming_the_field(orders: FlaskClient, body: dict[str, Any], field: str) -> None:
    request = {k: v for k, v in {**order_body(("TSHIRT-1", 1)), **body}.items() if v is not None}
    response = orders.post("/orders", json=request)
    assert response.status_code == 400
    error = response.get_json()
    assert error["error"] == "validation_error" and error["field"] == field and field in error["message"]
    assert outbox("orders", "order.created") == []


def test_body_that_is_not_a_json_object_is_400(orders: FlaskClient) -> None:
    assert orders.post("/orders", data="{", content_type="application/json").status_code == 400
    assert orders.post("/orders", json=["not", "an", "object"]).status_code == 400


@pytest.mark.parametrize(
    ("item", "currency", "code", "field", "words"),
    [
        ({"sku": "NOPE-9", "quantity": 1, "price": 1}, "USD", "unknown_sku", "items[1].sku", ["NOPE-9", "catalog"]),
        ({"sku": "CAP-1", "quantity": 1, "price": 5.00}, "USD", "price_mismatch", "items[1].price",
         ["CAP-1", "7.50"]),
        ({"sku": "CAP-1", "quantity": 1, "price": 7.50}, "EUR", "currency_mismatch", "items[0].price",
         ["MUG-1", "USD", "EUR"]),
    ],
)
def test_price_not_matching_the_catalog_is_422_naming_the_sku(
    orders: FlaskClient, item: dict[str, Any], currency: str, code: str, field: str, words: list[str]
) -> None:
    body = order_body(("MUG-1", 1), currency=currency)
    body["items"].append(item)
    response = orders.post("/orders", json=body)
    assert response.status_code == 422
    error = response.get_json()
    assert error["error"] == code and error["field"] == field
    assert all(word in error["message"] for word in words)
    assert outbox("orders", "order.created") == [] and orders.get("/orders").get_json() == []


def test_idempotency_key_replays_the_first_order_and_creates_nothing_new(orders: FlaskClient) -> None:
    headers = {"Idempotency-Key": "checkout-42"}
    first = orders.post("/orders", json=order_body(("CAP-1", 2)), headers=headers)
    again = orders.post("/orders", json=order_body(("CAP-1", 2)), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
    assert len(orders.get("/orders").get_json()) == 1 and len(outbox("orders", "order.created")) == 1
    reused = orders.post("/orders", json=order_body(("CAP-1", 3)), headers=headers)
    assert reused.status_code == 422 and reused.get_json()["field"] == "Idempotency-Key"


def test_place_order_with_a_given_id_is_idempotent_and_keeps_the_campaign(clean_db: str) -> None:
    order_id = uuid.uuid4()
    lines = (OrderLine(sku="CAP-1", quantity=1, price_minor=600),)
    with unit_of_work("orders") as uow:
        first = place_priced(Placement("cust-9", lines, "usd", campaign_id="camp-1", order_id=order_id), uow).row
    with unit_of_work("orders") as uow:
        second = place_priced(Placement("cust-9", lines, "USD", campaign_id="camp-1", order_id=order_id), uow).row
    assert first.id == second.id == order_id and first.total_minor == second.total_minor == 600
    assert first.campaign_id == "camp-1" and first.currency == "USD"
    [event] = payloads("orders", "order.created")
    assert event["campaignId"] == "camp-1" and event["total"] == 6


# reading orders


def test_orders_are_listed_newest_first_with_filters_and_paging(orders: FlaskClient) -> None:
    first = place(orders, ("TSHIRT-1", 1), customer="alice")
    second = place(orders, ("MUG-1", 2), customer="bob")
    third = place(orders, ("CAP-1", 1), customer="alice")
    deliver(orders, "confirm-order", reserved(third["id"], ("CAP-1", 1)))

    def ids(query: str) -> list[str]:
        return [o["id"] for o in orders.get(f"/orders{query}").get_json()]

    assert ids("") == [third["id"], second["id"], first["id"]]
    assert ids("?customerId=alice") == [third["id"], first["id"]]
    assert ids("?status=created") == [second["id"], first["id"]]
    assert ids("?customerId=alice&status=confirmed") == [third["id"]]
    assert ids("?limit=1&offset=1") == [second["id"]]
    assert ids("?customerId=nobody") == []
    listed = orders.get("/orders?limit=1").get_json()[0]
    assert listed["items"] == [{"sku": "CAP-1", "quantity": 1, "price": 7.5}]
    assert [h["status"] for h in listed["history"]] == ["created", "confirmed"]
    assert orders.get("/orders?status=lost").status_code == 400
    assert orders.get("/orders?limit=0").status_code == 400


def test_get_order_is_200_with_history_or_404(orders: FlaskClient) -> None:
    placed = place(orders, ("TSHIRT-1", 2))
    response = orders.get(f"/orders/{placed['id']}")
    assert response.status_code == 200 and response.get_json() == placed
    assert orders.get(f"/orders/{uuid.uuid4()}").status_code == 404
    assert orders.get("/orders/not-an-id").status_code == 404


def test_health_answers_ok(orders: FlaskClient) -> None:
    body = orders.get("/health").get_json()
    assert body["status"] == "ok" and body["service"] == "orders"


# following the saga


def test_inventory_reserved_confirms_the_order_once(orders: FlaskClient) -> None:
    order_id = place(orders, ("TSHIRT-1", 2))["id"]
    event = reserved(order_id, ("TSHIRT-1", 2))
    assert deliver(orders, "confirm-order", event).status_code == 204
    assert deliver(orders, "confirm-order", event).status_code == 204  # the same CloudEvent again
    assert deliver(orders, "confirm-order", reserved(order_id, ("TSHIRT-1", 2))).status_code == 204  # a new one
    order = orders.get(f"/orders/{order_id}").get_json()
    assert order["status"] == "confirmed" and [h["status"] for h in order["history"]] == ["created", "confirmed"]
    assert payloads("orders", "order.confirmed") == [
        {"orderId": order_id, "customerId": "cust-1", "total": 39.98, "currency": "USD"}
    ]


def test_inventory_insufficient_fails_the_order_with_the_reason_and_a_late_reservation_changes_nothing(
    orders: FlaskClient,
) -> None:
    order_id = place(orders, ("TSHIRT-1", 5))["id"]
    shortage = InventoryInsufficient(order_id=order_id, sku="TSHIRT-1", requested=5, available=3)
    assert deliver(orders, "fail-order-out-of-stock", event_of("inventory.insufficient", shortage, order_id)
                   ).status_code == 204
    assert deliver(orders, "confirm-order", reserved(order_id, ("TSHIRT-1", 5))).status_code == 204
    order = orders.get(f"/orders/{order_id}").get_json()
    assert order["status"] == "failed"
    assert order["statusReason"] == "insufficient stock for sku TSHIRT-1: requested 5, available 3"
    assert order["history"][-1]["reason"] == order["statusReason"]
    assert [p["reason"] for p in payloads("orders", "order.failed")] == [order["statusReason"]]
    assert payloads("orders", "order.confirmed") == []


def test_order_runs_from_confirmed_to_delivered_and_stale_events_change_nothing(orders: FlaskClient) -> None:
    order_id = confirmed_order(orders)
    for function, event, status in [
        ("mark-order-paid", paid(order_id), "paid"),
        ("mark-order-shipped", shipped(order_id), "shipped"),
        ("confirm-order", reserved(order_id, ("TSHIRT-1", 1)), "shipped"),  # stale
        ("mark-order-paid", paid(order_id), "shipped"),  # stale
        ("mark-order-delivered", delivered(order_id), "delivered"),
        ("mark-order-shipped", shipped(order_id), "delivered"),  # stale
    ]:
        assert deliver(orders, function, event).status_code == 204
        assert status_of(order_id) == status
    order = orders.get(f"/orders/{order_id}").get_json()
    assert [h["status"] for h in order["history"]] == ["created", "confirmed", "paid", "shipped", "delivered"]
    assert order["history"][3]["reason"] == "fusion-post tracking number TRK123"


def test_events_arriving_out_of_order_still_end_in_the_latest_status(orders: FlaskClient) -> None:
    order_id = place(orders, ("TSHIRT-1", 1))["id"]
    assert deliver(orders, "mark-order-paid", paid(order_id)).status_code == 204
    assert deliver(orders, "confirm-order", reserved(order_id, ("TSHIRT-1", 1))).status_code == 204
    assert status_of(order_id) == "paid"
    assert payloads("orders", "order.confirmed") == []


def test_payment_failed_fails_a_confirmed_order_but_not_a_paid_one(orders: FlaskClient) -> None:
    failing, settled = confirmed_order(orders), confirmed_order(orders)
    deliver(orders, "mark-order-paid", paid(settled))
    for order_id in (failing, settled):
        failure = PaymentFailed(payment_id="pay-2", order_id=order_id, reason="card declined")
        assert deliver(orders, "fail-order-payment", event_of("payment.failed", failure, order_id)).status_code == 204
    assert status_of(failing) == "failed" and status_of(settled) == "paid"
    assert payloads("orders", "order.failed") == [
        {"orderId": failing, "customerId": "cust-1", "reason": "payment failed: card declined"}
    ]


def test_events_for_unknown_orders_are_acknowledged_and_bad_payloads_refused(orders: FlaskClient) -> None:
    assert deliver(orders, "mark-order-paid", paid(str(uuid.uuid4()))).status_code == 204
    assert deliver(orders, "mark-order-paid", paid("not-an-order-id")).status_code == 400
    malformed = Event({**paid(str(uuid.uuid4())).attributes}, b'{"orderId": 1}')
    assert deliver(orders, "mark-order-paid", malformed).status_code == 400
    assert orders.get("/orders").get_json() == []


# cancelling


def test_cancel_a_created_order_publishes_order_cancelled_and_twice_is_harmless(orders: FlaskClient) -> None:
    order_id = place(orders, ("MUG-1", 1))["id"]
    first = orders.post(f"/orders/{order_id}/cancel")
    again = orders.post(f"/orders/{order_id}/cancel", json={"reason": "changed my mind"})
    assert first.status_code == again.status_code == 200
    assert first.get_json()["status"] == "cancelled" and again.get_json() == first.get_json()
    assert first.get_json()["statusReason"] == "cancelled by customer"
    assert payloads("orders", "order.cancelled") == [
        {"orderId": order_id, "customerId": "cust-1", "previousStatus": "created", "reason": "cancelled by customer"}
    ]
    assert deliver(orders, "confirm-order", reserved(order_id, ("MUG-1", 1))).status_code == 204
    assert status_of(order_id) == "cancelled"


@pytest.mark.parametrize("steps", [["confirm-order"], ["confirm-order", "mark-order-paid"]])
def test_cancel_a_confirmed_or_paid_order_names_the_previous_status(orders: FlaskClient, steps: list[str]) -> None:
    order_id = place(orders, ("TSHIRT-1", 1))["id"]
    events = {"confirm-order": reserved(order_id, ("TSHIRT-1", 1)), "mark-order-paid": paid(order_id)}
    for step in steps:
        deliver(orders, step, events[step])
    response = orders.post(f"/orders/{order_id}/cancel", json={"reason": "found it cheaper"})
    assert response.status_code == 200 and response.get_json()["statusReason"] == "found it cheaper"
    [cancelled] = payloads("orders", "order.cancelled")
    assert cancelled["previousStatus"] == ("paid" if "mark-order-paid" in steps else "confirmed")


@pytest.mark.parametrize("final", ["shipped", "delivered", "failed"])
def test_cancel_of_a_shipped_delivered_or_failed_order_is_409(orders: FlaskClient, final: str) -> None:
    order_id = confirmed_order(orders)
    if final == "failed":
        failure = PaymentFailed(payment_id="pay-3", order_id=order_id, reason="expired card")
        deliver(orders, "fail-order-payment", event_of("payment.failed", failure, order_id))
    else:
        deliver(orders, "mark-order-shipped", shipped(order_id))
        if final == "delivered":
            deliver(orders, "mark-order-delivered", delivered(order_id))
    response = orders.post(f"/orders/{order_id}/cancel")
    assert response.status_code == 409 and final in response.get_json()["message"]
    assert status_of(order_id) == final and payloads("orders", "order.cancelled") == []


def test_cancel_of_an_unknown_order_is_404(orders: FlaskClient) -> None:
    assert orders.post(f"/orders/{uuid.uuid4()}/cancel").status_code == 404
    assert orders.post("/orders/nope/cancel").status_code == 404


# unpaid orders expire


def test_confirmed_orders_unpaid_past_the_hold_are_cancelled(orders: FlaskClient) -> None:
    overdue, settled = confirmed_order(orders), confirmed_order(orders)
    waiting = place(orders, ("MUG-1", 1))["id"]
    deliver(orders, "mark-order-paid", paid(settled))
    assert expire_unpaid(hold_seconds=900) == []
    later = datetime.now(UTC) + timedelta(seconds=901)
    assert expire_unpaid(hold_seconds=900, now=later) == [overdue]
    assert expire_unpaid(hold_seconds=900, now=later) == []
    assert (status_of(overdue), status_of(settled), status_of(waiting)) == ("cancelled", "paid", "created")
    assert payloads("orders", "order.cancelled") == [
        {"orderId": overdue, "customerId": "cust-1", "previousStatus": "confirmed", "reason": EXPIRY_REASON}
    ]


def test_expiry_works_through_batches(orders: FlaskClient) -> None:
    overdue = sorted(confirmed_order(orders) for _ in range(3))
    later = datetime.now(UTC) + timedelta(hours=1)
    assert sorted(expire_unpaid(hold_seconds=60, now=later, batch_size=2)) == overdue


@pytest.fixture
def short_hold() -> Iterator[None]:
    previous = os.environ.get("ORDER_HOLD_SECONDS")
    os.environ["ORDER_HOLD_SECONDS"] = "600"
    config.settings.cache_clear()
    yield
    if previous is None:
        os.environ.pop("ORDER_HOLD_SECONDS", None)
    else:
        os.environ["ORDER_HOLD_SECONDS"] = previous
    config.settings.cache_clear()


def test_scheduled_expiry_uses_the_configured_hold(orders: FlaskClient, short_hold: None) -> None:
    overdue, fresh = confirmed_order(orders), confirmed_order(orders)
    # confirmed 700 s ago: past the configured hold, not yet past the default 900 s one
    with pool().begin() as conn:
        conn.execute("UPDATE orders.orders SET status_changed_at = now() - interval '700 seconds' WHERE id = :id",
                     {"id": overdue})
    ping = Event({"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/apis/v1/namespaces/test/pingsources/p",
                  "type": PING_TYPE, "datacontenttype": "application/json"}, b"{}")
    assert deliver(orders, "expire-unpaid-orders", ping).status_code == 204
    assert (status_of(overdue), status_of(fresh)) == ("cancelled", "confirmed")
    assert [p["orderId"] for p in payloads("orders", "order.cancelled")] == [overdue]


# the order and the inventory service together


def pump(source_schema: str, topic_name: str, target: FlaskClient, function: str, workers: int = 1) -> int:
    """Deliver every event `source_schema` published on `topic_name` to `function`, as the router would."""
    events = outbox(source_schema, topic_name)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        codes = list(pool.map(lambda event: deliver(target, function, event).status_code, events))
    assert set(codes) <= {204}
    return len(events)


@pytest.fixture
def inventory(client: Clients, orders: FlaskClient) -> FlaskClient:
    return client("inventory")


def stock_for(inventory: FlaskClient, sku: str, quantity: int) -> None:
    assert inventory.put("/inventory", json={"sku": sku, "quantity": quantity}).status_code == 200


def test_status_follows_the_reservation_to_confirmed_or_failed(orders: FlaskClient, inventory: FlaskClient) -> None:
    stock_for(inventory, "TSHIRT-1", 100)
    stock_for(inventory, "MUG-1", 3)
    ok = place(orders, ("TSHIRT-1", 5))["id"]
    short = place(orders, ("TSHIRT-1", 1), ("MUG-1", 5))["id"]
    pump("orders", "order.created", inventory, "reserve-stock")
    pump("inventory", "inventory.reserved", orders, "confirm-order")
    pump("inventory", "inventory.insufficient", orders, "fail-order-out-of-stock")
    assert (status_of(ok), status_of(short)) == ("confirmed", "failed")
    stock = {row["sku"]: row for row in inventory.get("/inventory").get_json()}
    assert stock["TSHIRT-1"]["available"] == 95 and stock["MUG-1"]["available"] == 3


def test_fifty_concurrent_orders_for_ten_in_stock_confirm_exactly_ten(
    orders: FlaskClient, inventory: FlaskClient, client: Clients
) -> None:
    stock_for(inventory, "CAP-1", 10)
    storefronts = [client("orders") for _ in range(10)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        codes = list(pool.map(lambda n: storefronts[n % 10].post("/orders", json=order_body(
            ("CAP-1", 1), customer=f"cust-{n}")).status_code, range(50)))
    assert codes == [201] * 50
    assert pump("orders", "order.created", inventory, "reserve-stock", workers=10) == 50
    pump("inventory", "inventory.reserved", orders, "confirm-order", workers=5)
    pump("inventory", "inventory.insufficient", orders, "fail-order-out-of-stock", workers=5)
    statuses = [o["status"] for o in orders.get("/orders?limit=200").get_json()]
    assert statuses.count("confirmed") == 10 and statuses.count("failed") == 40
    [cap] = inventory.get("/inventory?sku=CAP-1").get_json()
    assert (cap["quantity"], cap["reserved"], cap["available"]) == (10, 10, 0)


def test_json_amounts_keep_the_currency_precision(orders: FlaskClient) -> None:
    created = product("RAMEN-1", Decimal("1200"), currency="JPY")
    deliver(orders, "record-product-price", event_of("product.created", created, created.id))
    body = {"customerId": "c", "currency": "jpy", "items": [{"sku": "RAMEN-1", "quantity": 3, "price": 1200}]}
    response = orders.post("/orders", json=body)
    assert response.status_code == 201
    assert json.loads(response.get_data())["total"] == 3600 and response.get_json()["currency"] == "JPY"


def test_concurrent_cancellations_and_payment_move_the_order_once(orders: FlaskClient, client: Clients) -> None:
    order_id = confirmed_order(orders)
    callers = [client("orders") for _ in range(8)]

    def act(n: int) -> int:
        if n % 4 == 0:
            return deliver(callers[n], "mark-order-paid", paid(order_id)).status_code
        return callers[n].post(f"/orders/{order_id}/cancel").status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(act, range(8)))
    assert set(codes) <= {200, 204}
    order = orders.get(f"/orders/{order_id}").get_json()
    assert order["status"] == "cancelled"
    assert [h["status"] for h in order["history"]].count("cancelled") == 1
    assert len(payloads("orders", "order.cancelled")) == 1


# who may see and change which order


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def test_a_customer_sees_and_cancels_only_its_own_orders(orders: FlaskClient, tokens: Tokens) -> None:
    alice, bob = bearer(tokens.customer("alice")), bearer(tokens.customer("bob"))
    mine = place(orders, ("TSHIRT-1", 1), customer="alice")
    place(orders, ("MUG-1", 1), customer="bob")
    assert orders.get(f"/orders/{mine['id']}", headers=alice).status_code == 200
    for method, path in (("GET", f"/orders/{mine['id']}"), ("POST", f"/orders/{mine['id']}/cancel")):
        response = orders.open(path, method=method, headers=bob, json={})
        assert response.status_code == 404, "another customer's order does not exist for bob"
    assert status_of(mine["id"]) == "created"
    listed = orders.get("/orders", headers=bob).get_json()
    assert [order["customerId"] for order in listed] == ["bob"]
    assert orders.get("/orders?customerId=alice", headers=bob).status_code == 403
    assert {order["customerId"] for order in orders.get("/orders").get_json()} == {"alice", "bob"}  # staff


def test_the_customer_comes_from_the_token(orders: FlaskClient, tokens: Tokens) -> None:
    body = order_body(("TSHIRT-1", 1))
    del body["customerId"]
    placed = orders.post("/orders", json=body, headers=bearer(tokens.customer("carol")))
    assert placed.status_code == 201 and placed.get_json()["customerId"] == "carol"
    forged = orders.post("/orders", json=order_body(("TSHIRT-1", 1), customer="dave"),
                         headers=bearer(tokens.customer("carol")))
    assert forged.status_code == 403 and forged.get_json()["field"] == "customerId"
    by_staff = orders.post("/orders", json=body, headers=bearer(tokens.staff("orders:manage")))
    assert by_staff.status_code == 400 and by_staff.get_json()["field"] == "customerId"


def test_idempotency_keys_belong_to_the_caller(orders: FlaskClient, tokens: Tokens) -> None:
    key = {"Idempotency-Key": "same-key"}
    first = orders.post("/orders", json=order_body(("TSHIRT-1", 1), customer="alice"),
                        headers={**key, **bearer(tokens.customer("alice"))})
    other = orders.post("/orders", json=order_body(("TSHIRT-1", 1), customer="bob"),
                        headers={**key, **bearer(tokens.customer("bob"))})
    assert first.status_code == other.status_code == 201
    assert first.get_json()["id"] != other.get_json()["id"] and "Idempotent-Replayed" not in other.headers


def test_an_order_that_costs_nothing_is_refused(orders: FlaskClient) -> None:
    deliver(orders, "record-product-price", event_of("product.created", free := product("FREE-1", Decimal("0")),
                                                      free.id))
    response = orders.post("/orders", json={"customerId": "alice", "currency": "USD",
                                            "items": [{"sku": "FREE-1", "quantity": 3, "price": 0}]})
    assert response.status_code == 422 and response.get_json()["error"] == "zero_total"


def test_one_customer_cannot_hold_unbounded_unpaid_orders(orders: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTOMER_OPEN_ORDERS", "2")
    monkeypatch.setenv("CUSTOMER_OPEN_UNITS", "5")
    config.settings.cache_clear()
    try:
        place(orders, ("TSHIRT-1", 1), customer="hoarder")
        too_many_units = orders.post("/orders", json=order_body(("MUG-1", 5), customer="hoarder"))
        assert too_many_units.status_code == 409 and too_many_units.get_json()["error"] == "open_unit_limit"
        place(orders, ("TSHIRT-1", 1), customer="hoarder")
        third = orders.post("/orders", json=order_body(("TSHIRT-1", 1), customer="hoarder"))
        assert third.status_code == 409 and third.get_json()["error"] == "open_order_limit"
        place(orders, ("TSHIRT-1", 1), customer="someone-else")
    finally:
        monkeypatch.undo()
        config.settings.cache_clear()


# only the event plane delivers events


@pytest.mark.parametrize("sender", ["no token", "a customer's token", "a staff token", "another function's audience",
                                    "a foreign key"])
def test_a_forged_delivery_is_refused_and_changes_nothing(orders: FlaskClient, tokens: Tokens, sender: str,
                                                          tmp_path_factory: pytest.TempPathFactory) -> None:
    order_id = str(place(orders, ("TSHIRT-1", 1))["id"])
    stranger = IssuerKey.load_or_create(tmp_path_factory.mktemp("stranger"))
    forged = {
        "no token": {"Authorization": ""},
        "a customer's token": bearer(tokens.customer("cust-1")),
        "a staff token": bearer(tokens.all_staff()),
        "another function's audience": bearer(tokens.delivery("mark-order-paid")),
        "a foreign key": bearer(stranger.mint(tokens.issuer, delivery_audience("confirm-order"), ROUTER_SUBJECT)),
    }[sender]
    headers, body = to_http(reserved(order_id, ("TSHIRT-1", 1)))
    response = orders.post("/_functions/confirm-order", headers={**headers, **forged}, data=body)
    assert response.status_code == 401, response.get_json()
    assert status_of(order_id) == "created"
    genuine = bearer(tokens.delivery("confirm-order"))
    delivered = orders.post("/_functions/confirm-order", headers={**headers, **genuine}, data=body)
    assert delivered.status_code == 204 and status_of(order_id) == "confirmed"


# facts heard late are kept in the history


def history_of(orders: FlaskClient, order_id: str) -> list[tuple[str, bool]]:
    return [(h["status"], h["late"]) for h in orders.get(f"/orders/{order_id}").get_json()["history"]]


def test_a_payment_heard_after_the_label_is_kept_in_the_history_at_its_time_and_flagged_late(
    orders: FlaskClient,
) -> None:
    order_id = confirmed_order(orders)
    payment = paid(order_id)  # the payment happened first, but its event is delivered after the label's
    assert deliver(orders, "mark-order-shipped", shipped(order_id)).status_code == 204
    assert deliver(orders, "mark-order-paid", payment).status_code == 204
    order = orders.get(f"/orders/{order_id}").get_json()
    assert order["status"] == "shipped" and status_of(order_id) == "shipped"
    assert history_of(orders, order_id) == [("created", False), ("confirmed", False), ("paid", True),
                                            ("shipped", False)]
    late = order["history"][2]
    assert late["reason"] == "payment pay-1 succeeded"
    assert datetime.fromisoformat(late["at"]) == datetime.fromisoformat(payment.attributes["time"])
    times = [datetime.fromisoformat(h["at"]) for h in order["history"]]
    assert times == sorted(times)


def test_a_late_fact_heard_again_adds_no_second_entry(orders: FlaskClient) -> None:
    order_id = confirmed_order(orders)
    payment = paid(order_id)
    second = event_of("payment.succeeded", PaymentSucceeded(payment_id="pay-2", order_id=order_id,
                                                            amount=Decimal("19.99"), currency="USD"), order_id)
    deliver(orders, "mark-order-shipped", shipped(order_id))
    for event in (payment, payment, second):  # the same event redelivered, then another payment of the order
        assert deliver(orders, "mark-order-paid", event).status_code == 204
    assert deliver(orders, "confirm-order", reserved(order_id, ("TSHIRT-1", 1))).status_code == 204  # known step
    assert history_of(orders, order_id) == [("created", False), ("confirmed", False), ("paid", True),
                                            ("shipped", False)]
    assert status_of(order_id) == "shipped"


def test_a_late_reservation_is_recorded_but_announces_nothing(orders: FlaskClient) -> None:
    order_id = place(orders, ("TSHIRT-1", 1))["id"]
    reservation = reserved(order_id, ("TSHIRT-1", 1))
    assert deliver(orders, "mark-order-paid", paid(order_id)).status_code == 204
    assert deliver(orders, "confirm-order", reservation).status_code == 204
    assert history_of(orders, order_id) == [("created", False), ("confirmed", True), ("paid", False)]
    assert status_of(order_id) == "paid" and payloads("orders", "order.confirmed") == []


def test_a_stale_event_of_a_failed_order_is_not_a_late_fact(orders: FlaskClient) -> None:
    order_id = confirmed_order(orders)
    failure = PaymentFailed(payment_id="pay-3", order_id=order_id, reason="card declined")
    deliver(orders, "fail-order-payment", event_of("payment.failed", failure, order_id))
    assert deliver(orders, "mark-order-paid", paid(order_id)).status_code == 204
    assert history_of(orders, order_id) == [("created", False), ("confirmed", False), ("failed", False)]
