"""The rules of group buying that need no database: prices, deadlines and closing outcomes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from fusion.money import percent_of

ACTIVE = "active"
SUCCESSFUL = "successful"
EXPIRED = "expired"
CLOSED = "closed"
STATUSES = (ACTIVE, SUCCESSFUL, EXPIRED, CLOSED)
OPEN_STATUSES = (ACTIVE, SUCCESSFUL)  # the statuses that still take joins


def group_price_minor(original_minor: int, discount_percentage: Decimal) -> int:
    """The discounted price in minor units: (100 - discount)% of the original, rounded half up."""
    return percent_of(original_minor, Decimal(100) - discount_percentage)


def parse_deadline(raw: str) -> datetime:
    """An ISO 8601 timestamp; one without an offset is taken as UTC."""
    moment = datetime.fromisoformat(raw.strip())
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def closing_status(actual_participants: int, min_participants: int) -> str:
    """What a campaign becomes at its deadline: closed when it reached its minimum, expired otherwise."""
    return CLOSED if actual_participants >= min_participants else EXPIRED


def refusal_code(status: str, deadline_passed: bool) -> str:
    """Why a join was refused by a campaign that exists: it no longer takes joins, or it is full."""
    return "campaign_closed" if deadline_passed or status not in OPEN_STATUSES else "campaign_full"
