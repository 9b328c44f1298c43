"""Inventory service: the functions functions-framework serves (`--source functions/inventory/main.py`)."""

from functions.inventory.reservations import (
    release_stock_on_cancel,
    release_stock_on_payment_failure,
    reserve_stock,
    sell_reserved_stock,
)
from functions.inventory.stock import add_stock_for_product, get_stock, list_stock, set_stock
from fusion.declare import boot, service_dispatcher

boot("inventory")
serve = service_dispatcher("inventory")

__all__ = [
    "add_stock_for_product",
    "get_stock",
    "list_stock",
    "release_stock_on_cancel",
    "release_stock_on_payment_failure",
    "reserve_stock",
    "sell_reserved_stock",
    "serve",
    "set_stock",
]
