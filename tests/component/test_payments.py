"""Payments through the payments functions, on the real database and a real localstripe: the order
projection, one PaymentIntent per order, auto-confirmation with test cards, Stripe's signed
webhooks, refunds and the reconciliation of lost webhooks."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
import stripe
from flask.testing import FlaskClient
from stripe_fixtures import (  # noqa: F401 - fixtures
    SECRET_KEY,
    WebhookReceiver,
    localstripe,
    localstripe_server,
    sign,
    stripe_event,
    stripe_webhooks,
)
from support import Tokens, deliver, free_port

from functions.payments import flow, store
from functions.payments.gateway import reset_stripe_client, stripe_client
from fusion import config, db
from fusion.binding import Event, new_event
from fusion.contracts import InventoryReserved, OrderCancelled, OrderCreated, OrderItem, StockLine
from fusion.topics import PING_TYPE
from fusion.waiting import wait_until

MakeClient = Callable[[str], FlaskClient]


# helpers


@pytest.fixture
def pay(client: MakeClient, localstripe: str) -> FlaskClient:  # noqa: F811 - fixture
    return client("payments")


@pytest.fixture
def manual_confirmation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Intents wait for the customer's card, as with real Stripe."""
    monkeypatch.setenv("STRIPE_AUTO_CONFIRM", "false")



def order_created(order_id: str, total: str = "19.99", currency: str = "USD", customer: str = "cust-1") -> Event:
    payload = OrderCreated(order_id=order_id, customer_id=customer, total=Decimal(total), currency=currency,
                           items=[OrderItem(sku="KETTLE", quantity=1, price=Decimal(total))])
    return new_event("order.created", "orders", order_id, payload)


def inventory_reserved(order_id: str) -> Event:
    payload = InventoryReserved(order_id=order_id, items=[StockLine(sku="KETTLE", quantity=1)])
    return new_event("inventory.reserved", "inventory", order_id, payload)


def order_cancelled(order_id: str) -> Event:
    payload = OrderCancelled(order_id=order_id, customer_id="cust-1", previous_status="paid", reason="changed mind")
    return new_event("order.cancelled", "orders", order_id, payload)


def confirmed_order(pay: FlaskClient, total: str = "19.99", customer: str = "cust-1", currency: str = "USD") -> str:
    """An order whose stock is reserved, as the orders and inventory services announce it."""
    order_id = str(uuid.uuid4())
    assert deliver(pay, "record-order-for-payment", order_created(order_id, total, currency, customer)) == 204
    assert deliver(pay, "start-payment", inventory_reserved(order_id)) == 204
    return order_id


def payment_of(pay: FlaskClient, order_id: str) -> dict[str, Any]:
    response = pay.get(f"/payments?orderId={order_id}")
    assert response.status_code == 200
    [payment] = response.get_json()
    return dict(payment)


def outbox(topic: str) -> list[dict[str, Any]]:
    with db.pool().connect() as conn:
        rows = conn.execute("SELECT payload FROM payments.outbox WHERE topic = :topic ORDER BY id",
                            {"topic": topic}).all()
    return [json.loads(bytes(row.payload)) for row in rows]


def intents_of(order_id: str) -> list[Any]:
    listing = stripe_client().v1.payment_intents.list(params={"limit": 100})
    return [pi for pi in listing.auto_paging_iter() if pi.metadata.to_dict().get("orderId") == order_id]


def post_webhook(pay: FlaskClient, body: bytes, signature: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return pay.post("/payments/webhook", data=body, headers=headers)


def succeed_by_webhook(pay: FlaskClient, receiver: WebhookReceiver, order_id: str) -> dict[str, Any]:
    """Hand localstripe's own payment_intent.succeeded webhook to the webhook function."""
    intent_id = payment_of(pay, order_id)["providerPaymentId"]
    delivery = receiver.wait_for("payment_intent.succeeded", intent_id)
    assert post_webhook(pay, delivery.body, delivery.signature).status_code == 200
    return payment_of(pay, order_id)


def intent_object(intent_id: str, order_id: str, status: str = "succeeded") -> dict[str, Any]:
    return {"id": intent_id, "object": "payment_intent", "status": status, "metadata": {"orderId": order_id}}


def ping() -> Event:
    return Event({"specversion": "1.0", "id": str(uuid.uuid4()), "type": PING_TYPE,
                  "source": "/apis/v1/namespaces/fusioncommerce/pingsources/reconcile-payments",
                  "datacontenttype": "application/json"}, b"{}")


# starting a payment


def test_a_reserved_order_gets_one_payment_and_one_intent_even_when_the_event_is_redelivered(
        pay: FlaskClient, manual_confirmation: None) -> None:
    order_id = str(uuid.uuid4())
    reserved = inventory_reserved(order_id)
    assert deliver(pay, "record-order-for-payment", order_created(order_id, "19.99")) == 204
    assert deliver(pay, "start-payment", reserved) == 204
    assert deliver(pay, "start-payment", reserved) == 204  # redelivery
    assert deliver(pay, "start-payment", inventory_reserved(order_id)) == 204  # announced again

    payment = payment_of(pay, order_id)
    assert payment["status"] == "pending"
    assert payment["amount"] == 19.99 and payment["currency"] == "USD" and payment["customerId"] == "cust-1"
    [intent] = intents_of(order_id)
    assert (intent.id, intent.amount, intent.currency) == (payment["providerPaymentId"], 1999, "usd")
    assert intent.status == "requires_payment_method"  # waits for the customer's card
    [created] = outbox("payment.created")
    assert created == {"paymentId": payment["id"], "orderId": order_id, "amount": 19.99, "currency": "USD",
                       "status": "pending", "providerPaymentId": intent.id, "customerId": "cust-1"}


def test_the_payment_starts_when_order_details_arrive_after_the_reservation(pay: FlaskClient) -> None:
    order_id = str(uuid.uuid4())
    assert deliver(pay, "start-payment", inventory_reserved(order_id)) == 204
    assert pay.get(f"/payments?orderId={order_id}").get_json() == []
    assert deliver(pay, "record-order-for-payment", order_created(order_id, "500", "JPY")) == 204
    payment = payment_of(pay, order_id)
    assert (payment["amount"], payment["currency"]) == (500, "JPY")
    [intent] = intents_of(order_id)
    assert (intent.amount, intent.currency) == (500, "jpy")


def test_an_order_that_is_not_reserved_or_is_closed_gets_no_payment(pay: FlaskClient) -> None:
    waiting = str(uuid.uuid4())
    assert deliver(pay, "record-order-for-payment", order_created(waiting)) == 204
    cancelled = str(uuid.uuid4())
    assert deliver(pay, "record-order-for-payment", order_created(cancelled)) == 204
    assert deliver(pay, "close-order-payment", order_cancelled(cancelled)) == 204
    assert deliver(pay, "start-payment", inventory_reserved(cancelled)) == 204
    assert pay.get("/payments").get_json() == []
    assert outbox("payment.created") == [] and outbox("payment.refunded") == []


def test_an_order_created_event_with_an_unknown_currency_is_dead_lettered(pay: FlaskClient) -> None:
    event = new_event("order.created", "orders", "o-1", OrderCreated(
        order_id="o-1", customer_id="c", total=Decimal("1.00"), currency="XXX", items=[]))
    assert deliver(pay, "record-order-for-payment", event) == 400


def test_an_order_of_nothing_to_pay_is_never_paid(pay: FlaskClient) -> None:
    order_id = confirmed_order(pay, total="0")
    payment = payment_of(pay, order_id)
    assert payment["status"] == "failed" and payment["failureCode"] == "zero_amount"
    assert intents_of(order_id) == []
    assert outbox("payment.succeeded") == []
    assert [e["orderId"] for e in outbox("payment.failed")] == [order_id]


@pytest.fixture
def stripe_down(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Stripe's API address answers nothing."""
    monkeypatch.setenv("STRIPE_API_BASE", f"http://127.0.0.1:{free_port()}")
    config.settings.cache_clear()
    reset_stripe_client()
    yield
    monkeypatch.undo()
    config.settings.cache_clear()
    reset_stripe_client()


def test_while_stripe_is_down_the_payment_is_claimed_but_nothing_is_published_and_callers_retry(
        pay: FlaskClient, stripe_down: None) -> None:
    order_id = str(uuid.uuid4())
    assert deliver(pay, "record-order-for-payment", order_created(order_id)) == 204
    assert deliver(pay, "start-payment", inventory_reserved(order_id)) == 500  # retried by the platform
    response = pay.post("/payments", json={"orderId": order_id})
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.get_json()["error"] in ("provider_unavailable", "payment_starting")  # or the checks' try
    [payment] = pay.get("/payments").get_json()
    assert (payment["status"], payment["providerPaymentId"]) == ("pending", None)
    assert outbox("payment.created") == []


# auto-confirmation with test cards, and Stripe's webhooks


def test_an_auto_confirmed_payment_succeeds_once_when_stripes_webhook_arrives_twice(
        pay: FlaskClient, stripe_webhooks: WebhookReceiver) -> None:  # noqa: F811 - fixture
    order_id = confirmed_order(pay, total="42.50")
    payment = payment_of(pay, order_id)
    assert payment["status"] == "pending"  # charged, but settled only by Stripe's word
    assert [intent.status for intent in intents_of(order_id)] == ["succeeded"]
    assert outbox("payment.succeeded") == []

    delivery = stripe_webhooks.wait_for("payment_intent.succeeded", payment["providerPaymentId"])
    first = post_webhook(pay, delivery.body, delivery.signature)
    again = post_webhook(pay, delivery.body, delivery.signature)

    assert first.status_code == 200 and first.get_json() == {"received": True, "applied": True}
    assert again.status_code == 200 and again.get_json() == {"received": True, "duplicate": True}
    assert payment_of(pay, order_id)["status"] == "succeeded"
    assert outbox("payment.succeeded") == [{
        "paymentId": payment["id"], "orderId": order_id, "amount": 42.5, "currency": "USD",
        "customerId": "cust-1", "providerPaymentId": payment["providerPaymentId"],
    }]


def test_a_declined_card_fails_the_payment_at_once_and_its_webhook_later_changes_nothing(
        pay: FlaskClient, stripe_webhooks: WebhookReceiver) -> None:  # noqa: F811 - fixture
    order_id = confirmed_order(pay, customer="decline-alice")
    payment = payment_of(pay, order_id)
    assert payment["status"] == "failed"
    assert payment["failureCode"] == "card_declined" and payment["failureReason"] == "Your card was declined."
    [failed] = outbox("payment.failed")
    assert failed["orderId"] == order_id and failed["reason"] == "Your card was declined."
    assert failed["failureCode"] == "card_declined" and failed["customerId"] == "decline-alice"

    delivery = stripe_webhooks.wait_for("payment_intent.payment_failed", payment["providerPaymentId"])
    assert post_webhook(pay, delivery.body, delivery.signature).status_code == 200
    assert payment_of(pay, order_id)["status"] == "failed"
    assert len(outbox("payment.failed")) == 1


def test_the_intent_of_an_unpaid_customer_waits_for_the_customer(pay: FlaskClient) -> None:
    order_id = confirmed_order(pay, customer="unpaid-carol")
    assert payment_of(pay, order_id)["status"] == "pending"
    assert [intent.status for intent in intents_of(order_id)] == ["requires_payment_method"]


def test_a_payment_failed_webhook_fails_a_pending_payment_with_stripes_reason(
        pay: FlaskClient, manual_confirmation: None) -> None:
    order_id = confirmed_order(pay)
    intent_id = payment_of(pay, order_id)["providerPaymentId"]
    failed = {**intent_object(intent_id, order_id, "requires_payment_method"),
              "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds",
                                     "message": "Your card has insufficient funds."}}
    body = stripe_event("payment_intent.payment_failed", failed)
    assert post_webhook(pay, body, sign(body)).status_code == 200
    payment = payment_of(pay, order_id)
    assert (payment["status"], payment["failureCode"]) == ("failed", "insufficient_funds")
    assert [e["reason"] for e in outbox("payment.failed")] == ["Your card has insufficient funds."]

    # A success reported after the failure does not revive the payment: the money is given back.
    stripe_client().v1.payment_intents.update(intent_id, params={"payment_method": "pm_card_visa"})
    stripe_client().v1.payment_intents.confirm(intent_id)
    late = stripe_event("payment_intent.succeeded", intent_object(intent_id, order_id))
    assert post_webhook(pay, late, sign(late)).status_code == 200
    assert payment_of(pay, order_id)["status"] == "refunded"
    assert outbox("payment.succeeded") == []
    assert [e["reason"] for e in outbox("payment.refunded")] == ["late_payment"]


@pytest.mark.parametrize("signature", [
    None,
    "",
    "t=1,v1=deadbeef",
    "garbage",
    "wrong secret",
    "tampered body",
])
def test_a_webhook_without_a_genuine_signature_is_refused_and_changes_nothing(
        pay: FlaskClient, manual_confirmation: None, signature: str | None) -> None:
    order_id = confirmed_order(pay)
    intent_id = payment_of(pay, order_id)["providerPaymentId"]
    body = stripe_event("payment_intent.succeeded", intent_object(intent_id, order_id))
    if signature == "wrong secret":
        signature = sign(body, secret="whsec_someone_else")
    elif signature == "tampered body":
        signature = sign(body)
        body = body.replace(b'"livemode": false', b'"livemode": true')

    response = post_webhook(pay, body, signature)

    assert response.status_code == 400
    assert response.get_json()["field"] == "Stripe-Signature"
    assert payment_of(pay, order_id)["status"] == "pending"
    assert outbox("payment.succeeded") == []
    with db.pool().connect() as conn:
        assert conn.execute("SELECT count(*) FROM payments.stripe_events").scalar() == 0


def test_a_webhook_about_an_unknown_intent_or_another_event_type_is_acknowledged(pay: FlaskClient) -> None:
    unknown = stripe_event("payment_intent.succeeded", intent_object("pi_unknown", "no-such-order"))
    other = stripe_event("customer.created", {"id": "cus_1", "object": "customer"})
    for body in (unknown, other):
        response = post_webhook(pay, body, sign(body))
        assert response.status_code == 200 and response.get_json() == {"received": True, "applied": False}


def test_a_charge_refunded_webhook_signed_with_the_secret_marks_the_payment_refunded(
        pay: FlaskClient, stripe_webhooks: WebhookReceiver) -> None:  # noqa: F811 - fixture
    order_id = confirmed_order(pay, total="10.00")
    payment = succeed_by_webhook(pay, stripe_webhooks, order_id)
    charge = {"id": "ch_test_1", "object": "charge", "amount": 1000, "amount_refunded": 1000, "refunded": True,
              "payment_intent": payment["providerPaymentId"], "metadata": {}}
    partial = {**charge, "amount_refunded": 400, "refunded": False}

    partial_body = stripe_event("charge.refunded", partial)
    assert post_webhook(pay, partial_body, sign(partial_body)).get_json()["applied"] is False
    assert payment_of(pay, order_id)["status"] == "succeeded"

    body = stripe_event("charge.refunded", charge)
    assert post_webhook(pay, body, sign(body)).status_code == 200
    assert post_webhook(pay, body, sign(body)).get_json()["duplicate"] is True
    assert payment_of(pay, order_id)["status"] == "refunded"
    [refunded] = outbox("payment.refunded")
    assert refunded == {"paymentId": payment["id"], "orderId": order_id, "amount": 10, "currency": "USD",
                        "customerId": "cust-1", "refundId": None, "reason": "provider"}

    # A stale success reported after the refund does not move the payment back.
    stale = stripe_event("payment_intent.succeeded", intent_object(payment["providerPaymentId"], order_id))
    assert post_webhook(pay, stale, sign(stale)).status_code == 200
    assert payment_of(pay, order_id)["status"] == "refunded"
    assert len(outbox("payment.succeeded")) == 1 and len(outbox("payment.refunded")) == 1


# the HTTP API


def test_post_payments_starts_or_returns_the_payment_of_a_payable_order_with_its_client_secret(
        pay: FlaskClient, manual_confirmation: None) -> None:
    order_id = str(uuid.uuid4())
    assert deliver(pay, "record-order-for-payment", order_created(order_id, "7.25")) == 204
    assert pay.post("/payments", json={"orderId": order_id}).status_code == 409  # stock not reserved yet
    # A payable order whose payment was not started yet (as when Stripe was down for the handler).
    with db.pool().begin() as conn:
        conn.execute("UPDATE payments.orders SET reserved = true WHERE order_id = :id", {"id": order_id})

    first = pay.post("/payments", json={"orderId": order_id})
    again = pay.post("/payments", json={"orderId": f"  {order_id} ", "extra": "ignored"})

    assert first.status_code == 201 and again.status_code == 201
    body = first.get_json()
    assert again.get_json()["id"] == body["id"] and first.headers["Location"] == f"/payments/{body['id']}"
    [intent] = intents_of(order_id)
    assert body["clientSecret"] == intent.client_secret and body["providerPaymentId"] == intent.id
    assert (body["status"], body["amount"]) == ("pending", 7.25)
    assert len(outbox("payment.created")) == 1


def test_post_payments_refuses_unknown_unpayable_and_invalid_requests(pay: FlaskClient) -> None:
    missing = pay.post("/payments", json={"orderId": str(uuid.uuid4())})
    assert missing.status_code == 404
    cancelled = confirmed_order(pay)
    assert deliver(pay, "close-order-payment", order_cancelled(cancelled)) == 204
    refused = pay.post("/payments", json={"orderId": cancelled})
    assert refused.status_code == 409 and "cancelled" in refused.get_json()["message"]
    invalid = pay.post("/payments", json={"order": "x"})
    assert invalid.status_code == 400 and invalid.get_json()["field"] == "orderId"
    assert pay.post("/payments", data="[]", content_type="application/json").status_code == 400


def test_payments_are_listed_by_order_and_status_and_read_by_id(pay: FlaskClient) -> None:
    free = confirmed_order(pay, total="0")
    declined = confirmed_order(pay, customer="decline-bob")
    pending = confirmed_order(pay)

    def orders(query: str) -> list[str]:
        response = pay.get(f"/payments{query}")
        assert response.status_code == 200
        return [p["orderId"] for p in response.get_json()]

    assert orders("") == [free, declined, pending]
    assert orders("?status=failed") == [free, declined]
    assert orders(f"?orderId={pending}&status=pending") == [pending]
    assert orders("?limit=1&offset=1") == [declined]
    assert pay.get("/payments?status=lost").status_code == 400
    payment = payment_of(pay, pending)
    got = pay.get(f"/payments/{payment['id']}")
    assert got.status_code == 200 and got.get_json() == payment and "clientSecret" not in payment
    assert pay.get(f"/payments/{uuid.uuid4()}").status_code == 404
    assert pay.get("/payments/not-a-uuid").status_code == 404


def test_refund_returns_a_succeeded_payment_in_full_through_stripe(
        pay: FlaskClient, stripe_webhooks: WebhookReceiver) -> None:  # noqa: F811 - fixture
    order_id = confirmed_order(pay, total="12.34")
    payment = succeed_by_webhook(pay, stripe_webhooks, order_id)

    response = pay.post(f"/payments/{payment['id']}/refund")

    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "refunded" and body["refundId"].startswith("re_")
    [refund] = stripe_client().v1.refunds.list(params={"payment_intent": payment["providerPaymentId"]}).data
    assert (refund.id, refund.amount) == (body["refundId"], 1234)
    assert [(e["reason"], e["amount"]) for e in outbox("payment.refunded")] == [("requested", 12.34)]
    again = pay.post(f"/payments/{payment['id']}/refund")
    assert again.status_code == 409 and "refunded" in again.get_json()["message"]
    assert len(outbox("payment.refunded")) == 1


def test_refund_refuses_a_payment_that_did_not_succeed_and_unknown_payments(
        pay: FlaskClient, manual_confirmation: None) -> None:
    pending = payment_of(pay, confirmed_order(pay))
    assert pay.post(f"/payments/{pending['id']}/refund").status_code == 409
    assert pay.post(f"/payments/{uuid.uuid4()}/refund").status_code == 404
    assert pay.post("/payments/nope/refund").status_code == 404
    assert outbox("payment.refunded") == []


# compensation


def test_cancelling_a_paid_order_refunds_it_once(pay: FlaskClient,
                                                stripe_webhooks: WebhookReceiver) -> None:  # noqa: F811 - fixture
    order_id = confirmed_order(pay, total="30.00")
    payment = succeed_by_webhook(pay, stripe_webhooks, order_id)
    cancelled = order_cancelled(order_id)

    assert deliver(pay, "close-order-payment", cancelled) == 204
    assert deliver(pay, "close-order-payment", cancelled) == 204
    assert deliver(pay, "close-order-payment", order_cancelled(order_id)) == 204

    assert payment_of(pay, order_id)["status"] == "refunded"
    refunds = stripe_client().v1.refunds.list(params={"payment_intent": payment["providerPaymentId"]}).data
    assert [r.amount for r in refunds] == [3000]
    assert [(e["orderId"], e["reason"]) for e in outbox("payment.refunded")] == [(order_id, "order_cancelled")]


def test_cancelling_an_order_with_a_pending_payment_refunds_nothing_and_a_late_success_is_given_back(
        pay: FlaskClient, manual_confirmation: None, stripe_webhooks: WebhookReceiver) -> None:  # noqa: F811
    order_id = confirmed_order(pay)
    intent_id = payment_of(pay, order_id)["providerPaymentId"]
    assert deliver(pay, "close-order-payment", order_cancelled(order_id)) == 204
    assert payment_of(pay, order_id)["status"] == "pending" and outbox("payment.refunded") == []

    # The customer's browser confirms the intent after all.
    stripe_client().v1.payment_intents.update(intent_id, params={"payment_method": "pm_card_visa"})
    stripe_client().v1.payment_intents.confirm(intent_id)
    delivery = stripe_webhooks.wait_for("payment_intent.succeeded", intent_id)
    assert post_webhook(pay, delivery.body, delivery.signature).status_code == 200

    assert payment_of(pay, order_id)["status"] == "refunded"
    assert outbox("payment.succeeded") == []
    assert [e["reason"] for e in outbox("payment.refunded")] == ["late_payment"]
    assert [r.amount for r in stripe_client().v1.refunds.list(params={"payment_intent": intent_id}).data] == [1999]


# reconciliation


def test_payments_whose_webhooks_were_lost_are_settled_by_the_reconciler(
        pay: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    succeeded = confirmed_order(pay)  # charged by auto-confirmation; its webhook is never delivered
    monkeypatch.setenv("STRIPE_AUTO_CONFIRM", "false")
    declined = confirmed_order(pay)
    intent_id = payment_of(pay, declined)["providerPaymentId"]
    stripe_client().v1.payment_intents.update(intent_id, params={"payment_method": "pm_card_chargeCustomerFail"})
    with pytest.raises(stripe.CardError):
        stripe_client().v1.payment_intents.confirm(intent_id)  # the storefront's attempt; webhook lost
    with db.pool().begin() as conn:
        conn.execute("UPDATE payments.payments SET created_at = now() - interval '10 minutes'")
    recent = confirmed_order(pay)

    assert deliver(pay, "reconcile-payments", ping()) == 204
    assert deliver(pay, "reconcile-payments", ping()) == 204

    assert payment_of(pay, succeeded)["status"] == "succeeded"
    failed = payment_of(pay, declined)
    assert (failed["status"], failed["failureReason"]) == ("failed", "Your card was declined.")
    assert payment_of(pay, recent)["status"] == "pending"  # its webhook may still come
    assert [e["orderId"] for e in outbox("payment.succeeded")] == [succeeded]
    assert [e["orderId"] for e in outbox("payment.failed")] == [declined]


def test_the_reconciler_leaves_intents_that_wait_for_the_customer(pay: FlaskClient,
                                                                  manual_confirmation: None) -> None:
    order_id = confirmed_order(pay)
    with db.pool().begin() as conn:
        conn.execute("UPDATE payments.payments SET created_at = now() - interval '10 minutes'")
    assert deliver(pay, "reconcile-payments", ping()) == 204
    assert payment_of(pay, order_id)["status"] == "pending"
    with db.pool().connect() as conn:
        assert conn.execute("SELECT checked_at IS NOT NULL FROM payments.payments").scalar() is True


def test_the_reconciler_skips_an_intent_stripe_does_not_know(pay: FlaskClient, manual_confirmation: None) -> None:
    lost = confirmed_order(pay)
    known = confirmed_order(pay)
    with db.pool().begin() as conn:
        conn.execute("UPDATE payments.payments SET created_at = now() - interval '10 minutes'")
        conn.execute("UPDATE payments.payments SET provider_payment_id = 'pi_gone' WHERE order_id = :id",
                     {"id": lost})
    assert deliver(pay, "reconcile-payments", ping()) == 204
    with db.pool().connect() as conn:
        checked = conn.execute("SELECT count(*) FROM payments.payments WHERE checked_at IS NOT NULL").scalar()
    assert checked == 2
    assert {payment_of(pay, o)["status"] for o in (lost, known)} == {"pending"}


def test_the_service_answers_health(pay: FlaskClient) -> None:
    response = pay.get("/health")
    assert response.status_code == 200 and response.get_json()["service"] == "payments"


def test_a_customer_pays_and_reads_only_its_own_payments(pay: FlaskClient, tokens: Tokens) -> None:
    alices = confirmed_order(pay, customer="alice")
    confirmed_order(pay, customer="bob")
    as_alice = {"Authorization": f"Bearer {tokens.customer('alice')}"}
    as_bob = {"Authorization": f"Bearer {tokens.customer('bob')}"}
    payment = payment_of(pay, alices)
    assert pay.get(f"/payments/{payment['id']}", headers=as_alice).status_code == 200
    assert pay.get(f"/payments/{payment['id']}", headers=as_bob).status_code == 404
    assert pay.post("/payments", json={"orderId": alices}, headers=as_bob).status_code == 404
    assert pay.post("/payments", json={"orderId": alices}, headers=as_alice).status_code == 201
    assert [p["customerId"] for p in pay.get("/payments", headers=as_bob).get_json()] == ["bob"]
    assert pay.post(f"/payments/{payment['id']}/refund", headers=as_alice).status_code == 403


# scheduled checks of new intents


def wait_for_status(pay: FlaskClient, order_id: str, status: str, timeout: float) -> float:
    """Seconds until the order's payment has `status`; fails after `timeout`."""
    started = time.monotonic()
    wait_until(lambda: payment_of(pay, order_id)["status"] == status, timeout, 0.1,
               f"the payment of {order_id} becoming {status}")
    return time.monotonic() - started


def check_is_due(order_id: str) -> bool:
    with db.pool().connect() as conn:
        return bool(conn.execute("SELECT next_check_at <= now() FROM payments.payments WHERE order_id = :id",
                                 {"id": order_id}).scalar())


def test_a_webhook_lost_in_a_database_outage_is_made_up_by_the_scheduled_check_once(
        pay: FlaskClient, stripe_webhooks: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    order_id = confirmed_order(pay)  # charged by auto-confirmation; localstripe sends its webhook once
    webhook = stripe_webhooks.wait_for("payment_intent.succeeded", payment_of(pay, order_id)["providerPaymentId"])
    claims_refused: list[float] = []

    def database_down(*_args: Any, **_kwargs: Any) -> Any:
        claims_refused.append(time.monotonic())
        raise psycopg.OperationalError("connection refused")

    with monkeypatch.context() as outage:
        outage.setattr(store, "record_stripe_event", database_down)
        outage.setattr(store, "claim_due_checks", database_down)
        assert post_webhook(pay, webhook.body, webhook.signature).status_code == 503
        # the outage lasts past the check's time: the checker keeps trying
        outage_started = time.monotonic()
        wait_until(lambda: check_is_due(order_id) and len(claims_refused) >= 2 and claims_refused[-1] > outage_started,
                   30, 0.1, "the checker trying during the outage")
        assert payment_of(pay, order_id)["status"] == "pending"
    took = wait_for_status(pay, order_id, "succeeded", timeout=30)
    print(f"settled {took:.1f} s after the database came back")
    assert post_webhook(pay, webhook.body, webhook.signature).status_code == 200  # a late redelivery
    assert [e["orderId"] for e in outbox("payment.succeeded")] == [order_id]


def test_a_dropped_webhook_is_made_up_by_the_scheduled_check_within_seconds(pay: FlaskClient) -> None:
    order_id = confirmed_order(pay)  # its webhook goes nowhere
    took = wait_for_status(pay, order_id, "succeeded", timeout=30)
    print(f"settled {took:.1f} s after the intent was created")
    with db.pool().connect() as conn:
        assert conn.execute("SELECT next_check_at IS NULL AND checked_at IS NOT NULL FROM payments.payments "
                            "WHERE order_id = :id", {"id": order_id}).scalar() is True
    assert deliver(pay, "reconcile-payments", ping()) == 204
    assert [e["orderId"] for e in outbox("payment.succeeded")] == [order_id]


def test_a_test_card_its_dying_starter_left_unconfirmed_is_charged_by_the_scheduled_check(
        pay: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    order_id = str(uuid.uuid4())
    assert deliver(pay, "record-order-for-payment", order_created(order_id)) == 204

    def dies(*_args: Any) -> Any:
        raise RuntimeError("the process died after attaching the intent")

    with monkeypatch.context() as dying:
        dying.setattr(flow, "_confirm_with_test_card", dies)
        assert deliver(pay, "start-payment", inventory_reserved(order_id)) == 500
    assert deliver(pay, "start-payment", inventory_reserved(order_id)) == 204  # the redelivery finds it started
    assert [intent.status for intent in intents_of(order_id)] == ["requires_confirmation"]
    took = wait_for_status(pay, order_id, "succeeded", timeout=30)
    print(f"charged and settled {took:.1f} s after its starter died")
    assert [intent.status for intent in intents_of(order_id)] == ["succeeded"]
    assert [e["orderId"] for e in outbox("payment.succeeded")] == [order_id]


def test_the_stripe_stand_in_lists_each_kind_from_its_index_in_the_order_stored(localstripe: str) -> None:  # noqa: F811 - fixture
    """Its lists come from an index per kind of object: they hold what a scan of the store held, and nothing
    from before a reset."""
    client = stripe.StripeClient(SECRET_KEY, base_addresses={"api": localstripe})
    before_reset = client.v1.customers.create(params={"email": "gone@example.com"})
    urllib.request.urlopen(urllib.request.Request(f"{localstripe}/_config/data", method="DELETE"), timeout=5).close()
    created = [client.v1.customers.create(params={"email": f"list-{n}@example.com"}).id for n in range(12)]
    client.v1.products.create(params={"name": "not a customer"})
    listed = [customer.id for customer in client.v1.customers.list(params={"limit": 100}).data]
    assert sorted(listed) == sorted(created) and before_reset.id not in listed
    page = client.v1.customers.list(params={"limit": 5, "starting_after": listed[2]}).data
    assert [customer.id for customer in page] == listed[3:8]
