"""Catalog's table: the products, written inside a unit of work and read through a reading one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from fusion.db import Sql
from fusion.listing import Listing, Page
from fusion.money import exponent

SERVICE = "catalog"
COLUMNS = "id, sku, name, description, price_minor, currency, inventory, category, created_at, updated_at"


@dataclass(frozen=True)
class ProductRow:
    id: uuid.UUID
    sku: str
    name: str
    description: str | None
    price_minor: int
    currency: str
    inventory: int
    category: str | None
    created_at: datetime
    updated_at: datetime  # when the price and the rest were last set (created_at until changed)


def insert_product(
    db: Sql, *, sku: str, name: str, description: str | None, price_minor: int, currency: str,
    inventory: int, category: str | None,
) -> ProductRow | None:
    """The new product, or None when its sku is taken."""
    return db.execute(
        f"INSERT INTO catalog.products (id, sku, name, description, price_minor, price_exponent, currency, "
        f"inventory, category) VALUES (:id, :sku, :name, :description, :price_minor, :exponent, :currency, "
        f":inventory, :category) ON CONFLICT (sku) DO NOTHING RETURNING {COLUMNS}",
        {
            "id": uuid.uuid4(), "sku": sku, "name": name, "description": description,
            "price_minor": price_minor, "exponent": exponent(currency), "currency": currency,
            "inventory": inventory, "category": category,
        },
    ).first_as(ProductRow)


def lock_product(db: Sql, product_id: uuid.UUID) -> ProductRow | None:
    """The product, locked until the transaction ends (a change reads, then writes it)."""
    return db.execute(f"SELECT {COLUMNS} FROM catalog.products WHERE id = :id FOR UPDATE",
                      {"id": product_id}).first_as(ProductRow)


def update_product(db: Sql, product_id: uuid.UUID, *, name: str, description: str | None, price_minor: int,
                   category: str | None) -> ProductRow:
    """Set the product's fields. `updated_at` only moves forward for a product, whatever the clocks of the
    transactions, so the newest announcement of its price is always the one the row holds."""
    return db.execute(
        f"UPDATE catalog.products SET name = :name, description = :description, price_minor = :price_minor, "
        f"category = :category, updated_at = greatest(clock_timestamp(), updated_at + interval '1 microsecond') "
        f"WHERE id = :id RETURNING {COLUMNS}",
        {"id": product_id, "name": name, "description": description, "price_minor": price_minor,
         "category": category},
    ).one_as(ProductRow)


def find_product(db: Sql, product_id: uuid.UUID) -> ProductRow | None:
    return db.execute(f"SELECT {COLUMNS} FROM catalog.products WHERE id = :id", {"id": product_id}).first_as(ProductRow)


def _like_pattern(text: str) -> str:
    """`text` anywhere, its LIKE wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_products(
    db: Sql, page: Page, *, text: str | None, category: str | None,
    min_price: Decimal | None, max_price: Decimal | None, sku: str | None = None,
    product_id: uuid.UUID | None = None,
) -> list[ProductRow]:
    """The page `limit`/`offset` of `page` ask for of the products matching every filter given, oldest first."""
    listing = Listing("catalog.products", COLUMNS, order_by="created_at, id")
    if sku:
        listing.where("sku = :sku", sku=sku)
    if product_id is not None:
        listing.where("id = :id", id=product_id)
    if text:
        listing.where("(name || ' ' || coalesce(description, '')) ILIKE :q", q=_like_pattern(text))
    if category:
        listing.where("category = :category", category=category)
    if min_price is not None:
        listing.where("price >= :min_price", min_price=min_price)
    if max_price is not None:
        listing.where("price <= :max_price", max_price=max_price)
    return listing.fetch(db, page, ProductRow)
