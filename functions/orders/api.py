"""Orders over HTTP: place, list, read and cancel."""

from __future__ import annotations

import uuid
from typing import Annotated

import flask
from pydantic import Field

from functions.orders import flow, store
from functions.orders.flow import CancelOrder, NewOrder
from functions.orders.rules import ALL_STATUSES
from functions.orders.store import Order, OrderRow
from fusion.auth import customer_id_for, customer_or_staff, visible_customer
from fusion.declare import command, query
from fusion.listing import page_of
from fusion.money import to_decimal
from fusion.uow import UnitOfWork, reading
from fusion.web import (
    Body,
    Instant,
    Number,
    View,
    answer,
    choice_param,
    one_of,
    parse_body,
    path_uuid,
    query_choice,
    query_text,
    text_param,
)

SERVICE = "orders"


class Cancellation(Body):
    free_text = frozenset({"reason"})

    reason: str | None = Field(default=None, max_length=500)


OrderStatusName = Annotated[str, one_of(ALL_STATUSES)]


class OrderLineView(View):
    """One line of an order: a sku, how many and the unit price."""

    sku: str
    quantity: int
    price: Number


class StatusChangeView(View):
    """A status the order took, why, and when; `late` when it was heard after a later step."""

    status: OrderStatusName
    reason: str | None
    at: Instant
    late: bool


class OrderView(View):
    """An order with its items and status history."""

    id: uuid.UUID
    customer_id: str
    items: list[OrderLineView]
    total: Number
    currency: str
    status: OrderStatusName
    status_reason: str | None
    campaign_id: str | None
    created_at: Instant
    updated_at: Instant
    history: list[StatusChangeView]


def order_view(order: Order) -> OrderView:
    row = order.row
    return OrderView(
        id=row.id, customer_id=row.customer_id,
        items=[OrderLineView(sku=line.sku, quantity=line.quantity, price=to_decimal(line.price_minor, row.currency))
               for line in order.items],
        total=to_decimal(row.total_minor, row.currency), currency=row.currency, status=row.status,
        status_reason=row.status_reason, campaign_id=row.campaign_id, created_at=row.created_at,
        updated_at=row.status_changed_at,
        history=[StatusChangeView(status=change.status, reason=change.reason, at=change.at, late=change.late)
                 for change in order.history],
    )


@command("create-order", service=SERVICE, routes=["POST /orders"], auth=customer_or_staff("orders:manage"),
         body=NewOrder, answers={201: OrderView})
def create_order(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Place an order at the catalog's current prices and publish order.created."""
    order = order_view(flow.place(parse_body(request, NewOrder), uow))
    return answer(order, 201, headers={"Location": f"/orders/{order.id}"})


@query("list-orders", service=SERVICE, routes=["GET /orders"], auth=customer_or_staff("orders:manage"),
       params=[text_param("customerId", 128), choice_param("status", ALL_STATUSES), "limit", "offset"],
       answers=list[OrderView])
def list_orders(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """List orders, newest first: customerId, status, limit, offset."""
    asked = query_text(request, "customerId", 128)
    customer_id = asked if visible_customer() is None else customer_id_for(asked, "customerId")
    listing = store.order_listing(customer_id=customer_id or "", status=query_choice(request, "status", ALL_STATUSES))
    with reading(SERVICE) as db:
        orders = store.with_lines(db, listing.fetch(db, page_of(request), OrderRow))
    return answer([order_view(order) for order in orders])


@query("get-order", service=SERVICE, routes=["GET /orders/{id}"], auth=customer_or_staff("orders:manage"),
       answers=OrderView)
def get_order(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """One order with its items and status history."""
    order_id = path_uuid(params, "id", "order")
    with reading(SERVICE) as db:
        return answer(order_view(flow.visible_order(order_id, db)))


def _cancellation_reason(request: flask.Request) -> str | None:
    """The reason the body gives; a cancel may come without a body."""
    if not request.get_data(cache=True).strip():
        return None
    return parse_body(request, Cancellation).reason


@command("cancel-order", service=SERVICE, routes=["POST /orders/{id}/cancel"], auth=customer_or_staff("orders:manage"),
         body=Cancellation, answers=OrderView)
def cancel_order(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Cancel a created, confirmed or paid order and publish order.cancelled; cancelling twice is harmless."""
    order_id = path_uuid(params, "id", "order")
    return answer(order_view(flow.cancel(CancelOrder(order_id, _cancellation_reason(request)), uow)))
