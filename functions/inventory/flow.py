"""Inventory use cases: stock set over HTTP or brought by a new product; stock reserved for orders,
released, and turned into a sale when the parcel ships; stock held for a group campaign's seats.

A campaign holds the stock of all its seats when it is created, all or nothing
(inventory.campaign.held, or inventory.campaign.refused), so a group that forms never fails for
stock: each of its group orders takes its unit from the campaign's hold. When the campaign ends, the
units of seats nobody took go back (all of them when it expired).

On the API `quantity` is the stock on hand (what `PUT /inventory` sets), `reserved` is held for
orders not shipped yet, and `available` = quantity - reserved is what new orders can reserve.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pydantic import Field

from functions.inventory import store
from functions.inventory.rules import first_shortage
from functions.inventory.store import StockRow
from fusion import catalog_lookup
from fusion.contracts import (
    CampaignStockHeld,
    CampaignStockRefused,
    InventoryInsufficient,
    InventoryReleased,
    InventoryReserved,
    StockLine,
)
from fusion.db import Sql
from fusion.errors import Conflict, NotFound
from fusion.listing import Page
from fusion.uow import UnitOfWork
from fusion.web import Body, WholeNumber

log = logging.getLogger(__name__)
MAX_QUANTITY = 2**31 - 1


class StockLevel(Body):
    sku: str = Field(min_length=1, max_length=64)
    quantity: WholeNumber = Field(ge=0, le=MAX_QUANTITY)


@dataclass(frozen=True)
class InitialStock:
    """The stock a new product comes with."""

    sku: str
    quantity: int


@dataclass(frozen=True)
class Reservation:
    """What an order wants reserved: quantity per sku, in sku order, never empty."""

    order_id: str
    wanted: Mapping[str, int]
    campaign_id: str | None = None  # a group order takes its stock from its campaign's hold


@dataclass(frozen=True)
class CampaignHold:
    """A new campaign wants `quantity` units (its maximum seats) of one sku held."""

    campaign_id: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class CampaignEnd:
    """A campaign ended; `seats_to_come` of its counted seats may still become orders (0 when it expired)."""

    campaign_id: str
    max_seats: int
    seats_to_come: int


def campaign_holder(campaign_id: str) -> str:
    """The reservation that holds a campaign's stock."""
    return f"campaign:{campaign_id}"


@dataclass(frozen=True)
class OrderStock:
    """An order whose stock changes hands, and why (kept on its reservation)."""

    order_id: str
    reason: str


# stock


def add_initial_stock(stock: InitialStock, uow: UnitOfWork) -> None:
    """A level already set by PUT /inventory is kept."""
    store.add_stock_if_new(uow, stock.sku, stock.quantity)


def learn_new_products(uow: UnitOfWork, skus: list[str]) -> None:
    """Take the stock of products product.created has not brought yet from the catalog itself, so an order
    for a product created a moment ago is not refused for stock it has (the catalog down: Unavailable)."""
    for sku in sorted(set(skus) - store.known_skus(uow, skus)):
        stock = catalog_lookup.initial_stock(sku)
        if stock is not None:
            store.add_stock_if_new(uow, sku, stock)


def stock_of(sku: str, uow: UnitOfWork) -> StockRow:
    row = store.find_stock(uow, sku)
    if row is None:
        raise NotFound("sku", sku)
    return row


def list_stock(sku: str | None, uow: UnitOfWork, page: Page) -> list[StockRow]:
    return store.list_stock(uow, page, sku)


def set_stock(level: StockLevel, uow: UnitOfWork) -> StockRow:
    """Stock on hand never goes below what orders have reserved."""
    row = store.set_on_hand(uow, level.sku, level.quantity)
    if row is None:
        reserved = store.find_reserved(uow, level.sku)
        raise Conflict(f"sku {level.sku}: {reserved} units are reserved for orders; stock cannot go below that")
    return row


# reservations


def reserve_stock(reservation: Reservation, uow: UnitOfWork) -> None:
    """All or nothing: inventory.reserved, or inventory.insufficient naming the first short sku."""
    order_id, wanted = reservation.order_id, reservation.wanted
    if not store.claim_order(uow, order_id):
        log.info("order %s was reserved, refused or cancelled before; nothing to reserve", order_id)
        return
    if _take_from_campaign(uow, reservation):
        _publish_reserved(uow, order_id, wanted)
        return
    learn_new_products(uow, list(wanted))
    shortage = first_shortage(wanted, store.lock_stock(uow, list(wanted)))
    if shortage is not None:
        store.refuse_reservation(uow, order_id, f"insufficient stock for {shortage.sku}")
        uow.publish("inventory.insufficient", subject=order_id, payload=InventoryInsufficient(
            order_id=order_id, sku=shortage.sku, requested=shortage.requested, available=shortage.available,
        ))
        return
    _hold(uow, order_id, wanted)
    _publish_reserved(uow, order_id, wanted)


def _publish_reserved(uow: UnitOfWork, order_id: str, wanted: Mapping[str, int]) -> None:
    uow.publish("inventory.reserved", subject=order_id, payload=InventoryReserved(
        order_id=order_id, items=[StockLine(sku=sku, quantity=qty) for sku, qty in wanted.items()],
    ))


def _take_from_campaign(uow: UnitOfWork, reservation: Reservation) -> bool:
    """A group order's unit comes from its campaign's hold; False (reserve as usual) when the hold has none."""
    if reservation.campaign_id is None or len(reservation.wanted) != 1:
        return False
    [(sku, quantity)] = reservation.wanted.items()
    holder = campaign_holder(reservation.campaign_id)
    if store.pass_campaign_units(uow, holder, reservation.order_id, sku, quantity):
        return True
    log.warning("order %s: campaign %s holds no stock for it; reserving from the shelf", reservation.order_id,
                reservation.campaign_id)
    return False


def hold_campaign_stock(hold: CampaignHold, uow: UnitOfWork) -> None:
    """Hold the stock of every seat of a new campaign, all or nothing; a repeated request changes nothing."""
    holder = campaign_holder(hold.campaign_id)
    if not store.claim_order(uow, holder):
        return
    wanted = {hold.sku: hold.quantity}
    learn_new_products(uow, [hold.sku])
    shortage = first_shortage(wanted, store.lock_stock(uow, [hold.sku]))
    if shortage is not None:
        store.refuse_reservation(uow, holder, f"insufficient stock for {shortage.sku}")
        uow.publish("inventory.campaign.refused", subject=hold.campaign_id, payload=CampaignStockRefused(
            campaign_id=hold.campaign_id, sku=hold.sku, requested=shortage.requested, available=shortage.available,
        ))
        return
    _hold(uow, holder, wanted)
    uow.publish("inventory.campaign.held", subject=hold.campaign_id,
                payload=CampaignStockHeld(campaign_id=hold.campaign_id, sku=hold.sku, quantity=hold.quantity))


def release_campaign_stock(end: CampaignEnd, uow: UnitOfWork) -> int:
    """Give back the units of the ended campaign's seats that will never be orders; how many went back."""
    holder = campaign_holder(end.campaign_id)
    line = store.lock_campaign_line(uow, holder)
    if line is None:
        return 0
    passed_on = end.max_seats - line.quantity
    still_wanted = max(end.seats_to_come - passed_on, 0)
    surplus = line.quantity - still_wanted
    if surplus > 0:
        store.give_back_campaign_units(uow, holder, line.sku, surplus)
    if still_wanted == 0:
        store.move_reservation(uow, holder, was="reserved", becomes="released", reason="campaign ended")
    return surplus


def _hold(uow: UnitOfWork, order_id: str, wanted: Mapping[str, int]) -> None:
    held = store.hold_stock(uow, wanted)
    if held != len(wanted):  # the rows are locked, so this means a bug, never a race: undo everything
        raise RuntimeError(f"order {order_id}: reserved {held} of {len(wanted)} skus")
    store.record_reservation_lines(uow, order_id, wanted)


def _take_lines(uow: UnitOfWork, order_id: str, *, was: str, becomes: str, reason: str) -> list[StockLine] | None:
    """Move the reservation from `was` to `becomes`, locking its stock rows; its lines, or None when not `was`."""
    if not store.move_reservation(uow, order_id, was=was, becomes=becomes, reason=reason):
        return None
    lines = store.find_reservation_lines(uow, order_id)
    store.lock_stock(uow, [line.sku for line in lines])
    return lines


def _release(change: OrderStock, uow: UnitOfWork, *, was: str,
             give_back: Callable[[Sql, str], None]) -> list[StockLine] | None:
    """End a reservation in status `was` as released, `give_back` its stock and publish inventory.released."""
    lines = _take_lines(uow, change.order_id, was=was, becomes="released", reason=change.reason)
    if lines is None:
        return None
    give_back(uow, change.order_id)
    uow.publish("inventory.released", subject=change.order_id,
                payload=InventoryReleased(order_id=change.order_id, items=lines, reason=change.reason))
    return lines


def release_stock(change: OrderStock, uow: UnitOfWork) -> list[StockLine] | None:
    """Give an order's reserved stock back; the lines released, or None when nothing was held.

    A release that comes before the order itself is remembered, so the late order.created
    reserves nothing. Releasing twice, or after a refusal or a sale, changes nothing.
    """
    if store.remember_early_release(uow, change.order_id, change.reason):
        log.info("order %s released before it was reserved; it will reserve nothing", change.order_id)
        return None
    return _release(change, uow, was="reserved", give_back=store.return_reserved_stock)


def restock_sale(change: OrderStock, uow: UnitOfWork) -> list[StockLine] | None:
    """Put the stock of a sale back on hand; the lines restocked, or None when the order was not sold.

    Orders accepts a cancellation only before it has seen the parcel ship, and shipping voids a label
    the carrier has not picked up, so a sale that meets a cancellation never left the warehouse: the
    label was created while the cancellation was on its way.
    """
    return _release(change, uow, was="sold", give_back=store.restock_sold_stock)


def cancel_stock(change: OrderStock, uow: UnitOfWork) -> None:
    """A cancelled order gives its stock back, reserved or already sold."""
    if release_stock(change, uow) is None:
        restock_sale(change, uow)


def sell_stock(change: OrderStock, uow: UnitOfWork) -> None:
    """The parcel ships: the reserved stock leaves the stock on hand."""
    if _take_lines(uow, change.order_id, was="reserved", becomes="sold", reason=change.reason) is None:
        log.warning("order %s shipped without a held reservation; stock unchanged", change.order_id)
        return
    store.ship_reserved_stock(uow, change.order_id)
