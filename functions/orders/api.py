"""Orders over HTTP: place, list, read and cancel."""

from __future__ import annotations

from decimal import Decimal

import flask
from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator
from pydantic.alias_generators import to_camel

from functions.orders.lifecycle import ALL_STATUSES, OrderStatus
from functions.orders.prices import check_catalog_prices
from functions.orders.store import (
    ORDER_COLUMNS,
    OrderLine,
    find_order,
    move_order,
    order_total,
    orders_json,
    parse_order_id,
    place_order,
)
from fusion.contracts import OrderCancelled
from fusion.db import pool
from fusion.declare import command, query
from fusion.listing import Listing
from fusion.money import MoneyError, normalise_currency, to_minor
from fusion.uow import UnitOfWork
from fusion.web import bad_request, conflict, json_response, not_found, parse_body, query_choice

SERVICE = "orders"
MAX_ITEMS = 100
MAX_QUANTITY = 10_000
MAX_TOTAL_MINOR = 10**15  # far below BIGINT, far above any real basket
CANCELLED_BY_CUSTOMER = "cancelled by customer"


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, alias_generator=to_camel,
                              populate_by_name=True)


class NewOrderItem(_Body):
    sku: str = Field(min_length=1, max_length=64)
    quantity: StrictInt = Field(ge=1, le=MAX_QUANTITY)
    price: Decimal = Field(ge=0)


class NewOrder(_Body):
    customer_id: str = Field(min_length=1, max_length=128)
    items: list[NewOrderItem] = Field(min_length=1, max_length=MAX_ITEMS)
    currency: str

    @field_validator("currency")
    @classmethod
    def known_currency(cls, value: str) -> str:
        return normalise_currency(value)


class Cancellation(_Body):
    reason: str | None = Field(default=None, max_length=500)


def _priced_lines(order: NewOrder) -> list[OrderLine]:
    """The items with prices in minor units; 400 naming the item whose price the currency cannot express."""
    lines = []
    for index, item in enumerate(order.items):
        try:
            price_minor = to_minor(item.price, order.currency)
        except MoneyError as exc:
            raise bad_request(f"items[{index}].price", str(exc)) from None
        lines.append(OrderLine(sku=item.sku, quantity=item.quantity, price_minor=price_minor))
    if order_total(lines) > MAX_TOTAL_MINOR:
        raise bad_request("items", "the order total is too large")
    return lines


@command("create-order", service=SERVICE, routes=["POST /orders"], body=NewOrder)
def create_order(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Place an order at the catalog's current prices and publish order.created."""
    order = parse_body(request, NewOrder)
    lines = _priced_lines(order)
    check_catalog_prices(uow, lines, order.currency)
    body = place_order(uow, order.customer_id, lines, order.currency)
    return json_response(body, 201, headers={"Location": f"/orders/{body['id']}"})


@query("list-orders", service=SERVICE, routes=["GET /orders"],
       params=["customerId", "status", "limit", "offset"])
def list_orders(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """List orders, newest first: customerId, status, limit, offset."""
    listing = Listing("orders.orders", ORDER_COLUMNS, order_by="created_at DESC, id DESC")
    if customer_id := request.args.get("customerId", "").strip():
        listing.where("customer_id = :customer_id", customer_id=customer_id)
    if status := query_choice(request, "status", ALL_STATUSES):
        listing.where("status = :status", status=status)
    sql, values = listing.statement(request)
    with pool().connect() as conn:
        return json_response(orders_json(conn, conn.execute(sql, values).all()))


@query("get-order", service=SERVICE, routes=["GET /orders/{id}"])
def get_order(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """One order with its items and status history."""
    order_id = parse_order_id(params["id"])
    if order_id is None:
        raise not_found("order", params["id"])
    with pool().connect() as conn:
        order = find_order(conn, order_id)
    if order is None:
        raise not_found("order", params["id"])
    return json_response(order)


def _cancellation_reason(request: flask.Request) -> str:
    if not request.get_data(cache=True).strip():
        return CANCELLED_BY_CUSTOMER
    return parse_body(request, Cancellation).reason or CANCELLED_BY_CUSTOMER


@command("cancel-order", service=SERVICE, routes=["POST /orders/{id}/cancel"], body=Cancellation)
def cancel_order(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Cancel a created, confirmed or paid order and publish order.cancelled; cancelling twice is harmless."""
    order_id = parse_order_id(params["id"])
    if order_id is None:
        raise not_found("order", params["id"])
    reason = _cancellation_reason(request)
    moved = move_order(uow, order_id, OrderStatus.CANCELLED, reason)
    if moved is not None:
        uow.publish("order.cancelled", subject=str(order_id), payload=OrderCancelled(
            order_id=str(order_id), customer_id=moved.order.customer_id,
            previous_status=moved.previous_status.value, reason=reason,
        ))
    order = find_order(uow.conn, order_id)
    if order is None:
        raise not_found("order", params["id"])
    if order["status"] != OrderStatus.CANCELLED:
        raise conflict(f"order {order_id} is {order['status']} and can no longer be cancelled")
    return json_response(order)

