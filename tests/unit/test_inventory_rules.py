"""The pure rules of the inventory service: what an order asks for and what is short."""

from __future__ import annotations

from decimal import Decimal

import pytest

from functions.inventory.rules import Shortage, first_shortage, requested_quantities
from fusion.contracts import OrderItem
from fusion.registry import ORDER_EVENTS, PAYMENT_EVENTS, SHIPPING_EVENTS


def item(sku: str, quantity: int) -> OrderItem:
    return OrderItem(sku=sku, quantity=quantity, price=Decimal("1"))


def test_requested_quantities_are_summed_per_sku_in_sku_order() -> None:
    wanted = requested_quantities([item("B", 1), item("A", 2), item("B", 3)])
    assert wanted == {"A": 2, "B": 4} and list(wanted) == ["A", "B"]


@pytest.mark.parametrize("quantity", [0, -1])
def test_a_line_without_a_positive_quantity_is_refused(quantity: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        requested_quantities([item("A", quantity)])


def test_no_shortage_when_everything_is_available() -> None:
    assert first_shortage({"A": 5, "B": 1}, {"A": 5, "B": 10}) is None


def test_the_first_short_sku_in_sku_order_is_reported() -> None:
    assert first_shortage({"C": 9, "B": 2, "A": 1}, {"A": 1, "B": 1, "C": 1}) == Shortage("B", 2, 1)


def test_an_unknown_sku_has_nothing_available() -> None:
    assert first_shortage({"GHOST": 1}, {}) == Shortage("GHOST", 1, 0)


def test_delivery_policies_wait_as_the_kafka_broker_computes() -> None:
    assert [ORDER_EVENTS.wait_before(n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert ORDER_EVENTS.retries == 3 and ORDER_EVENTS.backoff == "exponential"
    assert [PAYMENT_EVENTS.wait_before(n) for n in range(1, 6)] == [2.0, 4.0, 8.0, 16.0, 32.0]
    assert [SHIPPING_EVENTS.wait_before(n) for n in (1, 2, 3)] == [5.0, 10.0, 20.0]
