"""Orders service: the functions functions-framework serves (`--source functions/orders/main.py`)."""

from functions.orders.api import cancel_order, create_order, get_order, list_orders
from functions.orders.handlers import (
    confirm_order,
    create_group_order,
    expire_unpaid_orders,
    fail_order_out_of_stock,
    fail_order_payment,
    mark_order_delivered,
    mark_order_paid,
    mark_order_shipped,
    record_product_price,
)
from fusion.declare import boot, service_dispatcher
from fusion.registry import Service, declare_service

SERVICE = declare_service(Service(
    name="orders", port=3001, cpu_limit="1000m", memory_limit="1Gi", min_replicas=2, max_replicas=10, cpu_target=70,
))
boot(SERVICE.name)
serve = service_dispatcher(SERVICE.name)

__all__ = [
    "SERVICE",
    "cancel_order",
    "confirm_order",
    "create_group_order",
    "create_order",
    "expire_unpaid_orders",
    "fail_order_out_of_stock",
    "fail_order_payment",
    "get_order",
    "list_orders",
    "mark_order_delivered",
    "mark_order_paid",
    "mark_order_shipped",
    "record_product_price",
    "serve",
]
