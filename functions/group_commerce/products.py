"""The catalog's products as group buying needs them (id, sku, price, currency), fed by product.created."""

from __future__ import annotations

import uuid

from fusion.binding import Event
from fusion.contracts import ProductCreated
from fusion.declare import UnprocessableEvent, event_handler, payload_of
from fusion.money import MoneyError, to_minor
from fusion.registry import PRODUCT_EVENTS
from fusion.uow import UnitOfWork

SERVICE = "group-commerce"


@event_handler("campaign-product-projection", service=SERVICE, topics=["product.created"],
               delivery=PRODUCT_EVENTS)
def project_product(event: Event, uow: UnitOfWork) -> None:
    """Keep a local copy of each new product so campaigns can be priced without asking the catalog."""
    product = payload_of(event, ProductCreated)
    try:
        product_id = uuid.UUID(product.id)
        price_minor = to_minor(product.price, product.currency)
    except MoneyError as exc:
        raise UnprocessableEvent(f"product {product.id}: price {exc}") from None
    except ValueError:
        raise UnprocessableEvent(f"product id {product.id!r} is not a UUID") from None
    uow.execute(
        "INSERT INTO group_commerce.products (id, sku, price_minor, currency) "
        "VALUES (:id, :sku, :price_minor, :currency) ON CONFLICT (id) DO NOTHING",
        {"id": product_id, "sku": product.sku, "price_minor": price_minor,
         "currency": product.currency.strip().upper()},
    )
