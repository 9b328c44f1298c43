"""Catalog, orders and inventory end to end: real HTTP, real PostgreSQL, real broker, the real router."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from platform_runner import RunningPlatform, eventually

FINAL = {"failed", "cancelled", "confirmed", "paid", "shipped", "delivered"}
PAST_CONFIRMED = {"confirmed", "paid", "shipped", "delivered"}


def new_product(platform: RunningPlatform, inventory: int, price: float = 10.0,
                timeout: float = 30.0) -> dict[str, Any]:
    sku = f"SKU-{uuid.uuid4().hex[:10]}"
    body = {"sku": sku, "name": f"Product {sku}", "price": price, "currency": "USD", "inventory": inventory}
    once = {"Idempotency-Key": f"new-product-{sku}"}
    # a 503 (or no answer) says try again, as a client would: right after a fault the catalog's pool may meet
    # the connections the fault cut
    status, product = eventually(lambda: _create(platform, body, once), lambda answer: answer[0] not in (0, 503),
                                 timeout=timeout)
    assert status == 201, product
    # orders and inventory ask the catalog for a product they have not heard of, so it can be ordered at
    # once; the stock listing, which the tests read, shows it once product.created has arrived
    eventually(lambda: platform.get("inventory", "/inventory"), lambda rows: any(r["sku"] == sku for r in rows),
               timeout=timeout)
    return product


def _create(platform: RunningPlatform, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
    try:
        return platform.post("catalog", "/products", body, headers)
    except OSError:
        return 0, None


def place(platform: RunningPlatform, sku: str, quantity: int, price: float,
          customer: str = "customer-1") -> tuple[int, Any]:
    return platform.post("orders", "/orders", {"customerId": customer, "currency": "USD",
                                               "items": [{"sku": sku, "quantity": quantity, "price": price}]})


def order_status(platform: RunningPlatform, order_id: str) -> str:
    return str(platform.get("orders", f"/orders/{order_id}")["status"])


def stock(platform: RunningPlatform, sku: str) -> dict[str, Any]:
    return next(row for row in platform.get("inventory", "/inventory") if row["sku"] == sku)


def settled(platform: RunningPlatform, order_id: str) -> str:
    return str(eventually(lambda: order_status(platform, order_id), lambda s: s in FINAL))


def test_an_order_in_stock_is_reserved_and_confirmed(platform: RunningPlatform) -> None:
    product = new_product(platform, inventory=100)
    status, order = place(platform, product["sku"], 5, 10.0)
    assert status == 201 and order["status"] == "created" and order["total"] == 50
    assert settled(platform, order["id"]) in PAST_CONFIRMED
    row = stock(platform, product["sku"])
    assert row["available"] == 95
    history = platform.get("orders", f"/orders/{order['id']}")["history"]
    assert [h["status"] for h in history][:2] == ["created", "confirmed"]


def test_an_order_beyond_stock_fails_and_changes_nothing(platform: RunningPlatform) -> None:
    product = new_product(platform, inventory=3)
    _, order = place(platform, product["sku"], 5, 10.0)
    assert settled(platform, order["id"]) == "failed"
    row = stock(platform, product["sku"])
    assert row["quantity"] == 3 and row["reserved"] == 0 and row["available"] == 3


def test_exactly_the_stock_is_reserved(platform: RunningPlatform) -> None:
    product = new_product(platform, inventory=5)
    _, order = place(platform, product["sku"], 5, 10.0)
    assert settled(platform, order["id"]) in PAST_CONFIRMED
    assert stock(platform, product["sku"])["available"] == 0


def test_fifty_concurrent_orders_for_ten_in_stock(platform: RunningPlatform) -> None:
    product = new_product(platform, inventory=10)
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda n: place(platform, product["sku"], 1, 10.0, f"buyer-{n}"), range(50)))
    assert all(status == 201 for status, _ in results)
    statuses = [settled(platform, order["id"]) for _, order in results]
    assert statuses.count("failed") == 40
    assert sum(s in PAST_CONFIRMED for s in statuses) == 10
    row = stock(platform, product["sku"])
    assert row["available"] == 0 and row["quantity"] >= 0 and row["reserved"] >= 0
    assert row["quantity"] - row["available"] == row["reserved"]


def test_an_empty_start_has_no_sample_catalog(platform: RunningPlatform) -> None:
    skus = [p["sku"] for p in platform.get("catalog", "/products?q=sample&limit=200")]
    assert not [sku for sku in skus if sku.startswith("SAMPLE-")], "fusion dev --empty loads no sample catalog"
