"""Shipping's event handlers: a label for every paid order, and no parcel for a refunded one."""

from __future__ import annotations

from functions.shipping import flow
from functions.shipping.flow import OrderPaid, OrderRefunded
from functions.shipping.store import SERVICE
from fusion.binding import Event
from fusion.contracts import PaymentRefunded, PaymentSucceeded
from fusion.declare import event_handler, payload_of
from fusion.registry import SHIPPING_EVENTS
from fusion.uow import UnitOfWork


@event_handler("ship-paid-order", service=SERVICE, topics=["payment.succeeded"], delivery=SHIPPING_EVENTS)
def ship_paid_order(event: Event, uow: UnitOfWork) -> None:
    """The order is paid: buy its label and publish shipping.label.created (once per order)."""
    paid = payload_of(event, PaymentSucceeded)
    flow.ship_paid_order(OrderPaid(paid.order_id, paid.payment_id, paid.customer_id), uow)


@event_handler("void-refunded-shipment", service=SERVICE, topics=["payment.refunded"], delivery=SHIPPING_EVENTS)
def void_refunded_shipment(event: Event, uow: UnitOfWork) -> None:
    """The order's money went back: never ship it, and void a label the carrier has not picked up yet."""
    refunded = payload_of(event, PaymentRefunded)
    flow.void_refunded_order(OrderRefunded(refunded.order_id), uow)
