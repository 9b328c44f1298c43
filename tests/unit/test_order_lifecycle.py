"""The order state machine and the other pure rules of the orders service."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from functions.orders.handlers import occurred_at, order_id_of
from functions.orders.rules import (
    CANCELLABLE,
    FINAL,
    HAPPY_PATH,
    ListedPrice,
    OrderLine,
    OrderStatus,
    allowed_from,
    beyond,
    can_move,
    insufficient_stock_reason,
    order_total,
    payment_deadline_passed_before,
    price_problem,
)
from fusion.binding import Event
from fusion.contracts import InventoryInsufficient
from fusion.declare import UnprocessableEvent
from fusion.registry import PAYMENT_EVENTS, PRODUCT_EVENTS, RESERVATION_EVENTS, SHIPPING_EVENTS

S = OrderStatus


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.CREATED, S.CONFIRMED),
        (S.CONFIRMED, S.PAID),
        (S.PAID, S.SHIPPED),
        (S.SHIPPED, S.DELIVERED),
        (S.CREATED, S.FAILED),
        (S.CONFIRMED, S.FAILED),
        (S.CREATED, S.CANCELLED),
        (S.CONFIRMED, S.CANCELLED),
        (S.PAID, S.CANCELLED),
    ],
)
def test_the_saga_moves_an_order_forward(current: OrderStatus, target: OrderStatus) -> None:
    assert can_move(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [(S.CREATED, S.PAID), (S.CREATED, S.SHIPPED), (S.CONFIRMED, S.DELIVERED), (S.PAID, S.DELIVERED)],
)
def test_an_event_that_overtook_an_earlier_one_still_moves_the_order_forward(
    current: OrderStatus, target: OrderStatus
) -> None:
    assert can_move(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.CONFIRMED, S.CONFIRMED),
        (S.PAID, S.CONFIRMED),
        (S.SHIPPED, S.PAID),
        (S.DELIVERED, S.SHIPPED),
        (S.PAID, S.FAILED),
        (S.SHIPPED, S.FAILED),
        (S.SHIPPED, S.CANCELLED),
        (S.DELIVERED, S.CANCELLED),
        (S.FAILED, S.CANCELLED),
        (S.CANCELLED, S.CANCELLED),
        (S.FAILED, S.CONFIRMED),
        (S.CANCELLED, S.PAID),
    ],
)
def test_stale_and_duplicate_transitions_are_ignored(current: OrderStatus, target: OrderStatus) -> None:
    assert not can_move(current, target)


def test_nothing_leaves_a_final_status_and_nothing_returns_to_created() -> None:
    for final in FINAL:
        assert not any(can_move(final, target) for target in OrderStatus)
    assert allowed_from(S.CREATED) == frozenset()
    assert HAPPY_PATH[0] == S.CREATED and HAPPY_PATH[-1] == S.DELIVERED
    assert {S.CREATED, S.CONFIRMED, S.PAID} == CANCELLABLE


def test_a_step_is_late_only_for_an_order_already_past_it_on_the_happy_path() -> None:
    assert beyond(S.PAID) == {S.SHIPPED, S.DELIVERED}
    assert beyond(S.CONFIRMED) == {S.PAID, S.SHIPPED, S.DELIVERED}
    assert beyond(S.DELIVERED) == frozenset()
    assert beyond(S.FAILED) == beyond(S.CANCELLED) == frozenset()
    for target in HAPPY_PATH:
        assert not any(can_move(current, target) for current in beyond(target)), "a late step never moves back"


@pytest.mark.parametrize(
    ("time", "expected"),
    [
        ("2026-12-01T10:00:00.123456Z", datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2026-12-01T12:00:00+02:00", datetime(2026, 12, 1, 10, 0, tzinfo=UTC)),
        ("2026-12-01T10:00:00", datetime(2026, 12, 1, 10, 0, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_a_fact_happened_at_its_event_time(time: str | None, expected: datetime | None) -> None:
    attributes = {"id": "e", "source": "s", "type": "t", "specversion": "1.0"}
    event = Event(attributes if time is None else {**attributes, "time": time})
    assert occurred_at(event) == expected


def test_order_total_is_exact_in_minor_units() -> None:
    lines = [OrderLine("A", 3, 1999), OrderLine("B", 3, 10)]
    assert order_total(lines) == 6027
    assert order_total([OrderLine("C", 10, 1) for _ in range(3)]) == 30


def test_order_ids_are_uuids() -> None:
    assert order_id_of("3f0e7d4c-1a4b-4bb9-a0a4-5c0e5c7e2f10") == uuid.UUID("3f0e7d4c-1a4b-4bb9-a0a4-5c0e5c7e2f10")
    with pytest.raises(UnprocessableEvent):
        order_id_of("42")


@pytest.mark.parametrize(
    ("listed", "line", "code"),
    [
        (None, OrderLine("A", 1, 100), "unknown_sku"),
        (ListedPrice("A", currency="EUR", price_minor=100), OrderLine("A", 1, 100), "currency_mismatch"),
        (ListedPrice("A", currency="USD", price_minor=100), OrderLine("A", 1, 99), "price_mismatch"),
    ],
)
def test_price_problems_name_the_sku(listed: ListedPrice | None, line: OrderLine, code: str) -> None:
    problem = price_problem(line, "USD", listed)
    assert problem is not None and problem[0] == code and "'A'" in problem[1]


def test_a_price_matching_the_catalog_has_no_problem() -> None:
    assert price_problem(OrderLine("A", 2, 100), "USD", ListedPrice("A", currency="USD", price_minor=100)) is None


def test_price_mismatch_message_shows_both_amounts() -> None:
    problem = price_problem(OrderLine("A", 1, 500), "USD", ListedPrice("A", currency="USD", price_minor=750))
    assert problem == ("price_mismatch", "sku 'A' costs 7.50 USD, not 5.00")


def test_insufficient_stock_reason_says_what_was_missing() -> None:
    short = InventoryInsufficient(order_id="o", sku="A", requested=5, available=3)
    none = InventoryInsufficient(order_id="o", sku="Z", requested=1, available=0)
    assert insufficient_stock_reason(short) == "insufficient stock for sku A: requested 5, available 3"
    assert insufficient_stock_reason(none) == "sku Z is out of stock (requested 1)"


def test_payment_deadline_is_the_hold_before_now() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert payment_deadline_passed_before(now, 900) == now - timedelta(minutes=15)


def test_delivery_policies_wait_as_the_kafka_broker_computes() -> None:
    assert [RESERVATION_EVENTS.wait_before(n) for n in (1, 2, 3)] == [1.0, 2.0, 3.0]
    assert RESERVATION_EVENTS.retries == 3 and RESERVATION_EVENTS.backoff == "linear"
    assert [PAYMENT_EVENTS.wait_before(n) for n in range(1, 6)] == [2.0, 4.0, 8.0, 16.0, 32.0]
    assert [SHIPPING_EVENTS.wait_before(n) for n in (1, 2, 3)] == [5.0, 10.0, 20.0]
    assert PRODUCT_EVENTS.retries == 3
    assert all(p.ordered for p in (PRODUCT_EVENTS, RESERVATION_EVENTS, PAYMENT_EVENTS, SHIPPING_EVENTS))
