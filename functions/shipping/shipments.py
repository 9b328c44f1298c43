"""Shipments: one per paid order, with a carrier label, created when the payment succeeds (or on
request), and voided if the payment is refunded before the parcel leaves.

One shipment per order is guaranteed by the paid-order row's lock (taken first by every path
that creates a shipment) and the unique order id of shipments: only the transaction that finds
no shipment buys a label.
"""

from __future__ import annotations

import uuid
from typing import Any

import flask
from pydantic import BaseModel, ConfigDict, Field

from functions.shipping import store
from functions.shipping.carrier import STATUS_DESCRIPTIONS, Parcel, default_carrier
from functions.shipping.rules import CANCELLED, LABEL_CREATED
from functions.shipping.store import SERVICE, SHIPMENT_COLUMNS, shipment_view, uuid_or_none
from fusion.binding import Event
from fusion.contracts import PaymentRefunded, PaymentSucceeded
from fusion.db import pool
from fusion.declare import command, event_handler, payload_of, query
from fusion.listing import Listing
from fusion.registry import SHIPPING_EVENTS
from fusion.uow import UnitOfWork
from fusion.web import ApiError, json_response, not_found, parse_body, utc_now


def _recipient(paid_order: Any) -> tuple[str, ...]:
    # Orders carry no postal address yet: the label names the customer and the order's address on file.
    who = f"Customer {paid_order.customer_id}" if paid_order.customer_id else "Customer"
    return who, "Delivery address on file"


def ship_order(uow: UnitOfWork, paid_order: Any) -> tuple[Any, bool]:
    """(shipment, created) for a paid order whose row the caller has locked; buys the label once."""
    existing = store.shipment_of_order(uow, paid_order.order_id)
    if existing is not None:
        return existing, False
    carrier = default_carrier()
    shipment_id, now = uuid.uuid4(), utc_now()
    recipient = _recipient(paid_order)
    label = carrier.purchase_label(Parcel(str(shipment_id), paid_order.order_id, recipient, now))
    shipment = store.insert_shipment(uow, {
        "id": shipment_id, "order_id": paid_order.order_id, "customer_id": paid_order.customer_id,
        "carrier": carrier.name, "tracking_number": label.tracking_number,
        "label_url": store.label_url(shipment_id), "recipient": "\n".join(recipient), "created_at": now,
    })
    store.insert_label(uow, shipment_id, label.content_type, label.document)
    store.add_tracking_event(uow, shipment_id, LABEL_CREATED, STATUS_DESCRIPTIONS[LABEL_CREATED], None, now)
    store.publish_label_created(uow, shipment)
    return shipment, True


@event_handler("ship-paid-order", service=SERVICE, topics=["payment.succeeded"], delivery=SHIPPING_EVENTS)
def ship_paid_order(event: Event, uow: UnitOfWork) -> None:
    """The order is paid: buy its label and publish shipping.label.created (once per order)."""
    paid = payload_of(event, PaymentSucceeded)
    paid_order = store.record_payment(uow, paid.order_id, paid.payment_id, paid.customer_id)
    if store.shippable(paid_order):
        ship_order(uow, paid_order)


@event_handler("void-refunded-shipment", service=SERVICE, topics=["payment.refunded"], delivery=SHIPPING_EVENTS)
def void_refunded_shipment(event: Event, uow: UnitOfWork) -> None:
    """The order's money went back: never ship it, and void a label the carrier has not picked up yet."""
    refunded = payload_of(event, PaymentRefunded)
    store.record_refund(uow, refunded.order_id)
    shipment = store.shipment_of_order(uow, refunded.order_id)
    if shipment is not None and shipment.status == LABEL_CREATED:
        now = utc_now()
        store.set_status(uow, shipment.id, CANCELLED, now)
        store.add_tracking_event(uow, shipment.id, CANCELLED, "Label voided: the order's payment was refunded",
                                 None, now)


class ShipmentRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    order_id: str = Field(alias="orderId", min_length=1, max_length=200)


@command("create-shipment", service=SERVICE, routes=["POST /shipments"], body=ShipmentRequest)
def create_shipment(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Ship a paid order (201), or return its shipment (200) when it has one."""
    order_id = parse_body(request, ShipmentRequest).order_id
    paid_order = store.lock_paid_order(uow, order_id)
    if not store.shippable(paid_order):
        why = "its payment was refunded" if paid_order is not None and paid_order.refunded_at else "it is not paid"
        raise ApiError(409, f"order {order_id} cannot be shipped: {why}", code="order_not_shippable")
    shipment, created = ship_order(uow, paid_order)
    return json_response(shipment_view(shipment), 201 if created else 200,
                         headers={"Location": f"/shipments/{shipment.id}"})


@query("list-shipments", service=SERVICE, routes=["GET /shipments"], params=["orderId", "limit", "offset"])
def list_shipments(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """List shipments, oldest first: orderId, limit, offset."""
    listing = Listing("shipping.shipments", SHIPMENT_COLUMNS, order_by="created_at, id")
    if order_id := request.args.get("orderId", "").strip():
        listing.where("order_id = :order_id", order_id=order_id)
    return json_response([shipment_view(row) for row in listing.fetch(request)])


@query("get-shipment", service=SERVICE, routes=["GET /shipments/{id}"])
def get_shipment(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """One shipment by id, with its tracking history."""
    shipment_id = uuid_or_none(params["id"])
    if shipment_id is None:
        raise not_found("shipment", params["id"])
    with pool().connect() as conn:
        row = conn.execute(f"SELECT {SHIPMENT_COLUMNS} FROM shipping.shipments WHERE id = :id",
                           {"id": shipment_id}).first()
        if row is None:
            raise not_found("shipment", params["id"])
        return json_response({**shipment_view(row), "history": store.history(conn, shipment_id)})


@query("get-shipment-label", service=SERVICE, routes=["GET /shipments/{id}/label"])
def get_shipment_label(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """The shipment's printable label (application/pdf)."""
    shipment_id = uuid_or_none(params["id"])
    row = None
    if shipment_id is not None:
        with pool().connect() as conn:
            row = conn.execute(
                "SELECT l.content_type, l.document, s.tracking_number FROM shipping.labels l "
                     "JOIN shipping.shipments s ON s.id = l.shipment_id WHERE l.shipment_id = :id",
                {"id": shipment_id},
            ).first()
    if row is None:
        raise not_found("shipment", params["id"])
    return flask.Response(bytes(row.document), status=200, mimetype=row.content_type, headers={
        "Content-Disposition": f'inline; filename="label-{row.tracking_number}.pdf"',
        "Cache-Control": "private, max-age=86400",
    })
