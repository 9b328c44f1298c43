"""Inventory service: the functions functions-framework serves (`--source functions/inventory/main.py`)."""

from functions.inventory.api import get_stock, list_stock, set_stock
from functions.inventory.handlers import (
    add_stock_for_product,
    hold_campaign_stock,
    release_campaign_stock,
    release_stock_on_cancel,
    release_stock_on_payment_failure,
    reserve_stock,
    sell_reserved_stock,
)
from fusion.declare import boot, service_dispatcher
from fusion.registry import Service, declare_service

SERVICE = declare_service(Service(
    name="inventory", port=3002, cpu_limit="1000m", memory_limit="1Gi", min_replicas=2, max_replicas=10, cpu_target=70,
))
boot(SERVICE.name)
serve = service_dispatcher(SERVICE.name)

__all__ = [
    "SERVICE",
    "add_stock_for_product",
    "get_stock",
    "hold_campaign_stock",
    "list_stock",
    "release_campaign_stock",
    "release_stock_on_cancel",
    "release_stock_on_payment_failure",
    "reserve_stock",
    "sell_reserved_stock",
    "serve",
    "set_stock",
]
