"""Shipping rules without a database: forward-only statuses, tracking numbers, label links, labels."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from functions.shipping.carrier import OFFLINE_CARRIER, LabelToPrint, Parcel, sender_address
from functions.shipping.rules import (
    can_move,
    check_digit,
    is_valid_tracking_number,
    new_tracking_number,
    public_url,
)


@pytest.mark.parametrize(("current", "target", "allowed"), [
    ("label_created", "in_transit", True),
    ("label_created", "delivered", True),
    ("label_created", "cancelled", True),
    ("in_transit", "delivered", True),
    ("in_transit", "label_created", False),
    ("in_transit", "cancelled", False),
    ("delivered", "in_transit", False),
    ("delivered", "delivered", False),
    ("cancelled", "in_transit", False),
])
def test_shipments_only_move_forward(current: str, target: str, allowed: bool) -> None:
    assert can_move(current, target) is allowed


def test_the_check_digit_is_luhns() -> None:
    assert check_digit("7992739871") == "3"
    assert check_digit("0000000000") == "0"


def test_tracking_numbers_are_prefixed_and_check_digited() -> None:
    numbers = {new_tracking_number() for _ in range(200)}
    assert len(numbers) == 200
    assert all(is_valid_tracking_number(n) and len(n) == 13 and n.startswith("FC") for n in numbers)
    good = next(iter(numbers))
    typo = good[:-2] + str((int(good[-2]) + 1) % 10) + good[-1]
    assert not is_valid_tracking_number(typo)
    assert not is_valid_tracking_number("XX" + good[2:])
    assert not is_valid_tracking_number(good + "0")


@pytest.mark.parametrize(("override", "base", "environment", "expected"), [
    (None, "http://127.0.0.1", "development", "http://127.0.0.1:3005"),
    (None, "http://localhost:8080", "development", "http://localhost:8080"),
    (None, "https://api.shop.example", "production", "https://api.shop.example"),
    ("https://ship.example/", "http://127.0.0.1", "development", "https://ship.example"),
])
def test_the_public_url_of_the_shipping_api(override: str | None, base: str, environment: str,
                                            expected: str) -> None:
    assert public_url(override, base, environment, 3005) == expected


def test_the_sender_address_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPPING_SENDER_ADDRESS", "Shop Ltd; 2 Dock Road ;; Leeds")
    assert sender_address() == ("Shop Ltd", "2 Dock Road", "Leeds")


def test_the_offline_carrier_sells_a_label_with_the_sender_and_no_document(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPPING_SENDER_ADDRESS", "Shop Ltd; Leeds")
    parcel = Parcel("s-1", "order-1", ("Customer 7",), datetime(2026, 1, 2, 3, 4, tzinfo=UTC))
    label = OFFLINE_CARRIER.purchase_label(parcel)
    assert is_valid_tracking_number(label.tracking_number)
    assert label.document is None and label.sender == ("Shop Ltd", "Leeds")
    assert label.content_type == "application/pdf"


def test_the_offline_carrier_prints_a_pdf_even_for_text_outside_latin_1() -> None:
    parcel = Parcel("s-1", "заказ-1", ("Customer 顧客",), datetime(2026, 1, 2, 3, 4, tzinfo=UTC))
    document = OFFLINE_CARRIER.print_label(LabelToPrint(parcel, "FC00000000000", ("Лавка",)))
    assert document.startswith(b"%PDF-") and document.rstrip().endswith(b"%%EOF")


def test_the_offline_carriers_journey() -> None:
    first = OFFLINE_CARRIER.next_scan("label_created")
    assert first is not None and first.status == "in_transit"
    second = OFFLINE_CARRIER.next_scan("in_transit")
    assert second is not None and second.status == "delivered"
    assert OFFLINE_CARRIER.next_scan("delivered") is None
    assert OFFLINE_CARRIER.next_scan("cancelled") is None
