"""Inventory's CloudEvent functions: stock for new products; stock reserved, released and sold for orders;
stock held for group campaigns and given back when they end."""

from __future__ import annotations

from functions.inventory import flow
from functions.inventory.flow import CampaignEnd, CampaignHold, InitialStock, OrderStock, Reservation
from functions.inventory.rules import requested_quantities
from functions.inventory.store import SERVICE
from fusion import logs
from fusion.binding import Event
from fusion.contracts import (
    CampaignClosed,
    CampaignCreated,
    CampaignExpired,
    LabelCreated,
    OrderCancelled,
    OrderCreated,
    PaymentFailed,
    ProductCreated,
)
from fusion.declare import UnprocessableEvent, event_handler, payload_of
from fusion.registry import ORDER_EVENTS, PAYMENT_EVENTS, PRODUCT_EVENTS, RESERVATION_EVENTS, SHIPPING_EVENTS
from fusion.uow import UnitOfWork


@event_handler("add-stock-for-product", service=SERVICE, topics=["product.created"], delivery=PRODUCT_EVENTS)
def add_stock_for_product(event: Event, uow: UnitOfWork) -> None:
    """A new product brings its initial stock; a level already set by PUT /inventory is kept."""
    product = payload_of(event, ProductCreated)
    flow.add_initial_stock(InitialStock(sku=product.sku, quantity=product.inventory), uow)


def _reservation_of(order: OrderCreated) -> Reservation:
    """What the order asks for; an order that can never be reserved is unprocessable."""
    try:
        wanted = requested_quantities(order.items)
    except ValueError as exc:
        raise UnprocessableEvent(str(exc)) from None
    if not wanted:
        raise UnprocessableEvent(f"order {order.order_id} has no items")
    return Reservation(order_id=order.order_id, wanted=wanted, campaign_id=order.campaign_id)


@event_handler("reserve-stock", service=SERVICE, topics=["order.created"], delivery=ORDER_EVENTS)
def reserve_stock(event: Event, uow: UnitOfWork) -> None:
    """Reserve every item of a new order, all or nothing (inventory.reserved or inventory.insufficient)."""
    order = payload_of(event, OrderCreated)
    logs.bind(orderId=order.order_id)
    flow.reserve_stock(_reservation_of(order), uow)


@event_handler("release-stock-on-cancel", service=SERVICE, topics=["order.cancelled"], delivery=ORDER_EVENTS)
def release_stock_on_cancel(event: Event, uow: UnitOfWork) -> None:
    """A cancelled order gives its stock back (inventory.released), reserved or already sold."""
    cancelled = payload_of(event, OrderCancelled)
    logs.bind(orderId=cancelled.order_id)
    flow.cancel_stock(OrderStock(cancelled.order_id, f"order cancelled: {cancelled.reason}"), uow)


@event_handler("release-stock-on-payment-failure", service=SERVICE, topics=["payment.failed"],
               delivery=PAYMENT_EVENTS)
def release_stock_on_payment_failure(event: Event, uow: UnitOfWork) -> None:
    """An order whose payment failed gives its reserved stock back (inventory.released)."""
    failed = payload_of(event, PaymentFailed)
    logs.bind(orderId=failed.order_id)
    flow.release_stock(OrderStock(failed.order_id, f"payment failed: {failed.reason}"), uow)


@event_handler("sell-reserved-stock", service=SERVICE, topics=["shipping.label.created"], delivery=SHIPPING_EVENTS)
def sell_reserved_stock(event: Event, uow: UnitOfWork) -> None:
    """The parcel ships: the reserved stock leaves the stock on hand."""
    label = payload_of(event, LabelCreated)
    logs.bind(orderId=label.order_id)
    flow.sell_stock(OrderStock(label.order_id, f"shipped, tracking number {label.tracking_number}"), uow)


@event_handler("hold-campaign-stock", service=SERVICE, topics=["group-commerce.campaign.created"],
               delivery=RESERVATION_EVENTS)
def hold_campaign_stock(event: Event, uow: UnitOfWork) -> None:
    """Hold the stock of every seat of a new campaign, all or nothing."""
    campaign = payload_of(event, CampaignCreated).campaign
    flow.hold_campaign_stock(CampaignHold(campaign.id, campaign.sku, campaign.max_participants), uow)


@event_handler("release-campaign-stock", service=SERVICE,
               topics=["group-commerce.campaign.expired", "group-commerce.campaign.closed"],
               delivery=RESERVATION_EVENTS)
def release_campaign_stock(event: Event, uow: UnitOfWork) -> None:
    """An ended campaign gives back the stock of the seats that will not become orders."""
    if event.type.endswith(".expired"):
        campaign = payload_of(event, CampaignExpired).campaign
        seats_to_come = 0
    else:
        campaign = payload_of(event, CampaignClosed).campaign
        seats_to_come = campaign.actual_participants - campaign.refunded_seats
    flow.release_campaign_stock(CampaignEnd(campaign.id, campaign.max_participants, seats_to_come), uow)
