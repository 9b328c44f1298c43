"""Catalog: create, list, search and read products."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import flask
from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from fusion.contracts import ProductCreated
from fusion.db import pool
from fusion.declare import command, query
from fusion.listing import Listing
from fusion.money import MoneyError, exponent, normalise_currency, to_minor
from fusion.uow import UnitOfWork
from fusion.web import bad_request, conflict, json_response, not_found, parse_body, query_decimal

SERVICE = "catalog"
COLUMNS = "id, sku, name, description, price_minor, currency, inventory, category, created_at"


class NewProduct(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    sku: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    price: Decimal = Field(ge=0)
    currency: str
    inventory: StrictInt = Field(ge=0)
    category: str | None = Field(default=None, max_length=100)

    @field_validator("currency")
    @classmethod
    def known_currency(cls, value: str) -> str:
        return normalise_currency(value)


def _product_json(row: Any) -> dict[str, Any]:
    places = exponent(row.currency)
    price = Decimal(row.price_minor).scaleb(-places)
    return {
        "id": str(row.id),
        "sku": row.sku,
        "name": row.name,
        "description": row.description,
        "price": price,
        "currency": row.currency,
        "inventory": row.inventory,
        "category": row.category,
        "createdAt": row.created_at,
    }


def _price_in_minor_units(product: NewProduct) -> int:
    try:
        return to_minor(product.price, product.currency)
    except MoneyError as exc:
        raise bad_request("price", str(exc)) from None


@command("create-product", service=SERVICE, routes=["POST /products"], body=NewProduct)
def create_product(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Create a product and publish product.created."""
    product = parse_body(request, NewProduct)
    price_minor = _price_in_minor_units(product)
    row = uow.execute(
        f"INSERT INTO catalog.products (id, sku, name, description, price_minor, price_exponent, currency, "
        f"inventory, category) VALUES (:id, :sku, :name, :description, :price_minor, :exponent, :currency, "
        f":inventory, :category) ON CONFLICT (sku) DO NOTHING RETURNING {COLUMNS}",
        {
            "id": uuid.uuid4(), "sku": product.sku, "name": product.name, "description": product.description,
            "price_minor": price_minor, "exponent": exponent(product.currency),
            "currency": product.currency, "inventory": product.inventory, "category": product.category,
        },
    ).first()
    if row is None:
        raise conflict(f"a product with sku {product.sku!r} already exists")
    body = _product_json(row)
    uow.publish("product.created", subject=body["id"], payload=ProductCreated.model_validate(body))
    return json_response(body, 201, headers={"Location": f"/products/{body['id']}"})


def _listing(request: flask.Request) -> Listing:
    listing = Listing("catalog.products", COLUMNS, order_by="created_at, id")
    if q := request.args.get("q", "").strip():
        escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        listing.where("(name || ' ' || coalesce(description, '')) ILIKE :q", q=f"%{escaped}%")
    if category := request.args.get("category", "").strip():
        listing.where("category = :category", category=category)
    min_price, max_price = query_decimal(request, "minPrice"), query_decimal(request, "maxPrice")
    if min_price is not None and max_price is not None and min_price > max_price:
        raise bad_request("minPrice", "must not be greater than maxPrice")
    if min_price is not None:
        listing.where("price >= :min_price", min_price=min_price)
    if max_price is not None:
        listing.where("price <= :max_price", max_price=max_price)
    return listing


@query("list-products", service=SERVICE, routes=["GET /products"],
       params=["q", "category", "minPrice", "maxPrice", "limit", "offset"])
def list_products(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """List products: q (name/description contains), category, minPrice, maxPrice, limit, offset."""
    return json_response([_product_json(row) for row in _listing(request).fetch(request)])


@query("get-product", service=SERVICE, routes=["GET /products/{id}"])
def get_product(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """One product by id."""
    try:
        product_id = uuid.UUID(params["id"])
    except ValueError:
        raise not_found("product", params["id"]) from None
    with pool().connect() as conn:
        row = conn.execute(f"SELECT {COLUMNS} FROM catalog.products WHERE id = :id", {"id": product_id}).first()
    if row is None:
        raise not_found("product", params["id"])
    return json_response(_product_json(row))
