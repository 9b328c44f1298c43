"""Reserving stock for orders, releasing it, and turning it into a sale when the parcel ships.

Every change that touches several stock rows locks them first with one `SELECT … ORDER BY sku FOR
UPDATE`, so concurrent transactions always take their locks in the same order and cannot deadlock;
the reservation row of the order is always locked before any stock row for the same reason.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fusion import logs
from fusion.binding import Event
from fusion.contracts import (
    InventoryInsufficient,
    InventoryReleased,
    InventoryReserved,
    LabelCreated,
    OrderCancelled,
    OrderCreated,
    OrderItem,
    PaymentFailed,
    StockLine,
)
from fusion.declare import UnprocessableEvent, event_handler, payload_of
from fusion.registry import ORDER_EVENTS, PAYMENT_EVENTS, SHIPPING_EVENTS
from fusion.uow import UnitOfWork

SERVICE = "inventory"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shortage:
    sku: str
    requested: int
    available: int


def requested_quantities(items: Iterable[OrderItem]) -> dict[str, int]:
    """Quantity wanted per sku (a sku may appear on several lines), in sku order."""
    wanted: dict[str, int] = {}
    for item in items:
        if item.quantity < 1:
            raise ValueError(f"sku {item.sku}: quantity must be at least 1, got {item.quantity}")
        wanted[item.sku] = wanted.get(item.sku, 0) + item.quantity
    return dict(sorted(wanted.items()))


def first_shortage(wanted: Mapping[str, int], available: Mapping[str, int]) -> Shortage | None:
    """The first sku (in sku order) without enough available stock; an unknown sku has none."""
    for sku, quantity in sorted(wanted.items()):
        have = max(available.get(sku, 0), 0)
        if have < quantity:
            return Shortage(sku=sku, requested=quantity, available=have)
    return None


def _lock_stock(uow: UnitOfWork, skus: list[str]) -> dict[str, int]:
    """Lock the stock rows of `skus` in sku order; available quantity per known sku."""
    rows = uow.execute(
        "SELECT sku, available FROM inventory.stock WHERE sku = ANY(:skus) ORDER BY sku FOR UPDATE",
        {"skus": skus},
    ).all()
    return {row.sku: row.available for row in rows}


def _claim_order(uow: UnitOfWork, order_id: str) -> bool:
    """Record the order's reservation; False when the order was seen before (reserved, refused or cancelled)."""
    row = uow.execute(
        "INSERT INTO inventory.reservations (order_id, status) VALUES (:id, 'reserved') "
        "ON CONFLICT DO NOTHING RETURNING 1",
        {"id": order_id},
    ).first()
    return row is not None


def _hold(uow: UnitOfWork, order_id: str, wanted: Mapping[str, int]) -> None:
    params = {"id": order_id, "skus": list(wanted), "quantities": list(wanted.values())}
    held = uow.execute(
        "UPDATE inventory.stock AS s SET reserved = s.reserved + w.quantity, updated_at = now() "
        "FROM unnest(CAST(:skus AS text[]), CAST(:quantities AS int[])) AS w(sku, quantity) "
        "WHERE s.sku = w.sku AND s.available >= w.quantity",
        params,
    ).rowcount
    if held != len(wanted):  # the rows are locked, so this means a bug, never a race: undo everything
        raise RuntimeError(f"order {order_id}: reserved {held} of {len(wanted)} skus")
    uow.execute(
        "INSERT INTO inventory.reservation_items (order_id, sku, quantity) "
        "SELECT :id, sku, quantity FROM unnest(CAST(:skus AS text[]), CAST(:quantities AS int[])) AS w(sku, quantity)",
        params,
    )


def _refuse(uow: UnitOfWork, order_id: str, shortage: Shortage) -> None:
    uow.execute(
        "UPDATE inventory.reservations SET status = 'refused', reason = :reason, updated_at = now() "
        "WHERE order_id = :id",
        {"id": order_id, "reason": f"insufficient stock for {shortage.sku}"},
    )


@event_handler("reserve-stock", service=SERVICE, topics=["order.created"], delivery=ORDER_EVENTS)
def reserve_stock(event: Event, uow: UnitOfWork) -> None:
    """Reserve every item of a new order, all or nothing (inventory.reserved or inventory.insufficient)."""
    order = payload_of(event, OrderCreated)
    logs.bind(orderId=order.order_id)
    try:
        wanted = requested_quantities(order.items)
    except ValueError as exc:
        raise UnprocessableEvent(str(exc)) from None
    if not wanted:
        raise UnprocessableEvent(f"order {order.order_id} has no items")
    if not _claim_order(uow, order.order_id):
        log.info("order %s was reserved, refused or cancelled before; nothing to reserve", order.order_id)
        return
    shortage = first_shortage(wanted, _lock_stock(uow, list(wanted)))
    if shortage is not None:
        _refuse(uow, order.order_id, shortage)
        uow.publish("inventory.insufficient", subject=order.order_id, payload=InventoryInsufficient(
            order_id=order.order_id, sku=shortage.sku, requested=shortage.requested, available=shortage.available,
        ))
        return
    _hold(uow, order.order_id, wanted)
    uow.publish("inventory.reserved", subject=order.order_id, payload=InventoryReserved(
        order_id=order.order_id, items=[StockLine(sku=sku, quantity=qty) for sku, qty in wanted.items()],
    ))


def _reserved_lines(uow: UnitOfWork, order_id: str) -> list[StockLine]:
    rows = uow.execute(
        "SELECT sku, quantity FROM inventory.reservation_items WHERE order_id = :id ORDER BY sku", {"id": order_id}
    ).all()
    return [StockLine(sku=row.sku, quantity=row.quantity) for row in rows]


def _end_reservation(uow: UnitOfWork, order_id: str, status: str, reason: str | None) -> list[StockLine] | None:
    """Move a held reservation to `status`, locking its stock rows; its lines, or None when nothing is held."""
    ended = uow.execute(
        "UPDATE inventory.reservations SET status = :status, reason = :reason, updated_at = now() "
        "WHERE order_id = :id AND status = 'reserved' RETURNING 1",
        {"id": order_id, "status": status, "reason": reason},
    ).first()
    if ended is None:
        return None
    lines = _reserved_lines(uow, order_id)
    _lock_stock(uow, [line.sku for line in lines])
    return lines


def release_reservation(uow: UnitOfWork, order_id: str, reason: str) -> list[StockLine] | None:
    """Give an order's reserved stock back; the lines released, or None when nothing was held.

    A release that comes before the order itself is remembered, so the late order.created
    reserves nothing. Releasing twice, or after a refusal or a sale, changes nothing.
    """
    remembered = uow.execute(
        "INSERT INTO inventory.reservations (order_id, status, reason) VALUES (:id, 'released', :reason) "
        "ON CONFLICT DO NOTHING RETURNING 1",
        {"id": order_id, "reason": reason},
    ).first()
    if remembered is not None:
        log.info("order %s released before it was reserved; it will reserve nothing", order_id)
        return None
    lines = _end_reservation(uow, order_id, "released", reason)
    if lines is None:
        return None
    uow.execute(
        "UPDATE inventory.stock AS s SET reserved = s.reserved - i.quantity, updated_at = now() "
        "FROM inventory.reservation_items AS i WHERE i.order_id = :id AND s.sku = i.sku",
        {"id": order_id},
    )
    uow.publish("inventory.released", subject=order_id,
                payload=InventoryReleased(order_id=order_id, items=lines, reason=reason))
    return lines


def restock_sale(uow: UnitOfWork, order_id: str, reason: str) -> list[StockLine] | None:
    """Put the stock of a sale back on hand; the lines restocked, or None when the order was not sold.

    Orders accepts a cancellation only before it has seen the parcel ship, and shipping voids a label
    the carrier has not picked up, so a sale that meets a cancellation never left the warehouse: the
    label was created while the cancellation was on its way.
    """
    restocked = uow.execute(
        "UPDATE inventory.reservations SET status = 'released', reason = :reason, updated_at = now() "
        "WHERE order_id = :id AND status = 'sold' RETURNING 1",
        {"id": order_id, "reason": reason},
    ).first()
    if restocked is None:
        return None
    lines = _reserved_lines(uow, order_id)
    _lock_stock(uow, [line.sku for line in lines])
    uow.execute(
        "UPDATE inventory.stock AS s SET on_hand = s.on_hand + i.quantity, updated_at = now() "
        "FROM inventory.reservation_items AS i WHERE i.order_id = :id AND s.sku = i.sku",
        {"id": order_id},
    )
    uow.publish("inventory.released", subject=order_id,
                payload=InventoryReleased(order_id=order_id, items=lines, reason=reason))
    return lines


@event_handler("release-stock-on-cancel", service=SERVICE, topics=["order.cancelled"], delivery=ORDER_EVENTS)
def release_stock_on_cancel(event: Event, uow: UnitOfWork) -> None:
    """A cancelled order gives its stock back (inventory.released), reserved or already sold."""
    cancelled = payload_of(event, OrderCancelled)
    logs.bind(orderId=cancelled.order_id)
    reason = f"order cancelled: {cancelled.reason}"
    if release_reservation(uow, cancelled.order_id, reason) is None:
        restock_sale(uow, cancelled.order_id, reason)


@event_handler("release-stock-on-payment-failure", service=SERVICE, topics=["payment.failed"],
               delivery=PAYMENT_EVENTS)
def release_stock_on_payment_failure(event: Event, uow: UnitOfWork) -> None:
    """An order whose payment failed gives its reserved stock back (inventory.released)."""
    failed = payload_of(event, PaymentFailed)
    logs.bind(orderId=failed.order_id)
    release_reservation(uow, failed.order_id, f"payment failed: {failed.reason}")


@event_handler("sell-reserved-stock", service=SERVICE, topics=["shipping.label.created"], delivery=SHIPPING_EVENTS)
def sell_reserved_stock(event: Event, uow: UnitOfWork) -> None:
    """The parcel ships: the reserved stock leaves the stock on hand."""
    label = payload_of(event, LabelCreated)
    logs.bind(orderId=label.order_id)
    lines = _end_reservation(uow, label.order_id, "sold", f"shipped, tracking number {label.tracking_number}")
    if lines is None:
        log.warning("order %s shipped without a held reservation; stock unchanged", label.order_id)
        return
    uow.execute(
        "UPDATE inventory.stock AS s SET on_hand = s.on_hand - i.quantity, reserved = s.reserved - i.quantity, "
        "updated_at = now() FROM inventory.reservation_items AS i WHERE i.order_id = :id AND s.sku = i.sku",
        {"id": label.order_id},
    )
