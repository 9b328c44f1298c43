"""Inventory use cases: stock set over HTTP or brought by a new product; stock reserved for orders,
released, and turned into a sale when the parcel ships.

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
from fusion.contracts import InventoryInsufficient, InventoryReleased, InventoryReserved, StockLine
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


@dataclass(frozen=True)
class OrderStock:
    """An order whose stock changes hands, and why (kept on its reservation)."""

    order_id: str
    reason: str


# stock


def add_initial_stock(stock: InitialStock, uow: UnitOfWork) -> None:
    """A level already set by PUT /inventory is kept."""
    store.add_stock_if_new(uow, stock.sku, stock.quantity)


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
    shortage = first_shortage(wanted, store.lock_stock(uow, list(wanted)))
    if shortage is not None:
        store.refuse_reservation(uow, order_id, f"insufficient stock for {shortage.sku}")
        uow.publish("inventory.insufficient", subject=order_id, payload=InventoryInsufficient(
            order_id=order_id, sku=shortage.sku, requested=shortage.requested, available=shortage.available,
        ))
        return
    _hold(uow, order_id, wanted)
    uow.publish("inventory.reserved", subject=order_id, payload=InventoryReserved(
        order_id=order_id, items=[StockLine(sku=sku, quantity=qty) for sku, qty in wanted.items()],
    ))


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
