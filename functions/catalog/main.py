"""Catalog service: the functions functions-framework serves (`--source functions/catalog/main.py`)."""

from functions.catalog.api import create_product, get_product, list_products, update_product
from fusion.declare import boot, service_dispatcher
from fusion.registry import Service, declare_service

SERVICE = declare_service(Service(
    name="catalog", port=3000, cpu_limit="500m", memory_limit="512Mi", min_replicas=2, max_replicas=8, cpu_target=70,
))
boot(SERVICE.name)
serve = service_dispatcher(SERVICE.name)

__all__ = ["SERVICE", "create_product", "get_product", "list_products", "serve", "update_product"]
