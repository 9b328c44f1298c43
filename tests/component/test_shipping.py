"""Shipping through the shipping functions, on the real database: one shipment per paid order with a
printable PDF label (printed on its first download, the same bytes from then on), tracking history,
carrier updates that only move forward, and voided labels for refunded orders."""

from __future__ import annotations

import json
import re
import uuid
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from support import Tokens, deliver

from functions.shipping import flow, store
from functions.shipping.carrier import OFFLINE_CARRIER, LabelToPrint, Parcel, PurchasedLabel
from functions.shipping.flow import UnknownTrackingNumber, advance_shipment
from functions.shipping.rules import is_valid_tracking_number
from fusion import db
from fusion.binding import Event, new_event
from fusion.config import settings
from fusion.contracts import PaymentRefunded, PaymentSucceeded
from fusion.registry import service_named
from fusion.web import iso

MakeClient = Callable[[str], FlaskClient]


# helpers


@pytest.fixture
def ship(client: MakeClient) -> FlaskClient:
    return client("shipping")



def payment_succeeded(order_id: str, customer: str | None = "cust-7") -> Event:
    payment_id = str(uuid.uuid4())
    payload = PaymentSucceeded(payment_id=payment_id, order_id=order_id, amount=Decimal("19.99"), currency="USD",
                               customer_id=customer)
    return new_event("payment.succeeded", "payments", payment_id, payload, partition_key=order_id)


def payment_refunded(order_id: str) -> Event:
    payment_id = str(uuid.uuid4())
    payload = PaymentRefunded(payment_id=payment_id, order_id=order_id, amount=Decimal("19.99"), currency="USD",
                              reason="order_cancelled")
    return new_event("payment.refunded", "payments", payment_id, payload, partition_key=order_id)


def paid_order(ship: FlaskClient, customer: str | None = "cust-7") -> tuple[str, dict[str, Any]]:
    """An order paid (payment.succeeded delivered) and its shipment."""
    order_id = str(uuid.uuid4())
    assert deliver(ship, "ship-paid-order", payment_succeeded(order_id, customer)) == 204
    return order_id, shipment_of(ship, order_id)


def shipment_of(ship: FlaskClient, order_id: str) -> dict[str, Any]:
    response = ship.get(f"/shipments?orderId={order_id}")
    assert response.status_code == 200
    [shipment] = response.get_json()
    return dict(shipment)


def outbox(topic: str) -> list[dict[str, Any]]:
    with db.pool().connect() as conn:
        rows = conn.execute("SELECT payload FROM shipping.outbox WHERE topic = :topic ORDER BY id",
                            {"topic": topic}).all()
    return [json.loads(bytes(row.payload)) for row in rows]


def carrier_update(ship: FlaskClient, tracking_number: str, status: str, **extra: Any) -> Any:
    return ship.post("/carrier/updates", json={"trackingNumber": tracking_number, "status": status, **extra})


def tracking(ship: FlaskClient, tracking_number: str) -> dict[str, Any]:
    response = ship.get(f"/tracking/{tracking_number}")
    assert response.status_code == 200
    return dict(response.get_json())


def stored_label(shipment_id: str) -> Any:
    """The shipment's row of shipping.labels (document, sender)."""
    with db.pool().connect() as conn:
        return conn.execute("SELECT document, sender FROM shipping.labels WHERE shipment_id = :id",
                            {"id": shipment_id}).one()


def labels_printed(monkeypatch: pytest.MonkeyPatch) -> list[LabelToPrint]:
    """Every label the built-in carrier prints from now on (it still prints them)."""
    printed: list[LabelToPrint] = []
    print_label = OFFLINE_CARRIER.print_label

    def printing(label: LabelToPrint) -> bytes:
        printed.append(label)
        return print_label(label)

    monkeypatch.setattr(OFFLINE_CARRIER, "print_label", printing)
    return printed


def download_label(ship: FlaskClient, shipment_id: str) -> bytes:
    response = ship.get(f"/shipments/{shipment_id}/label")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    return bytes(response.data)


def pdf_text(pdf: bytes) -> str:
    """The PDF's content streams, inflated, as text (enough to find what was printed)."""
    streams = re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S)
    inflated = (zlib.decompressobj().decompress(stream) for stream in streams if stream[:1] == b"x")
    return "".join(text.decode("latin-1") for text in inflated)


# shipments


def test_a_paid_order_gets_one_shipment_and_label_even_when_the_payment_event_is_redelivered(
        ship: FlaskClient) -> None:
    order_id = str(uuid.uuid4())
    paid = payment_succeeded(order_id)
    assert deliver(ship, "ship-paid-order", paid) == 204
    assert deliver(ship, "ship-paid-order", paid) == 204  # redelivery
    assert deliver(ship, "ship-paid-order", payment_succeeded(order_id)) == 204  # announced again

    shipment = shipment_of(ship, order_id)
    assert shipment["status"] == "label_created" and shipment["carrier"] == "fusion-offline"
    assert shipment["customerId"] == "cust-7"
    assert is_valid_tracking_number(shipment["trackingNumber"])
    assert shipment["labelUrl"].endswith(f"/shipments/{shipment['id']}/label")
    if settings().public_base_url == "http://127.0.0.1":
        port = service_named("shipping").local_port
        assert shipment["labelUrl"] == f"http://127.0.0.1:{port}/shipments/{shipment['id']}/label"
    assert outbox("shipping.label.created") == [{
        "orderId": order_id, "shipmentId": shipment["id"], "trackingNumber": shipment["trackingNumber"],
        "carrier": "fusion-offline", "labelUrl": shipment["labelUrl"], "customerId": "cust-7",
    }]


def test_the_label_url_base_is_configurable(ship: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPPING_PUBLIC_URL", "https://ship.example.com/")
    _, shipment = paid_order(ship)
    assert shipment["labelUrl"] == f"https://ship.example.com/shipments/{shipment['id']}/label"


def test_the_label_is_a_printable_pdf_naming_the_order_and_tracking_number(ship: FlaskClient) -> None:
    order_id, shipment = paid_order(ship)
    response = ship.get(f"/shipments/{shipment['id']}/label")

    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert shipment["trackingNumber"] in response.headers["Content-Disposition"]
    pdf = response.data
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert b"trailer" in pdf and b"startxref" in pdf and b"/Type /Page" in pdf
    startxref = int(re.findall(rb"startxref\s+(\d+)", pdf)[-1])
    assert pdf[startxref:startxref + 4] == b"xref"  # the cross-reference table is where the trailer says
    printed = pdf_text(pdf)
    assert shipment["trackingNumber"] in printed and order_id in printed and "Customer cust-7" in printed
    assert shipment["id"] in printed
    shipped_at = datetime.fromisoformat(shipment["createdAt"]).astimezone(UTC)
    assert f"{shipped_at:%Y-%m-%d %H:%M} UTC" in printed
    assert ship.get(f"/shipments/{uuid.uuid4()}/label").status_code == 404
    assert ship.get("/shipments/nope/label").status_code == 404


def test_shipping_stores_the_label_with_its_sender_and_no_document(ship: FlaskClient,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPPING_SENDER_ADDRESS", "Old Shop Ltd; 1 Old Road; Leeds")
    _, shipment = paid_order(ship)
    label = stored_label(shipment["id"])
    assert label.document is None and label.sender == ["Old Shop Ltd", "1 Old Road", "Leeds"]


def test_the_first_download_prints_and_stores_the_label_and_later_ones_answer_the_same_bytes(
        ship: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    prints = labels_printed(monkeypatch)
    monkeypatch.setenv("SHIPPING_SENDER_ADDRESS", "Old Shop Ltd; 1 Old Road; Leeds")
    order_id, shipment = paid_order(ship)
    assert prints == []  # shipping bought the label without printing it
    monkeypatch.setenv("SHIPPING_SENDER_ADDRESS", "New Shop Ltd; 2 New Road; York")

    first = download_label(ship, shipment["id"])
    assert [label.tracking_number for label in prints] == [shipment["trackingNumber"]]
    assert stored_label(shipment["id"]).document == first
    printed = pdf_text(first)
    assert shipment["trackingNumber"] in printed and order_id in printed
    assert "Old Shop Ltd" in printed and "1 Old Road" in printed and "New Shop" not in printed  # as it shipped

    assert download_label(ship, shipment["id"]) == first
    assert len(prints) == 1


def test_first_downloads_at_once_answer_the_one_label_stored(client: MakeClient, ship: FlaskClient) -> None:
    _, shipment = paid_order(ship)
    with ThreadPoolExecutor(max_workers=4) as pool:
        documents = list(pool.map(lambda _: download_label(client("shipping"), shipment["id"]), range(4)))
    assert len(set(documents)) == 1 and documents[0].startswith(b"%PDF-")
    assert stored_label(shipment["id"]).document == documents[0]


def test_the_first_document_stored_is_kept_and_read_back_by_a_download_that_waited(ship: FlaskClient) -> None:
    _, shipment = paid_order(ship)
    shipment_id = uuid.UUID(shipment["id"])

    def store_second() -> bytes:
        with db.pool().begin() as conn:
            return store.store_label_document(conn, shipment_id, b"second")

    with ThreadPoolExecutor(max_workers=1) as pool:
        with db.pool().begin() as first:
            assert store.store_label_document(first, shipment_id, b"first") == b"first"
            # Holds the row until it commits: the second download waits for it, or starts after it.
            second = pool.submit(store_second)
        assert second.result() == b"first"
    assert stored_label(shipment["id"]).document == b"first"
    assert download_label(ship, shipment["id"]) == b"first"


class ReadyLabelCarrier:
    """A carrier that sells its labels with their document."""

    name = "ready-labels"
    document = b"%PDF-1.4 a label the carrier printed %%EOF"

    def purchase_label(self, parcel: Parcel) -> PurchasedLabel:
        return PurchasedLabel("RL123", ("Carrier depot",), self.document)

    def print_label(self, label: LabelToPrint) -> bytes:
        raise AssertionError("a label sold with its document is never printed")


def test_a_label_a_carrier_sells_with_its_document_is_stored_and_served_as_sold(
        ship: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flow, "default_carrier", ReadyLabelCarrier)
    _, shipment = paid_order(ship)
    assert shipment["carrier"] == "ready-labels" and shipment["trackingNumber"] == "RL123"
    assert stored_label(shipment["id"]).document == ReadyLabelCarrier.document
    assert download_label(ship, shipment["id"]) == ReadyLabelCarrier.document


def test_post_shipments_ships_a_paid_order_once_and_refuses_an_unpaid_one(client: MakeClient,
                                                                          ship: FlaskClient) -> None:
    unpaid = ship.post("/shipments", json={"orderId": str(uuid.uuid4())})
    assert unpaid.status_code == 409 and "not paid" in unpaid.get_json()["message"]
    invalid = ship.post("/shipments", json={"order": "x"})
    assert invalid.status_code == 400 and invalid.get_json()["field"] == "orderId"

    # A paid order the label handler has not reached yet.
    order_id = str(uuid.uuid4())
    with db.pool().begin() as conn:
        conn.execute("INSERT INTO shipping.paid_orders (order_id, payment_id, customer_id, paid_at) "
                          "VALUES (:id, 'pay-1', 'cust-9', now())", {"id": order_id})
    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(lambda _: client("shipping").post("/shipments", json={"orderId": order_id}),
                                  range(4)))

    assert sorted(r.status_code for r in responses) == [200, 200, 200, 201]
    assert len({r.get_json()["id"] for r in responses}) == 1
    assert [e["orderId"] for e in outbox("shipping.label.created")] == [order_id]
    assert deliver(ship, "ship-paid-order", payment_succeeded(order_id)) == 204
    assert len(outbox("shipping.label.created")) == 1


def test_shipments_are_listed_by_order_and_read_by_id_with_their_history(ship: FlaskClient) -> None:
    first, _ = paid_order(ship)
    second, shipment = paid_order(ship)

    listed = ship.get("/shipments").get_json()
    assert [s["orderId"] for s in listed] == [first, second]
    assert [s["orderId"] for s in ship.get("/shipments?limit=1&offset=1").get_json()] == [second]
    got = ship.get(f"/shipments/{shipment['id']}")
    assert got.status_code == 200
    body = got.get_json()
    assert {k: v for k, v in body.items() if k != "history"} == shipment
    assert [h["status"] for h in body["history"]] == ["label_created"]
    assert ship.get(f"/shipments/{uuid.uuid4()}").status_code == 404
    assert ship.get("/shipments/123").status_code == 404
    assert ship.get("/shipments?limit=0").status_code == 400


# tracking and carrier updates


def test_tracking_shows_the_status_and_history_of_a_parcel(ship: FlaskClient) -> None:
    _, shipment = paid_order(ship)
    tracked = tracking(ship, shipment["trackingNumber"].lower())
    assert tracked["trackingNumber"] == shipment["trackingNumber"] and tracked["status"] == "label_created"
    [created] = tracked["history"]
    assert created["status"] == "label_created" and created["at"]
    assert ship.get("/tracking/FC00000000000").status_code == 404


def test_carrier_updates_move_a_parcel_forward_only_and_publish_delivered_once(ship: FlaskClient) -> None:
    order_id, shipment = paid_order(ship)
    number = shipment["trackingNumber"]

    picked_up, arrived = datetime.now(UTC) + timedelta(hours=1), datetime.now(UTC) + timedelta(hours=5)
    moved = carrier_update(ship, number, "in_transit", location="Hub 4", at=picked_up.isoformat())
    assert moved.status_code == 200 and moved.get_json()["applied"] is True
    assert carrier_update(ship, number, "in_transit").get_json()["applied"] is False
    delivered = carrier_update(ship, number, "delivered", at=arrived.isoformat())
    assert delivered.get_json()["applied"] is True and delivered.get_json()["status"] == "delivered"
    assert carrier_update(ship, number, "delivered").get_json()["applied"] is False
    stale = carrier_update(ship, number, "in_transit")
    assert stale.status_code == 200 and stale.get_json()["applied"] is False

    tracked = tracking(ship, number)
    assert tracked["status"] == "delivered" and tracked["deliveredAt"] == iso(arrived)
    assert [(h["status"], h["location"]) for h in tracked["history"]][1:] == [("in_transit", "Hub 4"),
                                                                              ("delivered", None)]
    assert outbox("shipping.delivered") == [{
        "orderId": order_id, "shipmentId": shipment["id"], "trackingNumber": number,
        "deliveredAt": iso(arrived), "carrier": "fusion-offline", "customerId": "cust-7",
    }]


def test_carrier_updates_are_checked(ship: FlaskClient) -> None:
    _, shipment = paid_order(ship)
    bad_status = carrier_update(ship, shipment["trackingNumber"], "lost")
    assert bad_status.status_code == 400 and bad_status.get_json()["field"] == "status"
    bad_time = carrier_update(ship, shipment["trackingNumber"], "in_transit", at="yesterday")
    assert bad_time.status_code == 400 and bad_time.get_json()["field"] == "at"
    assert carrier_update(ship, "FC99999999999", "delivered").status_code == 404
    assert tracking(ship, shipment["trackingNumber"])["status"] == "label_created"


def test_carrier_updates_need_the_shared_secret_when_one_is_set(ship: FlaskClient,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _, shipment = paid_order(ship)
    monkeypatch.setenv("SHIPPING_CARRIER_SECRET", "s3cret")
    body = {"trackingNumber": shipment["trackingNumber"], "status": "in_transit"}

    assert ship.post("/carrier/updates", json=body).status_code == 401
    assert ship.post("/carrier/updates", json=body, headers={"X-Carrier-Secret": "guess"}).status_code == 401
    accepted = ship.post("/carrier/updates", json=body, headers={"X-Carrier-Secret": "s3cret"})
    assert accepted.status_code == 200 and accepted.get_json()["status"] == "in_transit"


def test_the_built_in_carrier_advances_a_parcel_one_step_at_a_time(ship: FlaskClient) -> None:
    order_id, shipment = paid_order(ship)
    number = shipment["trackingNumber"]

    assert advance_shipment(number) == "in_transit"
    assert advance_shipment(number) == "delivered"
    assert advance_shipment(number) == "delivered"

    assert [h["status"] for h in tracking(ship, number)["history"]] == ["label_created", "in_transit", "delivered"]
    assert [e["orderId"] for e in outbox("shipping.delivered")] == [order_id]
    with pytest.raises(UnknownTrackingNumber):
        advance_shipment("FC00000000000")


# refunds


def test_a_refund_voids_a_label_not_yet_picked_up_and_the_order_is_never_shipped(ship: FlaskClient) -> None:
    order_id, shipment = paid_order(ship)
    assert deliver(ship, "void-refunded-shipment", payment_refunded(order_id)) == 204

    tracked = tracking(ship, shipment["trackingNumber"])
    assert tracked["status"] == "cancelled" and tracked["history"][-1]["status"] == "cancelled"
    assert carrier_update(ship, shipment["trackingNumber"], "in_transit").get_json()["applied"] is False
    assert advance_shipment(shipment["trackingNumber"]) == "cancelled"
    assert ship.post("/shipments", json={"orderId": order_id}).status_code == 409
    assert outbox("shipping.delivered") == []


def test_a_refund_after_pickup_leaves_the_parcel_moving(ship: FlaskClient) -> None:
    order_id, shipment = paid_order(ship)
    assert advance_shipment(shipment["trackingNumber"]) == "in_transit"
    assert deliver(ship, "void-refunded-shipment", payment_refunded(order_id)) == 204
    assert tracking(ship, shipment["trackingNumber"])["status"] == "in_transit"


def test_a_refund_that_arrives_before_the_payment_event_prevents_the_shipment(ship: FlaskClient) -> None:
    order_id = str(uuid.uuid4())
    assert deliver(ship, "void-refunded-shipment", payment_refunded(order_id)) == 204
    assert deliver(ship, "ship-paid-order", payment_succeeded(order_id)) == 204
    assert ship.get(f"/shipments?orderId={order_id}").get_json() == []
    assert outbox("shipping.label.created") == []


def test_a_payment_event_with_a_bad_payload_is_dead_lettered(ship: FlaskClient) -> None:
    event = Event({**payment_succeeded("o-1").attributes}, b'{"orderId": "o-1"}')
    assert deliver(ship, "ship-paid-order", event) == 400


def test_the_service_answers_health(ship: FlaskClient) -> None:
    response = ship.get("/health")
    assert response.status_code == 200 and response.get_json()["service"] == "shipping"


def test_a_customer_sees_only_its_own_shipments_and_labels(ship: FlaskClient, tokens: Tokens) -> None:
    _, alices = paid_order(ship, customer="alice")
    paid_order(ship, customer="bob")
    as_alice = {"Authorization": f"Bearer {tokens.customer('alice')}"}
    as_bob = {"Authorization": f"Bearer {tokens.customer('bob')}"}
    for path in (f"/shipments/{alices['id']}", f"/shipments/{alices['id']}/label"):
        assert ship.get(path, headers=as_alice).status_code == 200
        assert ship.get(path, headers=as_bob).status_code == 404
    assert [s["customerId"] for s in ship.get("/shipments", headers=as_bob).get_json()] == ["bob"]
    assert ship.get(f"/tracking/{alices['trackingNumber']}", headers={"Authorization": ""}).status_code == 200
