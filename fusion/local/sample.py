"""A shop that is not empty: on a fresh local state `fusion dev` loads a small sample catalog
(through the HTTP API, as staff would) — a dozen products in three categories with stock, and one
open group campaign. `fusion dev --empty` skips it; `fusion reset` makes the state fresh again."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

from fusion.progress import Progress
from fusion.waiting import wait_until
from fusion.web import iso, utc_now

MARKER = "sample-catalog"  # in the state folder: the sample was loaded (or declined) for this state
SKU_PREFIX = "SAMPLE-"
PRODUCTS: tuple[tuple[str, str, str, str, int], ...] = (
    # sku suffix, name, category, price (USD), stock
    ("TEE-ORGANIC", "Organic cotton T-shirt", "apparel", "19.99", 120),
    ("HOODIE-GREY", "Grey zip hoodie", "apparel", "49.00", 40),
    ("SOCKS-WOOL", "Merino wool socks, 3 pairs", "apparel", "24.50", 200),
    ("CAP-CANVAS", "Canvas baseball cap", "apparel", "15.00", 75),
    ("MUG-STONE", "Stoneware mug, 350 ml", "kitchen", "12.00", 150),
    ("KETTLE-STEEL", "Stainless steel kettle, 1.7 l", "kitchen", "39.90", 30),
    ("KNIFE-CHEF", "Chef's knife, 20 cm", "kitchen", "59.00", 25),
    ("BOARD-OAK", "Oak cutting board", "kitchen", "34.00", 60),
    ("BOOK-EVENTS", "Designing Event-Driven Systems (paperback)", "books", "29.99", 50),
    ("BOOK-POSTGRES", "The Art of PostgreSQL (paperback)", "books", "44.00", 35),
    ("BOOK-COOKING", "Salt, Fat, Acid, Heat (hardcover)", "books", "32.00", 45),
    ("NOTEBOOK-A5", "Dotted A5 notebook", "books", "9.50", 300),
)
CAMPAIGN_SKU = "KETTLE-STEEL"
CAMPAIGN = {"minParticipants": 3, "maxParticipants": 20, "discountPercentage": 20}


def is_fresh(state_dir: Path) -> bool:
    return not (state_dir / MARKER).exists()


def mark_loaded(state_dir: Path, what: str) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / MARKER).write_text(what + "\n")


def _call(method: str, url: str, token: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def load(catalog_url: str, campaigns_url: str, staff_token: str, timeout: float = 20.0) -> str:
    """Create the sample products and the campaign; returns what was loaded."""
    created: dict[str, str] = {}
    with Progress("sample catalog", len(PRODUCTS) + 1) as progress:
        for suffix, name, category, price, stock in PRODUCTS:
            sku = SKU_PREFIX + suffix
            status, body = _call("POST", f"{catalog_url}/products", staff_token, {
                "sku": sku, "name": name, "category": category, "price": price, "currency": "USD",
                "inventory": stock, "description": f"A sample product of the local shop ({category}).",
            })
            if status not in (201, 409):  # 409: already there from an earlier, interrupted load
                raise RuntimeError(f"loading the sample catalog: POST /products {sku} answered {status}: {body}")
            if status == 201:
                created[suffix] = body["id"]
            progress.advance()
        if CAMPAIGN_SKU in created:
            _open_campaign(campaigns_url, staff_token, created[CAMPAIGN_SKU], timeout)
        progress.advance()
    return f"{len(created)} sample products in 3 categories, one open group campaign ({SKU_PREFIX}{CAMPAIGN_SKU})"


def _open_campaign(campaigns_url: str, staff_token: str, product_id: str, timeout: float) -> None:
    """Create the campaign and wait until inventory holds its stock, so the shop starts with it open."""
    expires = iso(utc_now() + timedelta(days=5))
    status, answer = _call("POST", f"{campaigns_url}/campaigns", staff_token,
                           {"productId": product_id, "expiresAt": expires, **CAMPAIGN})
    if status != 201:
        raise RuntimeError(f"loading the sample campaign: POST /campaigns answered {status}: {answer}")

    def opened() -> bool:
        status, campaign = _call("GET", f"{campaigns_url}/campaigns/{answer['id']}", staff_token)
        if status == 200 and campaign.get("status") == "refused":
            raise RuntimeError(f"the sample campaign was refused: {campaign.get('statusReason')}")
        return status == 200 and campaign.get("status") == "active"

    wait_until(opened, timeout, 0.1, "inventory to hold the sample campaign's stock")
