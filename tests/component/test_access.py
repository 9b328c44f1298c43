"""Who may call what: every HTTP route of the registry, called by every kind of caller.

The table below is the platform's access policy written out on purpose: a route added without a
declared rule, or a rule changed without changing this table, fails here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from support import Tokens

from fusion.auth import STAFF_SCOPES, Access
from fusion.registry import FunctionSpec, Route, load_all

Clients = Callable[..., FlaskClient]

# function -> who may call it: "public", "signed", "customer", "staff:<scope>", "customer|staff:<scope>"
POLICY = {
    "list-products": "public",
    "get-product": "public",
    "create-product": "staff:catalog:write",
    "update-product": "staff:catalog:write",
    "list-stock": "staff:inventory:write",
    "get-stock": "public",
    "set-stock": "staff:inventory:write",
    "list-orders": "customer|staff:orders:manage",
    "create-order": "customer|staff:orders:manage",
    "get-order": "customer|staff:orders:manage",
    "cancel-order": "customer|staff:orders:manage",
    "list-campaigns": "public",
    "get-campaign": "public",
    "create-campaign": "staff:campaigns:write",
    "join-campaign": "customer",
    "close-campaign": "staff:campaigns:write",
    "list-payments": "customer|staff:payments:refund",
    "create-payment": "customer|staff:payments:refund",
    "get-payment": "customer|staff:payments:refund",
    "refund-payment": "staff:payments:refund",
    "stripe-webhook": "signed",
    "pay-for-seat": "customer",
    "list-seat-payments": "customer|staff:payments:refund",
    "list-shipments": "customer|staff:shipping:manage",
    "create-shipment": "staff:shipping:manage",
    "get-shipment": "customer|staff:shipping:manage",
    "get-shipment-label": "customer|staff:shipping:manage",
    "get-tracking": "public",
    "carrier-update": "signed",
    "console-campaigns-page": "public",
    "console-index-page": "public",
    "console-operations-page": "public",
    "console-orders-page": "public",
    "console-products-page": "public",
    "console-shipments-page": "public",
    "shop-callback-page": "public",
    "shop-campaign-page": "public",
    "shop-cart-page": "public",
    "shop-checkout-page": "public",
    "shop-home-page": "public",
    "shop-order-page": "public",
    "shop-orders-page": "public",
    "shop-product-page": "public",
    "static-asset": "public",
    "get-operations-status": "staff:operations:manage",
    "list-dead-letters": "staff:operations:manage",
    "replay-dead-letters": "staff:operations:manage",
}


def _rule(access: Access | None) -> str:
    assert access is not None
    if access.public:
        return "public"
    if access.signed:
        return "signed"
    parts = ["customer"] if access.customers else []
    if access.scope:
        parts.append(f"staff:{access.scope}")
    return "|".join(parts)


def _http_functions() -> list[FunctionSpec]:
    return sorted((spec for spec in load_all().values() if spec.kind == "http"), key=lambda spec: spec.name)


def test_every_http_function_declares_the_access_in_the_policy() -> None:
    declared = {spec.name: _rule(spec.access) for spec in _http_functions()}
    assert declared == POLICY


CALLERS = ("anonymous", "customer A", "customer B", "staff without the scope", "staff with the scope")


def _expected(rule: str, who: str) -> int | None:
    """401 / 403 where the access check refuses; None where the call reaches the function."""
    if rule in ("public", "signed"):
        return None
    if who == "anonymous":
        return 401
    customers = rule.startswith("customer")
    if who.startswith("customer"):
        return None if customers else 403
    if who == "staff with the scope":
        return None if "staff:" in rule else 403
    return 403


def _token(tokens: Tokens, rule: str, who: str) -> str | None:
    scope = rule.split("staff:", 1)[1] if "staff:" in rule else None
    if who == "anonymous":
        return None
    if who == "customer A":
        return tokens.customer("alice")
    if who == "customer B":
        return tokens.customer("bob")
    if who == "staff with the scope":
        return tokens.staff(scope or STAFF_SCOPES[0])
    return tokens.staff(*(s for s in STAFF_SCOPES if s != scope))


def _path(route: Route) -> str:
    return route.path.replace("{id}", str(uuid.uuid4())).replace("{sku}", "NO-SUCH-SKU").replace(
        "{trackingNumber}", "FC000000000")


CASES = [(spec.name, str(route), who) for spec in _http_functions() for route in spec.routes for who in CALLERS]


@pytest.mark.parametrize(("name", "route", "who"), CASES)
def test_every_route_answers_every_caller_by_the_policy(name: str, route: str, who: str, client: Clients,
                                                       tokens: Tokens) -> None:
    spec = load_all()[name]
    declared = next(r for r in spec.routes if str(r) == route)
    token = _token(tokens, POLICY[name], who)
    service = client(spec.service, token=token)
    response = service.open(_path(declared), method=declared.method, json={})
    expected = _expected(POLICY[name], who)
    if expected is None:
        assert response.status_code not in (401, 403), response.get_json()
    else:
        assert response.status_code == expected, response.get_json()
        assert response.get_json()["error"] in ("unauthorized", "forbidden")
        if expected == 401:
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
