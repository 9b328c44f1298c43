"""Inventory HTTP API: the stock per sku, read and set."""

from __future__ import annotations

from typing import Any

import flask

from functions.inventory import flow
from functions.inventory.flow import StockLevel
from functions.inventory.store import MAX_PAGE_SIZE, PAGE_SIZE, SERVICE, StockRow
from fusion.auth import PUBLIC, staff
from fusion.declare import command, query
from fusion.listing import page_of
from fusion.uow import UnitOfWork, reading
from fusion.web import iso, json_response, parse_body, query_text


def stock_json(row: StockRow) -> dict[str, Any]:
    return {
        "sku": row.sku,
        "quantity": row.on_hand,
        "reserved": row.reserved,
        "available": row.available,
        "updatedAt": iso(row.updated_at),
    }


@query("list-stock", service=SERVICE, routes=["GET /inventory"], auth=staff("inventory:write"),
       params=["sku", "limit", "offset"])
def list_stock(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """Stock of every sku, in sku order: sku (exact), limit, offset."""
    sku = query_text(request, "sku", 64)
    with reading(SERVICE) as uow:
        rows = flow.list_stock(sku, uow, page_of(request, PAGE_SIZE, MAX_PAGE_SIZE))
    return json_response([stock_json(row) for row in rows])


@query("get-stock", service=SERVICE, routes=["GET /inventory/{sku}"], auth=PUBLIC)
def get_stock(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """The stock of one sku."""
    with reading(SERVICE) as uow:
        row = flow.stock_of(params["sku"], uow)
    return json_response(stock_json(row))


@command("set-stock", service=SERVICE, routes=["PUT /inventory"], auth=staff("inventory:write"), body=StockLevel)
def set_stock(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Set the stock on hand of a sku; 409 when that is less than what orders have reserved."""
    return json_response(stock_json(flow.set_stock(parse_body(request, StockLevel), uow)))
