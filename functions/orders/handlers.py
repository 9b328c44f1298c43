"""The order follows the saga and the catalog, group orders are placed, unpaid orders expire.

Each handler reads its event and hands it to the flow: a stale saga event changes no status (a step
the order has gone past is kept in its history, at the event's time, flagged late); a duplicate, or
an event for an unknown order, changes nothing and is acknowledged; a payload that can never be
processed is refused (dead-lettered at once).

Group orders: every seat of a campaign that formed is charged by payments (its card authorization
captured), and each charged seat (payment.seat.captured) becomes one order at the group price. Events
are delivered at least once, so the order id is derived from the campaign and the user and the order
is only inserted when absent: each seat yields exactly one order, however often its event arrives. A
group order carries its campaign id and runs the normal saga: its stock comes from the campaign's
hold, and payments pays it with the seat's charge (no second charge), so it goes on to shipping.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from functions.orders import flow, store
from functions.orders.flow import GroupSeats, Move, UnpaidOrder
from functions.orders.rules import OrderLine, OrderStatus, insufficient_stock_reason, payment_deadline_passed_before
from fusion import logs
from fusion.binding import Event
from fusion.config import settings
from fusion.contracts import (
    InventoryInsufficient,
    InventoryReserved,
    LabelCreated,
    PaymentFailed,
    PaymentSucceeded,
    ProductCreated,
    ProductUpdated,
    SeatPayment,
    ShipmentDelivered,
)
from fusion.declare import UnprocessableEvent, event_handler, payload_of, scheduled
from fusion.money import MoneyError, to_minor
from fusion.registry import ORDER_EVENTS, PAYMENT_EVENTS, PRODUCT_EVENTS, RESERVATION_EVENTS, SHIPPING_EVENTS
from fusion.topics import topic
from fusion.uow import UnitOfWork, reading, unit_of_work
from fusion.web import utc_now

SERVICE = "orders"
BATCH_SIZE = 200
log = logging.getLogger(__name__)


def order_id_of(value: str) -> uuid.UUID:
    """The order an event names; an id that is not a UUID names no order, and never will."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise UnprocessableEvent(f"orderId {value!r} is not an order id") from None


def _minor_units(amount: Decimal, currency: str, problem: str) -> int:
    try:
        return to_minor(amount, currency)
    except MoneyError as exc:
        raise UnprocessableEvent(f"{problem}: {exc}") from None


def occurred_at(event: Event) -> datetime | None:
    """When the event's fact happened (its `time`); None when it carries no time that can be read."""
    stamp = event.attributes.get("time")
    if not stamp:
        return None
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _follow(event: Event, order_id: str, target: OrderStatus, reason: str, uow: UnitOfWork) -> None:
    flow.follow_saga(Move(order_id_of(order_id), target, reason, occurred_at=occurred_at(event)), uow)


# the saga


@event_handler("confirm-order", service=SERVICE, topics=["inventory.reserved"], delivery=RESERVATION_EVENTS)
def confirm_order(event: Event, uow: UnitOfWork) -> None:
    """Stock is reserved: the order is confirmed (order.confirmed)."""
    reserved = payload_of(event, InventoryReserved)
    _follow(event, reserved.order_id, OrderStatus.CONFIRMED, "stock reserved", uow)


@event_handler("fail-order-out-of-stock", service=SERVICE, topics=["inventory.insufficient"],
               delivery=RESERVATION_EVENTS)
def fail_order_out_of_stock(event: Event, uow: UnitOfWork) -> None:
    """Stock could not be reserved: the order fails with the reason (order.failed)."""
    shortage = payload_of(event, InventoryInsufficient)
    reason = insufficient_stock_reason(shortage)
    _follow(event, shortage.order_id, OrderStatus.FAILED, reason, uow)


@event_handler("mark-order-paid", service=SERVICE, topics=["payment.succeeded"], delivery=PAYMENT_EVENTS)
def mark_order_paid(event: Event, uow: UnitOfWork) -> None:
    """The payment succeeded: the order is paid."""
    payment = payload_of(event, PaymentSucceeded)
    reason = f"payment {payment.payment_id} succeeded"
    _follow(event, payment.order_id, OrderStatus.PAID, reason, uow)


@event_handler("fail-order-payment", service=SERVICE, topics=["payment.failed"], delivery=PAYMENT_EVENTS)
def fail_order_payment(event: Event, uow: UnitOfWork) -> None:
    """The payment failed: the order fails with the payment's reason (order.failed)."""
    payment = payload_of(event, PaymentFailed)
    reason = f"payment failed: {payment.reason}"
    _follow(event, payment.order_id, OrderStatus.FAILED, reason, uow)


@event_handler("mark-order-shipped", service=SERVICE, topics=["shipping.label.created"], delivery=SHIPPING_EVENTS)
def mark_order_shipped(event: Event, uow: UnitOfWork) -> None:
    """A shipping label exists: the order is shipped."""
    label = payload_of(event, LabelCreated)
    reason = f"{label.carrier} tracking number {label.tracking_number}"
    _follow(event, label.order_id, OrderStatus.SHIPPED, reason, uow)


@event_handler("mark-order-delivered", service=SERVICE, topics=["shipping.delivered"], delivery=SHIPPING_EVENTS)
def mark_order_delivered(event: Event, uow: UnitOfWork) -> None:
    """The carrier delivered the parcel: the order is delivered."""
    delivery = payload_of(event, ShipmentDelivered)
    reason = f"delivered, tracking number {delivery.tracking_number}"
    _follow(event, delivery.order_id, OrderStatus.DELIVERED, reason, uow)


# the catalog's prices, so client prices are never trusted blindly


@event_handler("record-product-price", service=SERVICE, topics=["product.created", "product.updated"],
               delivery=PRODUCT_EVENTS)
def record_product_price(event: Event, uow: UnitOfWork) -> None:
    """Keep the sku's newest price and currency for checking the prices of new orders: a late or redelivered
    announcement of an older price changes nothing."""
    product: ProductCreated | ProductUpdated
    if event.type == topic("product.updated").type:
        product = payload_of(event, ProductUpdated)
    else:
        product = payload_of(event, ProductCreated)
    try:
        price = flow.announced_price(product)
    except MoneyError as exc:
        raise UnprocessableEvent(f"product {product.sku} has an invalid price: {exc}") from None
    flow.record_price(price, uow)


# group orders: every charged seat of a campaign that formed becomes one order at the group price


def _seat_order(seat: SeatPayment) -> GroupSeats:
    campaign = seat.campaign
    if campaign is None:
        raise UnprocessableEvent(f"seat payment {seat.payment_id} does not say which campaign it paid for")
    price_minor = _minor_units(campaign.group_price, campaign.currency,
                               f"campaign {campaign.id} has an invalid group price")
    line = OrderLine(sku=campaign.sku, quantity=1, price_minor=price_minor)
    return GroupSeats(campaign.id, line, campaign.currency, (seat.user_id,))


@event_handler("create-group-order", service=SERVICE, topics=["payment.seat.captured"], delivery=ORDER_EVENTS)
def create_group_order(event: Event, uow: UnitOfWork) -> None:
    """A seat of a campaign that formed was charged: its order at the group price, paid by that charge."""
    flow.place_group_orders(_seat_order(payload_of(event, SeatPayment)), uow)


# confirmed orders not paid within the hold time are cancelled, so their stock is released


def expire_unpaid(hold_seconds: int, now: datetime | None = None, batch_size: int = BATCH_SIZE) -> list[str]:
    """Cancel every confirmed order unpaid for longer than `hold_seconds`, each in its own transaction;
    the ids of those cancelled."""
    cutoff = payment_deadline_passed_before(now or utc_now(), hold_seconds)
    expired: list[str] = []
    while True:
        with reading(SERVICE) as db:
            overdue = store.confirmed_before(db, cutoff, batch_size)
        expired += [str(order_id) for order_id in overdue if _cancel_unpaid(order_id)]
        if len(overdue) < batch_size:
            return expired


def _cancel_unpaid(order_id: uuid.UUID) -> bool:
    with logs.log_context(orderId=str(order_id)), unit_of_work(SERVICE) as uow:
        return flow.cancel_unpaid(UnpaidOrder(order_id), uow)


@scheduled("expire-unpaid-orders", service=SERVICE, schedule="* * * * *")
def expire_unpaid_orders(event: Event) -> None:
    """Cancel confirmed orders not paid within ORDER_HOLD_SECONDS (order.cancelled, "payment not received in time")."""
    expired = expire_unpaid(settings().order_hold_seconds)
    if expired:
        log.info("cancelled %d unpaid orders", len(expired))
