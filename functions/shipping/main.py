"""Shipping service: the functions functions-framework serves (`--source functions/shipping/main.py`)."""

from functions.shipping.shipments import (
    create_shipment,
    get_shipment,
    get_shipment_label,
    list_shipments,
    ship_paid_order,
    void_refunded_shipment,
)
from functions.shipping.tracking import carrier_update, get_tracking
from fusion.declare import boot, service_dispatcher

boot("shipping")
serve = service_dispatcher("shipping")

__all__ = [
    "carrier_update",
    "create_shipment",
    "get_shipment",
    "get_shipment_label",
    "get_tracking",
    "list_shipments",
    "serve",
    "ship_paid_order",
    "void_refunded_shipment",
]
