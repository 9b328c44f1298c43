"""Payments call Stripe with no transaction open: on the real database and a real localstripe behind a
proxy that can hold or refuse the PaymentIntent creates, the order's rows stay free while Stripe
answers, and a payment whose create failed gets exactly one intent once Stripe is back."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import psycopg
import pytest
from flask.testing import FlaskClient
from stripe_fixtures import localstripe, localstripe_server  # noqa: F401 - fixtures
from support import deliver
from test_payments import intents_of, inventory_reserved, order_created, outbox, payment_of

from functions.payments.gateway import reset_stripe_client, stripe_client
from fusion import config, db
from fusion.binding import Event, new_event
from fusion.contracts import Campaign, SeatHeld
from fusion.local.stripe_proxy import Answer, StripeProxy
from fusion.waiting import wait_until

CREATE_PATH = "/v1/payment_intents"
CreateMode = Literal["pass", "hold", "refuse"]


class HeldStripe(StripeProxy):
    """localstripe behind a proxy that passes every request, or holds or refuses (503) the intent creates."""

    def __init__(self, upstream: str) -> None:
        self.mode: CreateMode = "pass"
        self.held = 0
        self._released = threading.Event()
        super().__init__(upstream)

    def hold_creates(self) -> None:
        self._released.clear()
        self.mode = "hold"

    def release(self) -> None:
        self.mode = "pass"
        self._released.set()

    def stop(self) -> None:
        self.release()
        super().stop()

    def before(self, method: str, path: str) -> Answer | None:
        if method != "POST" or path != CREATE_PATH:
            return None
        if self.mode == "refuse":
            return 503, b'{"error": {"message": "held back by the test"}}', "application/json"
        if self.mode == "hold":
            self.held += 1
            self._released.wait()
        return None


@pytest.fixture
def stripe_proxy(localstripe: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldStripe]:  # noqa: F811
    """The payments functions reach localstripe through the proxy for the test."""
    proxy = HeldStripe(localstripe)
    monkeypatch.setenv("STRIPE_API_BASE", proxy.url)
    config.settings.cache_clear()
    reset_stripe_client()
    yield proxy
    proxy.stop()
    monkeypatch.undo()
    config.settings.cache_clear()
    reset_stripe_client()


@pytest.fixture
def pay(client: Callable[[str], FlaskClient], stripe_proxy: HeldStripe) -> FlaskClient:
    return client("payments")


def in_background(work: Callable[[], Any]) -> Callable[[], Any]:
    """Run `work` in a thread; the returned function waits for it and gives its result."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(work()), daemon=True)
    thread.start()

    def joined() -> Any:
        thread.join(60)
        assert result, "the background call did not finish"
        return result[0]

    return joined


def lock_now(database: str, statement: str, order_id: str) -> list[Any]:
    """The rows `statement` locks with NOWAIT from a connection of its own (LockNotAvailable if held)."""
    with psycopg.connect(database) as other:
        rows = other.execute(statement, {"id": order_id}).fetchall()
        other.rollback()
    return rows


def idle_in_transaction(database: str) -> int:
    with psycopg.connect(database) as other:
        count = other.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fusioncommerce' "
                              "AND state = 'idle in transaction'").fetchone()
    return int(count[0]) if count else 0


def test_while_stripe_creates_the_intent_the_orders_rows_are_free_and_no_transaction_is_open(
        pay: FlaskClient, stripe_proxy: HeldStripe, clean_db: str) -> None:
    order_id = str(uuid.uuid4())
    assert deliver(pay, "record-order-for-payment", order_created(order_id, "25.00")) == 204
    stripe_proxy.hold_creates()
    delivered = in_background(lambda: deliver(pay, "start-payment", inventory_reserved(order_id)))
    wait_until(lambda: stripe_proxy.held >= 1, 30, 0.05, "the intent's create reaching Stripe")

    assert lock_now(clean_db, "SELECT order_id FROM payments.orders WHERE order_id = %(id)s FOR UPDATE NOWAIT",
                    order_id) == [(order_id,)]
    [(status, intent)] = lock_now(clean_db, "SELECT status, provider_payment_id FROM payments.payments "
                                  "WHERE order_id = %(id)s FOR UPDATE NOWAIT", order_id)
    assert (status, intent) == ("pending", None)  # claimed and committed before Stripe was asked
    wait_until(lambda: idle_in_transaction(clean_db) == 0, 10, 0.05,
               "no payments connection idle in transaction while Stripe answers")

    stripe_proxy.release()
    assert delivered() == 204
    payment = payment_of(pay, order_id)
    [created] = intents_of(order_id)
    assert payment["providerPaymentId"] == created.id and payment["status"] == "pending"
    assert [e["providerPaymentId"] for e in outbox("payment.created")] == [created.id]
    wait_until(lambda: payment_of(pay, order_id)["status"] == "succeeded", 30, 0.1,
               "the auto-confirmed payment settling")


def test_a_payment_requested_over_http_leaves_the_rows_free_while_stripe_answers(
        pay: FlaskClient, stripe_proxy: HeldStripe, clean_db: str) -> None:
    order_id = str(uuid.uuid4())
    stripe_proxy.hold_creates()
    delivered = in_background(lambda: (deliver(pay, "record-order-for-payment", order_created(order_id)),
                                       deliver(pay, "start-payment", inventory_reserved(order_id))))
    wait_until(lambda: stripe_proxy.held >= 1, 30, 0.05, "the intent's create reaching Stripe")

    # Another request for the same order does not wait on the rows: it is told to come back.
    waiting = pay.post("/payments", json={"orderId": order_id})
    assert waiting.status_code == 503 and waiting.get_json()["error"] == "payment_starting"
    assert waiting.headers["Retry-After"]

    stripe_proxy.release()
    assert delivered() == (204, 204)
    started = pay.post("/payments", json={"orderId": order_id})
    assert started.status_code == 201
    [created] = intents_of(order_id)
    assert started.get_json()["providerPaymentId"] == created.id and started.get_json()["clientSecret"]


def test_a_payment_whose_create_failed_gets_exactly_one_intent_once_stripe_is_back_and_is_paid_once(
        pay: FlaskClient, stripe_proxy: HeldStripe) -> None:
    order_id = str(uuid.uuid4())
    reserved = inventory_reserved(order_id)
    stripe_proxy.mode = "refuse"
    assert deliver(pay, "record-order-for-payment", order_created(order_id, "12.00")) == 204
    assert deliver(pay, "start-payment", reserved) == 500  # retried by the platform

    refused = pay.post("/payments", json={"orderId": order_id})
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    assert refused.get_json()["error"] in ("provider_unavailable", "payment_starting")  # or the checks' try
    payment = payment_of(pay, order_id)
    assert (payment["status"], payment["providerPaymentId"]) == ("pending", None)
    assert outbox("payment.created") == [] and intents_of(order_id) == []

    stripe_proxy.release()
    assert deliver(pay, "start-payment", reserved) == 204  # the retried delivery runs again
    wait_until(lambda: payment_of(pay, order_id)["providerPaymentId"], 30, 0.1, "the payment getting its intent")
    wait_until(lambda: payment_of(pay, order_id)["status"] == "succeeded", 30, 0.1, "the payment settling")

    [created] = intents_of(order_id)
    assert payment_of(pay, order_id)["providerPaymentId"] == created.id
    assert [e["orderId"] for e in outbox("payment.created")] == [order_id]
    assert [e["orderId"] for e in outbox("payment.succeeded")] == [order_id]


def test_a_claim_whose_process_died_before_the_create_is_finished_by_the_scheduled_checks(
        pay: FlaskClient, stripe_proxy: HeldStripe) -> None:
    order_id = str(uuid.uuid4())
    reserved = inventory_reserved(order_id)
    stripe_proxy.mode = "refuse"
    assert deliver(pay, "record-order-for-payment", order_created(order_id)) == 204
    assert deliver(pay, "start-payment", reserved) == 500
    # As if the process had died holding the claim: the delivery stays recorded (its redelivery is a
    # duplicate) and the claim is released only when its lease ends (here: at once).
    with db.pool().begin() as conn:
        conn.execute("INSERT INTO payments.inbox (consumer, event_source, event_id) VALUES ('start-payment', "
                     ":source, :id)", {"source": reserved.source, "id": reserved.id})
    stripe_proxy.release()
    assert deliver(pay, "start-payment", reserved) == 204

    wait_until(lambda: payment_of(pay, order_id)["status"] == "succeeded", 30, 0.1, "the checks finishing it")
    [created] = intents_of(order_id)
    assert payment_of(pay, order_id)["providerPaymentId"] == created.id
    assert [e["orderId"] for e in outbox("payment.created")] == [order_id]
    assert [e["orderId"] for e in outbox("payment.succeeded")] == [order_id]


def seat_held(campaign_id: str, user_id: str) -> Event:
    now = datetime.now(UTC)
    campaign = Campaign(id=campaign_id, product_id="p-1", sku="KETTLE", status="open", min_participants=2,
                        max_participants=5, actual_participants=0, discount_percentage=Decimal("20"),
                        original_price=Decimal("25.00"), group_price=Decimal("20.00"), currency="USD",
                        expires_at=now + timedelta(days=1))
    payload = SeatHeld(campaign=campaign, user_id=user_id, hold_expires_at=now + timedelta(minutes=15))
    return new_event("group-commerce.seat.held", "group-commerce", campaign_id, payload)


def seat_of(campaign_id: str) -> tuple[str, str | None]:
    with db.pool().connect() as conn:
        row = conn.execute("SELECT status, provider_payment_id FROM payments.seat_payments "
                           "WHERE campaign_id = :id", {"id": campaign_id}).one()
    return str(row.status), row.provider_payment_id


def seat_intents(campaign_id: str) -> list[Any]:
    listing = stripe_client().v1.payment_intents.list(params={"limit": 100})
    return [pi for pi in listing.auto_paging_iter() if pi.metadata.to_dict().get("campaignId") == campaign_id]


def test_a_seats_authorization_is_asked_with_the_seat_free_and_a_refused_create_is_retried_once(
        pay: FlaskClient, stripe_proxy: HeldStripe, clean_db: str) -> None:
    campaign_id = f"camp-{uuid.uuid4()}"
    held = seat_held(campaign_id, "alice")
    stripe_proxy.mode = "refuse"
    assert deliver(pay, "authorize-seat", held) == 500  # retried by the platform
    assert seat_of(campaign_id) == ("pending", None) and seat_intents(campaign_id) == []

    stripe_proxy.hold_creates()
    delivered = in_background(lambda: deliver(pay, "authorize-seat", held))
    wait_until(lambda: stripe_proxy.held >= 1, 30, 0.05, "the seat's create reaching Stripe")
    [(status,)] = lock_now(clean_db, "SELECT status FROM payments.seat_payments WHERE campaign_id = %(id)s "
                           "FOR UPDATE NOWAIT", campaign_id)
    assert status == "pending"
    # The storefront asking for the seat's client secret meanwhile is told to come back, not given a seat
    # without one.
    waiting = pay.post("/seat-payments", json={"campaignId": campaign_id, "customerId": "alice"})
    assert waiting.status_code == 503 and waiting.get_json()["error"] == "payment_starting"
    assert waiting.headers["Retry-After"]

    stripe_proxy.release()
    assert delivered() == 204
    assert deliver(pay, "authorize-seat", held) == 204  # a late redelivery changes nothing
    [intent] = seat_intents(campaign_id)
    assert seat_of(campaign_id) == ("authorized", intent.id)
    assert intent.status == "requires_capture"
    assert [e["userId"] for e in outbox("payment.seat.authorized")] == ["alice"]


def test_an_idempotency_key_that_met_stripe_down_is_answered_afresh_once_stripe_is_back(
        pay: FlaskClient, stripe_proxy: HeldStripe) -> None:
    order_id = str(uuid.uuid4())
    stripe_proxy.mode = "refuse"
    assert deliver(pay, "record-order-for-payment", order_created(order_id)) == 204
    assert deliver(pay, "start-payment", inventory_reserved(order_id)) == 500
    keyed = {"Idempotency-Key": f"pay-{order_id}"}

    def post() -> Any:
        return pay.post("/payments", json={"orderId": order_id}, headers=keyed)

    assert post().status_code == 503  # not remembered: the same key may try again
    stripe_proxy.release()
    started = wait_until(lambda: (answer := post()).status_code == 201 and answer, 30, 0.2,
                         "the keyed request starting the payment")
    replayed = post()
    assert replayed.headers.get("Idempotent-Replayed") == "true" and replayed.get_json() == started.get_json()
    [created] = intents_of(order_id)
    assert started.get_json()["providerPaymentId"] == created.id
