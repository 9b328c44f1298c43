"""Stock per sku: created with each product, read and set over HTTP.

On the API `quantity` is the stock on hand (what `PUT /inventory` sets), `reserved` is held for
orders not shipped yet, and `available` = quantity - reserved is what new orders can reserve.
"""

from __future__ import annotations

from typing import Any

import flask
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from fusion.binding import Event
from fusion.contracts import ProductCreated
from fusion.db import pool
from fusion.declare import command, event_handler, payload_of, query
from fusion.listing import Listing
from fusion.registry import PRODUCT_EVENTS
from fusion.uow import UnitOfWork
from fusion.web import conflict, iso, json_response, not_found, parse_body

SERVICE = "inventory"
PAGE_SIZE = 500
MAX_PAGE_SIZE = 1000
MAX_QUANTITY = 2**31 - 1
COLUMNS = "sku, on_hand, reserved, available, updated_at"


class StockLevel(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    sku: str = Field(min_length=1, max_length=64)
    quantity: StrictInt = Field(ge=0, le=MAX_QUANTITY)


def stock_json(row: Any) -> dict[str, Any]:
    return {
        "sku": row.sku,
        "quantity": row.on_hand,
        "reserved": row.reserved,
        "available": row.available,
        "updatedAt": iso(row.updated_at),
    }


@event_handler("add-stock-for-product", service=SERVICE, topics=["product.created"], delivery=PRODUCT_EVENTS)
def add_stock_for_product(event: Event, uow: UnitOfWork) -> None:
    """A new product brings its initial stock; a level already set by PUT /inventory is kept."""
    product = payload_of(event, ProductCreated)
    uow.execute(
        "INSERT INTO inventory.stock (sku, on_hand) VALUES (:sku, :quantity) ON CONFLICT (sku) DO NOTHING",
        {"sku": product.sku, "quantity": product.inventory},
    )


@query("list-stock", service=SERVICE, routes=["GET /inventory"], params=["sku", "limit", "offset"])
def list_stock(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """Stock of every sku, in sku order: sku (exact), limit, offset."""
    listing = Listing("inventory.stock", COLUMNS, order_by="sku", page_size=PAGE_SIZE, max_page_size=MAX_PAGE_SIZE)
    if sku := request.args.get("sku", "").strip():
        listing.where("sku = :sku", sku=sku)
    return json_response([stock_json(row) for row in listing.fetch(request)])


@query("get-stock", service=SERVICE, routes=["GET /inventory/{sku}"])
def get_stock(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """The stock of one sku."""
    with pool().connect() as conn:
        row = conn.execute(f"SELECT {COLUMNS} FROM inventory.stock WHERE sku = :sku",
                           {"sku": params["sku"]}).first()
    if row is None:
        raise not_found("sku", params["sku"])
    return json_response(stock_json(row))


@command("set-stock", service=SERVICE, routes=["PUT /inventory"], body=StockLevel)
def set_stock(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Set the stock on hand of a sku; 409 when that is less than what orders have reserved."""
    level = parse_body(request, StockLevel)
    row = uow.execute(
        f"INSERT INTO inventory.stock (sku, on_hand) VALUES (:sku, :quantity) "
        f"ON CONFLICT (sku) DO UPDATE SET on_hand = EXCLUDED.on_hand, updated_at = now() "
        f"WHERE inventory.stock.reserved <= EXCLUDED.on_hand RETURNING {COLUMNS}",
        {"sku": level.sku, "quantity": level.quantity},
    ).first()
    if row is None:
        reserved = uow.execute("SELECT reserved FROM inventory.stock WHERE sku = :sku", {"sku": level.sku}).scalar()
        raise conflict(f"sku {level.sku}: {reserved} units are reserved for orders; stock cannot go below that")
    return json_response(stock_json(row))
