"""All of group-commerce's SQL: the product copies, the campaigns and their participants, as typed rows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal

from fusion.db import Sql
from fusion.listing import Listing, Page

SERVICE = "group-commerce"

# Written out as the partial index campaigns_open_deadline is, so the planner can use that index.
STILL_OPEN = "status IN ('active', 'successful')"


@dataclass(frozen=True)
class Product:
    """The catalog's product as group buying needs it."""

    id: uuid.UUID
    sku: str
    price_minor: int
    currency: str


@dataclass(frozen=True)
class CampaignRow:
    id: uuid.UUID
    product_id: uuid.UUID
    sku: str
    status: str
    min_participants: int
    max_participants: int
    actual_participants: int
    discount_percentage: Decimal
    original_price_minor: int
    group_price_minor: int
    currency: str
    expires_at: datetime
    created_at: datetime


@dataclass(frozen=True)
class Participant:
    user_id: str
    joined_at: datetime


@dataclass(frozen=True)
class SeatState:
    """What a refused join is explained by."""

    status: str
    actual_participants: int
    max_participants: int
    deadline_passed: bool


@dataclass(frozen=True)
class Headcount:
    actual_participants: int
    min_participants: int


CAMPAIGN_COLUMNS = ", ".join(column.name for column in fields(CampaignRow))

TAKE_SEAT = f"""
    UPDATE group_commerce.campaigns
    SET actual_participants = actual_participants + 1,
        status = CASE WHEN actual_participants + 1 >= min_participants THEN 'successful' ELSE status END,
        tipped_at = CASE WHEN actual_participants + 1 = min_participants THEN now() ELSE tipped_at END
    WHERE id = :id
      AND actual_participants < max_participants
      AND {STILL_OPEN}
      AND expires_at > now()
    RETURNING {CAMPAIGN_COLUMNS}"""



# products


def add_product(db: Sql, product: Product) -> None:
    """Keep the first copy of a product; a redelivered or repeated product.created changes nothing."""
    db.execute(
        "INSERT INTO group_commerce.products (id, sku, price_minor, currency) "
        "VALUES (:id, :sku, :price_minor, :currency) ON CONFLICT (id) DO NOTHING",
        {"id": product.id, "sku": product.sku, "price_minor": product.price_minor,
         "currency": product.currency},
    )


def find_product(db: Sql, product_id: uuid.UUID) -> Product | None:
    return db.execute(
        "SELECT id, sku, price_minor, currency FROM group_commerce.products WHERE id = :id",
        {"id": product_id},
    ).first_as(Product)


# campaigns


def insert_campaign(db: Sql, product: Product, *, min_participants: int, max_participants: int,
                    discount_percentage: Decimal, group_price_minor: int,
                    expires_at: datetime) -> CampaignRow:
    result = db.execute(
        f"INSERT INTO group_commerce.campaigns (id, product_id, sku, min_participants, max_participants, "
        f"discount_percentage, original_price_minor, group_price_minor, currency, expires_at) "
        f"VALUES (:id, :product_id, :sku, :min, :max, :discount, :original, :group_price, :currency, "
        f":expires_at) "
        f"RETURNING {CAMPAIGN_COLUMNS}",
        {
            "id": uuid.uuid4(), "product_id": product.id, "sku": product.sku,
            "min": min_participants, "max": max_participants,
            "discount": discount_percentage, "original": product.price_minor,
            "group_price": group_price_minor, "currency": product.currency, "expires_at": expires_at,
        },
    )
    return result.one_as(CampaignRow)


def find_campaign(db: Sql, campaign_id: uuid.UUID) -> CampaignRow | None:
    sql = f"SELECT {CAMPAIGN_COLUMNS} FROM group_commerce.campaigns WHERE id = :id"
    return db.execute(sql, {"id": campaign_id}).first_as(CampaignRow)


def campaign_page(db: Sql, page: Page, *, status: str | None,
                  product_id: uuid.UUID | None) -> list[CampaignRow]:
    """The page of campaigns the request's limit and offset ask for, oldest first."""
    listing = Listing("group_commerce.campaigns", CAMPAIGN_COLUMNS, order_by="created_at, id")
    if status is not None:
        listing.where("status = :status", status=status)
    if product_id is not None:
        listing.where("product_id = :product_id", product_id=product_id)
    return listing.fetch(db, page, CampaignRow)


def read_one_snapshot(db: Sql) -> None:
    """Make every later read of this (fresh, read-only) transaction see the same moment."""
    db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")


# joins


def claim_participant_row(db: Sql, campaign_id: uuid.UUID, user_id: str) -> bool:
    """False when the user already holds a seat in this campaign."""
    row = db.execute(
        "INSERT INTO group_commerce.participants (campaign_id, user_id) VALUES (:campaign_id, :user_id) "
        "ON CONFLICT DO NOTHING RETURNING 1",
        {"campaign_id": campaign_id, "user_id": user_id},
    ).first()
    return row is not None


def take_seat(db: Sql, campaign_id: uuid.UUID) -> CampaignRow | None:
    """The campaign with one more seat taken, or None when it is full, ended or past its deadline."""
    return db.execute(TAKE_SEAT, {"id": campaign_id}).first_as(CampaignRow)


def seat_state(db: Sql, campaign_id: uuid.UUID) -> SeatState:
    result = db.execute(
        "SELECT status, actual_participants, max_participants, expires_at <= now() AS deadline_passed "
        "FROM group_commerce.campaigns WHERE id = :id",
        {"id": campaign_id},
    )
    return result.one_as(SeatState)


def find_participants(db: Sql, campaign_id: uuid.UUID) -> list[Participant]:
    """The participants in the order they joined."""
    sql = ("SELECT user_id, joined_at FROM group_commerce.participants WHERE campaign_id = :id "
           "ORDER BY joined_at, user_id")
    return db.execute(sql, {"id": campaign_id}).all_as(Participant)


def participant_ids(db: Sql, campaign_id: uuid.UUID) -> list[str]:
    return [participant.user_id for participant in find_participants(db, campaign_id)]


# deadlines


def due_campaign_ids(db: Sql, limit: int) -> list[uuid.UUID]:
    """Open campaigns whose deadline has passed, the longest overdue first."""
    return list(db.execute(
        f"SELECT id FROM group_commerce.campaigns WHERE {STILL_OPEN} "
        f"AND expires_at <= now() ORDER BY expires_at, id LIMIT :limit",
        {"limit": limit},
    ).scalars())


def lock_due_campaign(db: Sql, campaign_id: uuid.UUID) -> Headcount | None:
    """Lock the campaign while it is still open and past its deadline; None once someone ended it."""
    return db.execute(
        f"SELECT actual_participants, min_participants FROM group_commerce.campaigns "
        f"WHERE id = :id AND {STILL_OPEN} AND expires_at <= now() FOR UPDATE",
        {"id": campaign_id},
    ).first_as(Headcount)


def mark_ended(db: Sql, campaign_id: uuid.UUID, status: str) -> CampaignRow:
    result = db.execute(
        f"UPDATE group_commerce.campaigns SET status = :status, ended_at = now() WHERE id = :id "
        f"RETURNING {CAMPAIGN_COLUMNS}",
        {"id": campaign_id, "status": status},
    )
    return result.one_as(CampaignRow)
