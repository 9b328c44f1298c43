"""The rules of shipping that need no database: shipment statuses, tracking numbers and label links."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

LABEL_CREATED = "label_created"
IN_TRANSIT = "in_transit"
DELIVERED = "delivered"
CANCELLED = "cancelled"  # the label was voided before the parcel left (the payment was refunded)
STATUSES = (LABEL_CREATED, IN_TRANSIT, DELIVERED, CANCELLED)
CARRIER_STATUSES = (IN_TRANSIT, DELIVERED)  # what a carrier may report

# Forward moves only; a carrier may skip a scan (label_created straight to delivered).
_NEXT: dict[str, frozenset[str]] = {
    LABEL_CREATED: frozenset({IN_TRANSIT, DELIVERED, CANCELLED}),
    IN_TRANSIT: frozenset({DELIVERED}),
    DELIVERED: frozenset(),
    CANCELLED: frozenset(),
}

TRACKING_PREFIX = "FC"
TRACKING_DIGITS = 10


def can_move(current: str, target: str) -> bool:
    return target in _NEXT.get(current, frozenset())


def check_digit(digits: str) -> str:
    """The Luhn check digit of a string of digits (catches any single mistyped digit)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str((10 - total % 10) % 10)


def new_tracking_number() -> str:
    """`FC` + 10 random digits + a check digit, e.g. FC48213907652."""
    digits = f"{secrets.randbelow(10**TRACKING_DIGITS):0{TRACKING_DIGITS}d}"
    return TRACKING_PREFIX + digits + check_digit(digits)


def is_valid_tracking_number(value: str) -> bool:
    digits = value[len(TRACKING_PREFIX) :]
    return (
        value.startswith(TRACKING_PREFIX)
        and len(digits) == TRACKING_DIGITS + 1
        and digits.isdigit()
        and check_digit(digits[:-1]) == digits[-1]
    )


def public_url(override: str | None, public_base_url: str, environment: str, port: int) -> str:
    """Where customers reach the shipping API: the override if given; on a laptop the public base
    URL on the service's own port; elsewhere the public base URL (the gateway routes by path)."""
    if override:
        return override.rstrip("/")
    base = public_base_url.rstrip("/")
    if environment == "development" and urlsplit(base).port is None:
        return f"{base}:{port}"
    return base
