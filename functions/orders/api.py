"""Orders over HTTP: place, list, read and cancel."""

from __future__ import annotations

from typing import Any

import flask
from pydantic import Field

from functions.orders import flow, store
from functions.orders.flow import CancelOrder, NewOrder
from functions.orders.rules import ALL_STATUSES
from functions.orders.store import Order, OrderRow
from fusion.auth import customer_id_for, customer_or_staff, visible_customer
from fusion.declare import command, query
from fusion.listing import page_of
from fusion.money import to_json_number
from fusion.uow import UnitOfWork, reading
from fusion.web import Body, iso, json_response, parse_body, path_uuid, query_choice, query_text

SERVICE = "orders"


class Cancellation(Body):
    free_text = frozenset({"reason"})

    reason: str | None = Field(default=None, max_length=500)


def order_json(order: Order) -> dict[str, Any]:
    """An order as the API shows it."""
    row = order.row
    return {
        "id": str(row.id),
        "customerId": row.customer_id,
        "items": [{"sku": line.sku, "quantity": line.quantity, "price": to_json_number(line.price_minor, row.currency)}
                  for line in order.items],
        "total": to_json_number(row.total_minor, row.currency),
        "currency": row.currency,
        "status": row.status,
        "statusReason": row.status_reason,
        "campaignId": row.campaign_id,
        "createdAt": iso(row.created_at),
        "updatedAt": iso(row.status_changed_at),
        "history": [{"status": change.status, "reason": change.reason, "at": iso(change.at)}
                    for change in order.history],
    }


@command("create-order", service=SERVICE, routes=["POST /orders"], auth=customer_or_staff("orders:manage"),
         body=NewOrder)
def create_order(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Place an order at the catalog's current prices and publish order.created."""
    body = order_json(flow.place(parse_body(request, NewOrder), uow))
    return json_response(body, 201, headers={"Location": f"/orders/{body['id']}"})


@query("list-orders", service=SERVICE, routes=["GET /orders"], auth=customer_or_staff("orders:manage"),
       params=["customerId", "status", "limit", "offset"])
def list_orders(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """List orders, newest first: customerId, status, limit, offset."""
    asked = query_text(request, "customerId", 128)
    customer_id = asked if visible_customer() is None else customer_id_for(asked, "customerId")
    listing = store.order_listing(customer_id=customer_id or "", status=query_choice(request, "status", ALL_STATUSES))
    with reading(SERVICE) as db:
        orders = store.with_lines(db, listing.fetch(db, page_of(request), OrderRow))
    return json_response([order_json(order) for order in orders])


@query("get-order", service=SERVICE, routes=["GET /orders/{id}"], auth=customer_or_staff("orders:manage"))
def get_order(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """One order with its items and status history."""
    order_id = path_uuid(params, "id", "order")
    with reading(SERVICE) as db:
        return json_response(order_json(flow.visible_order(order_id, db)))


def _cancellation_reason(request: flask.Request) -> str | None:
    """The reason the body gives; a cancel may come without a body."""
    if not request.get_data(cache=True).strip():
        return None
    return parse_body(request, Cancellation).reason


@command("cancel-order", service=SERVICE, routes=["POST /orders/{id}/cancel"], auth=customer_or_staff("orders:manage"),
         body=Cancellation)
def cancel_order(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Cancel a created, confirmed or paid order and publish order.cancelled; cancelling twice is harmless."""
    order_id = path_uuid(params, "id", "order")
    return json_response(order_json(flow.cancel(CancelOrder(order_id, _cancellation_reason(request)), uow)))
