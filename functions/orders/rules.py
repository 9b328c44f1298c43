"""The pure rules of orders: the order state machine, order totals, catalog prices, reasons and ids.

    created → confirmed → paid → shipped → delivered
    failed    from created or confirmed
    cancelled from created, confirmed or paid

Events of the saga travel on different topics, so they can arrive out of order: an order may hear
that it was paid before it hears that its stock was reserved. Along the happy path a status may
therefore be reached from any earlier one, and an event that would move an order backwards (stale)
or to where it already is (duplicate) changes no status. Delivered, failed and cancelled are final.

The history is the audit trail, though: a step of the happy path the order has already gone past
(paid, heard after shipped) is a late fact, kept in the history at the time it happened.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from fusion.contracts import InventoryInsufficient
from fusion.money import to_decimal


class OrderStatus(StrEnum):
    CREATED = "created"
    CONFIRMED = "confirmed"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"


HAPPY_PATH = (
    OrderStatus.CREATED,
    OrderStatus.CONFIRMED,
    OrderStatus.PAID,
    OrderStatus.SHIPPED,
    OrderStatus.DELIVERED,
)
FINAL = frozenset({OrderStatus.DELIVERED, OrderStatus.FAILED, OrderStatus.CANCELLED})


def _earlier_on_happy_path(target: OrderStatus) -> frozenset[OrderStatus]:
    return frozenset(HAPPY_PATH[: HAPPY_PATH.index(target)])


_ALLOWED_FROM: dict[OrderStatus, frozenset[OrderStatus]] = {
    **{status: _earlier_on_happy_path(status) for status in HAPPY_PATH},
    OrderStatus.FAILED: frozenset({OrderStatus.CREATED, OrderStatus.CONFIRMED}),
    OrderStatus.CANCELLED: frozenset({OrderStatus.CREATED, OrderStatus.CONFIRMED, OrderStatus.PAID}),
}

CANCELLABLE = _ALLOWED_FROM[OrderStatus.CANCELLED]
ALL_STATUSES = tuple(status.value for status in OrderStatus)


def allowed_from(target: OrderStatus) -> frozenset[OrderStatus]:
    """The statuses an order may be in for `target` to apply."""
    return _ALLOWED_FROM[target]


def can_move(current: OrderStatus, target: OrderStatus) -> bool:
    """Whether an order in `current` moves to `target`; False for stale and duplicate transitions."""
    return current in _ALLOWED_FROM[target]


def beyond(target: OrderStatus) -> frozenset[OrderStatus]:
    """The statuses of an order that has gone past `target` on the happy path."""
    if target not in HAPPY_PATH:
        return frozenset()
    return frozenset(HAPPY_PATH[HAPPY_PATH.index(target) + 1:])


@dataclass(frozen=True)
class OrderLine:
    """One line of an order: `price_minor` is the unit price in the order currency's minor units."""

    sku: str
    quantity: int
    price_minor: int


def order_total(lines: Sequence[OrderLine]) -> int:
    """Sum of price * quantity, exact, in minor units."""
    return sum(line.price_minor * line.quantity for line in lines)


@dataclass(frozen=True)
class ListedPrice:
    """What the catalog asks for a sku, as last heard from it (product.created, product.updated or a lookup)."""

    sku: str
    price_minor: int
    currency: str


class PriceProblem(NamedTuple):
    code: str
    message: str


def price_problem(line: OrderLine, currency: str, listed: ListedPrice | None) -> PriceProblem | None:
    """Why a line's sku is unknown or its price is not the catalog's; None when the line is fine."""
    if listed is None:
        return PriceProblem("unknown_sku", f"sku {line.sku!r} is not in the catalog")
    if listed.currency != currency:
        return PriceProblem("currency_mismatch", f"sku {line.sku!r} is sold in {listed.currency}, not {currency}")
    if listed.price_minor != line.price_minor:
        expected, given = to_decimal(listed.price_minor, currency), to_decimal(line.price_minor, currency)
        return PriceProblem("price_mismatch", f"sku {line.sku!r} costs {expected} {currency}, not {given}")
    return None


def insufficient_stock_reason(shortage: InventoryInsufficient) -> str:
    if shortage.available <= 0:
        return f"sku {shortage.sku} is out of stock (requested {shortage.requested})"
    return f"insufficient stock for sku {shortage.sku}: requested {shortage.requested}, available {shortage.available}"


def payment_deadline_passed_before(now: datetime, hold_seconds: int) -> datetime:
    """Orders confirmed before this moment have waited longer than the hold for their payment."""
    return now - timedelta(seconds=hold_seconds)


# Fixed forever: changing it would give a redelivered event new order ids, hence duplicate orders.
GROUP_ORDER_NAMESPACE = uuid.UUID("7591eb19-5e09-52d0-bbe0-50f6c7b0b714")


def group_order_id(campaign_id: str, user_id: str) -> str:
    """The one order id of a user's seat in a campaign (campaign ids are UUIDs, so the key is unambiguous)."""
    return str(uuid.uuid5(GROUP_ORDER_NAMESPACE, f"{campaign_id}/{user_id}"))
