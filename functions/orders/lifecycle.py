"""The order state machine, in one place and free of I/O.

    created → confirmed → paid → shipped → delivered
    failed    from created or confirmed
    cancelled from created, confirmed or paid

Events of the saga travel on different topics, so they can arrive out of order: an order may hear
that it was paid before it hears that its stock was reserved. Along the happy path a status may
therefore be reached from any earlier one, and an event that would move an order backwards (stale)
or to where it already is (duplicate) changes nothing. Delivered, failed and cancelled are final.
"""

from __future__ import annotations

from enum import StrEnum


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
