"""Reading campaigns: the columns, the API view and the event contract built from one row."""

from __future__ import annotations

import uuid
from typing import Any

from fusion.contracts import Campaign
from fusion.db import Connection
from fusion.money import to_decimal

CAMPAIGN_COLUMNS = (
    "id, product_id, sku, status, min_participants, max_participants, actual_participants, "
    "discount_percentage, original_price_minor, group_price_minor, currency, expires_at, created_at"
)


def uuid_or_none(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def campaign_view(row: Any) -> dict[str, Any]:
    """A campaign as the API returns it (camelCase, decimal amounts)."""
    return {
        "id": str(row.id),
        "productId": str(row.product_id),
        "sku": row.sku,
        "status": row.status,
        "minParticipants": row.min_participants,
        "maxParticipants": row.max_participants,
        "actualParticipants": row.actual_participants,
        "discountPercentage": row.discount_percentage,
        "originalPrice": to_decimal(row.original_price_minor, row.currency),
        "groupPrice": to_decimal(row.group_price_minor, row.currency),
        "currency": row.currency,
        "expiresAt": row.expires_at,
        "createdAt": row.created_at,
    }


def campaign_contract(row: Any) -> Campaign:
    """A campaign as events carry it."""
    return Campaign.model_validate(campaign_view(row))


def load_campaign(conn: Connection, campaign_id: uuid.UUID) -> Any:
    """The campaign row, or None. Pass `uow.conn` to read inside a unit of work."""
    sql = f"SELECT {CAMPAIGN_COLUMNS} FROM group_commerce.campaigns WHERE id = :id"
    return conn.execute(sql, {"id": campaign_id}).first()


def participant_rows(conn: Connection, campaign_id: uuid.UUID) -> list[Any]:
    """The participants in the order they joined."""
    sql = ("SELECT user_id, joined_at FROM group_commerce.participants WHERE campaign_id = :id "
           "ORDER BY joined_at, user_id")
    return list(conn.execute(sql, {"id": campaign_id}).all())


def participant_ids(conn: Connection, campaign_id: uuid.UUID) -> list[str]:
    return [row.user_id for row in participant_rows(conn, campaign_id)]
