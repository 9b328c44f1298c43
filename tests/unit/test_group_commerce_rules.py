"""The pure rules of group buying: group prices, deadlines, closing outcomes, refusals, group order ids."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from functions.group_commerce.rules import (
    closing_status,
    group_price_minor,
    leader_shown,
    parse_deadline,
    refusal_code,
)
from functions.orders.rules import group_order_id


@pytest.mark.parametrize(
    ("original", "discount", "expected"),
    [
        (2000, Decimal("15"), 1700),
        (1999, Decimal("15"), 1699),  # 1699.15
        (1001, Decimal("50"), 501),  # 500.5 rounds half up
        (999, Decimal("12.5"), 874),  # 874.125
        (1, Decimal("50"), 1),  # 0.5 rounds half up
        (1, Decimal("99.99"), 0),
        (0, Decimal("10"), 0),
        (123_456_789_012, Decimal("33.33"), 82_308_641_234),  # 82308641234.3004
    ],
)
def test_group_price_is_the_rest_of_the_price_rounded_half_up(original: int, discount: Decimal,
                                                              expected: int) -> None:
    assert group_price_minor(original, discount) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2030-01-31T18:00:00Z", datetime(2030, 1, 31, 18, tzinfo=UTC)),
        ("2030-01-31T20:00:00+02:00", datetime(2030, 1, 31, 18, tzinfo=UTC)),
        ("2030-01-31T18:00:00.250Z", datetime(2030, 1, 31, 18, 0, 0, 250_000, tzinfo=UTC)),
        ("2030-01-31T18:00:00", datetime(2030, 1, 31, 18, tzinfo=UTC)),  # no offset: UTC
        (" 2030-01-31 ", datetime(2030, 1, 31, tzinfo=UTC)),
    ],
)
def test_deadlines_are_iso_8601_in_utc(raw: str, expected: datetime) -> None:
    parsed = parse_deadline(raw)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


def test_a_deadline_keeps_its_instant_across_offsets() -> None:
    local = datetime(2030, 6, 1, 9, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert parse_deadline(local.isoformat()) == local


@pytest.mark.parametrize("raw", ["", "tomorrow", "31/01/2030", "2030-13-01T00:00:00Z"])
def test_anything_else_is_not_a_deadline(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_deadline(raw)


@pytest.mark.parametrize(
    ("actual", "minimum", "expected"),
    [(0, 1, "expired"), (2, 3, "expired"), (3, 3, "closed"), (7, 3, "closed")],
)
def test_a_campaign_at_its_deadline_closes_only_when_it_reached_its_minimum(actual: int, minimum: int,
                                                                             expected: str) -> None:
    assert closing_status(actual, minimum) == expected


def test_a_campaign_that_tipped_closes_even_if_a_failed_charge_left_it_below_its_minimum() -> None:
    assert closing_status(2, 3, tipped=True) == "closed"


@pytest.mark.parametrize(
    ("status", "deadline_passed", "expected"),
    [
        ("active", False, "campaign_full"),
        ("successful", False, "campaign_full"),
        ("active", True, "campaign_closed"),
        ("successful", True, "campaign_closed"),
        ("expired", False, "campaign_closed"),
        ("closed", True, "campaign_closed"),
        ("pending", False, "campaign_not_open"),
        ("refused", False, "campaign_closed"),
    ],
)
def test_a_refused_join_says_whether_the_campaign_is_full_or_closed(status: str, deadline_passed: bool,
                                                                     expected: str) -> None:
    assert refusal_code(status, deadline_passed) == expected


def test_a_seat_has_one_order_id() -> None:
    campaign = str(uuid.uuid4())
    assert group_order_id(campaign, "ann") == group_order_id(campaign, "ann")
    assert group_order_id(campaign, "ann") != group_order_id(campaign, "ben")
    assert group_order_id(campaign, "ann") != group_order_id(str(uuid.uuid4()), "ann")
    assert uuid.UUID(group_order_id(campaign, "ann")).version == 5


def test_the_leader_is_shown_masked() -> None:
    assert leader_shown("alice") == "a***"
    assert leader_shown("x") == "*"
    assert leader_shown(None) is None
