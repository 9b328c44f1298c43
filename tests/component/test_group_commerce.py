"""Group buying through the group-commerce functions, on the real database: campaigns, seats held and
counted as payments reports their authorization, the deadline sweep; and, across every service with a
real localstripe, pay-to-join: authorized at join, captured when the group forms, released otherwise."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from support import Tokens, deliver, sql

from fusion import config, db
from fusion.binding import Event, new_event
from fusion.contracts import CampaignStockHeld, CampaignStockRefused, ProductCreated, SeatPayment, SeatPaymentFailed
from fusion.topics import PING_TYPE

MakeClient = Callable[[str], FlaskClient]


# helpers


@pytest.fixture
def gc(client: MakeClient) -> FlaskClient:
    return client("group-commerce")



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


def new_campaign(gc: FlaskClient, *, opened: bool = True, **overrides: Any) -> dict[str, Any]:
    """A new campaign; `opened`: as inventory's report that its stock is held makes it (active)."""
    product_id = overrides.pop("productId", None) or add_product(gc)
    response = gc.post("/campaigns", json=campaign_body(product_id, **overrides))
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    if opened:
        held = CampaignStockHeld(campaign_id=body["id"], sku=body["sku"], quantity=body["maxParticipants"])
        assert deliver(gc, "open-campaign", new_event("inventory.campaign.held", "inventory", body["id"], held)) == 204
        body = gc.get(f"/campaigns/{body['id']}").get_json()
        assert body["status"] == "active"
    return body


def join(gc: FlaskClient, campaign_id: str, user_id: str) -> Any:
    return gc.post(f"/campaigns/{campaign_id}/join", json={"userId": user_id})


def seat_payment_event(kind: str, campaign_id: str, user_id: str) -> Event:
    """What payments publishes about a seat's money: authorized, captured, refunded, declined, capture-failed."""
    payload: SeatPayment | SeatPaymentFailed
    if kind in ("declined", "capture-failed"):
        payload = SeatPaymentFailed(payment_id=str(uuid.uuid4()), campaign_id=campaign_id, user_id=user_id,
                                    reason="Your card was declined.", failure_code="card_declined")
    else:
        payload = SeatPayment(payment_id=str(uuid.uuid4()), campaign_id=campaign_id, user_id=user_id,
                              amount=Decimal("17"), currency="USD")
    return new_event(f"payment.seat.{kind}", "payments", campaign_id, payload)


def report(gc: FlaskClient, kind: str, campaign_id: str, user_id: str) -> None:
    assert deliver(gc, "follow-seat-payment", seat_payment_event(kind, campaign_id, user_id)) == 204


def take_seat(gc: FlaskClient, campaign_id: str, user_id: str) -> dict[str, Any]:
    """Join, and have payments report the card authorized: the seat counts."""
    response = join(gc, campaign_id, user_id)
    assert response.status_code == 200, response.get_json()
    report(gc, "authorized", campaign_id, user_id)
    body: dict[str, Any] = gc.get(f"/campaigns/{campaign_id}").get_json()
    return body


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
    assert campaign["status"] == "pending"  # until inventory holds the stock of every seat
    assert campaign["actualParticipants"] == campaign["heldSeats"] == 0
    assert campaign["leader"] is None and 0 < campaign["secondsLeft"] <= 86400
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
    assert take_seat(gc, first["id"], "u1")["status"] == "successful"

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
    take_seat(gc, campaign["id"], "alice")
    join(gc, campaign["id"], "bob")

    response = gc.get(f"/campaigns/{campaign['id']}")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["actualParticipants"], body["heldSeats"]) == (1, 1)
    assert [(p["userId"], p["status"]) for p in body["participants"]] == [("alice", "authorized"), ("bob", "held")]
    assert all(p["joinedAt"] for p in body["participants"])
    assert body["leader"] == "a***"
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
    joined = gc.post(f"/campaigns/{campaign['id']}/join", json={}, headers=as_carol)
    assert joined.status_code == 200 and joined.get_json()["seat"]["status"] == "held"
    seen_by_carol = gc.get(f"/campaigns/{campaign['id']}", headers=as_carol).get_json()
    assert seen_by_carol["joined"] is True and "participants" not in seen_by_carol
    assert seen_by_carol["seat"]["status"] == "held" and seen_by_carol["seat"]["holdExpiresAt"]
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




def test_a_campaign_longer_than_card_authorizations_last_is_refused(gc: FlaskClient) -> None:
    product_id = add_product(gc)
    too_long = (datetime.now(UTC) + timedelta(days=6, hours=1)).isoformat()
    response = gc.post("/campaigns", json=campaign_body(product_id, expiresAt=too_long))
    assert response.status_code == 400
    assert response.get_json()["field"] == "expiresAt" and "6 days" in response.get_json()["message"]


def test_a_pending_campaign_takes_no_seat_and_a_refused_one_says_why(gc: FlaskClient) -> None:
    campaign = new_campaign(gc, opened=False)
    response = join(gc, campaign["id"], "alice")
    assert response.status_code == 409 and response.get_json()["error"] == "campaign_not_open"

    refused = new_event("inventory.campaign.refused", "inventory", campaign["id"], CampaignStockRefused(
        campaign_id=campaign["id"], sku=campaign["sku"], requested=10, available=4))
    assert deliver(gc, "open-campaign", refused) == 204
    assert deliver(gc, "open-campaign", refused) == 204
    body = gc.get(f"/campaigns/{campaign['id']}").get_json()
    assert body["status"] == "refused" and "10 wanted, 4 available" in body["statusReason"]
    assert join(gc, campaign["id"], "alice").get_json()["error"] == "campaign_closed"


# seats: held at join, counted once payments reports the card authorized


def test_joining_holds_a_seat_that_counts_only_once_its_card_is_authorized(gc: FlaskClient) -> None:
    campaign = new_campaign(gc, minParticipants=2, maxParticipants=3)
    held = join(gc, campaign["id"], "alice").get_json()
    assert (held["actualParticipants"], held["heldSeats"]) == (0, 1)
    assert held["seat"]["status"] == "held"
    [seat_held] = outbox("group-commerce.seat.held")
    assert seat_held["userId"] == "alice" and seat_held["campaign"]["groupPrice"] == 17
    assert outbox("group-commerce.campaign.joined") == []

    report(gc, "authorized", campaign["id"], "alice")
    report(gc, "authorized", campaign["id"], "alice")  # a repeated report counts nothing twice

    body = gc.get(f"/campaigns/{campaign['id']}").get_json()
    assert (body["actualParticipants"], body["heldSeats"], body["status"]) == (1, 0, "active")
    assert body["leader"] == "a***"
    [joined] = outbox("group-commerce.campaign.joined")
    assert joined["userId"] == "alice" and joined["campaign"]["leader"] == "alice"


def test_the_seat_reaching_the_minimum_tips_once_and_confirms_every_seat_for_capture(gc: FlaskClient) -> None:
    campaign = new_campaign(gc, minParticipants=3, maxParticipants=5)
    for user in ("a", "b"):
        assert take_seat(gc, campaign["id"], user)["status"] == "active"
    assert outbox("group-commerce.seat.confirmed") == []  # nobody is charged below the minimum

    tipped = take_seat(gc, campaign["id"], "c")
    late = take_seat(gc, campaign["id"], "d")

    assert tipped["status"] == "successful" and late["actualParticipants"] == 4
    [successful] = outbox("group-commerce.campaign.successful")
    assert successful["participants"] == ["a", "b", "c"]
    assert [e["userId"] for e in outbox("group-commerce.seat.confirmed")] == ["a", "b", "c", "d"]


def test_held_seats_count_against_the_maximum_and_a_declined_card_frees_one(gc: FlaskClient) -> None:
    campaign = new_campaign(gc, minParticipants=1, maxParticipants=2)
    join(gc, campaign["id"], "a")
    join(gc, campaign["id"], "b")

    full = join(gc, campaign["id"], "c")
    assert full.status_code == 409 and full.get_json()["error"] == "campaign_full"
    assert "2 waiting for payment" in full.get_json()["message"]

    report(gc, "declined", campaign["id"], "b")
    body = gc.get(f"/campaigns/{campaign['id']}").get_json()
    assert (body["actualParticipants"], body["heldSeats"]) == (0, 1)
    assert join(gc, campaign["id"], "c").status_code == 200
    again = join(gc, campaign["id"], "b")  # b may try again once a seat is free; none is
    assert again.status_code == 409 and again.get_json()["error"] == "campaign_full"


def test_a_seat_whose_card_is_not_authorized_in_time_is_freed_and_its_authorization_released(
        gc: FlaskClient) -> None:
    campaign = new_campaign(gc, minParticipants=2, maxParticipants=2)
    join(gc, campaign["id"], "slow")
    sql("UPDATE group_commerce.participants SET hold_expires_at = now() - interval '1 second' "
        "WHERE campaign_id = :id", id=campaign["id"])

    run_deadline_sweep(gc)
    run_deadline_sweep(gc)

    body = gc.get(f"/campaigns/{campaign['id']}").get_json()
    assert body["heldSeats"] == 0 and body["participants"][0]["status"] == "released"
    [released] = outbox("group-commerce.seat.released")
    assert (released["userId"], released["reason"]) == ("slow", "hold_expired")
    report(gc, "authorized", campaign["id"], "slow")  # authorized too late: released, not counted
    assert gc.get(f"/campaigns/{campaign['id']}").get_json()["actualParticipants"] == 0
    assert [e["reason"] for e in outbox("group-commerce.seat.released")] == ["hold_expired", "authorized_after_release"]


def test_the_same_user_joining_twice_keeps_one_seat(gc: FlaskClient) -> None:
    campaign = new_campaign(gc, minParticipants=2)
    first = join(gc, campaign["id"], "alice")
    second = join(gc, campaign["id"], "alice")
    assert first.status_code == second.status_code == 200
    assert second.get_json()["heldSeats"] == 1
    assert len(outbox("group-commerce.seat.held")) == 1


def test_a_customer_holds_seats_in_a_bounded_number_of_open_campaigns(gc: FlaskClient,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTOMER_OPEN_SEATS", "2")
    config.settings.cache_clear()
    try:
        campaigns = [new_campaign(gc) for _ in range(3)]
        assert join(gc, campaigns[0]["id"], "alice").status_code == 200
        assert join(gc, campaigns[1]["id"], "alice").status_code == 200
        third = join(gc, campaigns[2]["id"], "alice")
        assert third.status_code == 409 and third.get_json()["error"] == "open_seat_limit"
        assert join(gc, campaigns[0]["id"], "alice").status_code == 200  # a seat already held is no new one
    finally:
        monkeypatch.delenv("CUSTOMER_OPEN_SEATS")
        config.settings.cache_clear()


def test_a_failed_capture_frees_only_that_seat_and_a_refund_is_counted(gc: FlaskClient) -> None:
    campaign = new_campaign(gc, minParticipants=2, maxParticipants=3)
    for user in ("a", "b"):
        take_seat(gc, campaign["id"], user)
    report(gc, "captured", campaign["id"], "a")
    report(gc, "capture-failed", campaign["id"], "b")
    report(gc, "refunded", campaign["id"], "a")

    body = gc.get(f"/campaigns/{campaign['id']}").get_json()
    assert body["status"] == "successful"
    assert (body["actualParticipants"], body["refundedSeats"]) == (1, 1)
    assert [(p["userId"], p["status"]) for p in body["participants"]] == [("a", "refunded"), ("b", "failed")]


# the deadline sweep


def test_the_sweep_expires_a_campaign_below_its_minimum_and_releases_every_seat(gc: FlaskClient) -> None:
    campaign = new_campaign(gc, minParticipants=3)
    take_seat(gc, campaign["id"], "alice")
    take_seat(gc, campaign["id"], "bob")
    join(gc, campaign["id"], "carol")  # still waiting for her card
    open_one = new_campaign(gc)
    move_deadline_to_the_past(campaign["id"])

    before_sweep = join(gc, campaign["id"], "late")
    run_deadline_sweep(gc)
    run_deadline_sweep(gc)

    assert before_sweep.status_code == 409 and before_sweep.get_json()["error"] == "campaign_closed"
    [expired] = outbox("group-commerce.campaign.expired")
    assert expired["campaign"]["status"] == "expired"
    assert expired["participants"] == ["alice", "bob"]
    released = outbox("group-commerce.seat.released")
    assert sorted((e["userId"], e["reason"]) for e in released) == [
        ("alice", "campaign_expired"), ("bob", "campaign_expired"), ("carol", "campaign_expired")]
    assert outbox("group-commerce.campaign.closed") == []
    assert gc.get(f"/campaigns/{open_one['id']}").get_json()["status"] == "active"
    report(gc, "authorized", campaign["id"], "carol")  # her card, authorized after the end, is released too
    assert [e["userId"] for e in outbox("group-commerce.seat.released")][-1] == "carol"


def test_the_sweep_closes_a_campaign_that_reached_its_minimum(gc: FlaskClient) -> None:
    campaign = new_campaign(gc, minParticipants=1)
    take_seat(gc, campaign["id"], "alice")
    move_deadline_to_the_past(campaign["id"])

    run_deadline_sweep(gc)
    run_deadline_sweep(gc)

    [closed] = outbox("group-commerce.campaign.closed")
    assert closed["campaign"]["status"] == "closed"
    assert closed["participants"] == ["alice"]
    assert outbox("group-commerce.campaign.expired") == []
    assert join(gc, campaign["id"], "bob").get_json()["error"] == "campaign_closed"


def test_staff_close_an_open_campaign_now_as_its_deadline_would(gc: FlaskClient) -> None:
    below = new_campaign(gc, minParticipants=2)
    take_seat(gc, below["id"], "alice")
    reached = new_campaign(gc, minParticipants=1)
    take_seat(gc, reached["id"], "bob")

    expired = gc.post(f"/campaigns/{below['id']}/close")
    closed = gc.post(f"/campaigns/{reached['id']}/close")

    assert (expired.status_code, expired.get_json()["status"]) == (200, "expired")
    assert (closed.status_code, closed.get_json()["status"]) == (200, "closed")
    assert [e["userId"] for e in outbox("group-commerce.seat.released")] == ["alice"]
    again = gc.post(f"/campaigns/{below['id']}/close")
    assert again.status_code == 409 and again.get_json()["error"] == "campaign_closed"
    pending = new_campaign(gc, opened=False)
    assert gc.post(f"/campaigns/{pending['id']}/close").get_json()["error"] == "campaign_not_open"
    assert gc.post(f"/campaigns/{uuid.uuid4()}/close").status_code == 404
