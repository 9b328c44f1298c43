"""Orders in the database: the orders with their items and history, and the catalog's prices.

An order is written once with its items and first history entry, then only moved through its
lifecycle by a conditional UPDATE; a fact that arrived too late to move it is only added to its
history. Every read returns typed rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol, TypeVar

from functions.orders.rules import ListedPrice, OrderLine, OrderStatus, allowed_from, beyond, order_total
from fusion.db import Sql
from fusion.listing import Listing

ORDER_COLUMNS = (
    "id, customer_id, status, status_reason, total_minor, currency, campaign_id, created_at, status_changed_at"
)
_MOVED_COLUMNS = ", ".join("o." + column for column in ORDER_COLUMNS.split(", "))


@dataclass(frozen=True)
class OrderRow:
    id: uuid.UUID
    customer_id: str
    status: str
    status_reason: str | None
    total_minor: int
    currency: str
    campaign_id: str | None
    created_at: datetime
    status_changed_at: datetime


@dataclass(frozen=True)
class MovedOrder(OrderRow):
    """An order row just after it moved, with the status it left and since when it had been in it."""

    previous_status: str
    previous_changed_at: datetime


@dataclass(frozen=True)
class StatusChange:
    """A step of an order's history; `at` is when it happened, `late` when it was heard after a later step."""

    status: str
    reason: str | None
    at: datetime
    late: bool = False


@dataclass(frozen=True)
class Order:
    """An order with its lines and the history of its statuses, in the order they happened."""

    row: OrderRow
    items: tuple[OrderLine, ...]
    history: tuple[StatusChange, ...]


class _OfAnOrder(Protocol):
    @property
    def order_id(self) -> uuid.UUID: ...


_Row = TypeVar("_Row", bound=_OfAnOrder)


class _ItemRow(NamedTuple):
    order_id: uuid.UUID
    sku: str
    quantity: int
    price_minor: int

    def line(self) -> OrderLine:
        return OrderLine(self.sku, self.quantity, self.price_minor)


class _HistoryRow(NamedTuple):
    order_id: uuid.UUID
    status: str
    reason: str | None
    occurred_at: datetime
    late: bool

    def change(self) -> StatusChange:
        return StatusChange(self.status, self.reason, self.occurred_at, self.late)


class _Placed(NamedTuple):
    created_at: datetime


@dataclass(frozen=True)
class CatalogPrice:
    """A product's price as the catalog announced it (an event or a lookup), set at `at`."""

    sku: str
    product_id: str
    name: str
    price_minor: int
    currency: str
    at: datetime


def insert_order(db: Sql, order_id: uuid.UUID, customer_id: str, lines: Sequence[OrderLine], currency: str,
                 campaign_id: str | None) -> Order | None:
    """Write a new order in status "created" with its items; None when an order with this id exists."""
    placed = db.execute(
        """
        WITH placed AS (
            INSERT INTO orders.orders (id, customer_id, status, total_minor, currency, campaign_id)
            VALUES (:id, :customer_id, 'created', :total, :currency, :campaign_id)
            ON CONFLICT (id) DO NOTHING
            RETURNING id, created_at
        ), lines AS (
            INSERT INTO orders.order_items (order_id, line, sku, quantity, price_minor)
            SELECT placed.id, item.line, item.sku, item.quantity, item.price_minor
            FROM placed, unnest(CAST(:skus AS text[]), CAST(:quantities AS int[]), CAST(:prices AS bigint[]))
                WITH ORDINALITY AS item(sku, quantity, price_minor, line)
        ), history AS (
            INSERT INTO orders.order_history (order_id, status, at, occurred_at)
            SELECT id, 'created', created_at, created_at FROM placed
        )
        SELECT created_at FROM placed
        """,
        {
            "id": order_id, "customer_id": customer_id, "total": order_total(lines), "currency": currency,
            "campaign_id": campaign_id, "skus": [line.sku for line in lines],
            "quantities": [line.quantity for line in lines], "prices": [line.price_minor for line in lines],
        },
    ).first_as(_Placed)
    if placed is None:
        return None
    created = OrderStatus.CREATED.value
    row = OrderRow(id=order_id, customer_id=customer_id, status=created, status_reason=None,
                   total_minor=order_total(lines), currency=currency, campaign_id=campaign_id,
                   created_at=placed.created_at, status_changed_at=placed.created_at)
    return Order(row, tuple(lines), (StatusChange(created, None, placed.created_at),))


def move_order(
    db: Sql,
    order_id: uuid.UUID,
    target: OrderStatus,
    reason: str,
    only_from: Collection[OrderStatus] | None = None,
) -> MovedOrder | None:
    """Move an order to `target` when the state machine allows it from the order's current status.

    One conditional UPDATE decides, so concurrent events cannot both move the same order; None when
    the order is unknown or the move is stale or a duplicate. `only_from` narrows the allowed
    statuses further (an unpaid-order expiry must not cancel an order that was just paid).
    """
    sources = allowed_from(target)
    if only_from is not None:
        sources = sources & frozenset(only_from)
    moved = db.execute(
        f"""
        WITH found AS (SELECT id, status, status_changed_at FROM orders.orders WHERE id = :id FOR UPDATE)
        UPDATE orders.orders AS o
        SET status = :target, status_reason = :reason, status_changed_at = now()
        FROM found
        WHERE o.id = found.id AND found.status = ANY(CAST(:sources AS text[]))
        RETURNING found.status AS previous_status, found.status_changed_at AS previous_changed_at, {_MOVED_COLUMNS}
        """,
        {"id": order_id, "target": target.value, "reason": reason, "sources": sorted(sources)},
    ).first_as(MovedOrder)
    if moved is None:
        return None
    db.execute(
        "INSERT INTO orders.order_history (order_id, status, reason) VALUES (:id, :status, :reason)",
        {"id": order_id, "status": target.value, "reason": reason},
    )
    return moved


def record_late(db: Sql, order_id: uuid.UUID, status: OrderStatus, reason: str, occurred_at: datetime | None) -> bool:
    """Add `status` to the history of an order already past it, as a late fact at `occurred_at` (else now).

    The status is left as it is; False when the order is not past `status` or its history has the step
    already (one entry per status: two payment events make one `paid`).
    """
    recorded = db.execute(
        """
        INSERT INTO orders.order_history (order_id, status, reason, occurred_at, late)
        SELECT id, :status, :reason, coalesce(CAST(:occurred_at AS timestamptz), now()), true
        FROM orders.orders WHERE id = :id AND status = ANY(CAST(:beyond AS text[]))
        ON CONFLICT (order_id, status) DO NOTHING
        RETURNING id
        """,
        {"id": order_id, "status": status.value, "reason": reason, "occurred_at": occurred_at,
         "beyond": sorted(beyond(status))},
    ).first()
    return recorded is not None


@dataclass(frozen=True)
class OpenOrders:
    orders: int
    units: int


def lock_open_orders_of(db: Sql, customer_id: str) -> OpenOrders:
    """The customer's unpaid storefront orders and units; concurrent orders of one customer queue here."""
    db.execute("SELECT pg_advisory_xact_lock(hashtext('orders.open:' || :customer_id))", {"customer_id": customer_id})
    return db.execute(
        "SELECT count(DISTINCT o.id) AS orders, coalesce(sum(i.quantity), 0) AS units FROM orders.orders o "
        "JOIN orders.order_items i ON i.order_id = o.id "
        "WHERE o.customer_id = :customer_id AND o.status IN ('created', 'confirmed') AND o.campaign_id IS NULL",
        {"customer_id": customer_id},
    ).one_as(OpenOrders)


def order_listing(customer_id: str, status: str | None) -> Listing:
    """Orders newest first, of one customer and in one status when those are given."""
    listing = Listing("orders.orders", ORDER_COLUMNS, order_by="created_at DESC, id DESC")
    if customer_id:
        listing.where("customer_id = :customer_id", customer_id=customer_id)
    if status:
        listing.where("status = :status", status=status)
    return listing


def find_order(db: Sql, order_id: uuid.UUID) -> Order | None:
    row = db.execute(f"SELECT {ORDER_COLUMNS} FROM orders.orders WHERE id = :id", {"id": order_id}).first_as(OrderRow)
    return None if row is None else with_lines(db, [row])[0]


def with_lines(db: Sql, rows: Sequence[OrderRow]) -> list[Order]:
    """Orders with their items and history, in the order of `rows` (three queries, whatever the count)."""
    ids = [row.id for row in rows]
    items = _by_order(db, "SELECT order_id, sku, quantity, price_minor FROM orders.order_items "
                          "WHERE order_id = ANY(:ids) ORDER BY order_id, line", ids, _ItemRow)
    history = _by_order(db, "SELECT order_id, status, reason, occurred_at, late FROM orders.order_history "
                            "WHERE order_id = ANY(:ids) ORDER BY order_id, occurred_at, id", ids, _HistoryRow)
    return [
        Order(row, tuple(item.line() for item in items.get(row.id, [])),
              tuple(entry.change() for entry in history.get(row.id, [])))
        for row in rows
    ]


def _by_order(db: Sql, sql: str, ids: list[uuid.UUID], kind: type[_Row]) -> dict[uuid.UUID, list[_Row]]:
    """The rows `sql` selects for the orders `ids` (bound as :ids), grouped by their order_id."""
    grouped: dict[uuid.UUID, list[_Row]] = {}
    for row in db.execute(sql, {"ids": ids}).all_as(kind):
        grouped.setdefault(row.order_id, []).append(row)
    return grouped


def confirmed_before(db: Sql, cutoff: datetime, limit: int) -> list[uuid.UUID]:
    """Ids of orders confirmed before `cutoff` and still unpaid, longest waiting first."""
    return list(db.execute(
        "SELECT id FROM orders.orders WHERE status = 'confirmed' AND status_changed_at < :cutoff "
        "ORDER BY status_changed_at LIMIT :limit",
        {"cutoff": cutoff, "limit": limit},
    ).scalars())


def record_price(db: Sql, price: CatalogPrice) -> None:
    """Keep a sku's price; a late, older announcement never overwrites a newer price."""
    db.execute(
        "INSERT INTO orders.products (sku, product_id, name, price_minor, currency, updated_at) "
        "VALUES (:sku, :product_id, :name, :price_minor, :currency, :at) "
        "ON CONFLICT (sku) DO UPDATE SET product_id = EXCLUDED.product_id, name = EXCLUDED.name, "
        "price_minor = EXCLUDED.price_minor, currency = EXCLUDED.currency, updated_at = EXCLUDED.updated_at "
        "WHERE orders.products.updated_at <= EXCLUDED.updated_at",
        {"sku": price.sku, "product_id": price.product_id, "name": price.name, "price_minor": price.price_minor,
         "currency": price.currency, "at": price.at},
    )


def listed_prices(db: Sql, skus: Collection[str]) -> dict[str, ListedPrice]:
    """The catalog's prices of those of `skus` it knows, by sku."""
    listed = db.execute(
        "SELECT sku, price_minor, currency FROM orders.products WHERE sku = ANY(:skus)", {"skus": sorted(skus)}
    ).all_as(ListedPrice)
    return {price.sku: price for price in listed}
