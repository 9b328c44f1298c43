"""Group buying's events: the product copies fed by product.created, and the deadline sweep that
every minute ends the campaigns whose deadline has passed (see `flow.end_campaign`)."""

from __future__ import annotations

import logging
import uuid

from functions.group_commerce import flow, store
from functions.group_commerce.store import SERVICE, Product
from fusion.binding import Event
from fusion.contracts import ProductCreated
from fusion.declare import UnprocessableEvent, event_handler, payload_of, scheduled
from fusion.money import MoneyError, to_minor
from fusion.registry import PRODUCT_EVENTS
from fusion.uow import UnitOfWork, reading, unit_of_work

BATCH = 100
log = logging.getLogger(__name__)


@event_handler("campaign-product-projection", service=SERVICE, topics=["product.created"],
               delivery=PRODUCT_EVENTS)
def project_product(event: Event, uow: UnitOfWork) -> None:
    """Keep a local copy of each new product so campaigns can be priced without asking the catalog."""
    store.add_product(uow, _product_of(payload_of(event, ProductCreated)))


def _product_of(product: ProductCreated) -> Product:
    try:
        product_id = uuid.UUID(product.id)
        price_minor = to_minor(product.price, product.currency)
    except MoneyError as exc:
        raise UnprocessableEvent(f"product {product.id}: price {exc}") from None
    except ValueError:
        raise UnprocessableEvent(f"product id {product.id!r} is not a UUID") from None
    return Product(id=product_id, sku=product.sku, price_minor=price_minor,
                   currency=product.currency.strip().upper())


@scheduled("close-expired-campaigns", service=SERVICE, schedule="* * * * *")
def close_expired_campaigns(event: Event) -> None:
    """End every campaign past its deadline: expired below its minimum, closed at or above it."""
    ended = 0
    while due := _due_campaigns():
        ended += sum(_end(campaign_id) is not None for campaign_id in due)
        if len(due) < BATCH:
            break
    if ended:
        log.info("ended %d campaign(s) past their deadline", ended)


def _due_campaigns() -> list[uuid.UUID]:
    with reading(SERVICE) as db:
        return store.due_campaign_ids(db, BATCH)


def _end(campaign_id: uuid.UUID) -> str | None:
    """Each campaign ends in its own transaction, so one failure does not undo the others."""
    with unit_of_work(SERVICE) as uow:
        return flow.end_campaign(campaign_id, uow)
