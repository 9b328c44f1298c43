"""Read-your-writes across services: ask the catalog itself for a product an event has not brought yet.

Orders and group buying keep projections of the catalog fed by product.created and product.updated, and
inventory takes a new product's stock from product.created, but a product created (or repriced) a moment
ago may not have reached them. Before refusing a sku or a price
they ask the catalog's `GET /products?sku=…` (or `?id=…`) synchronously, within CATALOG_TIMEOUT_SECONDS.
The answer is the product as it is now, in the shape of product.updated, so it is recorded in the
projection like the event (the newest price time wins). A product the catalog does not know is None; a
catalog that cannot answer (refused, timed out, 5xx, or any answer that is not a product listing) is
Unavailable: 503 with Retry-After, never a 4xx the request did not deserve.
"""

from __future__ import annotations

import logging
import urllib.parse
import uuid
from typing import Any

from pydantic import ValidationError

from fusion.config import settings
from fusion.contracts import ProductUpdated
from fusion.errors import Unavailable
from fusion.registry import Route, service_named
from fusion.smoke.client import Http, Reply

CATALOG = "catalog"
LOOKUP_ROUTE = Route("GET", "/products")  # the catalog's listing, filtered by sku or id
RETRY_AFTER_SECONDS = 2
log = logging.getLogger(__name__)


def catalog_url() -> str:
    """CATALOG_URL, or in development the local catalog on the registry's port (shifted by FUSION_PORT_OFFSET).

    `fusion dev` and Compose set CATALOG_URL, so only a function served on its own loads the registry here."""
    return settings().catalog_url or f"http://127.0.0.1:{service_named(CATALOG).local_port}"


def product_by_sku(sku: str) -> ProductUpdated | None:
    """The catalog's product with this sku as it is now, or None when the catalog has none."""
    found = _one({"sku": sku})
    return None if found is None else _product(*found)


def product_by_id(product_id: uuid.UUID) -> ProductUpdated | None:
    """The catalog's product with this id as it is now, or None when the catalog has none."""
    found = _one({"id": str(product_id)})
    return None if found is None else _product(*found)


def initial_stock(sku: str) -> int | None:
    """The stock the catalog's product with this sku came with (what product.created carries), or None."""
    found = _one({"sku": sku})
    if found is None:
        return None
    reply, body = found
    stock = body.get("inventory") if isinstance(body, dict) else None
    if not isinstance(stock, int) or isinstance(stock, bool) or stock < 0:
        raise _unavailable(reply, "a product without its stock")
    return stock


def _one(filters: dict[str, str]) -> tuple[Reply, Any] | None:
    # One route, the product listing, serves every lookup: in the cluster it is one Knative Service.
    reply = Http(settings().catalog_timeout_seconds).call(
        LOOKUP_ROUTE.method, f"{catalog_url()}{LOOKUP_ROUTE.path}?{urllib.parse.urlencode(filters)}")
    if reply.status != 200:
        raise _unavailable(reply, "no answer" if reply.status is None else f"HTTP {reply.status}")
    if not isinstance(reply.body, list) or len(reply.body) > 1:
        raise _unavailable(reply, "not a list of at most one product")
    return (reply, reply.body[0]) if reply.body else None


def _product(reply: Reply, body: Any) -> ProductUpdated:
    try:
        return ProductUpdated.model_validate(body)
    except ValidationError as exc:
        raise _unavailable(reply, f"not a product ({exc.error_count()} problems)") from None


def _unavailable(reply: Reply, problem: str) -> Unavailable:
    log.warning("catalog lookup failed (%s): %s", problem, reply.describe())
    return Unavailable("the catalog cannot be reached to check the product; try again", code="catalog_unavailable",
                       retry_after=RETRY_AFTER_SECONDS)
