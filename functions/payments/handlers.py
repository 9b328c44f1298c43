"""Payments' event handlers: the order projection, and a PaymentIntent once an order's stock is reserved.

An order becomes payable when both order.created (total, currency, customer) and
inventory.reserved have arrived, in either order; whichever arrives second starts the payment.
order.cancelled, order.failed and order.expired make it unpayable for good, and refund a payment
that already succeeded.
"""

from __future__ import annotations

from typing import Any

from functions.payments import flow, store
from functions.payments.store import SERVICE
from fusion.binding import Event
from fusion.contracts import InventoryReserved, OrderCancelled, OrderCreated, OrderExpired, OrderFailed
from fusion.declare import UnprocessableEvent, event_handler, payload_of
from fusion.money import MoneyError, normalise_currency, to_minor
from fusion.registry import PAYMENT_EVENTS
from fusion.topics import topic
from fusion.uow import UnitOfWork

CLOSING_EVENTS: dict[str, tuple[type[OrderCancelled | OrderFailed | OrderExpired], str]] = {
    topic("order.cancelled").type: (OrderCancelled, "cancelled"),
    topic("order.failed").type: (OrderFailed, "failed"),
    topic("order.expired").type: (OrderExpired, "expired"),
}


def _start_if_payable(uow: UnitOfWork, order: Any) -> None:
    if store.facts_of(order).payable:
        flow.start_payment(uow, order)


@event_handler("record-order-for-payment", service=SERVICE, topics=["order.created"], delivery=PAYMENT_EVENTS)
def record_order_for_payment(event: Event, uow: UnitOfWork) -> None:
    """Remember an order's total, currency and customer; start its payment if its stock was reserved first."""
    order = payload_of(event, OrderCreated)
    try:
        currency = normalise_currency(order.currency)
        total_minor = to_minor(order.total, currency)
    except MoneyError as exc:
        raise UnprocessableEvent(f"order {order.order_id}: total {order.total} {order.currency}: {exc}") from None
    row = store.record_order_details(uow, order.order_id, order.customer_id, total_minor, currency)
    _start_if_payable(uow, row)


@event_handler("start-payment", service=SERVICE, topics=["inventory.reserved"], delivery=PAYMENT_EVENTS)
def start_payment(event: Event, uow: UnitOfWork) -> None:
    """The order's stock is reserved: create its payment and Stripe PaymentIntent, publish payment.created."""
    reserved = payload_of(event, InventoryReserved)
    row = store.record_reservation(uow, reserved.order_id)
    _start_if_payable(uow, row)


@event_handler("close-order-payment", service=SERVICE, topics=["order.cancelled", "order.failed", "order.expired"],
               delivery=PAYMENT_EVENTS)
def close_order_payment(event: Event, uow: UnitOfWork) -> None:
    """The order will not be fulfilled: it can no longer be paid, and a succeeded payment is refunded."""
    contract, closed_as = CLOSING_EVENTS[event.type]
    closing = payload_of(event, contract)
    flow.close_order(uow, closing.order_id, closed_as)
