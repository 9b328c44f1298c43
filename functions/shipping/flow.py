"""Shipments: one per paid order, with a carrier label, created when the payment succeeds (or on
request), voided if the payment is refunded before the parcel leaves, and moved along by the
carrier's updates.

One shipment per order is guaranteed by the paid-order row's lock (taken first by every path
that creates a shipment) and the unique order id of shipments: only the transaction that finds
no shipment buys a label.

The label is bought while the order ships, but the built-in carrier prints its document only when
the label is first downloaded: from the shipment and the sender stored with the label then, so it
reads as it would have at ship time. The first document stored is kept, and every download answers it.

A shipment only moves forward (label_created → in_transit → delivered); a repeated or stale
carrier update changes nothing, so a carrier retrying it is harmless. Reaching delivered
publishes shipping.delivered, once.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import Field

from functions.shipping import store
from functions.shipping.carrier import (
    OFFLINE_CARRIER,
    STATUS_DESCRIPTIONS,
    LabelToPrint,
    Parcel,
    carrier_named,
    default_carrier,
)
from functions.shipping.rules import CANCELLED, DELIVERED, LABEL_CREATED, can_move, public_url
from functions.shipping.store import SERVICE, Label, NewShipment, PaidOrder, Shipment
from fusion.config import settings
from fusion.errors import Conflict, NotFound
from fusion.registry import service_named
from fusion.uow import UnitOfWork, unit_of_work
from fusion.web import Body, utc_now

PUBLIC_URL_ENV = "SHIPPING_PUBLIC_URL"


class ShipmentRequest(Body):
    order_id: str = Field(alias="orderId", min_length=1, max_length=200)


class CarrierUpdate(Body):
    free_text = frozenset({"description"})

    tracking_number: str = Field(alias="trackingNumber", min_length=1, max_length=64)
    status: Literal["in_transit", "delivered"]
    at: datetime | None = None
    location: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=500)


@dataclass(frozen=True)
class OrderPaid:
    order_id: str
    payment_id: str
    customer_id: str | None


@dataclass(frozen=True)
class OrderRefunded:
    order_id: str


class UnknownTrackingNumber(NotFound):
    def __init__(self, tracking_number: str):
        super().__init__("tracking number", tracking_number)


def normalised_tracking_number(raw: str) -> str:
    return raw.strip().upper()


# Use cases


def ship_paid_order(paid: OrderPaid, uow: UnitOfWork) -> None:
    """The order is paid: buy its label and publish shipping.label.created (once per order)."""
    paid_order = store.record_payment(uow, paid.order_id, paid.payment_id, paid.customer_id)
    if paid_order.shippable:
        _ship(uow, paid_order)


def void_refunded_order(refunded: OrderRefunded, uow: UnitOfWork) -> None:
    """The order's money went back: never ship it, and void a label the carrier has not picked up yet."""
    store.record_refund(uow, refunded.order_id)
    shipment = store.lock_shipment_of_order(uow, refunded.order_id)
    if shipment is not None and shipment.status == LABEL_CREATED:
        now = utc_now()
        store.set_status(uow, shipment.id, CANCELLED, now)
        store.add_tracking_event(uow, shipment.id, CANCELLED, "Label voided: the order's payment was refunded",
                                 None, now)


def ship_on_request(request: ShipmentRequest, uow: UnitOfWork) -> tuple[Shipment, bool]:
    """(shipment, created): ship a paid order, or find the shipment it has."""
    paid_order = store.lock_paid_order(uow, request.order_id)
    if paid_order is None or not paid_order.shippable:
        why = "its payment was refunded" if paid_order is not None and paid_order.refunded_at else "it is not paid"
        raise Conflict(f"order {request.order_id} cannot be shipped: {why}", code="order_not_shippable")
    return _ship(uow, paid_order)


def apply_carrier_update(update: CarrierUpdate, uow: UnitOfWork) -> tuple[Shipment, bool]:
    """(shipment, moved): a carrier reports a parcel in transit or delivered."""
    tracking_number = normalised_tracking_number(update.tracking_number)
    shipment = store.lock_shipment_by_tracking(uow, tracking_number)
    if shipment is None:
        raise UnknownTrackingNumber(tracking_number)
    return _move(uow, shipment, update.status, _moment(update.at), update.description, update.location)


def advance_shipment(tracking_number: str) -> str:
    """Move a built-in-carrier parcel one step along its journey (for the CLI); its status afterwards.

    label_created → in_transit → delivered; a delivered or cancelled parcel stays as it is.
    Raises UnknownTrackingNumber for a tracking number no shipment has.
    """
    with unit_of_work(SERVICE) as uow:
        shipment = store.lock_shipment_by_tracking(uow, normalised_tracking_number(tracking_number))
        if shipment is None:
            raise UnknownTrackingNumber(tracking_number)
        if shipment.carrier != OFFLINE_CARRIER.name:
            raise ValueError(f"{tracking_number} is shipped by {shipment.carrier}, not the built-in carrier")
        scan = OFFLINE_CARRIER.next_scan(shipment.status)
        if scan is None:
            return shipment.status
        moved, _ = _move(uow, shipment, scan.status, utc_now(), scan.description, scan.location)
        return moved.status


def label_document(shipment: Shipment, label: Label) -> bytes:
    """The label's document: as stored, or printed by its carrier now and stored when it has none yet.

    Printing happens outside any transaction. Of two first downloads at once, the first to store its
    document wins and both answer that one, so every download of a label answers the same bytes.
    """
    if label.document is not None:
        return label.document
    if label.sender is None:
        raise ValueError(f"the label of shipment {shipment.id} has neither a document nor what printing it needs")
    parcel = Parcel(str(shipment.id), shipment.order_id, tuple(shipment.recipient.split("\n")), shipment.created_at)
    printed = carrier_named(shipment.carrier).print_label(
        LabelToPrint(parcel, shipment.tracking_number, tuple(label.sender)))
    with unit_of_work(SERVICE) as uow:
        return store.store_label_document(uow, shipment.id, printed)


# Steps


def label_url(shipment_id: uuid.UUID) -> str:
    """Where the shipment's label is served: SHIPPING_PUBLIC_URL, or PUBLIC_BASE_URL (on port 3005 locally)."""
    config = settings()
    base = public_url(os.environ.get(PUBLIC_URL_ENV, "").strip() or None, config.public_base_url,
                      config.environment, service_named(SERVICE).local_port)
    return f"{base}/shipments/{shipment_id}/label"


def _recipient(paid_order: PaidOrder) -> tuple[str, ...]:
    # Orders carry no postal address yet: the label names the customer and the order's address on file.
    who = f"Customer {paid_order.customer_id}" if paid_order.customer_id else "Customer"
    return who, "Delivery address on file"


def _ship(uow: UnitOfWork, paid_order: PaidOrder) -> tuple[Shipment, bool]:
    """(shipment, created) for a paid order whose row the caller has locked; buys the label once."""
    existing = store.lock_shipment_of_order(uow, paid_order.order_id)
    if existing is not None:
        return existing, False
    carrier = default_carrier()
    shipment_id, now = uuid.uuid4(), utc_now()
    recipient = _recipient(paid_order)
    label = carrier.purchase_label(Parcel(str(shipment_id), paid_order.order_id, recipient, now))
    shipment = store.insert_shipment(uow, NewShipment(
        id=shipment_id, order_id=paid_order.order_id, customer_id=paid_order.customer_id, carrier=carrier.name,
        tracking_number=label.tracking_number, label_url=label_url(shipment_id), recipient="\n".join(recipient),
        created_at=now,
    ))
    store.insert_label(uow, shipment_id, label.content_type, label.document, label.sender)
    store.add_tracking_event(uow, shipment_id, LABEL_CREATED, STATUS_DESCRIPTIONS[LABEL_CREATED], None, now)
    store.publish_label_created(uow, shipment)
    return shipment, True


def _moment(at: datetime | None) -> datetime:
    """When a carrier's scan happened: now when it does not say; UTC when it gives no zone."""
    if at is None:
        return utc_now()
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _move(uow: UnitOfWork, shipment: Shipment, status: str, at: datetime,
          description: str | None = None, location: str | None = None) -> tuple[Shipment, bool]:
    """(shipment, moved): move a locked shipment forward to `status`; anything else changes nothing."""
    if not can_move(shipment.status, status):
        return shipment, False
    moved = store.set_status(uow, shipment.id, status, at)
    store.add_tracking_event(uow, shipment.id, status, description or STATUS_DESCRIPTIONS[status], location, at)
    if status == DELIVERED:
        store.publish_delivered(uow, moved)
    return moved, True
