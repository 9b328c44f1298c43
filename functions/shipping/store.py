"""Shipping's tables: paid orders (a projection of payment events), shipments, labels and tracking
history. Locks are taken order row first, shipment row second.

A label row is written when the order ships: with its document when the carrier sold one ready,
otherwise with what printing it needs (the sender as it was then) and a NULL document, filled on the
label's first download and kept from then on."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime

from fusion.contracts import LabelCreated, ShipmentDelivered
from fusion.db import Sql
from fusion.listing import Listing, Page
from fusion.uow import UnitOfWork

SERVICE = "shipping"
PAID_ORDER_COLUMNS = "order_id, payment_id, customer_id, paid_at, refunded_at"
SHIPMENT_COLUMNS = (
    "id, order_id, customer_id, carrier, tracking_number, status, label_url, recipient, "
    "created_at, updated_at, delivered_at"
)


@dataclass(frozen=True)
class PaidOrder:
    """What shipping knows about an order from its payment events."""

    order_id: str
    payment_id: str | None
    customer_id: str | None
    paid_at: datetime | None
    refunded_at: datetime | None

    @property
    def shippable(self) -> bool:
        return self.paid_at is not None and self.refunded_at is None


@dataclass(frozen=True)
class Shipment:
    id: uuid.UUID
    order_id: str
    customer_id: str | None
    carrier: str
    tracking_number: str
    status: str
    label_url: str
    recipient: str
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class NewShipment:
    """A shipment about to be stored, its label bought (it starts as label_created)."""

    id: uuid.UUID
    order_id: str
    customer_id: str | None
    carrier: str
    tracking_number: str
    label_url: str
    recipient: str
    created_at: datetime


@dataclass(frozen=True)
class Label:
    content_type: str
    document: bytes | None  # None: not printed yet
    tracking_number: str
    sender: list[str] | None  # the return address when the order shipped (None on labels stored before it was kept)


@dataclass(frozen=True)
class TrackingEvent:
    status: str
    description: str
    location: str | None
    occurred_at: datetime



def record_payment(db: Sql, order_id: str, payment_id: str, customer_id: str | None) -> PaidOrder:
    """The order is paid; returns its row, locked until the unit of work ends."""
    return db.execute(
        "INSERT INTO shipping.paid_orders (order_id, payment_id, customer_id, paid_at) "
        "VALUES (:order_id, :payment_id, :customer_id, now()) ON CONFLICT (order_id) DO UPDATE SET "
        "payment_id = EXCLUDED.payment_id, "
        "customer_id = coalesce(EXCLUDED.customer_id, shipping.paid_orders.customer_id), "
        f"paid_at = coalesce(shipping.paid_orders.paid_at, EXCLUDED.paid_at) RETURNING {PAID_ORDER_COLUMNS}",
        {"order_id": order_id, "payment_id": payment_id, "customer_id": customer_id},
    ).one_as(PaidOrder)


def record_refund(db: Sql, order_id: str) -> PaidOrder:
    """The order's money went back: it is never shipped (even if payment.succeeded arrives later)."""
    return db.execute(
        "INSERT INTO shipping.paid_orders (order_id, refunded_at) VALUES (:order_id, now()) "
        "ON CONFLICT (order_id) DO UPDATE SET "
        f"refunded_at = coalesce(shipping.paid_orders.refunded_at, now()) RETURNING {PAID_ORDER_COLUMNS}",
        {"order_id": order_id},
    ).one_as(PaidOrder)


def lock_paid_order(db: Sql, order_id: str) -> PaidOrder | None:
    return db.execute(
        f"SELECT {PAID_ORDER_COLUMNS} FROM shipping.paid_orders WHERE order_id = :id FOR UPDATE", {"id": order_id}
    ).first_as(PaidOrder)


def _shipment_where(db: Sql, column: str, value: object, *, lock: bool) -> Shipment | None:
    """The shipment whose `column` (a unique one) is `value`; locked until the unit of work ends if `lock`."""
    locking = " FOR UPDATE" if lock else ""
    return db.execute(
        f"SELECT {SHIPMENT_COLUMNS} FROM shipping.shipments WHERE {column} = :value{locking}", {"value": value}
    ).first_as(Shipment)


def lock_shipment_of_order(db: Sql, order_id: str) -> Shipment | None:
    return _shipment_where(db, "order_id", order_id, lock=True)


def lock_shipment_by_tracking(db: Sql, tracking_number: str) -> Shipment | None:
    return _shipment_where(db, "tracking_number", tracking_number, lock=True)


def find_shipment(db: Sql, shipment_id: uuid.UUID) -> Shipment | None:
    return _shipment_where(db, "id", shipment_id, lock=False)


def find_shipment_by_tracking(db: Sql, tracking_number: str) -> Shipment | None:
    return _shipment_where(db, "tracking_number", tracking_number, lock=False)


def find_shipments(db: Sql, page: Page, *, order_id: str | None, customer_id: str | None) -> list[Shipment]:
    """One page of shipments, oldest first; only the customer's own when `customer_id` is given."""
    listing = Listing("shipping.shipments", SHIPMENT_COLUMNS, order_by="created_at, id")
    if customer_id is not None:
        listing.where("customer_id = :customer_id", customer_id=customer_id)
    if order_id:
        listing.where("order_id = :order_id", order_id=order_id)
    return listing.fetch(db, page, Shipment)


def find_label(db: Sql, shipment_id: uuid.UUID) -> Label | None:
    return db.execute(
        "SELECT l.content_type, l.document, s.tracking_number, l.sender FROM shipping.labels l "
        "JOIN shipping.shipments s ON s.id = l.shipment_id WHERE l.shipment_id = :id",
        {"id": shipment_id},
    ).first_as(Label)


def find_history(db: Sql, shipment_id: uuid.UUID) -> list[TrackingEvent]:
    """The shipment's tracking history, oldest first."""
    return db.execute(
        "SELECT status, description, location, occurred_at FROM shipping.tracking_events "
        "WHERE shipment_id = :id ORDER BY occurred_at, id",
        {"id": shipment_id},
    ).all_as(TrackingEvent)


def insert_shipment(db: Sql, shipment: NewShipment) -> Shipment:
    return db.execute(
        "INSERT INTO shipping.shipments (id, order_id, customer_id, carrier, tracking_number, status, label_url, "
        "recipient, created_at, updated_at) VALUES (:id, :order_id, :customer_id, :carrier, :tracking_number, "
        f"'label_created', :label_url, :recipient, :created_at, :created_at) RETURNING {SHIPMENT_COLUMNS}",
        dataclasses.asdict(shipment),
    ).one_as(Shipment)


def insert_label(db: Sql, shipment_id: uuid.UUID, content_type: str, document: bytes | None,
                 sender: tuple[str, ...]) -> None:
    db.execute(
        "INSERT INTO shipping.labels (shipment_id, content_type, document, sender) "
        "VALUES (:id, :type, :document, :sender)",
        {"id": shipment_id, "type": content_type, "document": document, "sender": list(sender)},
    )


def store_label_document(db: Sql, shipment_id: uuid.UUID, document: bytes) -> bytes:
    """Store the document of a label that has none; the stored one, which an earlier call may have stored."""
    db.execute("UPDATE shipping.labels SET document = :document WHERE shipment_id = :id AND document IS NULL",
               {"id": shipment_id, "document": document})
    # A statement of its own: in READ COMMITTED it sees the document a concurrent first download committed
    # while this one's UPDATE waited for its row lock (and then changed nothing).
    stored = db.execute("SELECT document FROM shipping.labels WHERE shipment_id = :id", {"id": shipment_id}).scalar()
    return bytes(stored)


def add_tracking_event(db: Sql, shipment_id: uuid.UUID, status: str, description: str,
                       location: str | None, occurred_at: datetime) -> None:
    db.execute(
        "INSERT INTO shipping.tracking_events (shipment_id, status, description, location, occurred_at) "
        "VALUES (:id, :status, :description, :location, :at)",
        {"id": shipment_id, "status": status, "description": description, "location": location, "at": occurred_at},
    )


def set_status(db: Sql, shipment_id: uuid.UUID, status: str, at: datetime) -> Shipment:
    return db.execute(
        "UPDATE shipping.shipments SET status = :status, updated_at = now(), "
        "delivered_at = CASE WHEN :status = 'delivered' THEN CAST(:at AS timestamptz) ELSE delivered_at END "
        f"WHERE id = :id RETURNING {SHIPMENT_COLUMNS}",
        {"id": shipment_id, "status": status, "at": at},
    ).one_as(Shipment)


def publish_label_created(uow: UnitOfWork, shipment: Shipment) -> None:
    payload = LabelCreated(order_id=shipment.order_id, shipment_id=str(shipment.id),
                           tracking_number=shipment.tracking_number, carrier=shipment.carrier,
                           label_url=shipment.label_url, customer_id=shipment.customer_id)
    uow.publish("shipping.label.created", str(shipment.id), payload, partition_key=shipment.order_id)


def publish_delivered(uow: UnitOfWork, shipment: Shipment) -> None:
    if shipment.delivered_at is None:
        raise ValueError(f"shipment {shipment.id} is not delivered")
    payload = ShipmentDelivered(order_id=shipment.order_id, shipment_id=str(shipment.id),
                                tracking_number=shipment.tracking_number, delivered_at=shipment.delivered_at,
                                carrier=shipment.carrier, customer_id=shipment.customer_id)
    uow.publish("shipping.delivered", str(shipment.id), payload, partition_key=shipment.order_id)
