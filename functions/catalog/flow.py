"""Catalog use cases: create a product, change one, read one, search them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from functions.catalog import store
from functions.catalog.store import ProductRow
from fusion.contracts import ProductCreated, ProductUpdated
from fusion.errors import Conflict, Invalid, NotFound
from fusion.listing import Page
from fusion.money import MoneyError, normalise_currency, to_decimal, to_minor
from fusion.uow import UnitOfWork
from fusion.web import Amount, Body, CurrencyCode, WholeNumber

MAX_INVENTORY = 2**31 - 1  # the stock column is a PostgreSQL integer
SKU_LENGTH = 64


class NewProduct(Body):
    free_text = frozenset({"description"})

    sku: str = Field(min_length=1, max_length=SKU_LENGTH)
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    price: Amount = Field(ge=0)
    currency: CurrencyCode
    inventory: WholeNumber = Field(ge=0, le=MAX_INVENTORY)
    category: str | None = Field(default=None, max_length=100)

    @field_validator("currency")
    @classmethod
    def known_currency(cls, value: str) -> str:
        return normalise_currency(value)


FIXED_FIELDS = {"sku": "a product keeps its sku", "currency": "a product keeps its currency",
                "inventory": "stock is set through the inventory service (PUT /inventory)"}


def _documented_as(schema: dict[str, Any], documented: dict[str, Any]) -> None:
    for null_only in ("anyOf", "default"):  # a field that may be left out, never given as null
        schema.pop(null_only, None)
    schema.update(documented)


def _never_null(schema: dict[str, Any]) -> None:
    _documented_as(schema, next(branch for branch in schema.get("anyOf", [schema]) if branch.get("type") != "null"))


class ProductChanges(Body):
    """What a change of a product sets; a field left out keeps its value, a null description or category
    clears it."""

    free_text = frozenset({"description"})

    # A left-out name or price is None; one given as null is refused, so the schema says they are never null.
    name: str | None = Field(default=None, min_length=1, max_length=200, json_schema_extra=_never_null)
    description: str | None = Field(default=None, max_length=5000)
    price: Annotated[Amount, Field(ge=0)] | None = Field(
        default=None, json_schema_extra=lambda schema: _documented_as(schema, {"type": "number", "minimum": 0}))
    category: str | None = Field(default=None, max_length=100)

    @model_validator(mode="before")
    @classmethod
    def nothing_fixed(cls, body: Any) -> Any:
        fixed = next((name for name in FIXED_FIELDS if isinstance(body, dict) and name in body), None)
        if fixed is not None:
            raise ValueError(f"{fixed} cannot be changed: {FIXED_FIELDS[fixed]}")
        return body

    @field_validator("name", "price")
    @classmethod
    def not_null(cls, value: object) -> object:
        if value is None:  # only a null given explicitly is validated, a left-out field is not
            raise ValueError("must not be null")
        return value


@dataclass(frozen=True)
class ProductSearch:
    """Filters of a product search; None (or empty text) filters nothing."""

    text: str | None
    category: str | None
    min_price: Decimal | None
    max_price: Decimal | None
    sku: str | None = None  # exactly this sku
    id: uuid.UUID | None = None  # exactly this product


def _price_in_minor_units(price: Decimal, currency: str) -> int:
    try:
        return to_minor(price, currency)
    except MoneyError as exc:
        raise Invalid("price", str(exc)) from None


def product_created(row: ProductRow) -> ProductCreated:
    return ProductCreated(
        id=str(row.id), sku=row.sku, name=row.name, description=row.description,
        price=to_decimal(row.price_minor, row.currency), currency=row.currency, inventory=row.inventory,
        category=row.category, created_at=row.created_at,
    )


def product_updated(row: ProductRow) -> ProductUpdated:
    """The product as it is now: what product.updated carries, and what the catalog answers a lookup with."""
    return ProductUpdated(
        id=str(row.id), sku=row.sku, name=row.name, description=row.description,
        price=to_decimal(row.price_minor, row.currency), currency=row.currency, category=row.category,
        updated_at=row.updated_at,
    )


def create_product(product: NewProduct, uow: UnitOfWork) -> ProductRow:
    """Add a product with a sku not used before, and publish product.created."""
    row = store.insert_product(
        uow, sku=product.sku, name=product.name, description=product.description,
        price_minor=_price_in_minor_units(product.price, product.currency), currency=product.currency,
        inventory=product.inventory, category=product.category,
    )
    if row is None:
        raise Conflict(f"a product with sku {product.sku!r} already exists")
    uow.publish("product.created", subject=str(row.id), payload=product_created(row))
    return row


def update_product(product_id: uuid.UUID, changes: ProductChanges, uow: UnitOfWork) -> ProductRow:
    """Change the fields `changes` gives, and publish product.updated; 400 when it gives none."""
    given = changes.model_fields_set
    if not given:
        raise Invalid("body", "names nothing to change: give name, description, price or category")
    row = store.lock_product(uow, product_id)
    if row is None:
        raise NotFound("product", product_id)
    price_minor = row.price_minor
    if changes.price is not None:
        price_minor = _price_in_minor_units(changes.price, row.currency)
    updated = store.update_product(
        uow, product_id, name=changes.name or row.name,
        description=changes.description if "description" in given else row.description,
        price_minor=price_minor, category=changes.category if "category" in given else row.category,
    )
    uow.publish("product.updated", subject=str(updated.id), payload=product_updated(updated))
    return updated


def find_product(product_id: uuid.UUID, uow: UnitOfWork) -> ProductRow:
    row = store.find_product(uow, product_id)
    if row is None:
        raise NotFound("product", product_id)
    return row


def search_products(search: ProductSearch, uow: UnitOfWork, page: Page) -> list[ProductRow]:
    """The page of products `page` asks for; an empty price range is refused rather than answered empty."""
    if search.min_price is not None and search.max_price is not None and search.min_price > search.max_price:
        raise Invalid("minPrice", "must not be greater than maxPrice")
    return store.search_products(
        uow, page, text=search.text, category=search.category,
        min_price=search.min_price, max_price=search.max_price, sku=search.sku,
        product_id=search.id,
    )
