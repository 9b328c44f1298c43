"""Inventory HTTP API: the stock per sku, read and set."""

from __future__ import annotations

import flask

from functions.inventory import flow
from functions.inventory.flow import StockLevel
from functions.inventory.store import MAX_PAGE_SIZE, PAGE_SIZE, SERVICE, StockRow
from fusion.auth import PUBLIC, staff
from fusion.declare import command, query
from fusion.listing import page_of
from fusion.uow import UnitOfWork, reading
from fusion.web import Instant, View, answer, count_param, parse_body, query_text, text_param


class StockView(View):
    """The stock of a sku: on hand (quantity), reserved by orders, and available (the difference)."""

    sku: str
    quantity: int
    reserved: int
    available: int
    updated_at: Instant


def stock_view(row: StockRow) -> StockView:
    return StockView(sku=row.sku, quantity=row.on_hand, reserved=row.reserved, available=row.available,
                     updated_at=row.updated_at)


@query("list-stock", service=SERVICE, routes=["GET /inventory"], auth=staff("inventory:write"),
       params=[text_param("sku", 64), count_param("limit", 1, MAX_PAGE_SIZE), "offset"], answers=list[StockView])
def list_stock(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """Stock of every sku, in sku order: sku (exact), limit, offset."""
    sku = query_text(request, "sku", 64)
    with reading(SERVICE) as uow:
        rows = flow.list_stock(sku, uow, page_of(request, PAGE_SIZE, MAX_PAGE_SIZE))
    return answer([stock_view(row) for row in rows])


@query("get-stock", service=SERVICE, routes=["GET /inventory/{sku}"], auth=PUBLIC, answers=StockView)
def get_stock(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """The stock of one sku."""
    with reading(SERVICE) as uow:
        row = flow.stock_of(params["sku"], uow)
    return answer(stock_view(row))


@command("set-stock", service=SERVICE, routes=["PUT /inventory"], auth=staff("inventory:write"), body=StockLevel,
         answers=StockView)
def set_stock(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Set the stock on hand of a sku; 409 when that is less than what orders have reserved."""
    return answer(stock_view(flow.set_stock(parse_body(request, StockLevel), uow)))
