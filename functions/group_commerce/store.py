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
    held_seats: int
    refunded_seats: int
    leader: str | None
    status_reason: str | None


@dataclass(frozen=True)
class Participant:
    user_id: str
    joined_at: datetime
    status: str
    hold_expires_at: datetime | None


@dataclass(frozen=True)
class SeatState:
    """What a refused join is explained by."""

    status: str
    actual_participants: int
    held_seats: int
    max_participants: int
    deadline_passed: bool


@dataclass(frozen=True)
class Headcount:
    actual_participants: int
    min_participants: int
    tipped: bool


@dataclass(frozen=True)
class DueHold:
    campaign_id: uuid.UUID
    user_id: str


CAMPAIGN_COLUMNS = ", ".join(column.name for column in fields(CampaignRow))
PARTICIPANT_COLUMNS = ", ".join(column.name for column in fields(Participant))
COUNTED = "('authorized', 'confirmed', 'captured', 'refunded')"
STILL_SEATED = "('held', 'authorized', 'confirmed')"  # seats whose campaign outcome is still to come

# A seat is kept for the joiner while its card is authorized; held and counted seats never exceed
# the maximum, so nobody is asked to pay for a seat that is not there.
HOLD_SEAT = f"""
    UPDATE group_commerce.campaigns
    SET held_seats = held_seats + 1
    WHERE id = :id
      AND actual_participants + held_seats < max_participants
      AND {STILL_OPEN}
      AND expires_at > now()
    RETURNING {CAMPAIGN_COLUMNS}"""

# An authorized seat counts; the seat that brings the count to the minimum tips the campaign.
COUNT_SEAT = f"""
    UPDATE group_commerce.campaigns
    SET held_seats = held_seats - 1,
        actual_participants = actual_participants + 1,
        leader = coalesce(leader, :user_id),
        status = CASE WHEN actual_participants + 1 >= min_participants THEN 'successful' ELSE status END,
        tipped_at = CASE WHEN actual_participants + 1 = min_participants THEN now() ELSE tipped_at END
    WHERE id = :id AND {STILL_OPEN} AND expires_at > now()
    RETURNING {CAMPAIGN_COLUMNS}"""


# products


def add_product(db: Sql, product: Product, price_set_at: datetime) -> None:
    """Keep the newest copy of a product: a copy whose price was set earlier than the one kept (a redelivered
    product.created, a late product.updated) changes nothing."""
    db.execute(
        "INSERT INTO group_commerce.products (id, sku, price_minor, currency, updated_at) "
        "VALUES (:id, :sku, :price_minor, :currency, :at) "
        "ON CONFLICT (id) DO UPDATE SET sku = EXCLUDED.sku, price_minor = EXCLUDED.price_minor, "
        "currency = EXCLUDED.currency, updated_at = EXCLUDED.updated_at, projected_at = now() "
        "WHERE group_commerce.products.updated_at <= EXCLUDED.updated_at",
        {"id": product.id, "sku": product.sku, "price_minor": product.price_minor,
         "currency": product.currency, "at": price_set_at},
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
    """A new campaign, pending until inventory holds the stock of every seat."""
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


def lock_campaign(db: Sql, campaign_id: uuid.UUID) -> CampaignRow | None:
    """The campaign, locked: every change to its seats goes through this lock first."""
    sql = f"SELECT {CAMPAIGN_COLUMNS} FROM group_commerce.campaigns WHERE id = :id FOR UPDATE"
    return db.execute(sql, {"id": campaign_id}).first_as(CampaignRow)


def leave_pending(db: Sql, campaign_id: uuid.UUID, status: str, reason: str | None = None) -> CampaignRow | None:
    """A pending campaign becomes active (its stock is held) or refused; None when it was not pending."""
    return db.execute(
        f"UPDATE group_commerce.campaigns SET status = :status, status_reason = :reason "
        f"WHERE id = :id AND status = 'pending' RETURNING {CAMPAIGN_COLUMNS}",
        {"id": campaign_id, "status": status, "reason": reason},
    ).first_as(CampaignRow)


def campaign_page(db: Sql, page: Page, *, status: str | None,
                  product_id: uuid.UUID | None) -> list[CampaignRow]:
    """The page of campaigns the request's limit and offset ask for, oldest first."""
    listing = Listing("group_commerce.campaigns", CAMPAIGN_COLUMNS, order_by="created_at, id")
    if status is not None:
        listing.where("status = :status", status=status)
    if product_id is not None:
        listing.where("product_id = :product_id", product_id=product_id)
    return listing.fetch(db, page, CampaignRow)


# seats


def serialise_joins_of(db: Sql, user_id: str) -> None:
    """One customer's joins run one at a time, so the limit on open seats holds under concurrency."""
    db.execute("SELECT pg_advisory_xact_lock(hashtext('group-commerce seats ' || :user_id))", {"user_id": user_id})


def open_seats_of(db: Sql, user_id: str) -> int:
    """In how many campaigns still open the customer holds a seat whose outcome is still to come."""
    return int(db.execute(
        f"SELECT count(*) FROM group_commerce.participants p JOIN group_commerce.campaigns c "
        f"ON c.id = p.campaign_id WHERE p.user_id = :user_id AND p.status IN {STILL_SEATED} "
        f"AND c.{STILL_OPEN}",
        {"user_id": user_id},
    ).scalar_one())


def claim_participant_row(db: Sql, campaign_id: uuid.UUID, user_id: str, hold_seconds: int) -> Participant | None:
    """Hold a seat row for the user; None when the user already holds (or held and paid for) one.

    A seat released earlier (a declined card, a hold that ran out) may be held again.
    """
    return db.execute(
        "INSERT INTO group_commerce.participants (campaign_id, user_id, status, hold_expires_at) "
        "VALUES (:campaign_id, :user_id, 'held', now() + make_interval(secs => :hold)) "
        "ON CONFLICT (campaign_id, user_id) DO UPDATE SET status = 'held', joined_at = now(), "
        "hold_expires_at = EXCLUDED.hold_expires_at, status_reason = NULL, updated_at = now() "
        f"WHERE group_commerce.participants.status = 'released' RETURNING {PARTICIPANT_COLUMNS}",
        {"campaign_id": campaign_id, "user_id": user_id, "hold": hold_seconds},
    ).first_as(Participant)


def hold_seat(db: Sql, campaign_id: uuid.UUID) -> CampaignRow | None:
    """The campaign with one more seat held, or None when it is full, not open or past its deadline."""
    return db.execute(HOLD_SEAT, {"id": campaign_id}).first_as(CampaignRow)


def seat_state(db: Sql, campaign_id: uuid.UUID) -> SeatState:
    result = db.execute(
        "SELECT status, actual_participants, held_seats, max_participants, expires_at <= now() AS deadline_passed "
        "FROM group_commerce.campaigns WHERE id = :id",
        {"id": campaign_id},
    )
    return result.one_as(SeatState)


def move_seat(db: Sql, campaign_id: uuid.UUID, user_id: str, *, was: tuple[str, ...], becomes: str,
              reason: str | None = None) -> bool:
    """Move one seat from one of `was` to `becomes`; False when it was in none of them."""
    row = db.execute(
        "UPDATE group_commerce.participants SET status = :becomes, status_reason = coalesce(:reason, status_reason), "
        "updated_at = now() WHERE campaign_id = :campaign_id AND user_id = :user_id AND status = ANY(:was) "
        "RETURNING 1",
        {"campaign_id": campaign_id, "user_id": user_id, "was": list(was), "becomes": becomes, "reason": reason},
    ).first()
    return row is not None


def move_seats(db: Sql, campaign_id: uuid.UUID, *, was: str, becomes: str, reason: str | None = None) -> list[str]:
    """Move every seat of the campaign in status `was`; the users whose seats moved, in joining order."""
    rows = db.execute(
        "UPDATE group_commerce.participants SET status = :becomes, status_reason = coalesce(:reason, status_reason), "
        "updated_at = now() WHERE campaign_id = :campaign_id AND status = :was RETURNING user_id, joined_at",
        {"campaign_id": campaign_id, "was": was, "becomes": becomes, "reason": reason},
    ).all()
    return [row.user_id for row in sorted(rows, key=lambda row: (row.joined_at, row.user_id))]


def count_seat(db: Sql, campaign_id: uuid.UUID, user_id: str) -> CampaignRow | None:
    """The held seat now counts; None when the campaign no longer takes it (ended or past its deadline)."""
    return db.execute(COUNT_SEAT, {"id": campaign_id, "user_id": user_id}).first_as(CampaignRow)


def change_seat_counts(db: Sql, campaign_id: uuid.UUID, *, held: int = 0, counted: int = 0,
                       refunded: int = 0) -> CampaignRow:
    return db.execute(
        f"UPDATE group_commerce.campaigns SET held_seats = held_seats + :held, "
        f"actual_participants = actual_participants + :counted, refunded_seats = refunded_seats + :refunded "
        f"WHERE id = :id RETURNING {CAMPAIGN_COLUMNS}",
        {"id": campaign_id, "held": held, "counted": counted, "refunded": refunded},
    ).one_as(CampaignRow)


def find_participants(db: Sql, campaign_id: uuid.UUID) -> list[Participant]:
    """The participants in the order they joined."""
    sql = (f"SELECT {PARTICIPANT_COLUMNS} FROM group_commerce.participants WHERE campaign_id = :id "
           "ORDER BY joined_at, user_id")
    return db.execute(sql, {"id": campaign_id}).all_as(Participant)


def find_participant(db: Sql, campaign_id: uuid.UUID, user_id: str) -> Participant | None:
    sql = (f"SELECT {PARTICIPANT_COLUMNS} FROM group_commerce.participants "
           "WHERE campaign_id = :id AND user_id = :user_id")
    return db.execute(sql, {"id": campaign_id, "user_id": user_id}).first_as(Participant)


def counted_participant_ids(db: Sql, campaign_id: uuid.UUID) -> list[str]:
    """The users whose seats count, in joining order."""
    return list(db.execute(
        f"SELECT user_id FROM group_commerce.participants WHERE campaign_id = :id AND status IN {COUNTED} "
        f"ORDER BY joined_at, user_id",
        {"id": campaign_id},
    ).scalars())


def due_holds(db: Sql, limit: int) -> list[DueHold]:
    """Seats whose card was not authorized in time, the longest overdue first."""
    return db.execute(
        "SELECT campaign_id, user_id FROM group_commerce.participants WHERE status = 'held' "
        "AND hold_expires_at <= now() ORDER BY hold_expires_at LIMIT :limit",
        {"limit": limit},
    ).all_as(DueHold)


# deadlines


def due_campaign_ids(db: Sql, limit: int) -> list[uuid.UUID]:
    """Open campaigns whose deadline has passed, the longest overdue first."""
    return list(db.execute(
        f"SELECT id FROM group_commerce.campaigns WHERE {STILL_OPEN} "
        f"AND expires_at <= now() ORDER BY expires_at, id LIMIT :limit",
        {"limit": limit},
    ).scalars())


def bring_deadline_forward(db: Sql, campaign_id: uuid.UUID) -> bool:
    """Make an open campaign's deadline now; False when it is not open."""
    row = db.execute(
        f"UPDATE group_commerce.campaigns SET expires_at = least(expires_at, now()) "
        f"WHERE id = :id AND {STILL_OPEN} RETURNING 1",
        {"id": campaign_id},
    ).first()
    return row is not None


def lock_due_campaign(db: Sql, campaign_id: uuid.UUID) -> Headcount | None:
    """Lock the campaign while it is still open and past its deadline; None once someone ended it."""
    return db.execute(
        f"SELECT actual_participants, min_participants, tipped_at IS NOT NULL AS tipped FROM group_commerce.campaigns "
        f"WHERE id = :id AND {STILL_OPEN} AND expires_at <= now() FOR UPDATE",
        {"id": campaign_id},
    ).first_as(Headcount)


def mark_ended(db: Sql, campaign_id: uuid.UUID, status: str) -> CampaignRow:
    """End the campaign; the seats still waiting for an authorization no longer count as held."""
    result = db.execute(
        f"UPDATE group_commerce.campaigns SET status = :status, ended_at = now(), held_seats = 0 WHERE id = :id "
        f"RETURNING {CAMPAIGN_COLUMNS}",
        {"id": campaign_id, "status": status},
    )
    return result.one_as(CampaignRow)
