"""The order follows the saga: each handler moves the order through the state machine.

A stale or duplicate event, or one for an unknown order, changes nothing and is acknowledged.
"""

from __future__ import annotations

import logging
import uuid

from functions.orders.lifecycle import OrderStatus
from functions.orders.store import Transition, move_order, parse_order_id
from fusion import logs
from fusion.binding import Event
from fusion.contracts import (
    InventoryInsufficient,
    InventoryReserved,
    LabelCreated,
    OrderConfirmed,
    OrderFailed,
    PaymentFailed,
    PaymentSucceeded,
    ShipmentDelivered,
)
from fusion.declare import UnprocessableEvent, event_handler, payload_of
from fusion.money import to_decimal
from fusion.registry import PAYMENT_EVENTS, RESERVATION_EVENTS, SHIPPING_EVENTS
from fusion.uow import UnitOfWork

SERVICE = "orders"
log = logging.getLogger(__name__)


def _order_id(value: str) -> uuid.UUID:
    order_id = parse_order_id(value)
    if order_id is None:
        raise UnprocessableEvent(f"orderId {value!r} is not an order id")
    return order_id


def advance(uow: UnitOfWork, order_id: str, target: OrderStatus, reason: str | None = None) -> Transition | None:
    """Move the order to `target` if the state machine allows it; None (logged) when it does not."""
    parsed = _order_id(order_id)
    logs.bind(orderId=str(parsed))
    moved = move_order(uow, parsed, target, reason)
    if moved is None:
        log.info("order %s not moved to %s: unknown order, or a stale or duplicate event", parsed, target)
    return moved


def _publish_failed(uow: UnitOfWork, moved: Transition, reason: str) -> None:
    order = moved.order
    uow.publish("order.failed", subject=str(order.id),
                payload=OrderFailed(order_id=str(order.id), customer_id=order.customer_id, reason=reason))


def insufficient_stock_reason(shortage: InventoryInsufficient) -> str:
    if shortage.available <= 0:
        return f"sku {shortage.sku} is out of stock (requested {shortage.requested})"
    return f"insufficient stock for sku {shortage.sku}: requested {shortage.requested}, available {shortage.available}"


@event_handler("confirm-order", service=SERVICE, topics=["inventory.reserved"], delivery=RESERVATION_EVENTS)
def confirm_order(event: Event, uow: UnitOfWork) -> None:
    """Stock is reserved: the order is confirmed (order.confirmed)."""
    reserved = payload_of(event, InventoryReserved)
    moved = advance(uow, reserved.order_id, OrderStatus.CONFIRMED, "stock reserved")
    if moved is not None:
        order = moved.order
        uow.publish("order.confirmed", subject=str(order.id), payload=OrderConfirmed(
            order_id=str(order.id), customer_id=order.customer_id,
            total=to_decimal(order.total_minor, order.currency), currency=order.currency,
        ))


@event_handler("fail-order-out-of-stock", service=SERVICE, topics=["inventory.insufficient"],
               delivery=RESERVATION_EVENTS)
def fail_order_out_of_stock(event: Event, uow: UnitOfWork) -> None:
    """Stock could not be reserved: the order fails with the reason (order.failed)."""
    shortage = payload_of(event, InventoryInsufficient)
    reason = insufficient_stock_reason(shortage)
    moved = advance(uow, shortage.order_id, OrderStatus.FAILED, reason)
    if moved is not None:
        _publish_failed(uow, moved, reason)


@event_handler("mark-order-paid", service=SERVICE, topics=["payment.succeeded"], delivery=PAYMENT_EVENTS)
def mark_order_paid(event: Event, uow: UnitOfWork) -> None:
    """The payment succeeded: the order is paid."""
    payment = payload_of(event, PaymentSucceeded)
    advance(uow, payment.order_id, OrderStatus.PAID, f"payment {payment.payment_id} succeeded")


@event_handler("fail-order-payment", service=SERVICE, topics=["payment.failed"], delivery=PAYMENT_EVENTS)
def fail_order_payment(event: Event, uow: UnitOfWork) -> None:
    """The payment failed: the order fails with the payment's reason (order.failed)."""
    payment = payload_of(event, PaymentFailed)
    reason = f"payment failed: {payment.reason}"
    moved = advance(uow, payment.order_id, OrderStatus.FAILED, reason)
    if moved is not None:
        _publish_failed(uow, moved, reason)


@event_handler("mark-order-shipped", service=SERVICE, topics=["shipping.label.created"], delivery=SHIPPING_EVENTS)
def mark_order_shipped(event: Event, uow: UnitOfWork) -> None:
    """A shipping label exists: the order is shipped."""
    label = payload_of(event, LabelCreated)
    advance(uow, label.order_id, OrderStatus.SHIPPED, f"{label.carrier} tracking number {label.tracking_number}")


@event_handler("mark-order-delivered", service=SERVICE, topics=["shipping.delivered"], delivery=SHIPPING_EVENTS)
def mark_order_delivered(event: Event, uow: UnitOfWork) -> None:
    """The carrier delivered the parcel: the order is delivered."""
    delivery = payload_of(event, ShipmentDelivered)
    advance(uow, delivery.order_id, OrderStatus.DELIVERED, f"delivered, tracking number {delivery.tracking_number}")
