"""Shipping service: the functions functions-framework serves (`--source functions/shipping/main.py`)."""

from functions.shipping.api import (
    carrier_update,
    create_shipment,
    get_shipment,
    get_shipment_label,
    get_tracking,
    list_shipments,
)
from functions.shipping.handlers import ship_paid_order, void_refunded_shipment
from fusion.declare import boot, service_dispatcher
from fusion.registry import Service, declare_service

SERVICE = declare_service(Service(
    name="shipping", port=3005, cpu_limit="500m", memory_limit="512Mi", min_replicas=1, max_replicas=5, cpu_target=70,
))
boot(SERVICE.name)
serve = service_dispatcher(SERVICE.name)

__all__ = [
    "SERVICE",
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
