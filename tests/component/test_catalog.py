"""Catalog functions through functions-framework, on the real database."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from fusion.db import pool

PRODUCT = {"sku": "TSHIRT-1", "name": "Organic T-shirt", "description": "Soft cotton", "price": 19.99,
           "currency": "USD", "inventory": 100, "category": "apparel"}


@pytest.fixture
def catalog(client: Callable[[str], FlaskClient]) -> FlaskClient:
    return client("catalog")


def outbox(topic: str) -> list[dict[str, Any]]:
    with pool().connect() as conn:
        rows = conn.execute("SELECT attributes, payload FROM catalog.outbox WHERE topic = :t ORDER BY id",
                            {"t": topic}).all()
    return [{"attributes": row.attributes, "data": json.loads(row.payload)} for row in rows]


def test_create_product_returns_201_and_publishes_product_created(catalog: FlaskClient) -> None:
    response = catalog.post("/products", json={**PRODUCT, "unknownField": "ignored"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["sku"] == "TSHIRT-1" and body["price"] == 19.99 and body["currency"] == "USD"
    assert body["inventory"] == 100 and len(body["id"]) == 36 and "unknownField" not in body
    [event] = outbox("product.created")
    assert event["attributes"]["type"] == "com.fusioncommerce.product.created"
    assert event["attributes"]["source"] == "/fusioncommerce/catalog"
    assert event["attributes"]["subject"] == body["id"] == event["attributes"]["partitionkey"]
    assert event["data"]["id"] == body["id"] and event["data"]["price"] == 19.99


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sku": None}, "sku"),
        ({"name": ""}, "name"),
        ({"price": -1}, "price"),
        ({"inventory": -5}, "inventory"),
        ({"inventory": 2.5}, "inventory"),
        ({"inventory": "ten"}, "inventory"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "JPY", "price": 10.5}, "price"),
        ({"price": 1.999}, "price"),
    ],
)
def test_invalid_product_is_refused_with_400_naming_the_field(
    catalog: FlaskClient, change: dict[str, Any], field: str
) -> None:
    body = {**PRODUCT, **change}
    body = {k: v for k, v in body.items() if v is not None}
    response = catalog.post("/products", json=body)
    assert response.status_code == 400
    assert response.get_json()["field"] == field
    assert field in response.get_json()["message"]
    assert outbox("product.created") == []


def test_body_that_is_not_a_json_object_is_400(catalog: FlaskClient) -> None:
    assert catalog.post("/products", data="not json", content_type="application/json").status_code == 400
    assert catalog.post("/products", json=[1, 2]).status_code == 400


def test_duplicate_sku_is_409_and_publishes_nothing_more(catalog: FlaskClient) -> None:
    assert catalog.post("/products", json=PRODUCT).status_code == 201
    response = catalog.post("/products", json={**PRODUCT, "name": "Other"})
    assert response.status_code == 409
    assert len(outbox("product.created")) == 1


def test_zero_decimal_currency_keeps_whole_amounts(catalog: FlaskClient) -> None:
    response = catalog.post("/products", json={**PRODUCT, "currency": "jpy", "price": 1500})
    assert response.status_code == 201
    assert response.get_json()["price"] == 1500 and response.get_json()["currency"] == "JPY"


def test_empty_catalog_lists_an_empty_array(catalog: FlaskClient) -> None:
    response = catalog.get("/products")
    assert response.status_code == 200 and response.get_json() == []


def test_deep_pages_list_every_product_once_in_order_whole(catalog: FlaskClient) -> None:
    for n in range(23):
        catalog.post("/products", json={**PRODUCT, "sku": f"P-{n:02}", "category": "kitchen" if n % 3 else "garden"})
    whole = catalog.get("/products?limit=200").get_json()
    paged = [product for offset in range(0, 30, 5)
             for product in catalog.get(f"/products?limit=5&offset={offset}").get_json()]
    assert [p["sku"] for p in whole] == [f"P-{n:02}" for n in range(23)]
    assert paged == whole  # every field of every row, not only the keys the deep pages are found by
    kitchen = [p["sku"] for p in whole if p["category"] == "kitchen"]
    assert [p["sku"] for p in catalog.get("/products?category=kitchen&limit=4&offset=3").get_json()] == kitchen[3:7]


def test_listing_filters_and_pages(catalog: FlaskClient) -> None:
    items = [("A", "Red mug", "kitchen", 5), ("B", "Blue mug", "kitchen", 15), ("C", "Red shirt", "apparel", 25)]
    for sku, name, category, price in items:
        catalog.post("/products", json={**PRODUCT, "sku": sku, "name": name, "category": category, "price": price,
                                        "description": None})
    assert [p["sku"] for p in catalog.get("/products?q=RED").get_json()] == ["A", "C"]
    assert [p["sku"] for p in catalog.get("/products?category=kitchen").get_json()] == ["A", "B"]
    assert [p["sku"] for p in catalog.get("/products?minPrice=10&maxPrice=20").get_json()] == ["B"]
    assert [p["sku"] for p in catalog.get("/products?limit=2&offset=1").get_json()] == ["B", "C"]
    assert catalog.get("/products?q=100%25").get_json() == []
    assert catalog.get("/products?limit=0").status_code == 400
    assert catalog.get("/products?minPrice=abc").status_code == 400
    assert catalog.get("/products?minPrice=9&maxPrice=1").status_code == 400


def test_get_product_by_id(catalog: FlaskClient) -> None:
    created = catalog.post("/products", json=PRODUCT).get_json()
    assert catalog.get(f"/products/{created['id']}").get_json() == created
    assert catalog.get("/products/00000000-0000-0000-0000-000000000000").status_code == 404
    assert catalog.get("/products/not-a-uuid").status_code == 404


def test_idempotency_key_replays_the_first_response(catalog: FlaskClient) -> None:
    first = catalog.post("/products", json=PRODUCT, headers={"Idempotency-Key": "k-1"})
    again = catalog.post("/products", json=PRODUCT, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert first.get_json() == again.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    other = catalog.post("/products", json={**PRODUCT, "sku": "X"}, headers={"Idempotency-Key": "k-1"})
    assert other.status_code == 422
    assert len(outbox("product.created")) == 1


def test_health_and_unknown_routes(catalog: FlaskClient) -> None:
    health = catalog.get("/health")
    assert health.status_code == 200
    assert health.get_json()["status"] == "ok" and health.get_json()["service"] == "catalog"
    assert "timestamp" in health.get_json()
    assert catalog.get("/nowhere").status_code == 404
    assert catalog.delete("/products").status_code == 405
