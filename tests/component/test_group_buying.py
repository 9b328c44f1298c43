"""Pay-to-join group buying across every service, on the real database and a real localstripe: a seat's
card is authorized at join (manual capture), charged only when the group forms, released when it does
not; the campaign's stock is held up front; each charged seat becomes a paid group order that ships.

Events travel through `SagaPump` (the registry's routing, without a broker), webhooks through the
payments webhook as localstripe sent them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from saga_pump import SagaPump
from stripe_fixtures import WebhookReceiver, localstripe, localstripe_server, stripe_webhooks  # noqa: F401
from support import sql

from functions.payments.gateway import stripe_client
from fusion.binding import Event, to_http
from fusion.topics import PING_TYPE

MakeClient = Callable[..., FlaskClient]
pytestmark = pytest.mark.usefixtures("localstripe")


# helpers



def new_product(pump: SagaPump, stock: int, price: str = "20.00") -> dict[str, Any]:
    sku = f"GB-{datetime.now(UTC).strftime('%H%M%S%f')}"
    response = pump.client("catalog").post("/products", json={
        "sku": sku, "name": "Kettle", "price": price, "currency": "USD", "inventory": stock})
    assert response.status_code == 201, response.get_json()
    pump.run()
    product: dict[str, Any] = response.get_json()
    return product


def new_campaign(pump: SagaPump, product: dict[str, Any], minimum: int, maximum: int) -> dict[str, Any]:
    expires = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    response = pump.client("group-commerce").post("/campaigns", json={
        "productId": product["id"], "minParticipants": minimum, "maxParticipants": maximum,
        "discountPercentage": 15, "expiresAt": expires})
    assert response.status_code == 201, response.get_json()
    pump.run()
    return campaign(pump, response.get_json()["id"])


def campaign(pump: SagaPump, campaign_id: str) -> dict[str, Any]:
    body: dict[str, Any] = pump.client("group-commerce").get(f"/campaigns/{campaign_id}").get_json()
    return body


def join(pump: SagaPump, campaign_id: str, user: str) -> Any:
    return pump.client("group-commerce").post(f"/campaigns/{campaign_id}/join", json={"userId": user})


def join_all(pump: SagaPump, campaign_id: str, users: list[str]) -> None:
    for user in users:
        assert join(pump, campaign_id, user).status_code == 200
    pump.run()


def intents_of(campaign_id: str) -> dict[str, dict[str, Any]]:
    """The campaign's PaymentIntents at localstripe, by customer."""
    listing = stripe_client().v1.payment_intents.list(params={"limit": 100})
    found = {}
    for intent in listing.auto_paging_iter():
        data = intent.to_dict()
        if (data.get("metadata") or {}).get("campaignId") == campaign_id:
            found[data["metadata"]["customerId"]] = data
    return found


def group_orders(campaign_id: str) -> dict[str, Any]:
    rows = sql("SELECT id, customer_id, status, total_minor FROM orders.orders WHERE campaign_id = :id",
               id=campaign_id).all()
    return {row.customer_id: row for row in rows}


def history(pump: SagaPump, order_id: Any) -> list[str]:
    order = pump.client("orders").get(f"/orders/{order_id}").get_json()
    return [step["status"] for step in order["history"]]


def stock(sku: str) -> tuple[int, int]:
    row = sql("SELECT on_hand, reserved FROM inventory.stock WHERE sku = :sku", sku=sku).one()
    return row.on_hand, row.reserved


def seat_statuses(campaign_id: str) -> dict[str, str]:
    rows = sql("SELECT customer_id, status FROM payments.seat_payments WHERE campaign_id = :id", id=campaign_id)
    return {row.customer_id: row.status for row in rows.all()}


def outbox_count(schema: str, topic: str) -> int:
    return int(sql(f"SELECT count(*) FROM {schema}.outbox WHERE topic = :topic", topic=topic).scalar_one())


def sweep(pump: SagaPump, campaign_id: str) -> None:
    sql("UPDATE group_commerce.campaigns SET expires_at = now() - interval '1 second' WHERE id = :id",
        id=campaign_id)
    ping = Event({"specversion": "1.0", "id": f"ping-{campaign_id}", "type": PING_TYPE,
                  "source": "/apis/v1/namespaces/fusioncommerce/pingsources/close-expired-campaigns",
                  "datacontenttype": "application/json"}, b"{}")
    headers, body = to_http(ping)
    assert pump.client("group-commerce").post("/_functions/close-expired-campaigns", headers=headers,
                                               data=body).status_code == 204
    pump.run()


@pytest.fixture
def pump(client: MakeClient) -> SagaPump:
    return SagaPump(client)


# the group forms: nobody is charged before it, everybody when it does


def test_nobody_is_charged_before_the_group_forms_then_every_seat_is_charged_once_and_ships(
        pump: SagaPump) -> None:
    product = new_product(pump, stock=10)
    group = new_campaign(pump, product, minimum=3, maximum=5)
    assert group["status"] == "active"
    assert stock(product["sku"]) == (10, 5)  # every seat's unit held up front

    join_all(pump, group["id"], ["ann", "ben"])

    intents = intents_of(group["id"])
    assert sorted(intents) == ["ann", "ben"]
    for intent in intents.values():
        assert intent["capture_method"] == "manual"
        assert intent["status"] == "requires_capture"
        assert (intent["amount_capturable"], intent["amount_received"]) == (1700, 0)
    assert campaign(pump, group["id"])["actualParticipants"] == 2
    assert group_orders(group["id"]) == {}

    join_all(pump, group["id"], ["cat"])

    intents = intents_of(group["id"])
    assert {user: (i["status"], i["amount_received"]) for user, i in intents.items()} == {
        "ann": ("succeeded", 1700), "ben": ("succeeded", 1700), "cat": ("succeeded", 1700)}
    orders = group_orders(group["id"])
    assert {user: (o.status, o.total_minor) for user, o in orders.items()} == {
        "ann": ("shipped", 1700), "ben": ("shipped", 1700), "cat": ("shipped", 1700)}
    for order in orders.values():
        assert history(pump, order.id)[:4] == ["created", "confirmed", "paid", "shipped"]
    paid = sql("SELECT order_id, status, provider_payment_id FROM payments.payments").all()
    assert sorted(p.provider_payment_id for p in paid) == sorted(i["id"] for i in intents.values())
    assert {p.status for p in paid} == {"succeeded"}
    assert stock(product["sku"]) == (7, 2)  # three sold from the hold; two seats still to take
    assert campaign(pump, group["id"])["status"] == "successful"


def test_a_campaign_that_misses_its_minimum_charges_nobody_and_gives_the_stock_back(pump: SagaPump) -> None:
    product = new_product(pump, stock=10)
    group = new_campaign(pump, product, minimum=3, maximum=5)
    join_all(pump, group["id"], ["ann", "ben"])

    sweep(pump, group["id"])

    assert campaign(pump, group["id"])["status"] == "expired"
    intents = intents_of(group["id"])
    assert {user: (i["status"], i["amount_received"]) for user, i in intents.items()} == {
        "ann": ("canceled", 0), "ben": ("canceled", 0)}
    assert seat_statuses(group["id"]) == {"ann": "released", "ben": "released"}
    assert stock(product["sku"]) == (10, 0)
    expired = sql("SELECT payload FROM group_commerce.outbox WHERE topic = 'group-commerce.campaign.expired'").all()
    assert len(expired) == 1 and b'"participants":["ann","ben"]' in bytes(expired[0].payload).replace(b" ", b"")
    assert group_orders(group["id"]) == {}
    assert outbox_count("payments", "payment.refunded") == 0


def test_closing_gives_back_the_stock_of_the_seats_nobody_took(pump: SagaPump) -> None:
    product = new_product(pump, stock=10)
    group = new_campaign(pump, product, minimum=1, maximum=5)
    join_all(pump, group["id"], ["ann", "ben"])

    sweep(pump, group["id"])

    assert campaign(pump, group["id"])["status"] == "closed"
    assert stock(product["sku"]) == (8, 0)


def test_a_campaign_the_stock_cannot_back_is_refused(pump: SagaPump) -> None:
    product = new_product(pump, stock=3)
    group = new_campaign(pump, product, minimum=2, maximum=5)
    assert group["status"] == "refused"
    assert "5 wanted, 3 available" in group["statusReason"]
    assert stock(product["sku"]) == (3, 0)
    assert join(pump, group["id"], "ann").status_code == 409


# seats whose money does not come


def test_a_declined_card_at_join_frees_the_seat_with_stripes_reason(pump: SagaPump) -> None:
    product = new_product(pump, stock=5)
    group = new_campaign(pump, product, minimum=2, maximum=2)
    join_all(pump, group["id"], ["decline-dora"])

    seat = pump.client("payments").get(f"/seat-payments?campaignId={group['id']}").get_json()
    assert [(s["customerId"], s["status"]) for s in seat] == [("decline-dora", "declined")]
    assert seat[0]["failureReason"]
    after = campaign(pump, group["id"])
    assert (after["actualParticipants"], after["heldSeats"]) == (0, 0)
    join_all(pump, group["id"], ["eve", "fay"])  # both seats free again
    assert campaign(pump, group["id"])["status"] == "successful"


def test_a_capture_that_fails_charges_nobody_else_and_leaves_the_group_consistent(pump: SagaPump) -> None:
    product = new_product(pump, stock=10)
    group = new_campaign(pump, product, minimum=3, maximum=5)
    join_all(pump, group["id"], ["ann", "ben"])
    # ben's authorization is voided at the bank before the group forms
    stripe_client().v1.payment_intents.cancel(intents_of(group["id"])["ben"]["id"])

    join_all(pump, group["id"], ["cat"])

    assert seat_statuses(group["id"]) == {"ann": "captured", "ben": "capture_failed", "cat": "captured"}
    intents = intents_of(group["id"])
    assert intents["ben"]["amount_received"] == 0
    assert sorted(group_orders(group["id"])) == ["ann", "cat"]
    after = campaign(pump, group["id"])
    assert (after["status"], after["actualParticipants"]) == ("successful", 2)
    assert outbox_count("payments", "payment.refunded") == 0


def test_a_group_order_that_fails_after_the_charge_is_refunded_and_counted(pump: SagaPump) -> None:
    product = new_product(pump, stock=2)
    group = new_campaign(pump, product, minimum=1, maximum=2)
    # the hold and the shelf are emptied behind the platform's back: the group order cannot get stock
    holder = f"campaign:{group['id']}"
    sql("UPDATE inventory.reservation_items SET quantity = 0 WHERE order_id = :holder", holder=holder)
    sql("UPDATE inventory.stock SET reserved = 0, on_hand = 0 WHERE sku = :sku", sku=product["sku"])

    join_all(pump, group["id"], ["ann"])

    [order] = group_orders(group["id"]).values()
    assert order.status == "failed"
    assert seat_statuses(group["id"]) == {"ann": "refunded"}
    intent = intents_of(group["id"])["ann"]
    charge = intent["latest_charge"]
    charge = charge if isinstance(charge, dict) else stripe_client().v1.charges.retrieve(charge).to_dict()
    assert (charge["captured"], charge["refunded"]) == (True, True)
    after = campaign(pump, group["id"])
    assert (after["refundedSeats"], after["participants"][0]["status"]) == (1, "refunded")


# paying for a seat from the storefront


@pytest.fixture
def card_in_the_browser(monkeypatch: pytest.MonkeyPatch) -> None:
    """The card is confirmed by the customer (Stripe.js), not server-side."""
    monkeypatch.setenv("STRIPE_AUTO_CONFIRM", "false")


@pytest.mark.usefixtures("card_in_the_browser")
def test_a_seat_is_paid_from_the_storefront_and_counts_when_stripe_reports_the_authorization(
        pump: SagaPump, tokens: Any, stripe_webhooks: WebhookReceiver) -> None:  # noqa: F811
    product = new_product(pump, stock=5)
    group = new_campaign(pump, product, minimum=2, maximum=3)
    payments = pump.client("payments")
    early = payments.post("/seat-payments", json={"campaignId": group["id"], "customerId": "gus"})
    assert early.status_code == 409 and early.get_json()["error"] == "seat_not_held"

    join_all(pump, group["id"], ["gus"])
    started = payments.post("/seat-payments", json={"campaignId": group["id"], "customerId": "gus"})
    assert started.status_code == 200
    seat = started.get_json()
    assert seat["status"] == "pending" and seat["clientSecret"].startswith(seat["providerPaymentId"])
    as_hal = {"Authorization": f"Bearer {tokens.customer('hal')}"}
    assert payments.get(f"/seat-payments?campaignId={group['id']}", headers=as_hal).get_json() == []

    # what Stripe.js does with the card the shopper typed; Stripe then reports the authorization by webhook
    _confirm_with_card(seat["providerPaymentId"])
    authorized = stripe_webhooks.wait_for("payment_intent.amount_capturable_updated", seat["providerPaymentId"])
    for _ in range(2):
        response = payments.post("/payments/webhook", data=authorized.body,
                                 headers={"Stripe-Signature": authorized.signature})
        assert response.status_code == 200
    pump.run()

    assert seat_statuses(group["id"]) == {"gus": "authorized"}
    assert campaign(pump, group["id"])["actualParticipants"] == 1
    assert intents_of(group["id"])["gus"]["amount_received"] == 0


def _confirm_with_card(intent_id: str) -> None:
    client = stripe_client()
    client.v1.payment_intents.update(intent_id, params={"payment_method": "pm_card_visa"})
    client.v1.payment_intents.confirm(intent_id)


# under load, with every event and every webhook delivered twice


def test_200_concurrent_joins_on_50_seats_authorize_50_tip_once_and_charge_each_once(
        client: MakeClient, stripe_webhooks: WebhookReceiver) -> None:  # noqa: F811
    pump = SagaPump(client, stripe_webhooks, times=2)
    product = new_product(pump, stock=60)
    group = new_campaign(pump, product, minimum=10, maximum=50)
    local = threading.local()

    def join_as(user: str) -> tuple[int, str | None]:
        if not hasattr(local, "client"):
            local.client = client("group-commerce")
        response = local.client.post(f"/campaigns/{group['id']}/join", json={"userId": user})
        return response.status_code, (response.get_json() or {}).get("error")

    with ThreadPoolExecutor(max_workers=16) as workers:
        results = list(workers.map(join_as, [f"user-{n:03d}" for n in range(200)]))

    assert results.count((200, None)) == 50
    assert set(results) - {(200, None)} == {(409, "campaign_full")}
    # localstripe reports each authorization and each capture about a second later: 100 webhooks
    pump.until(lambda: pump.webhooks_handed_on() >= 100, timeout=60, what="localstripe's webhooks")
    pump.run()

    after = campaign(pump, group["id"])
    assert (after["actualParticipants"], after["heldSeats"], after["status"]) == (50, 0, "successful")
    assert outbox_count("group_commerce", "group-commerce.campaign.successful") == 1
    assert outbox_count("payments", "payment.seat.captured") == 50
    intents = intents_of(group["id"])
    assert len(intents) == 50
    assert {(i["status"], i["amount_received"]) for i in intents.values()} == {("succeeded", 1700)}
    orders = group_orders(group["id"])
    assert len(orders) == 50 and {o.status for o in orders.values()} == {"shipped"}
    assert stock(product["sku"]) == (10, 0)  # exactly fifty units, all sold from the hold
