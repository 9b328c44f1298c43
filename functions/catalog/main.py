"""Catalog service: the functions functions-framework serves (`--source functions/catalog/main.py`)."""

from functions.catalog.products import create_product, get_product, list_products
from fusion.declare import boot, service_dispatcher

boot("catalog")
serve = service_dispatcher("catalog")

__all__ = ["create_product", "get_product", "list_products", "serve"]
