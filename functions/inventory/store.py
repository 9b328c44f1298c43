"""Inventory's tables: stock per sku, and one reservation (with its lines) per order ever seen and per
group campaign (`campaign:<id>`: the stock held for its seats, handed to its group orders one unit at a time).

Every change that touches several stock rows locks them first with one `SELECT … ORDER BY sku FOR
UPDATE` (`lock_stock`), so concurrent transactions always take their locks in the same order and
cannot deadlock; the reservation row of the order is always locked before any stock row for the
same reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from fusion.contracts import StockLine
from fusion.db import Sql
from fusion.listing import Listing, Page

SERVICE = "inventory"
PAGE_SIZE = 500
MAX_PAGE_SIZE = 1000
COLUMNS = "sku, on_hand, reserved, available, updated_at"
# The lines to reserve, as two parallel arrays joined back into rows.
WANTED_LINES = "unnest(CAST(:skus AS text[]), CAST(:quantities AS int[])) AS w(sku, quantity)"


@dataclass(frozen=True)
class StockRow:
    sku: str
    on_hand: int
    reserved: int
    available: int
    updated_at: datetime


# stock


def add_stock_if_new(db: Sql, sku: str, quantity: int) -> None:
    db.execute(
        "INSERT INTO inventory.stock (sku, on_hand) VALUES (:sku, :quantity) ON CONFLICT (sku) DO NOTHING",
        {"sku": sku, "quantity": quantity},
    )


def known_skus(db: Sql, skus: list[str]) -> set[str]:
    return set(db.execute("SELECT sku FROM inventory.stock WHERE sku = ANY(:skus)", {"skus": skus}).scalars())


def find_stock(db: Sql, sku: str) -> StockRow | None:
    return db.execute(f"SELECT {COLUMNS} FROM inventory.stock WHERE sku = :sku", {"sku": sku}).first_as(StockRow)


def list_stock(db: Sql, page: Page, sku: str | None) -> list[StockRow]:
    """The page `limit`/`offset` of `page` ask for, in sku order; only `sku` when given."""
    listing = Listing("inventory.stock", COLUMNS, order_by="sku", key="sku")
    if sku:
        listing.where("sku = :sku", sku=sku)
    return listing.fetch(db, page, StockRow)


def set_on_hand(db: Sql, sku: str, quantity: int) -> StockRow | None:
    """Set (or create) the sku's stock on hand; None, changing nothing, when that is below what is reserved."""
    return db.execute(
        f"INSERT INTO inventory.stock (sku, on_hand) VALUES (:sku, :quantity) "
        f"ON CONFLICT (sku) DO UPDATE SET on_hand = EXCLUDED.on_hand, updated_at = now() "
        f"WHERE inventory.stock.reserved <= EXCLUDED.on_hand RETURNING {COLUMNS}",
        {"sku": sku, "quantity": quantity},
    ).first_as(StockRow)


def find_reserved(db: Sql, sku: str) -> int | None:
    """Units of the sku reserved for orders; None for an unknown sku."""
    reserved: int | None = db.execute(
        "SELECT reserved FROM inventory.stock WHERE sku = :sku", {"sku": sku}
    ).scalar()
    return reserved


def lock_stock(db: Sql, skus: list[str]) -> dict[str, int]:
    """Lock the stock rows of `skus` in sku order; available quantity per known sku."""
    rows = db.execute(
        "SELECT sku, available FROM inventory.stock WHERE sku = ANY(:skus) ORDER BY sku FOR UPDATE",
        {"skus": skus},
    ).all()
    return {row.sku: row.available for row in rows}


def hold_stock(db: Sql, wanted: Mapping[str, int]) -> int:
    """Reserve each wanted quantity where it is available; how many skus were reserved."""
    held: int = db.execute(
        "UPDATE inventory.stock AS s SET reserved = s.reserved + w.quantity, updated_at = now() "
        f"FROM {WANTED_LINES} WHERE s.sku = w.sku AND s.available >= w.quantity",
        _wanted_arrays(wanted),
    ).rowcount
    return held


def _wanted_arrays(wanted: Mapping[str, int]) -> dict[str, list[str] | list[int]]:
    return {"skus": list(wanted), "quantities": list(wanted.values())}


def _change_stock_of_order_lines(db: Sql, order_id: str, change: str) -> None:
    """Apply `change` (SET assignments on stock `s`, per reservation line `i`) to each sku of the order."""
    db.execute(
        f"UPDATE inventory.stock AS s SET {change}, updated_at = now() "
        "FROM inventory.reservation_items AS i WHERE i.order_id = :id AND s.sku = i.sku",
        {"id": order_id},
    )


def return_reserved_stock(db: Sql, order_id: str) -> None:
    """The order's reserved lines are no longer reserved."""
    _change_stock_of_order_lines(db, order_id, "reserved = s.reserved - i.quantity")


def restock_sold_stock(db: Sql, order_id: str) -> None:
    """The order's sold lines are back on hand."""
    _change_stock_of_order_lines(db, order_id, "on_hand = s.on_hand + i.quantity")


def ship_reserved_stock(db: Sql, order_id: str) -> None:
    """The order's reserved lines leave the stock on hand."""
    _change_stock_of_order_lines(db, order_id, "on_hand = s.on_hand - i.quantity, reserved = s.reserved - i.quantity")


# reservations


def claim_order(db: Sql, order_id: str) -> bool:
    """Record the order's reservation; False when the order was seen before (reserved, refused or cancelled)."""
    row = db.execute(
        "INSERT INTO inventory.reservations (order_id, status) VALUES (:id, 'reserved') "
        "ON CONFLICT DO NOTHING RETURNING 1",
        {"id": order_id},
    ).first()
    return row is not None


def remember_early_release(db: Sql, order_id: str, reason: str) -> bool:
    """Record a release of an order not seen yet; False when the order was seen before."""
    row = db.execute(
        "INSERT INTO inventory.reservations (order_id, status, reason) VALUES (:id, 'released', :reason) "
        "ON CONFLICT DO NOTHING RETURNING 1",
        {"id": order_id, "reason": reason},
    ).first()
    return row is not None


def record_reservation_lines(db: Sql, order_id: str, wanted: Mapping[str, int]) -> None:
    db.execute(
        "INSERT INTO inventory.reservation_items (order_id, sku, quantity) "
        f"SELECT :id, sku, quantity FROM {WANTED_LINES}",
        {"id": order_id, **_wanted_arrays(wanted)},
    )


def refuse_reservation(db: Sql, order_id: str, reason: str) -> None:
    db.execute(
        "UPDATE inventory.reservations SET status = 'refused', reason = :reason, updated_at = now() "
        "WHERE order_id = :id",
        {"id": order_id, "reason": reason},
    )


def move_reservation(db: Sql, order_id: str, *, was: str, becomes: str, reason: str) -> bool:
    """Move the order's reservation from status `was` to `becomes`; False when it was not in `was`."""
    moved = db.execute(
        "UPDATE inventory.reservations SET status = :becomes, reason = :reason, updated_at = now() "
        "WHERE order_id = :id AND status = :was RETURNING 1",
        {"id": order_id, "was": was, "becomes": becomes, "reason": reason},
    ).first()
    return moved is not None


def find_reservation_lines(db: Sql, order_id: str) -> list[StockLine]:
    return db.execute(
        "SELECT sku, quantity FROM inventory.reservation_items WHERE order_id = :id ORDER BY sku", {"id": order_id}
    ).all_as(StockLine)


# campaigns


def pass_campaign_units(db: Sql, holder: str, order_id: str, sku: str, quantity: int) -> bool:
    """Hand `quantity` units of a campaign's held stock to one of its orders; False when it holds too few.

    The units stay reserved in the stock row: only whose reservation they belong to changes.
    """
    passed = db.execute(
        "UPDATE inventory.reservation_items AS i SET quantity = i.quantity - :quantity "
        "FROM inventory.reservations AS r WHERE r.order_id = i.order_id AND r.status = 'reserved' "
        "AND i.order_id = :holder AND i.sku = :sku AND i.quantity >= :quantity RETURNING 1",
        {"holder": holder, "sku": sku, "quantity": quantity},
    ).first()
    if passed is None:
        return False
    record_reservation_lines(db, order_id, {sku: quantity})
    return True


def lock_campaign_line(db: Sql, holder: str) -> StockLine | None:
    """A campaign's held line, locked, while the campaign still holds stock."""
    return db.execute(
        "SELECT i.sku, i.quantity FROM inventory.reservation_items AS i JOIN inventory.reservations AS r "
        "ON r.order_id = i.order_id WHERE i.order_id = :holder AND r.status = 'reserved' FOR UPDATE OF i",
        {"holder": holder},
    ).first_as(StockLine)


def give_back_campaign_units(db: Sql, holder: str, sku: str, quantity: int) -> None:
    """`quantity` of the campaign's held units are no longer reserved."""
    db.execute(
        "UPDATE inventory.reservation_items SET quantity = quantity - :quantity "
        "WHERE order_id = :holder AND sku = :sku",
        {"holder": holder, "sku": sku, "quantity": quantity},
    )
    db.execute(
        "UPDATE inventory.stock SET reserved = reserved - :quantity, updated_at = now() WHERE sku = :sku",
        {"sku": sku, "quantity": quantity},
    )
