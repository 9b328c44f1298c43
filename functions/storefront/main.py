"""Storefront service: the shop's and the staff console's pages (`--source functions/storefront/main.py`)."""

from functions.storefront.api import (
    console_campaigns_page,
    console_index_page,
    console_operations_page,
    console_orders_page,
    console_products_page,
    console_shipments_page,
    shop_callback_page,
    shop_campaign_page,
    shop_cart_page,
    shop_checkout_page,
    shop_home_page,
    shop_order_page,
    shop_orders_page,
    shop_product_page,
    static_asset,
)
from functions.storefront.pages import prepare_pages
from fusion.declare import boot, service_dispatcher
from fusion.registry import Service, declare_service

SERVICE = declare_service(Service(
    name="storefront", port=3006, cpu_limit="250m", memory_limit="256Mi", min_replicas=2, max_replicas=6, cpu_target=70,
))
serve = service_dispatcher(SERVICE.name)
boot(SERVICE.name, setup=prepare_pages)

__all__ = [
    "SERVICE",
    "console_campaigns_page",
    "console_index_page",
    "console_operations_page",
    "console_orders_page",
    "console_products_page",
    "console_shipments_page",
    "serve",
    "shop_callback_page",
    "shop_campaign_page",
    "shop_cart_page",
    "shop_checkout_page",
    "shop_home_page",
    "shop_order_page",
    "shop_orders_page",
    "shop_product_page",
    "static_asset",
]
