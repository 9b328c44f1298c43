"""The whole order saga on the running platform: Stripe (localstripe) payments, shipping, cancellation,
compensation and the unpaid-order hold, with the events seen on their Kafka topics."""

from __future__ import annotations

import os
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from platform_runner import RunningPlatform, eventually
from test_backbone import new_product, order_status, place, stock

from fusion.binding import Event, from_kafka
from fusion.kafka import consumer
from fusion.local.process import ManagedProcess

SAGA_TOPICS = ["order.created", "inventory.reserved", "payment.created", "payment.succeeded",
               "shipping.label.created", "shipping.delivered"]


def events_for(brokers: str, topics: list[str], key: str, count: int, timeout: float = 30.0) -> list[Event]:
    """The events keyed `key` on `topics`, read from the start, until `count` are seen."""
    reader = consumer(brokers, f"e2e-reader-{uuid.uuid4()}")
    reader.subscribe(topics)
    found: list[Event] = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < count and time.monotonic() < deadline:
            message = reader.poll(0.2)
            if message is not None and not message.error() and message.key() == key.encode():
                found.append(from_kafka(message.value(), message.headers()))
    finally:
        reader.close()
    return found


def payment_of(platform: RunningPlatform, order_id: str) -> dict[str, Any]:
    payments = eventually(lambda: platform.get("payments", f"/payments?orderId={order_id}"), lambda p: len(p) == 1)
    return dict(payments[0])


def shipment_of(platform: RunningPlatform, order_id: str) -> dict[str, Any]:
    shipments = eventually(lambda: platform.get("shipping", f"/shipments?orderId={order_id}"), lambda s: len(s) == 1)
    return dict(shipments[0])


def carrier_scan(platform: RunningPlatform, tracking: str, status: str) -> None:
    code, body = platform.post("shipping", "/carrier/updates", {"trackingNumber": tracking, "status": status})
    assert code == 200, body


def test_happy_path_from_placed_to_delivered(platform: RunningPlatform, e2e_broker: ManagedProcess) -> None:
    product = new_product(platform, inventory=10, price=12.5)
    _, order = place(platform, product["sku"], 2, 12.5, customer="happy-customer")
    assert eventually(lambda: order_status(platform, order["id"]), lambda s: s == "shipped") == "shipped"
    payment = payment_of(platform, order["id"])
    assert payment["status"] == "succeeded" and payment["amount"] == 25
    shipment = shipment_of(platform, order["id"])
    carrier_scan(platform, shipment["trackingNumber"], "in_transit")
    carrier_scan(platform, shipment["trackingNumber"], "delivered")
    assert eventually(lambda: order_status(platform, order["id"]), lambda s: s == "delivered") == "delivered"

    tracking = platform.get("shipping", f"/tracking/{shipment['trackingNumber']}")
    assert [step["status"] for step in tracking["history"]] == ["label_created", "in_transit", "delivered"]
    label_status, label = platform.request("GET", "shipping", f"/shipments/{shipment['id']}/label")
    assert label_status == 200 and label.startswith(b"%PDF-") and b"%%EOF" in label[-1024:]
    row = stock(platform, product["sku"])
    assert row["quantity"] == 8 and row["reserved"] == 0  # the reservation became a sale

    seen = sorted(events_for(e2e_broker.url, SAGA_TOPICS, order["id"], len(SAGA_TOPICS)),
                  key=lambda e: e.attributes["time"])
    assert [e.type.removeprefix("com.fusioncommerce.") for e in seen] == SAGA_TOPICS


def test_a_declined_card_fails_the_order_and_releases_the_stock(platform: RunningPlatform) -> None:
    product = new_product(platform, inventory=4)
    _, order = place(platform, product["sku"], 3, 10.0, customer="decline-dora")
    assert eventually(lambda: order_status(platform, order["id"]), lambda s: s == "failed") == "failed"
    payment = payment_of(platform, order["id"])
    assert payment["status"] == "failed" and payment["failureReason"]
    assert eventually(lambda: stock(platform, product["sku"]), lambda r: r["available"] == 4)["reserved"] == 0


def pay_as_the_storefront(stripe_url: str, intent_id: str) -> None:
    """What Stripe.js does with the client secret: attach the card, confirm the PaymentIntent."""
    client = stripe.StripeClient("sk_test_fusion_local", base_addresses={"api": stripe_url})
    client.v1.payment_intents.update(intent_id, params={"payment_method": "pm_card_visa"})
    assert client.v1.payment_intents.confirm(intent_id).status == "succeeded"


def test_cancelling_a_paid_order_refunds_it_and_returns_the_stock(
    platform: RunningPlatform, e2e_stripe_url: str
) -> None:
    product = new_product(platform, inventory=6)
    _, order = place(platform, product["sku"], 2, 10.0, customer="unpaid-paula")
    eventually(lambda: order_status(platform, order["id"]), lambda s: s == "confirmed")
    payment = payment_of(platform, order["id"])
    shipping = platform.pid_of("shipping")
    os.killpg(shipping, signal.SIGSTOP)  # a slow shipping service: the paid order waits for its label
    try:
        pay_as_the_storefront(e2e_stripe_url, payment["providerPaymentId"])
        eventually(lambda: order_status(platform, order["id"]), lambda s: s == "paid")
        code, cancelled = platform.post("orders", f"/orders/{order['id']}/cancel", {"reason": "changed my mind"})
        assert code == 200 and cancelled["status"] == "cancelled"
    finally:
        os.killpg(shipping, signal.SIGCONT)
    refunded = eventually(lambda: payment_of(platform, order["id"]), lambda p: p["status"] == "refunded")
    assert refunded["refundId"]
    assert eventually(lambda: stock(platform, product["sku"]), lambda r: r["available"] == 6)["reserved"] == 0
    again_code, again = platform.post("orders", f"/orders/{order['id']}/cancel", {})
    assert again_code == 200 and again["status"] == "cancelled"
    # a label created while the cancellation travelled is voided once shipping learns of the refund
    eventually(lambda: platform.get("shipping", f"/shipments?orderId={order['id']}"),
               lambda shipments: all(s["status"] == "cancelled" for s in shipments))
    assert order_status(platform, order["id"]) == "cancelled"
    assert stock(platform, product["sku"])["quantity"] == 6


def test_shipped_orders_cannot_be_cancelled(platform: RunningPlatform) -> None:
    product = new_product(platform, inventory=2)
    _, order = place(platform, product["sku"], 1, 10.0, customer="ship-fast")
    eventually(lambda: order_status(platform, order["id"]), lambda s: s == "shipped")
    code, body = platform.post("orders", f"/orders/{order['id']}/cancel", {})
    assert code == 409, body


def test_an_order_left_unpaid_past_the_hold_is_cancelled_and_its_stock_released(platform: RunningPlatform) -> None:
    product = new_product(platform, inventory=5)
    _, order = place(platform, product["sku"], 5, 10.0, customer="unpaid-ulla")
    eventually(lambda: order_status(platform, order["id"]), lambda s: s == "confirmed")
    assert stock(platform, product["sku"])["available"] == 0
    # ORDER_HOLD_SECONDS is 6 on this platform and scheduled functions fire every second
    assert eventually(lambda: order_status(platform, order["id"]), lambda s: s == "cancelled", timeout=40) == \
        "cancelled"
    assert eventually(lambda: stock(platform, product["sku"]), lambda r: r["available"] == 5)["reserved"] == 0
    assert payment_of(platform, order["id"])["status"] in ("cancelled", "failed", "pending", "canceled")


def test_group_buying_charges_nobody_until_it_tips_then_ships_every_paid_seat(platform: RunningPlatform) -> None:
    product = new_product(platform, inventory=10, price=20.0)
    code, created = platform.post("group-commerce", "/campaigns", {
        "productId": product["id"], "minParticipants": 3, "maxParticipants": 5, "discountPercentage": 15,
        "expiresAt": (datetime.now(UTC) + timedelta(hours=1)).isoformat()})
    assert code == 201, created
    campaign = eventually(lambda: platform.get("group-commerce", f"/campaigns/{created['id']}"),
                          lambda c: c["status"] == "active")
    assert campaign["groupPrice"] == 17
    assert eventually(lambda: stock(platform, product["sku"]), lambda r: r["reserved"] == 5)["available"] == 5
    for user in ("ann", "ben"):
        code, joined = platform.post("group-commerce", f"/campaigns/{campaign['id']}/join", {"userId": user})
        assert code == 200 and joined["seat"]["status"] == "held", joined
    eventually(lambda: platform.get("group-commerce", f"/campaigns/{campaign['id']}"),
               lambda c: c["actualParticipants"] == 2)
    assert {seat["status"] for seat in seat_payments(platform, campaign["id"])} == {"authorized"}

    code, joined = platform.post("group-commerce", f"/campaigns/{campaign['id']}/join", {"userId": "cat"})
    assert code == 200, joined

    def group_orders() -> list[dict[str, Any]]:
        orders = [platform.get("orders", f"/orders?customerId={user}") for user in ("ann", "ben", "cat")]
        return [o for found in orders for o in found if o.get("campaignId") == campaign["id"]]

    orders = eventually(group_orders, lambda found: len(found) == 3 and all(
        o["status"] in ("shipped", "delivered") for o in found), timeout=40)
    assert all(o["total"] == 17 for o in orders)
    assert all("paid" in [step["status"] for step in o["history"]] for o in orders)
    assert {seat["status"] for seat in seat_payments(platform, campaign["id"])} == {"captured"}
    assert eventually(lambda: platform.get("group-commerce", f"/campaigns/{campaign['id']}"),
                      lambda c: c["status"] == "successful")["leader"] == "a***"


def seat_payments(platform: RunningPlatform, campaign_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = platform.get("payments", f"/seat-payments?campaignId={campaign_id}")
    return found
