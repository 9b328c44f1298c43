"""The rules of group buying that need no database: prices, deadlines and closing outcomes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from fusion.money import percent_of

PENDING = "pending"  # waiting for inventory to hold the stock of every seat
REFUSED = "refused"  # inventory could not hold that stock
ACTIVE = "active"
SUCCESSFUL = "successful"
EXPIRED = "expired"
CLOSED = "closed"
STATUSES = (PENDING, REFUSED, ACTIVE, SUCCESSFUL, EXPIRED, CLOSED)
OPEN_STATUSES = (ACTIVE, SUCCESSFUL)  # the statuses that still take joins

# A seat's life: held (its card not yet authorized, but the seat kept) → authorized (counted) →
# confirmed (the group formed: to be charged) → captured; or released (never charged), failed (the
# charge failed) or refunded (charged, then given back because its group order failed).
HELD = "held"
AUTHORIZED = "authorized"
CONFIRMED = "confirmed"
CAPTURED = "captured"
RELEASED = "released"
FAILED = "failed"
REFUNDED = "refunded"
SEAT_STATUSES = (HELD, AUTHORIZED, CONFIRMED, CAPTURED, RELEASED, FAILED, REFUNDED)
COUNTED_SEATS = (AUTHORIZED, CONFIRMED, CAPTURED, REFUNDED)  # what actualParticipants counts


def group_price_minor(original_minor: int, discount_percentage: Decimal) -> int:
    """The discounted price in minor units: (100 - discount)% of the original, rounded half up."""
    return percent_of(original_minor, Decimal(100) - discount_percentage)


def parse_deadline(raw: str) -> datetime:
    """An ISO 8601 timestamp; one without an offset is taken as UTC."""
    moment = datetime.fromisoformat(raw.strip())
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def closing_status(actual_participants: int, min_participants: int, tipped: bool = False) -> str:
    """What a campaign becomes at its deadline: closed when it reached its minimum (even if a failed charge
    brought its count below since: its group formed and was charged), expired otherwise."""
    return CLOSED if tipped or actual_participants >= min_participants else EXPIRED


def refusal_code(status: str, deadline_passed: bool) -> str:
    """Why a join was refused by a campaign that exists: not open yet, no longer open, or full."""
    if status == PENDING:
        return "campaign_not_open"
    return "campaign_closed" if deadline_passed or status not in OPEN_STATUSES else "campaign_full"


def leader_shown(user_id: str | None) -> str | None:
    """The leader as the public sees it: enough to recognise oneself, not enough to identify anyone."""
    if not user_id:
        return None
    return user_id[0] + "***" if len(user_id) > 1 else "*"
