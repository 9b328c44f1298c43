"""Inventory decisions without I/O: what an order asks for, and what of it is short."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fusion.contracts import OrderItem


@dataclass(frozen=True)
class Shortage:
    sku: str
    requested: int
    available: int


def requested_quantities(items: Iterable[OrderItem]) -> dict[str, int]:
    """Quantity wanted per sku (a sku may appear on several lines), in sku order."""
    wanted: dict[str, int] = {}
    for item in items:
        if item.quantity < 1:
            raise ValueError(f"sku {item.sku}: quantity must be at least 1, got {item.quantity}")
        wanted[item.sku] = wanted.get(item.sku, 0) + item.quantity
    return dict(sorted(wanted.items()))


def first_shortage(wanted: Mapping[str, int], available: Mapping[str, int]) -> Shortage | None:
    """The first sku (in sku order) without enough available stock; an unknown sku has none."""
    for sku, quantity in sorted(wanted.items()):
        have = max(available.get(sku, 0), 0)
        if have < quantity:
            return Shortage(sku=sku, requested=quantity, available=have)
    return None
