"""Shipping's tables: paid orders (a projection of payment events), shipments, labels and tracking
history. Locks are taken order row first, shipment row second."""

from __future__ import annotations

import os
import uuid
from datetime import datetime
from typing import Any

from functions.shipping.rules import public_url
from fusion.config import settings
from fusion.contracts import LabelCreated, ShipmentDelivered
from fusion.db import Connection
from fusion.registry import service_named
from fusion.uow import UnitOfWork

SERVICE = "shipping"
PUBLIC_URL_ENV = "SHIPPING_PUBLIC_URL"
PAID_ORDER_COLUMNS = "order_id, payment_id, customer_id, paid_at, refunded_at"
SHIPMENT_COLUMNS = (
    "id, order_id, customer_id, carrier, tracking_number, status, label_url, recipient, "
    "created_at, updated_at, delivered_at"
)


def label_url(shipment_id: uuid.UUID) -> str:
    """Where the shipment's label is served: SHIPPING_PUBLIC_URL, or PUBLIC_BASE_URL (on port 3005 locally)."""
    config = settings()
    base = public_url(os.environ.get(PUBLIC_URL_ENV, "").strip() or None, config.public_base_url,
                      config.environment, service_named(SERVICE).local_port)
    return f"{base}/shipments/{shipment_id}/label"


def uuid_or_none(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def record_payment(uow: UnitOfWork, order_id: str, payment_id: str, customer_id: str | None) -> Any:
    """The order is paid; returns its row, locked until the unit of work ends."""
    return uow.execute(
        "INSERT INTO shipping.paid_orders (order_id, payment_id, customer_id, paid_at) "
        "VALUES (:order_id, :payment_id, :customer_id, now()) ON CONFLICT (order_id) DO UPDATE SET "
        "payment_id = EXCLUDED.payment_id, "
        "customer_id = coalesce(EXCLUDED.customer_id, shipping.paid_orders.customer_id), "
        f"paid_at = coalesce(shipping.paid_orders.paid_at, EXCLUDED.paid_at) RETURNING {PAID_ORDER_COLUMNS}",
        {"order_id": order_id, "payment_id": payment_id, "customer_id": customer_id},
    ).one()


def record_refund(uow: UnitOfWork, order_id: str) -> Any:
    """The order's money went back: it is never shipped (even if payment.succeeded arrives later)."""
    return uow.execute(
        "INSERT INTO shipping.paid_orders (order_id, refunded_at) VALUES (:order_id, now()) "
        "ON CONFLICT (order_id) DO UPDATE SET "
        f"refunded_at = coalesce(shipping.paid_orders.refunded_at, now()) RETURNING {PAID_ORDER_COLUMNS}",
        {"order_id": order_id},
    ).one()


def lock_paid_order(uow: UnitOfWork, order_id: str) -> Any:
    return uow.execute(
        f"SELECT {PAID_ORDER_COLUMNS} FROM shipping.paid_orders WHERE order_id = :id FOR UPDATE", {"id": order_id}
    ).first()


def shippable(paid_order: Any) -> bool:
    return paid_order is not None and paid_order.paid_at is not None and paid_order.refunded_at is None


def shipment_of_order(uow: UnitOfWork, order_id: str) -> Any:
    return uow.execute(
        f"SELECT {SHIPMENT_COLUMNS} FROM shipping.shipments WHERE order_id = :id FOR UPDATE", {"id": order_id}
    ).first()


def lock_shipment_by_tracking(uow: UnitOfWork, tracking_number: str) -> Any:
    return uow.execute(
        f"SELECT {SHIPMENT_COLUMNS} FROM shipping.shipments WHERE tracking_number = :tn FOR UPDATE",
        {"tn": tracking_number},
    ).first()


def insert_shipment(uow: UnitOfWork, values: dict[str, Any]) -> Any:
    return uow.execute(
        "INSERT INTO shipping.shipments (id, order_id, customer_id, carrier, tracking_number, status, label_url, "
        "recipient, created_at, updated_at) VALUES (:id, :order_id, :customer_id, :carrier, :tracking_number, "
        f"'label_created', :label_url, :recipient, :created_at, :created_at) RETURNING {SHIPMENT_COLUMNS}",
        values,
    ).one()


def insert_label(uow: UnitOfWork, shipment_id: uuid.UUID, content_type: str, document: bytes) -> None:
    uow.execute(
        "INSERT INTO shipping.labels (shipment_id, content_type, document) VALUES (:id, :type, :document)",
        {"id": shipment_id, "type": content_type, "document": document},
    )


def add_tracking_event(uow: UnitOfWork, shipment_id: uuid.UUID, status: str, description: str,
                       location: str | None, occurred_at: datetime) -> None:
    uow.execute(
        "INSERT INTO shipping.tracking_events (shipment_id, status, description, location, occurred_at) "
        "VALUES (:id, :status, :description, :location, :at)",
        {"id": shipment_id, "status": status, "description": description, "location": location, "at": occurred_at},
    )


def set_status(uow: UnitOfWork, shipment_id: uuid.UUID, status: str, at: datetime) -> Any:
    return uow.execute(
        "UPDATE shipping.shipments SET status = :status, updated_at = now(), "
        "delivered_at = CASE WHEN :status = 'delivered' THEN CAST(:at AS timestamptz) ELSE delivered_at END "
        f"WHERE id = :id RETURNING {SHIPMENT_COLUMNS}",
        {"id": shipment_id, "status": status, "at": at},
    ).one()


def shipment_view(row: Any) -> dict[str, Any]:
    """A shipment as the API returns it."""
    return {
        "id": str(row.id),
        "orderId": row.order_id,
        "customerId": row.customer_id,
        "carrier": row.carrier,
        "trackingNumber": row.tracking_number,
        "status": row.status,
        "labelUrl": row.label_url,
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
        "deliveredAt": row.delivered_at,
    }


def history(conn: Connection, shipment_id: uuid.UUID) -> list[dict[str, Any]]:
    """The shipment's tracking history, oldest first."""
    rows = conn.execute(
        "SELECT status, description, location, occurred_at FROM shipping.tracking_events "
             "WHERE shipment_id = :id ORDER BY occurred_at, id",
        {"id": shipment_id},
    ).all()
    return [{"status": r.status, "description": r.description, "location": r.location, "at": r.occurred_at}
            for r in rows]


def publish_label_created(uow: UnitOfWork, row: Any) -> None:
    payload = LabelCreated(order_id=row.order_id, shipment_id=str(row.id), tracking_number=row.tracking_number,
                           carrier=row.carrier, label_url=row.label_url, customer_id=row.customer_id)
    uow.publish("shipping.label.created", str(row.id), payload, partition_key=row.order_id)


def publish_delivered(uow: UnitOfWork, row: Any) -> None:
    payload = ShipmentDelivered(order_id=row.order_id, shipment_id=str(row.id), tracking_number=row.tracking_number,
                                delivered_at=row.delivered_at, carrier=row.carrier, customer_id=row.customer_id)
    uow.publish("shipping.delivered", str(row.id), payload, partition_key=row.order_id)
