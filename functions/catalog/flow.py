"""Catalog use cases: create a product, read one, search them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from pydantic import Field, field_validator

from functions.catalog import store
from functions.catalog.store import ProductRow
from fusion.contracts import ProductCreated
from fusion.errors import Conflict, Invalid, NotFound
from fusion.listing import Page
from fusion.money import MoneyError, normalise_currency, to_decimal, to_minor
from fusion.uow import UnitOfWork
from fusion.web import Amount, Body, CurrencyCode, WholeNumber

MAX_INVENTORY = 2**31 - 1  # the stock column is a PostgreSQL integer


class NewProduct(Body):
    free_text = frozenset({"description"})

    sku: str = Field(min_length=1, max_length=64)
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


@dataclass(frozen=True)
class ProductSearch:
    """Filters of a product search; None (or empty text) filters nothing."""

    text: str | None
    category: str | None
    min_price: Decimal | None
    max_price: Decimal | None


def _price_in_minor_units(product: NewProduct) -> int:
    try:
        return to_minor(product.price, product.currency)
    except MoneyError as exc:
        raise Invalid("price", str(exc)) from None


def product_created(row: ProductRow) -> ProductCreated:
    return ProductCreated(
        id=str(row.id), sku=row.sku, name=row.name, description=row.description,
        price=to_decimal(row.price_minor, row.currency), currency=row.currency, inventory=row.inventory,
        category=row.category, created_at=row.created_at,
    )


def create_product(product: NewProduct, uow: UnitOfWork) -> ProductRow:
    """Add a product with a sku not used before, and publish product.created."""
    row = store.insert_product(
        uow, sku=product.sku, name=product.name, description=product.description,
        price_minor=_price_in_minor_units(product), currency=product.currency, inventory=product.inventory,
        category=product.category,
    )
    if row is None:
        raise Conflict(f"a product with sku {product.sku!r} already exists")
    uow.publish("product.created", subject=str(row.id), payload=product_created(row))
    return row


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
        min_price=search.min_price, max_price=search.max_price,
    )
