"""The catalog's current prices, kept locally from product.created, so client prices are never trusted blindly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from functions.orders.store import OrderLine
from fusion.binding import Event
from fusion.contracts import ProductCreated
from fusion.declare import UnprocessableEvent, event_handler, payload_of
from fusion.money import MoneyError, to_decimal, to_minor
from fusion.registry import PRODUCT_EVENTS
from fusion.uow import UnitOfWork
from fusion.web import ApiError

SERVICE = "orders"


@event_handler("record-product-price", service=SERVICE, topics=["product.created"], delivery=PRODUCT_EVENTS)
def record_product_price(event: Event, uow: UnitOfWork) -> None:
    """Keep the sku's price and currency for checking the prices of new orders."""
    product = payload_of(event, ProductCreated)
    try:
        price_minor = to_minor(product.price, product.currency)
    except MoneyError as exc:
        raise UnprocessableEvent(f"product {product.sku} has an invalid price: {exc}") from None
    # A late, older event never overwrites a newer price.
    uow.execute(
        "INSERT INTO orders.products (sku, product_id, name, price_minor, currency, updated_at) "
        "VALUES (:sku, :product_id, :name, :price_minor, :currency, :at) "
        "ON CONFLICT (sku) DO UPDATE SET product_id = EXCLUDED.product_id, name = EXCLUDED.name, "
        "price_minor = EXCLUDED.price_minor, currency = EXCLUDED.currency, updated_at = EXCLUDED.updated_at "
        "WHERE orders.products.updated_at <= EXCLUDED.updated_at",
        {"sku": product.sku, "product_id": product.id, "name": product.name, "price_minor": price_minor,
         "currency": product.currency.upper(), "at": product.created_at},
    )


def _listed_prices(uow: UnitOfWork, skus: list[str]) -> dict[str, Any]:
    rows = uow.execute(
        "SELECT sku, price_minor, currency FROM orders.products WHERE sku = ANY(:skus)", {"skus": skus}
    ).all()
    return {row.sku: row for row in rows}


def price_problem(line: OrderLine, currency: str, listed: Any | None) -> tuple[str, str] | None:
    """(error code, message) when a line's sku is unknown or its price is not the catalog's; None when fine."""
    if listed is None:
        return "unknown_sku", f"sku {line.sku!r} is not in the catalog"
    if listed.currency != currency:
        return "currency_mismatch", f"sku {line.sku!r} is sold in {listed.currency}, not {currency}"
    if listed.price_minor != line.price_minor:
        expected, given = to_decimal(listed.price_minor, currency), to_decimal(line.price_minor, currency)
        return "price_mismatch", f"sku {line.sku!r} costs {expected} {currency}, not {given}"
    return None


def check_catalog_prices(uow: UnitOfWork, lines: Sequence[OrderLine], currency: str) -> None:
    """422 naming the first line whose sku is unknown or whose price differs from the catalog's."""
    listed = _listed_prices(uow, sorted({line.sku for line in lines}))
    for index, line in enumerate(lines):
        problem = price_problem(line, currency, listed.get(line.sku))
        if problem is not None:
            code, message = problem
            field = f"items[{index}].sku" if code == "unknown_sku" else f"items[{index}].price"
            raise ApiError(422, message, code=code, field=field)
