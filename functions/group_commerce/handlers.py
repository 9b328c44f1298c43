"""Group buying's events: the product copies fed by the catalog, the campaign's stock held (or not)
by inventory, the seats' payments reported by payments, and the sweep that every minute frees seats
whose card was not authorized in time and ends the campaigns whose deadline has passed."""

from __future__ import annotations

import logging
import uuid

from functions.group_commerce import flow, store
from functions.group_commerce.store import SERVICE, Product
from fusion.binding import Event
from fusion.contracts import (
    CampaignStockHeld,
    CampaignStockRefused,
    ProductCreated,
    ProductUpdated,
    SeatPayment,
    SeatPaymentFailed,
)
from fusion.declare import UnprocessableEvent, event_handler, payload_of, scheduled
from fusion.money import MoneyError
from fusion.registry import PAYMENT_EVENTS, PRODUCT_EVENTS, RESERVATION_EVENTS
from fusion.topics import TYPE_PREFIX
from fusion.uow import UnitOfWork, reading, unit_of_work

BATCH = 100
log = logging.getLogger(__name__)


@event_handler("campaign-product-projection", service=SERVICE, topics=["product.created", "product.updated"],
               delivery=PRODUCT_EVENTS)
def project_product(event: Event, uow: UnitOfWork) -> None:
    """Keep a local copy of each product at its newest price, so campaigns are priced without asking the
    catalog; a redelivered or late announcement of an older price changes nothing."""
    product: ProductCreated | ProductUpdated
    if event.type == TYPE_PREFIX + "product.updated":
        product = payload_of(event, ProductUpdated)
    else:
        product = payload_of(event, ProductCreated)
    store.add_product(uow, _product_of(product), product.price_set_at)


def _product_of(product: ProductCreated | ProductUpdated) -> Product:
    try:
        return flow.product_copy(product)
    except MoneyError as exc:
        raise UnprocessableEvent(f"product {product.id}: price {exc}") from None
    except ValueError:
        raise UnprocessableEvent(f"product id {product.id!r} is not a UUID") from None


def _campaign_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise UnprocessableEvent(f"campaign id {raw!r} is not a UUID") from None


@event_handler("open-campaign", service=SERVICE, topics=["inventory.campaign.held", "inventory.campaign.refused"],
               delivery=RESERVATION_EVENTS)
def open_campaign(event: Event, uow: UnitOfWork) -> None:
    """A pending campaign opens once inventory holds the stock of all its seats, or is refused."""
    if event.type.endswith(".held"):
        held = payload_of(event, CampaignStockHeld)
        flow.settle_stock(flow.StockOutcome(_campaign_id(held.campaign_id), held=True), uow)
        return
    refused = payload_of(event, CampaignStockRefused)
    reason = (f"not enough stock of {refused.sku} for every seat: {refused.requested} wanted, "
              f"{refused.available} available")
    flow.settle_stock(flow.StockOutcome(_campaign_id(refused.campaign_id), held=False, reason=reason), uow)


_SEAT_OUTCOMES = {
    "payment.seat.authorized": "authorized",
    "payment.seat.declined": "declined",
    "payment.seat.captured": "captured",
    "payment.seat.capture-failed": "capture_failed",
    "payment.seat.refunded": "refunded",
}


@event_handler("follow-seat-payment", service=SERVICE, topics=list(_SEAT_OUTCOMES), delivery=PAYMENT_EVENTS)
def follow_seat_payment(event: Event, uow: UnitOfWork) -> None:
    """Count a seat once its card is authorized, free it when declined, record its charge or refund."""
    outcome = _SEAT_OUTCOMES[event.type.removeprefix(TYPE_PREFIX)]
    if outcome in ("declined", "capture_failed"):
        failed = payload_of(event, SeatPaymentFailed)
        news = flow.SeatPaymentNews(_campaign_id(failed.campaign_id), failed.user_id, outcome, failed.reason)
    else:
        moved = payload_of(event, SeatPayment)
        news = flow.SeatPaymentNews(_campaign_id(moved.campaign_id), moved.user_id, outcome)
    flow.follow_seat_payment(news, uow)


@scheduled("close-expired-campaigns", service=SERVICE, schedule="* * * * *")
def close_expired_campaigns(event: Event) -> None:
    """Free seats whose card was not authorized in time; end every campaign past its deadline: expired
    below its minimum, closed at or above it."""
    freed = _free_due_holds()
    if freed:
        log.info("freed %d seat(s) whose card was not authorized in time", freed)
    ended = 0
    while due := _due_campaigns():
        ended += sum(_end(campaign_id) is not None for campaign_id in due)
        if len(due) < BATCH:
            break
    if ended:
        log.info("ended %d campaign(s) past their deadline", ended)


def _free_due_holds() -> int:
    freed = 0
    while due := _due_holds():
        for hold in due:
            with unit_of_work(SERVICE) as uow:
                freed += flow.release_due_hold(hold.campaign_id, hold.user_id, uow)
        if len(due) < BATCH:
            break
    return freed


def _due_holds() -> list[store.DueHold]:
    with reading(SERVICE) as db:
        return store.due_holds(db, BATCH)


def _due_campaigns() -> list[uuid.UUID]:
    with reading(SERVICE) as db:
        return store.due_campaign_ids(db, BATCH)


def _end(campaign_id: uuid.UUID) -> str | None:
    """Each campaign ends in its own transaction, so one failure does not undo the others."""
    with unit_of_work(SERVICE) as uow:
        return flow.end_campaign(campaign_id, uow)
