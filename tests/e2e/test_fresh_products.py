"""Read-your-writes on the running platform: a product is ordered, campaigned for and repriced in the
requests right after it is created or changed, with the outbox relay stopped: its events stay where they
were written, so only asking the catalog can tell orders and group buying about it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from platform_runner import RunningPlatform, stopped


def order(platform: RunningPlatform, sku: str, price: float) -> tuple[int, Any]:
    return platform.post("orders", "/orders", {"customerId": "fresh-customer", "currency": "USD",
                                               "items": [{"sku": sku, "quantity": 1, "price": price}]})


def test_a_product_is_ordered_campaigned_for_and_repriced_in_the_next_requests(platform: RunningPlatform) -> None:
    with stopped(platform, "relay"):
        _create_order_campaign_and_reprice(platform)


def _create_order_campaign_and_reprice(platform: RunningPlatform) -> None:
    sku = f"FRESH-{uuid.uuid4().hex[:10]}"
    status, product = platform.post("catalog", "/products", {"sku": sku, "name": f"Fresh {sku}", "price": 10.0,
                                                             "currency": "USD", "inventory": 50})
    assert status == 201, product

    status, placed = order(platform, sku, 10.0)
    assert status == 201, placed
    assert placed["total"] == 10

    expires = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    status, campaign = platform.post("group-commerce", "/campaigns", {
        "productId": product["id"], "minParticipants": 2, "maxParticipants": 5, "discountPercentage": 10,
        "expiresAt": expires})
    assert status == 201, campaign
    assert campaign["originalPrice"] == 10

    status, changed = platform.request("PATCH", "catalog", f"/products/{product['id']}", {"price": 12.5})
    assert status == 200 and changed["price"] == 12.5, changed
    status, placed = order(platform, sku, 12.5)
    assert status == 201, placed
    status, refused = order(platform, sku, 10.0)
    assert status == 422 and refused["error"] == "price_mismatch", refused
