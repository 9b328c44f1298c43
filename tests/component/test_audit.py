"""`fusion verify` and `fusion trace` on the data of real sagas: every service's functions on the real
database, their events handed on as the relay and router would, payments through localstripe."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from saga_pump import SagaPump
from stripe_fixtures import WebhookReceiver, localstripe, localstripe_server, stripe_webhooks  # noqa: F401

from fusion.cli import main
from fusion.db import pool
from fusion.timeline import UnknownOrder, render, saga_of
from fusion.verify import checks, violations

MakeClient = Callable[..., FlaskClient]
PRICE = 12.5


def status_of(order_id: str) -> str:
    with pool().connect() as conn:
        return str(conn.execute("SELECT status FROM orders.orders WHERE id = :id", {"id": order_id}).scalar_one())


@pytest.fixture
def sagas(client: MakeClient, localstripe: str, stripe_webhooks: WebhookReceiver) -> dict[str, Any]:  # noqa: F811
    """Two orders shipped and one declined, from a product created through the catalog, and a group
    campaign whose one seat was charged and shipped as a group order."""
    pump = SagaPump(client, stripe_webhooks)
    sku = f"AUDIT-{uuid.uuid4().hex[:8]}"
    answer = pump.clients["catalog"].post("/products", json={"sku": sku, "name": "Audited mug", "price": PRICE,
                                                              "currency": "USD", "inventory": 10})
    assert answer.status_code == 201, answer.get_json()
    pump.until(lambda: pump.step() == 0, what="the product's events")
    orders = {}
    for customer in ("alice", "bob", "decline-carol"):
        placed = pump.clients["orders"].post("/orders", json={
            "customerId": customer, "currency": "USD", "items": [{"sku": sku, "quantity": 2, "price": PRICE}]})
        assert placed.status_code == 201, placed.get_json()
        orders[customer] = placed.get_json()["id"]
    wanted = {"alice": "shipped", "bob": "shipped", "decline-carol": "failed"}
    pump.until(lambda: all(status_of(orders[who]) == status for who, status in wanted.items()), what="three sagas")
    campaign = _group_of_one(pump, answer.get_json()["id"])
    pump.until(lambda: pump.step() == 0, what="the last events")
    return {"sku": sku, "shipped": orders["alice"], "failed": orders["decline-carol"], "campaign": campaign}


def _group_of_one(pump: SagaPump, product_id: str) -> str:
    """A campaign of one seat, joined by dave: charged, and shipped as his group order."""
    expires = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    created = pump.clients["group-commerce"].post("/campaigns", json={
        "productId": product_id, "minParticipants": 1, "maxParticipants": 2, "discountPercentage": 10,
        "expiresAt": expires})
    assert created.status_code == 201, created.get_json()
    campaign_id: str = created.get_json()["id"]
    pump.run()
    joined = pump.clients["group-commerce"].post(f"/campaigns/{campaign_id}/join", json={"userId": "dave"})
    assert joined.status_code == 200, joined.get_json()

    def shipped() -> bool:
        with pool().connect() as conn:
            status = conn.execute("SELECT status FROM orders.orders WHERE campaign_id = :id", {"id": campaign_id})
            return status.scalar() == "shipped"

    pump.until(shipped, what="the group order")
    return campaign_id


def test_the_data_of_real_sagas_breaks_no_invariant(sagas: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert violations() == []
    assert main(["verify"]) == 0
    assert capsys.readouterr().out.strip() == f"{len(checks())} checks, 0 violations"


BREAKAGES = {
    "no-negative-stock": [
        "ALTER TABLE inventory.stock DROP CONSTRAINT stock_on_hand_check, "
        "DROP CONSTRAINT stock_reserved_within_on_hand",
        "UPDATE inventory.stock SET on_hand = -1 WHERE sku = :sku"],
    "reserved-stock-is-open-reservations": ["UPDATE inventory.stock SET reserved = reserved + 1 WHERE sku = :sku"],
    "paid-order-has-one-succeeded-payment": [
        "UPDATE payments.payments SET status = 'refunded' WHERE order_id = :shipped"],
    "succeeded-payment-has-order": ["DELETE FROM orders.orders WHERE id = :shipped"],
    "shipped-order-has-label": [
        "DELETE FROM shipping.labels WHERE shipment_id = "
        "(SELECT id FROM shipping.shipments WHERE order_id = :shipped)"],
    "shipped-order-was-paid": ["DELETE FROM orders.order_history WHERE order_id = :shipped AND status = 'paid'"],
    "campaign-seats-are-participants": [
        "UPDATE group_commerce.campaigns SET actual_participants = actual_participants + 1 WHERE id = :campaign"],
    "campaign-within-maximum": [
        "ALTER TABLE group_commerce.campaigns DROP CONSTRAINT campaigns_seats_within_max",
        "UPDATE group_commerce.campaigns SET held_seats = max_participants WHERE id = :campaign"],
    "charged-seat-has-group-order": [
        "DELETE FROM orders.orders WHERE campaign_id = :campaign",
        "UPDATE payments.seat_payments SET updated_at = now() - interval '1 day' WHERE campaign_id = :campaign"],
    "order-not-stuck": [
        "UPDATE orders.orders SET status = 'confirmed', status_changed_at = now() - interval '1 day' "
        "WHERE id = :failed"],
    "outbox-published": [
        "INSERT INTO orders.outbox (event_id, topic, attributes, created_at) "
        "VALUES ('stuck-event', 'order.created', '{}', now() - interval '1 hour')"],
}


def test_every_check_is_broken_by_one_case() -> None:
    assert set(BREAKAGES) == {check.name for check in checks()}


@pytest.mark.parametrize("check", list(BREAKAGES))
def test_breaking_an_invariant_is_a_violation_naming_it(sagas: dict[str, Any], check: str) -> None:
    with pool().connect() as conn:  # rolled back at the end of the block
        for sql in BREAKAGES[check]:
            conn.execute(sql, {"sku": sagas["sku"], "shipped": sagas["shipped"], "failed": sagas["failed"],
                               "campaign": sagas["campaign"]})
        found = violations(conn)
    assert check in {violation.check for violation in found}, found
    assert all(violation.describe().startswith(f"{violation.check}: ") for violation in found)


def test_trace_shows_every_event_and_handler_of_the_saga(sagas: dict[str, Any],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    with pool().connect() as conn:
        headline, entries = saga_of(conn, sagas["shipped"])
    assert headline == f"order {sagas['shipped']} of alice: shipped"
    events = [entry.name for entry in entries if entry.what == "event"]
    assert events[0] == "order.created"
    assert {"inventory.reserved", "payment.created", "payment.succeeded", "shipping.label.created"} <= set(events)
    handled = {entry.name for entry in entries if entry.what == "handled"}
    assert {"reserve-stock", "confirm-order", "start-payment", "mark-order-paid", "ship-paid-order",
            "mark-order-shipped"} <= handled
    assert [entry.name for entry in entries if entry.what == "status"] == ["created", "confirmed", "paid", "shipped"]
    assert [entry.at for entry in entries] == sorted(entry.at for entry in entries)
    assert main(["trace", sagas["shipped"]]) == 0
    assert capsys.readouterr().out == render(headline, entries)


def test_trace_shows_the_attempts_the_router_logged(sagas: dict[str, Any], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with pool().connect() as conn:
        reserve = conn.execute(
            "SELECT event_id FROM inventory.inbox WHERE consumer = 'reserve-stock' AND event_id IN "
            "(SELECT event_id FROM orders.outbox WHERE attributes->>'subject' = :id)", {"id": sagas["shipped"]},
        ).scalar_one()
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "router.log").write_text("\n".join([
        "not json",
        json.dumps({"message": "retry 1", "eventId": reserve, "handler": "reserve-stock", "failedAttempt": 1}),
        json.dumps({"message": "retry 2", "eventId": reserve, "handler": "reserve-stock", "failedAttempt": 2}),
        json.dumps({"message": "gave up", "eventId": reserve, "handler": "audit-only", "failedAttempt": 4,
                    "deadLettered": True}),
    ]))
    monkeypatch.setenv("FUSION_STATE_DIR", str(tmp_path))

    assert main(["trace", sagas["shipped"]]) == 0

    out = capsys.readouterr().out
    assert "reserve-stock" in out and "attempt 3 (2 failed before)" in out
    assert "audit-only" in out and "dead-lettered after 4 attempts" in out


def test_trace_of_an_unknown_order_says_so(clean_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    unknown = str(uuid.uuid4())
    assert main(["trace", unknown]) == 1
    assert capsys.readouterr().err.strip() == f"no order {unknown}"
    assert main(["trace", "not-an-id"]) == 1
    assert "is not an order id" in capsys.readouterr().err
    with pool().connect() as conn, pytest.raises(UnknownOrder):
        saga_of(conn, unknown)
