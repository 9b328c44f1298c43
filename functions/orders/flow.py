"""What happens to an order: placed (checked against the catalog, or at a trusted group price),
moved along the saga, cancelled by its customer or because its payment did not arrive in time.

Every move goes through the state machine in one conditional UPDATE, and the events a status
announces (order.confirmed, order.failed, order.cancelled) are published by the move that reached it.
A saga event for a step the order has gone past only adds that step to the history, flagged late.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pydantic import Field, field_validator

from functions.orders import store
from functions.orders.rules import (
    ListedPrice,
    OrderLine,
    OrderStatus,
    group_order_id,
    order_total,
    price_problem,
)
from functions.orders.store import MovedOrder, Order
from fusion import catalog_lookup, logs, metrics
from fusion.auth import customer_id_for, ensure_owner
from fusion.config import settings
from fusion.contracts import (
    Contract,
    OrderCancelled,
    OrderConfirmed,
    OrderCreated,
    OrderFailed,
    OrderItem,
    ProductCreated,
    ProductUpdated,
)
from fusion.db import Sql
from fusion.errors import Conflict, Invalid, NotFound, Refused, Unavailable
from fusion.money import MoneyError, normalise_currency, to_decimal, to_minor
from fusion.uow import UnitOfWork
from fusion.web import Amount, Body, CurrencyCode, WholeNumber

MAX_ITEMS = 100
MAX_QUANTITY = 10_000
MAX_TOTAL_MINOR = 10**15  # far below BIGINT, far above any real basket
CANCELLED_BY_CUSTOMER = "cancelled by customer"
EXPIRY_REASON = "payment not received in time"
log = logging.getLogger(__name__)


class NewOrderItem(Body):
    sku: str = Field(min_length=1, max_length=64)
    quantity: WholeNumber = Field(ge=1, le=MAX_QUANTITY)
    price: Amount = Field(ge=0)


class NewOrder(Body):
    # Taken from the token when omitted; staff placing an order for a customer name it.
    customer_id: str | None = Field(default=None, min_length=1, max_length=128)
    items: list[NewOrderItem] = Field(min_length=1, max_length=MAX_ITEMS)
    currency: CurrencyCode

    @field_validator("currency")
    @classmethod
    def known_currency(cls, value: str) -> str:
        return normalise_currency(value)


@dataclass(frozen=True)
class Placement:
    """An order at prices already trusted; a deterministic `order_id` makes placing it idempotent."""

    customer_id: str
    lines: tuple[OrderLine, ...]
    currency: str
    campaign_id: str | None = None
    order_id: uuid.UUID | None = None


@dataclass(frozen=True)
class GroupSeats:
    """Seats of a successful campaign, each to become one order of `line` at the group price."""

    campaign_id: str
    line: OrderLine
    currency: str
    user_ids: tuple[str, ...]


@dataclass(frozen=True)
class Move:
    """Move an order to `target`; `only_from` narrows the statuses the state machine allows it from.

    `occurred_at` is when the fact behind the move happened, as its event says (None: now).
    """

    order_id: uuid.UUID
    target: OrderStatus
    reason: str
    only_from: frozenset[OrderStatus] | None = None
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class CancelOrder:
    order_id: uuid.UUID
    reason: str | None = None


@dataclass(frozen=True)
class UnpaidOrder:
    order_id: uuid.UUID


# placing


def place(order: NewOrder, uow: UnitOfWork) -> Order:
    """Place a storefront order, refused unless every line is at the catalog's current price, it costs
    something, and the customer holds no more unpaid orders than the limit allows."""
    customer_id = customer_id_for(order.customer_id, "customerId")
    lines = _priced_lines(order)
    if order_total(lines) == 0:
        raise Refused("an order must cost something; nothing is given away by default", code="zero_total",
                      field="items")
    _check_catalog_prices(uow, lines, order.currency)
    _check_open_order_limits(uow, customer_id, lines)
    return place_priced(Placement(customer_id, lines, order.currency), uow)


def _check_open_order_limits(uow: UnitOfWork, customer_id: str, lines: tuple[OrderLine, ...]) -> None:
    """One account cannot lock the stock for the unpaid hold: bounded unpaid orders and units per customer."""
    config = settings()
    held = store.lock_open_orders_of(uow, customer_id)
    if held.orders + 1 > config.customer_open_orders:
        raise Conflict(f"customer {customer_id} already has {held.orders} unpaid orders; pay or cancel one first",
                       code="open_order_limit")
    units = sum(line.quantity for line in lines)
    if held.units + units > config.customer_open_units:
        raise Conflict(f"customer {customer_id} would hold {held.units + units} unpaid units, more than "
                       f"{config.customer_open_units}", code="open_unit_limit")


def _priced_lines(order: NewOrder) -> tuple[OrderLine, ...]:
    """The items with prices in minor units; Invalid names the item whose price the currency cannot express."""
    lines = tuple(_priced_line(index, item, order.currency) for index, item in enumerate(order.items))
    if order_total(lines) > MAX_TOTAL_MINOR:
        raise Invalid("items", "the order total is too large")
    return lines


def _priced_line(index: int, item: NewOrderItem, currency: str) -> OrderLine:
    try:
        price_minor = to_minor(item.price, currency)
    except MoneyError as exc:
        raise Invalid(f"items[{index}].price", str(exc)) from None
    return OrderLine(sku=item.sku, quantity=item.quantity, price_minor=price_minor)


def _check_catalog_prices(db: Sql, lines: tuple[OrderLine, ...], currency: str) -> None:
    """Refused, naming the first line whose sku the catalog does not know or whose price is not the newest one.

    The projection of the catalog's events may lag behind the catalog: a sku it has not heard of, or a price
    that differs from the one it holds, is asked of the catalog first and the answer recorded (the newest price
    time wins), so a product created or repriced a moment ago sells at once. A catalog that cannot answer is
    Unavailable (503), never a refusal."""
    skus = {line.sku for line in lines}
    listed = store.listed_prices(db, skus)
    doubtful = sorted({line.sku for line in lines if _worth_asking(line, currency, listed.get(line.sku))})
    if doubtful:
        for sku in doubtful:
            _record_catalog_answer(db, sku)
        listed = store.listed_prices(db, skus)
    for index, line in enumerate(lines):
        problem = price_problem(line, currency, listed.get(line.sku))
        if problem is not None:
            field = f"items[{index}].sku" if problem.code == "unknown_sku" else f"items[{index}].price"
            raise Refused(problem.message, code=problem.code, field=field)


def _worth_asking(line: OrderLine, currency: str, listed: ListedPrice | None) -> bool:
    """Whether the catalog may know better than the projection: an unknown sku, or another price."""
    problem = price_problem(line, currency, listed)
    return problem is not None and problem.code in ("unknown_sku", "price_mismatch")


def _record_catalog_answer(db: Sql, sku: str) -> None:
    product = catalog_lookup.product_by_sku(sku)
    if product is None:
        return
    try:
        store.record_price(db, announced_price(product))
    except MoneyError as exc:
        raise Unavailable(f"the catalog's price of sku {sku!r} cannot be read: {exc}",
                          code="catalog_unavailable") from None


def announced_price(product: ProductCreated | ProductUpdated) -> store.CatalogPrice:
    """The price a product.created, a product.updated or a catalog lookup announces, at the time it was set;
    MoneyError when the currency cannot express it."""
    return store.CatalogPrice(sku=product.sku, product_id=product.id, name=product.name,
                              price_minor=to_minor(product.price, product.currency),
                              currency=product.currency.upper(), at=product.price_set_at)


def place_priced(placement: Placement, uow: UnitOfWork) -> Order:
    """Create an order in status "created" and publish order.created, in `uow`'s transaction.

    When an order with the placement's id exists already it is returned unchanged and nothing is published.
    """
    if not placement.lines:
        raise ValueError("an order needs at least one item")
    order_id = placement.order_id or uuid.uuid4()
    placed = store.insert_order(uow, order_id, placement.customer_id, placement.lines,
                                normalise_currency(placement.currency), placement.campaign_id)
    if placed is None:
        existing = store.find_order(uow, order_id)
        if existing is None:  # the conflicting insert was committed, so this cannot happen
            raise RuntimeError(f"order {order_id} exists but cannot be read")
        return existing
    logs.bind(orderId=str(order_id))
    uow.publish("order.created", subject=str(order_id), payload=_order_created(placed))
    return placed


def _order_created(order: Order) -> OrderCreated:
    row = order.row
    return OrderCreated(
        order_id=str(row.id), customer_id=row.customer_id, total=to_decimal(row.total_minor, row.currency),
        currency=row.currency, campaign_id=row.campaign_id,
        items=[OrderItem(sku=line.sku, quantity=line.quantity, price=to_decimal(line.price_minor, row.currency))
               for line in order.items],
    )


def place_group_orders(seats: GroupSeats, uow: UnitOfWork) -> None:
    """One order per user at the group price; orders that exist already are left as they are."""
    for user_id in seats.user_ids:
        order_id = uuid.UUID(group_order_id(seats.campaign_id, user_id))
        place_priced(Placement(user_id, (seats.line,), seats.currency, seats.campaign_id, order_id), uow)


def record_price(price: store.CatalogPrice, uow: UnitOfWork) -> None:
    """Keep the catalog's price of a sku, against which new orders are checked; an older one changes nothing."""
    store.record_price(uow, price)


# moving


def move(command: Move, uow: UnitOfWork) -> MovedOrder | None:
    """Move the order and publish what its new status announces; None when the order did not move."""
    moved = store.move_order(uow, command.order_id, command.target, command.reason, command.only_from)
    if moved is not None:
        metrics.observe_status_change(moved.previous_status, moved.status,
                                      (moved.status_changed_at - moved.previous_changed_at).total_seconds())
    if moved is not None and command.target in _ANNOUNCED:
        topic, announcement = _ANNOUNCED[command.target]
        uow.publish(topic, subject=str(moved.id), payload=announcement(moved, command.reason))
    return moved


def follow_saga(command: Move, uow: UnitOfWork) -> None:
    """Move the order as a saga event says; a step it has gone past is kept in its history as a late fact.

    A duplicate event, or one for an unknown order, changes nothing.
    """
    logs.bind(orderId=str(command.order_id))
    if move(command, uow) is not None:
        return
    if store.record_late(uow, command.order_id, command.target, command.reason, command.occurred_at):
        log.info("order %s heard late that it was %s; kept in its history only", command.order_id, command.target)
    else:
        log.info("order %s not moved to %s: unknown order, or a stale or duplicate event",
                 command.order_id, command.target)


def cancel(command: CancelOrder, uow: UnitOfWork) -> Order:
    """Cancel an order that may still be cancelled; cancelling it again is harmless."""
    visible_order(command.order_id, uow)
    move(Move(command.order_id, OrderStatus.CANCELLED, command.reason or CANCELLED_BY_CUSTOMER), uow)
    order = existing_order(command.order_id, uow)
    if order.row.status != OrderStatus.CANCELLED:
        raise Conflict(f"order {command.order_id} is {order.row.status} and can no longer be cancelled")
    return order


def cancel_unpaid(command: UnpaidOrder, uow: UnitOfWork) -> bool:
    """Cancel a confirmed order whose payment did not arrive; False when it was paid or changed meanwhile."""
    unpaid = Move(command.order_id, OrderStatus.CANCELLED, EXPIRY_REASON, only_from=frozenset({OrderStatus.CONFIRMED}))
    return move(unpaid, uow) is not None


def _confirmed(order: MovedOrder, reason: str) -> OrderConfirmed:
    return OrderConfirmed(order_id=str(order.id), customer_id=order.customer_id,
                          total=to_decimal(order.total_minor, order.currency), currency=order.currency)


def _failed(order: MovedOrder, reason: str) -> OrderFailed:
    return OrderFailed(order_id=str(order.id), customer_id=order.customer_id, reason=reason)


def _cancelled(order: MovedOrder, reason: str) -> OrderCancelled:
    return OrderCancelled(order_id=str(order.id), customer_id=order.customer_id,
                          previous_status=order.previous_status, reason=reason)


# The statuses other services hear about: the topic and the payload of the event each one publishes.
_ANNOUNCED: dict[OrderStatus, tuple[str, Callable[[MovedOrder, str], Contract]]] = {
    OrderStatus.CONFIRMED: ("order.confirmed", _confirmed),
    OrderStatus.FAILED: ("order.failed", _failed),
    OrderStatus.CANCELLED: ("order.cancelled", _cancelled),
}


# reading


def visible_order(order_id: uuid.UUID, db: Sql) -> Order:
    """The order with this id, if the caller may see it (another customer's order does not exist for it)."""
    order = existing_order(order_id, db)
    ensure_owner(order.row.customer_id, "order", order_id)
    return order


def existing_order(order_id: uuid.UUID, db: Sql) -> Order:
    """The order with this id; NotFound when there is none."""
    order = store.find_order(db, order_id)
    if order is None:
        raise NotFound("order", order_id)
    return order
