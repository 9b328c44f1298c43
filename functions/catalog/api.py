"""Catalog HTTP API: create, change, list, search and read products."""

from __future__ import annotations

import uuid

import flask

from functions.catalog import flow
from functions.catalog.flow import SKU_LENGTH, NewProduct, ProductChanges, ProductSearch
from functions.catalog.store import SERVICE, ProductRow
from fusion.auth import PUBLIC, staff
from fusion.declare import command, query
from fusion.listing import page_of
from fusion.money import to_decimal
from fusion.uow import UnitOfWork, reading
from fusion.web import (
    Instant,
    Number,
    View,
    amount_param,
    answer,
    parse_body,
    path_uuid,
    query_decimal,
    query_text,
    query_uuid,
    text_param,
    uuid_param,
)


class ProductView(View):
    """A product of the catalog."""

    id: uuid.UUID
    sku: str
    name: str
    description: str | None
    price: Number
    currency: str
    inventory: int
    category: str | None
    created_at: Instant
    updated_at: Instant  # when the price and the rest were last set


def product_view(row: ProductRow) -> ProductView:
    return ProductView(id=row.id, sku=row.sku, name=row.name, description=row.description,
                       price=to_decimal(row.price_minor, row.currency), currency=row.currency,
                       inventory=row.inventory, category=row.category, created_at=row.created_at,
                       updated_at=row.updated_at)


@command("create-product", service=SERVICE, routes=["POST /products"], auth=staff("catalog:write"), body=NewProduct,
         answers={201: ProductView})
def create_product(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Create a product and publish product.created."""
    product = product_view(flow.create_product(parse_body(request, NewProduct), uow))
    return answer(product, 201, headers={"Location": f"/products/{product.id}"})


@command("update-product", service=SERVICE, routes=["PATCH /products/{id}"], auth=staff("catalog:write"),
         body=ProductChanges, answers=ProductView)
def update_product(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Change a product's name, description, price or category, and publish product.updated."""
    product_id = path_uuid(params, "id", "product")
    return answer(product_view(flow.update_product(product_id, parse_body(request, ProductChanges), uow)))


def _search_of(request: flask.Request) -> ProductSearch:
    return ProductSearch(
        text=query_text(request, "q", 200),
        category=query_text(request, "category", 100),
        min_price=query_decimal(request, "minPrice"),
        max_price=query_decimal(request, "maxPrice"),
        sku=query_text(request, "sku", SKU_LENGTH),
        id=query_uuid(request, "id"),
    )


@query("list-products", service=SERVICE, routes=["GET /products"], auth=PUBLIC,
       params=[text_param("q", 200), text_param("category", 100), amount_param("minPrice"), amount_param("maxPrice"),
               text_param("sku", SKU_LENGTH), uuid_param("id"), "limit", "offset"], answers=list[ProductView])
def list_products(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """List products: q (name/description contains), category, minPrice, maxPrice, sku and id (exactly), limit,
    offset. Other services look a product up by its sku or id here."""
    search = _search_of(request)
    with reading(SERVICE) as uow:
        rows = flow.search_products(search, uow, page_of(request))
    return answer([product_view(row) for row in rows])


@query("get-product", service=SERVICE, routes=["GET /products/{id}"], auth=PUBLIC, answers=ProductView)
def get_product(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """One product by id."""
    product_id = path_uuid(params, "id", "product")
    with reading(SERVICE) as uow:
        row = flow.find_product(product_id, uow)
    return answer(product_view(row))
