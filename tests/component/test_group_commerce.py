"""Group buying through the group-commerce functions, on the real database: campaigns, joins, the
deadline sweep, and the group orders the orders service creates from the campaign events."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from support import Tokens

from fusion import db
from fusion.binding import Event, new_event, to_http
from fusion.contracts import ProductCreated
from fusion.topics import PING_TYPE

MakeClient = Callable[[str], FlaskClient]


# helpers


@pytest.fixture
def gc(client: MakeClient) -> FlaskClient:
    return client("group-commerce")


def deliver(service_client: FlaskClient, function: str, event: Event) -> int:
    headers, body = to_http(event)
    response = service_client.post(f"/_functions/{function}", headers=headers, data=body)
    return response.status_code


def product_created(price: str = "20.00", currency: str = "USD") -> Event:
    """A product.created event as the catalog publishes it."""
    product_id = str(uuid.uuid4())
    payload = ProductCreated(
        id=product_id, sku=f"SKU-{product_id[:8]}", name="Kettle", price=Decimal(price), currency=currency,
        inventory=100, created_at=datetime.now(UTC),
    )
    return new_event("product.created", "catalog", product_id, payload)


def add_product(gc: FlaskClient, price: str = "20.00", currency: str = "USD") -> str:
    """A new product, delivered to the group-commerce projection; its id."""
    event = product_created(price, currency)
    assert deliver(gc, "campaign-product-projection", event) == 204
    return event.subject or ""


def in_one_day() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).isoformat().replace("+00:00", "Z")


def campaign_body(product_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "productId": product_id, "minParticipants": 3, "maxParticipants": 10,
        "discountPercentage": 15, "expiresAt": in_one_day(),
    }
    body.update(overrides)
    return body


def new_campaign(gc: FlaskClient, **overrides: Any) -> dict[str, Any]:
    product_id = overrides.pop("productId", None) or add_product(gc)
    response = gc.post("/campaigns", json=campaign_body(product_id, **overrides))
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def join(gc: FlaskClient, campaign_id: str, user_id: str) -> Any:
    return gc.post(f"/campaigns/{campaign_id}/join", json={"userId": user_id})


def outbox(topic: str, schema: str = "group_commerce") -> list[dict[str, Any]]:
    """Payloads of the events published on `topic`, oldest first."""
    with db.pool().connect() as conn:
        rows = conn.execute(
            f"SELECT payload FROM {schema}.outbox WHERE topic = :topic ORDER BY id", {"topic": topic}
        ).all()
    return [json.loads(bytes(row.payload)) for row in rows]


def outbox_events(topic: str, schema: str = "group_commerce") -> list[Event]:
    """The events published on `topic` as a consumer would receive them, oldest first."""
    with db.pool().connect() as conn:
        rows = conn.execute(
            f"SELECT attributes, payload FROM {schema}.outbox WHERE topic = :topic ORDER BY id",
            {"topic": topic},
        ).all()
    return [Event(dict(row.attributes), bytes(row.payload)) for row in rows]


def sql(statement: str, **params: Any) -> Any:
    with db.pool().begin() as conn:
        return conn.execute(statement, params)


def move_deadline_to_the_past(campaign_id: str) -> None:
    sql("UPDATE group_commerce.campaigns SET expires_at = now() - interval '1 minute' WHERE id = :id",
        id=campaign_id)


def ping() -> Event:
    attributes = {
        "specversion": "1.0", "id": str(uuid.uuid4()), "type": PING_TYPE,
        "source": "/apis/v1/namespaces/fusioncommerce/pingsources/close-expired-campaigns",
        "datacontenttype": "application/json",
    }
    return Event(attributes, b"{}")


def run_deadline_sweep(gc: FlaskClient) -> None:
    assert deliver(gc, "close-expired-campaigns", ping()) == 204


# creating and reading campaigns


def test_create_returns_the_campaign_with_no_participants_and_publishes_created(gc: FlaskClient) -> None:
    product_id = add_product(gc, price="10.01")
    response = gc.post("/campaigns", json=campaign_body(product_id, discountPercentage=50))

    assert response.status_code == 201
    campaign = response.get_json()
    assert response.headers["Location"] == f"/campaigns/{campaign['id']}"
    assert campaign["productId"] == product_id
    assert campaign["sku"] == f"SKU-{product_id[:8]}"
    assert campaign["status"] == "active"
    assert campaign["actualParticipants"] == 0
    assert (campaign["minParticipants"], campaign["maxParticipants"]) == (3, 10)
    assert campaign["discountPercentage"] == 50
    assert campaign["originalPrice"] == 10.01
    assert campaign["groupPrice"] == 5.01  # 500.5 cents, rounded half up
    assert campaign["currency"] == "USD"
    assert campaign["expiresAt"].endswith("Z") and campaign["createdAt"]
    [created] = outbox("group-commerce.campaign.created")
    assert created["campaign"]["id"] == campaign["id"]
    assert created["campaign"]["groupPrice"] == 5.01
    assert created["campaign"]["actualParticipants"] == 0


def test_group_price_is_exact_in_a_zero_decimal_currency(gc: FlaskClient) -> None:
    product_id = add_product(gc, price="999", currency="JPY")
    campaign = new_campaign(gc, productId=product_id, discountPercentage="12.5")
    assert campaign["originalPrice"] == 999
    assert campaign["groupPrice"] == 874  # 874.125 yen
    assert campaign["currency"] == "JPY"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"minParticipants": 0}, "minParticipants"),
        ({"minParticipants": 5, "maxParticipants": 4}, "maxParticipants"),
        ({"discountPercentage": 0}, "discountPercentage"),
        ({"discountPercentage": 100}, "discountPercentage"),
        ({"discountPercentage": -5}, "discountPercentage"),
        ({"discountPercentage": "12.345"}, "discountPercentage"),
        ({"expiresAt": "2020-01-01T00:00:00Z"}, "expiresAt"),
        ({"expiresAt": "next tuesday"}, "expiresAt"),
        ({"expiresAt": 1893456000}, "expiresAt"),
        ({"productId": str(uuid.uuid4())}, "productId"),
        ({"productId": "not-a-uuid"}, "productId"),
        ({"minParticipants": "3"}, "minParticipants"),
    ],
)
def test_create_refuses_invalid_input_naming_the_field(gc: FlaskClient, overrides: dict[str, Any],
                                                      field: str) -> None:
    product_id = add_product(gc)
    response = gc.post("/campaigns", json=campaign_body(product_id, **overrides))
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "validation_error"
    assert body["field"] == field
    assert body["message"].startswith(f"{field}:")
    assert outbox("group-commerce.campaign.created") == []


def test_a_missing_field_is_named(gc: FlaskClient) -> None:
    body = campaign_body(add_product(gc))
    del body["expiresAt"]
    response = gc.post("/campaigns", json=body)
    assert response.status_code == 400
    assert response.get_json()["field"] == "expiresAt"


def test_list_filters_by_status_and_product(gc: FlaskClient) -> None:
    product_a, product_b = add_product(gc), add_product(gc)
    first = new_campaign(gc, productId=product_a, minParticipants=1)
    second = new_campaign(gc, productId=product_a)
    third = new_campaign(gc, productId=product_b)
    assert join(gc, first["id"], "u1").get_json()["status"] == "successful"

    def ids(query: str) -> list[str]:
        response = gc.get(f"/campaigns{query}")
        assert response.status_code == 200
        return [c["id"] for c in response.get_json()]

    assert ids("") == [first["id"], second["id"], third["id"]]
    assert ids(f"?productId={product_a}") == [first["id"], second["id"]]
    assert ids("?status=active") == [second["id"], third["id"]]
    assert ids(f"?status=successful&productId={product_a}") == [first["id"]]
    assert ids("?limit=1&offset=1") == [second["id"]]
    assert gc.get("/campaigns?status=bogus").get_json()["field"] == "status"
    assert gc.get("/campaigns?productId=nope").get_json()["field"] == "productId"


def test_get_returns_the_campaign_with_its_participants_or_404(gc: FlaskClient) -> None:
    campaign = new_campaign(gc)
    join(gc, campaign["id"], "alice")
    join(gc, campaign["id"], "bob")

    response = gc.get(f"/campaigns/{campaign['id']}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["actualParticipants"] == 2
    assert [p["userId"] for p in body["participants"]] == ["alice", "bob"]
    assert all(p["joinedAt"] for p in body["participants"])
    assert gc.get(f"/campaigns/{uuid.uuid4()}").status_code == 404
    assert gc.get("/campaigns/not-a-uuid").status_code == 404


def test_create_honours_an_idempotency_key(gc: FlaskClient) -> None:
    body = campaign_body(add_product(gc))
    headers = {"Idempotency-Key": "create-once"}
    first = gc.post("/campaigns", json=body, headers=headers)
    again = gc.post("/campaigns", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json()["id"] == first.get_json()["id"]
    assert len(outbox("group-commerce.campaign.created")) == 1


# the product projection


def test_the_product_projection_ignores_a_redelivered_event_and_dead_letters_a_bad_one(gc: FlaskClient) -> None:
    product_id = str(uuid.uuid4())
    payload = ProductCreated(id=product_id, sku="K-1", name="Kettle", price=Decimal("20"), currency="EUR",
                             inventory=1, created_at=datetime.now(UTC))
    event = new_event("product.created", "catalog", product_id, payload)
    assert deliver(gc, "campaign-product-projection", event) == 204
    assert deliver(gc, "campaign-product-projection", event) == 204
    rows = sql("SELECT price_minor, currency FROM group_commerce.products WHERE id = :id", id=product_id).all()
    assert [(r.price_minor, r.currency) for r in rows] == [(2000, "EUR")]

    bad = new_event("product.created", "catalog", "x",
                    payload.model_copy(update={"price": Decimal("1.234")}))
    assert deliver(gc, "campaign-product-projection", bad) == 400


# joining


def test_joining_a_half_full_campaign_adds_one_seat_and_publishes_joined(gc: FlaskClient) -> None:
    campaign = new_campaign(gc, minParticipants=8, maxParticipants=10)
    for n in range(5):
        assert join(gc, campaign["id"], f"user-{n}").status_code == 200

    response = join(gc, campaign["id"], "user-5")

    assert response.status_code == 200
    body = response.get_json()
    assert body["actualParticipants"] == 6
    assert body["status"] == "active"
    joined = outbox("group-commerce.campaign.joined")
    assert len(joined) == 6
    assert joined[-1]["userId"] == "user-5"
    assert joined[-1]["campaign"]["actualParticipants"] == 6
    assert outbox("group-commerce.campaign.successful") == []


def test_reaching_the_minimum_tips_the_campaign_once_and_joins_stay_open(gc: FlaskClient) -> None:
    campaign = new_campaign(gc, minParticipants=3, maxParticipants=5)
    assert join(gc, campaign["id"], "a").get_json()["status"] == "active"
    assert join(gc, campaign["id"], "b").get_json()["status"] == "active"

    tipping = join(gc, campaign["id"], "c").get_json()
    late = join(gc, campaign["id"], "d")

    assert tipping["status"] == "successful"
    assert tipping["actualParticipants"] == 3
    assert late.status_code == 200
    assert late.get_json()["status"] == "successful"
    assert late.get_json()["actualParticipants"] == 4
    [successful] = outbox("group-commerce.campaign.successful")
    assert successful["participants"] == ["a", "b", "c"]
    assert successful["campaign"]["status"] == "successful"
    assert successful["campaign"]["actualParticipants"] == 3


def test_a_full_campaign_refuses_another_participant(gc: FlaskClient) -> None:
    campaign = new_campaign(gc, minParticipants=1, maxParticipants=2)
    join(gc, campaign["id"], "a")
    join(gc, campaign["id"], "b")

    response = join(gc, campaign["id"], "c")

    assert response.status_code == 409
    assert response.get_json()["error"] == "campaign_full"
    assert "full" in response.get_json()["message"]
    assert gc.get(f"/campaigns/{campaign['id']}").get_json()["actualParticipants"] == 2
    assert len(outbox("group-commerce.campaign.joined")) == 2


def test_a_campaign_past_its_deadline_refuses_participants(gc: FlaskClient) -> None:
    campaign = new_campaign(gc)
    join(gc, campaign["id"], "early")
    move_deadline_to_the_past(campaign["id"])

    before_sweep = join(gc, campaign["id"], "late")
    run_deadline_sweep(gc)
    after_sweep = join(gc, campaign["id"], "later")

    for response in (before_sweep, after_sweep):
        assert response.status_code == 409
        assert response.get_json()["error"] == "campaign_closed"
    body = gc.get(f"/campaigns/{campaign['id']}").get_json()
    assert body["status"] == "expired"
    assert [p["userId"] for p in body["participants"]] == ["early"]


def test_the_same_user_joining_twice_keeps_one_seat(gc: FlaskClient) -> None:
    campaign = new_campaign(gc, minParticipants=2)
    first = join(gc, campaign["id"], "alice")
    second = join(gc, campaign["id"], "alice")

    assert first.status_code == second.status_code == 200
    assert second.get_json()["actualParticipants"] == 1
    assert len(outbox("group-commerce.campaign.joined")) == 1
    assert outbox("group-commerce.campaign.successful") == []


def test_a_seated_user_joining_again_a_full_campaign_gets_the_campaign(gc: FlaskClient) -> None:
    campaign = new_campaign(gc, minParticipants=1, maxParticipants=1)
    join(gc, campaign["id"], "alice")
    again = join(gc, campaign["id"], "alice")
    assert again.status_code == 200
    assert again.get_json()["actualParticipants"] == 1


def test_join_refuses_unknown_campaigns_and_bad_users(gc: FlaskClient, tokens: Tokens) -> None:
    campaign = new_campaign(gc)
    assert join(gc, str(uuid.uuid4()), "alice").status_code == 404
    assert gc.post("/campaigns/nope/join", json={"userId": "alice"}).status_code == 404
    as_carol = {"Authorization": f"Bearer {tokens.customer('carol')}"}
    for body in ({"userId": ""}, {"userId": 42}):
        response = gc.post(f"/campaigns/{campaign['id']}/join", json=body, headers=as_carol)
        assert response.status_code == 400
        assert response.get_json()["field"] == "userId"


def test_a_customer_joins_as_itself_only(gc: FlaskClient, tokens: Tokens) -> None:
    campaign = new_campaign(gc)
    as_carol = {"Authorization": f"Bearer {tokens.customer('carol')}"}
    someone_else = gc.post(f"/campaigns/{campaign['id']}/join", json={"userId": "dave"}, headers=as_carol)
    assert someone_else.status_code == 403 and someone_else.get_json()["field"] == "userId"
    assert gc.post(f"/campaigns/{campaign['id']}/join", json={}, headers=as_carol).status_code == 200
    seen_by_carol = gc.get(f"/campaigns/{campaign['id']}", headers=as_carol).get_json()
    assert seen_by_carol["joined"] is True and "participants" not in seen_by_carol
    assert "participants" not in gc.get(f"/campaigns/{campaign['id']}", headers={"Authorization": ""}).get_json()
    staff_view = gc.get(f"/campaigns/{campaign['id']}").get_json()
    assert [p["userId"] for p in staff_view["participants"]] == ["carol"]
    assert gc.post(f"/campaigns/{campaign['id']}/join", json={"userId": "dave"}).status_code == 200


def test_staff_may_not_take_a_seat(gc: FlaskClient, tokens: Tokens) -> None:
    campaign = new_campaign(gc)
    as_staff = {"Authorization": f"Bearer {tokens.all_staff()}"}
    assert gc.post(f"/campaigns/{campaign['id']}/join", json={"userId": "erin"}, headers=as_staff).status_code == 403


@pytest.mark.parametrize(("discount", "status"), [("90", 201), ("90.01", 400), ("99.99", 400)])
def test_discounts_are_capped_at_ninety_percent(gc: FlaskClient, discount: str, status: int) -> None:
    product_id = add_product(gc, price="19.99")
    response = gc.post("/campaigns", json=campaign_body(product_id, discountPercentage=discount))
    assert response.status_code == status, response.get_json()
    if status == 400:
        assert response.get_json()["field"] == "discountPercentage"


def test_a_group_price_that_rounds_to_nothing_is_refused(gc: FlaskClient) -> None:
    product_id = add_product(gc, price="0.01")
    response = gc.post("/campaigns", json=campaign_body(product_id, discountPercentage="60"))
    assert response.status_code == 422 and response.get_json()["error"] == "zero_price"


def test_only_staff_with_the_campaign_scope_create_campaigns(gc: FlaskClient, tokens: Tokens) -> None:
    product_id = add_product(gc, price="19.99")
    for token in (tokens.customer("alice"), tokens.staff("catalog:write")):
        response = gc.post("/campaigns", json=campaign_body(product_id), headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 403


def test_concurrent_joins_never_oversell_and_tip_once(client: MakeClient) -> None:
    setup = client("group-commerce")
    campaign = new_campaign(setup, minParticipants=10, maxParticipants=50)
    local = threading.local()

    def join_as(user: str) -> tuple[str, int, str | None]:
        if not hasattr(local, "client"):
            local.client = client("group-commerce")
        response = join(local.client, campaign["id"], user)
        return user, response.status_code, (response.get_json() or {}).get("error")

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(join_as, [f"user-{n:03d}" for n in range(200)]))

    seated = [user for user, status, _ in results if status == 200]
    refused = [(status, error) for _, status, error in results if status != 200]
    assert len(seated) == 50
    assert set(refused) == {(409, "campaign_full")}
    rows = sql("SELECT user_id FROM group_commerce.participants WHERE campaign_id = :id", id=campaign["id"]).all()
    assert sorted(row.user_id for row in rows) == sorted(seated)
    body = setup.get(f"/campaigns/{campaign['id']}").get_json()
    assert body["actualParticipants"] == 50
    assert body["status"] == "successful"
    assert len(outbox("group-commerce.campaign.joined")) == 50
    [successful] = outbox("group-commerce.campaign.successful")
    assert len(successful["participants"]) == 10
    assert set(successful["participants"]) <= set(seated)


# the deadline sweep


def test_the_sweep_expires_a_campaign_below_its_minimum_with_its_participants(gc: FlaskClient) -> None:
    campaign = new_campaign(gc, minParticipants=3)
    join(gc, campaign["id"], "alice")
    join(gc, campaign["id"], "bob")
    open_one = new_campaign(gc)
    move_deadline_to_the_past(campaign["id"])

    run_deadline_sweep(gc)
    run_deadline_sweep(gc)

    [expired] = outbox("group-commerce.campaign.expired")
    assert expired["campaign"]["id"] == campaign["id"]
    assert expired["campaign"]["status"] == "expired"
    assert expired["participants"] == ["alice", "bob"]
    assert outbox("group-commerce.campaign.closed") == []
    assert gc.get(f"/campaigns/{open_one['id']}").get_json()["status"] == "active"


def test_the_sweep_closes_a_campaign_that_reached_its_minimum(gc: FlaskClient) -> None:
    campaign = new_campaign(gc, minParticipants=1)
    join(gc, campaign["id"], "alice")
    move_deadline_to_the_past(campaign["id"])

    run_deadline_sweep(gc)
    run_deadline_sweep(gc)

    [closed] = outbox("group-commerce.campaign.closed")
    assert closed["campaign"]["status"] == "closed"
    assert closed["participants"] == ["alice"]
    assert outbox("group-commerce.campaign.expired") == []
    assert join(gc, campaign["id"], "bob").get_json()["error"] == "campaign_closed"


def test_the_sweep_ignores_other_cloudevents(gc: FlaskClient) -> None:
    campaign = new_campaign(gc)
    move_deadline_to_the_past(campaign["id"])
    not_a_ping = Event({**ping().attributes, "type": "com.example.other"}, b"{}")
    assert deliver(gc, "close-expired-campaigns", not_a_ping) == 204
    assert gc.get(f"/campaigns/{campaign['id']}").get_json()["status"] == "active"


def test_the_service_answers_health(gc: FlaskClient) -> None:
    response = gc.get("/health")
    assert response.status_code == 200
    assert response.get_json()["service"] == "group-commerce"


# group orders (orders service)


def orders_of_campaign(campaign_id: str) -> list[Any]:
    return list(sql(
        "SELECT id, customer_id, status, total_minor, currency, campaign_id FROM orders.orders "
        "WHERE campaign_id = :id ORDER BY customer_id", id=campaign_id,
    ).all())


def test_a_tipped_campaign_gives_every_participant_one_order_at_the_group_price(client: MakeClient) -> None:
    gc, orders = client("group-commerce"), client("orders")
    product_id = add_product(gc, price="20.00")
    campaign = new_campaign(gc, productId=product_id, minParticipants=3, maxParticipants=5, discountPercentage=15)
    for user in ("ann", "ben", "cat"):
        join(gc, campaign["id"], user)
    [successful] = outbox_events("group-commerce.campaign.successful")

    assert deliver(orders, "create-group-orders", successful) == 204

    placed = orders_of_campaign(campaign["id"])
    assert [(o.customer_id, o.status, o.total_minor, o.currency) for o in placed] == [
        ("ann", "created", 1700, "USD"), ("ben", "created", 1700, "USD"), ("cat", "created", 1700, "USD"),
    ]
    [ann] = orders.get("/orders?customerId=ann").get_json()
    assert ann["campaignId"] == campaign["id"]
    assert ann["items"] == [{"sku": campaign["sku"], "quantity": 1, "price": 17}]
    created = outbox("order.created", schema="orders")
    assert sorted(e["customerId"] for e in created) == ["ann", "ben", "cat"]
    assert {(e["campaignId"], e["total"]) for e in created} == {(campaign["id"], 17)}


def test_group_orders_run_the_saga_to_confirmed(client: MakeClient) -> None:
    gc, orders, inventory = client("group-commerce"), client("orders"), client("inventory")
    product = product_created(price="20.00")
    assert deliver(gc, "campaign-product-projection", product) == 204
    assert deliver(inventory, "add-stock-for-product", product) == 204
    campaign = new_campaign(gc, productId=product.subject, minParticipants=3, discountPercentage=15)
    for user in ("ann", "ben", "cat"):
        join(gc, campaign["id"], user)

    [successful] = outbox_events("group-commerce.campaign.successful")
    assert deliver(orders, "create-group-orders", successful) == 204
    for created in outbox_events("order.created", schema="orders"):
        assert deliver(inventory, "reserve-stock", created) == 204
    for reserved in outbox_events("inventory.reserved", schema="inventory"):
        assert deliver(orders, "confirm-order", reserved) == 204

    assert [(o.customer_id, o.status) for o in orders_of_campaign(campaign["id"])] == [
        ("ann", "confirmed"), ("ben", "confirmed"), ("cat", "confirmed"),
    ]
    confirmed = outbox("order.confirmed", schema="orders")
    assert sorted((e["customerId"], e["total"]) for e in confirmed) == [("ann", 17), ("ben", 17), ("cat", 17)]


def test_group_orders_are_created_once_whatever_is_redelivered(client: MakeClient) -> None:
    gc, orders = client("group-commerce"), client("orders")
    campaign = new_campaign(gc, minParticipants=3, maxParticipants=5)
    for user in ("ann", "ben", "cat"):
        join(gc, campaign["id"], user)
    [successful] = outbox_events("group-commerce.campaign.successful")
    assert deliver(orders, "create-group-orders", successful) == 204
    first_ids = [o.id for o in orders_of_campaign(campaign["id"])]

    # the same delivery again, the same event replayed under a new id, and the joined events
    # (the third one announces the tipping join too)
    assert deliver(orders, "create-group-orders", successful) == 204
    replayed = Event({**successful.attributes, "id": str(uuid.uuid4())}, successful.data)
    assert deliver(orders, "create-group-orders", replayed) == 204
    for joined in outbox_events("group-commerce.campaign.joined"):
        assert deliver(orders, "create-late-joiner-order", joined) == 204

    assert [o.id for o in orders_of_campaign(campaign["id"])] == first_ids
    assert len(outbox("order.created", schema="orders")) == 3


def test_a_late_joiner_of_a_successful_campaign_gets_an_order_at_once(client: MakeClient) -> None:
    gc, orders = client("group-commerce"), client("orders")
    campaign = new_campaign(gc, minParticipants=1, maxParticipants=3, discountPercentage=10)
    join(gc, campaign["id"], "first")
    join(gc, campaign["id"], "late")
    late_joined = outbox_events("group-commerce.campaign.joined")[-1]

    assert deliver(orders, "create-late-joiner-order", late_joined) == 204
    assert deliver(orders, "create-late-joiner-order", late_joined) == 204

    [order] = orders_of_campaign(campaign["id"])
    assert (order.customer_id, order.total_minor) == ("late", 1800)


def test_an_expired_campaign_creates_no_orders(client: MakeClient) -> None:
    gc, orders = client("group-commerce"), client("orders")
    campaign = new_campaign(gc, minParticipants=3)
    join(gc, campaign["id"], "ann")
    join(gc, campaign["id"], "ben")
    move_deadline_to_the_past(campaign["id"])
    run_deadline_sweep(gc)

    [expired] = outbox_events("group-commerce.campaign.expired")
    for joined in outbox_events("group-commerce.campaign.joined"):
        assert deliver(orders, "create-late-joiner-order", joined) == 204
    assert deliver(orders, "create-group-orders", expired) == 204  # not its event type: ignored

    assert json.loads(expired.data or b"{}")["participants"] == ["ann", "ben"]
    assert orders_of_campaign(campaign["id"]) == []
    assert outbox("order.created", schema="orders") == []
