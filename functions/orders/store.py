"""Orders in the database: placing an order, moving it through its lifecycle, reading it back.

`place_order` is the one way an order comes into being, for storefront orders (prices checked
against the catalog first) and for orders other functions of this service create with prices they
trust (group orders at the campaign's price).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from functions.orders.lifecycle import OrderStatus, allowed_from
from fusion import logs
from fusion.contracts import OrderCreated, OrderItem
from fusion.db import Connection
from fusion.money import normalise_currency, to_decimal
from fusion.uow import UnitOfWork
from fusion.web import iso

ORDER_COLUMNS = (
    "id, customer_id, status, status_reason, total_minor, currency, campaign_id, created_at, status_changed_at"
)


@dataclass(frozen=True)
class OrderLine:
    """One line of an order: `price_minor` is the unit price in the order currency's minor units."""

    sku: str
    quantity: int
    price_minor: int


@dataclass(frozen=True)
class Transition:
    """An order that moved: its row after the move and the status it left."""

    order: Any
    previous_status: OrderStatus


def order_total(lines: Sequence[OrderLine]) -> int:
    """Sum of price * quantity, exact, in minor units."""
    return sum(line.price_minor * line.quantity for line in lines)


def parse_order_id(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def place_order(
    uow: UnitOfWork,
    customer_id: str,
    items: Sequence[OrderLine],
    currency: str,
    campaign_id: str | None = None,
    order_id: str | None = None,
) -> dict[str, Any]:
    """Create an order in status "created" and publish order.created, in `uow`'s transaction.

    The prices in `items` are trusted as given. Passing a deterministic `order_id` makes the call
    idempotent: when that order exists already it is returned unchanged and nothing is published.
    Returns the order as the HTTP API shows it (amounts as Decimal).
    """
    if not items:
        raise ValueError("an order needs at least one item")
    currency = normalise_currency(currency)
    new_id = uuid.UUID(order_id) if order_id else uuid.uuid4()
    created = uow.execute(
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
            INSERT INTO orders.order_history (order_id, status, at)
            SELECT id, 'created', created_at FROM placed
        )
        SELECT id, created_at FROM placed
        """,
        {
            "id": new_id, "customer_id": customer_id, "total": order_total(items), "currency": currency,
            "campaign_id": campaign_id, "skus": [line.sku for line in items],
            "quantities": [line.quantity for line in items], "prices": [line.price_minor for line in items],
        },
    ).first()
    if created is None:
        existing = find_order(uow.conn, new_id)
        if existing is None:  # the conflicting insert was committed, so this cannot happen
            raise RuntimeError(f"order {new_id} exists but cannot be read")
        return existing
    logs.bind(orderId=str(new_id))
    order = _new_order_json(new_id, customer_id, items, currency, campaign_id, created.created_at)
    uow.publish("order.created", subject=str(new_id), payload=order_created(order))
    return order


def _new_order_json(order_id: uuid.UUID, customer_id: str, items: Sequence[OrderLine], currency: str,
                    campaign_id: str | None, created_at: Any) -> dict[str, Any]:
    """The JSON of an order just placed, without reading it back."""
    row = SimpleNamespace(
        id=order_id, customer_id=customer_id, status=OrderStatus.CREATED.value, status_reason=None,
        total_minor=order_total(items), currency=currency, campaign_id=campaign_id, created_at=created_at,
        status_changed_at=created_at,
    )
    history = [SimpleNamespace(status=OrderStatus.CREATED.value, reason=None, at=created_at)]
    return order_json(row, list(items), history)


def order_created(order: dict[str, Any]) -> OrderCreated:
    return OrderCreated(
        order_id=order["id"], customer_id=order["customerId"], total=order["total"], currency=order["currency"],
        items=[OrderItem(sku=i["sku"], quantity=i["quantity"], price=i["price"]) for i in order["items"]],
        campaign_id=order["campaignId"],
    )


def move_order(
    uow: UnitOfWork,
    order_id: uuid.UUID,
    target: OrderStatus,
    reason: str | None = None,
    only_from: Collection[OrderStatus] | None = None,
) -> Transition | None:
    """Move an order to `target` when the state machine allows it from the order's current status.

    One conditional UPDATE decides, so concurrent events cannot both move the same order; None when
    the order is unknown or the move is stale or a duplicate. `only_from` narrows the allowed
    statuses further (an unpaid-order expiry must not cancel an order that was just paid).
    """
    sources = allowed_from(target)
    if only_from is not None:
        sources = sources & frozenset(only_from)
    row = uow.execute(
        f"""
        WITH found AS (SELECT id, status FROM orders.orders WHERE id = :id FOR UPDATE)
        UPDATE orders.orders AS o
        SET status = :target, status_reason = :reason, status_changed_at = now()
        FROM found
        WHERE o.id = found.id AND found.status = ANY(CAST(:sources AS text[]))
        RETURNING found.status AS previous_status, {", ".join("o." + c for c in ORDER_COLUMNS.split(", "))}
        """,
        {"id": order_id, "target": target.value, "reason": reason, "sources": sorted(sources)},
    ).first()
    if row is None:
        return None
    uow.execute(
        "INSERT INTO orders.order_history (order_id, status, reason) VALUES (:id, :status, :reason)",
        {"id": order_id, "status": target.value, "reason": reason},
    )
    return Transition(order=row, previous_status=OrderStatus(row.previous_status))


def _rows_by_order(conn: Connection, sql: str, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
    """The rows `sql` selects for the orders `ids` (bound as :ids), grouped by their order_id."""
    grouped: dict[uuid.UUID, list[Any]] = {}
    for row in conn.execute(sql, {"ids": ids}).all():
        grouped.setdefault(row.order_id, []).append(row)
    return grouped


def _items_by_order(conn: Connection, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
    return _rows_by_order(conn, "SELECT order_id, sku, quantity, price_minor FROM orders.order_items "
                                "WHERE order_id = ANY(:ids) ORDER BY order_id, line", ids)


def _history_by_order(conn: Connection, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
    return _rows_by_order(conn, "SELECT order_id, status, reason, at FROM orders.order_history "
                                "WHERE order_id = ANY(:ids) ORDER BY order_id, id", ids)


def order_json(row: Any, items: list[Any], history: list[Any]) -> dict[str, Any]:
    currency = row.currency
    return {
        "id": str(row.id),
        "customerId": row.customer_id,
        "items": [
            {"sku": i.sku, "quantity": i.quantity, "price": to_decimal(i.price_minor, currency)} for i in items
        ],
        "total": to_decimal(row.total_minor, currency),
        "currency": currency,
        "status": row.status,
        "statusReason": row.status_reason,
        "campaignId": row.campaign_id,
        "createdAt": iso(row.created_at),
        "updatedAt": iso(row.status_changed_at),
        "history": [{"status": h.status, "reason": h.reason, "at": iso(h.at)} for h in history],
    }


def orders_json(conn: Connection, rows: Sequence[Any]) -> list[dict[str, Any]]:
    """Orders with their items and history, in the order of `rows` (three queries, whatever the count)."""
    ids = [row.id for row in rows]
    items, history = _items_by_order(conn, ids), _history_by_order(conn, ids)
    return [order_json(row, items.get(row.id, []), history.get(row.id, [])) for row in rows]


def find_order(conn: Connection, order_id: uuid.UUID) -> dict[str, Any] | None:
    row = conn.execute(f"SELECT {ORDER_COLUMNS} FROM orders.orders WHERE id = :id", {"id": order_id}).first()
    return None if row is None else orders_json(conn, [row])[0]
