"""The storefront's OIDC settings: what the pages tell auth.js, and what the local issuer takes as its client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from functions.storefront.oidc import CALLBACK_PATH, browser_oidc_config
from fusion import config
from fusion.auth import STAFF_SCOPES
from fusion.config import ConfigError, check_service_secrets, load_settings, storefront_origin
from fusion.local.issuer import storefront_client

DEPLOYED = {"FUSION_ENV": "production", "DATABASE_URL": "postgresql://u:p@db/x", "KAFKA_BROKERS": "k:9092",
            "OIDC_ISSUER": "https://id.example/realms/shop", "OIDC_AUDIENCE": "shop",
            "EVENTING_OIDC_ISSUER": "https://kubernetes.default.svc", "STRIPE_SECRET_KEY": "sk_live_x"}


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Settings read again from the environment the test sets, and again after it."""
    for name in ("STOREFRONT_OIDC_CLIENT_ID", "STOREFRONT_ORIGIN", "FUSION_PORT_OFFSET", "OIDC_ISSUER",
                 "OIDC_SCOPE_CLAIM", "FUSION_ENV"):
        monkeypatch.delenv(name, raising=False)
    config.settings.cache_clear()
    yield monkeypatch
    config.settings.cache_clear()


def test_in_development_the_pages_sign_in_with_the_local_client(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("OIDC_ISSUER", "http://127.0.0.1:8430")
    assert browser_oidc_config() == {
        "issuer": "http://127.0.0.1:8430", "clientId": "fusioncommerce-storefront", "redirectUri": CALLBACK_PATH,
        "scope": "openid", "scopeClaim": "scope", "staffScopes": " ".join(STAFF_SCOPES),
    }


def test_deployed_the_pages_sign_in_with_the_configured_client(environment: pytest.MonkeyPatch) -> None:
    for name, value in {**DEPLOYED, "STOREFRONT_OIDC_CLIENT_ID": "shop-web",
                        "OIDC_SCOPE_CLAIM": "realm_access.roles"}.items():
        environment.setenv(name, value)
    shown = browser_oidc_config()
    assert (shown["issuer"], shown["clientId"], shown["scopeClaim"]) == (
        "https://id.example/realms/shop", "shop-web", "realm_access.roles")


def test_deployed_the_storefront_does_not_start_without_its_client_id() -> None:
    deployed = {**DEPLOYED, "STRIPE_PUBLISHABLE_KEY": "pk_live_x"}
    with pytest.raises(ConfigError, match="STOREFRONT_OIDC_CLIENT_ID must be set outside development"):
        check_service_secrets("storefront", deployed)
    check_service_secrets("storefront", {**deployed, "STOREFRONT_OIDC_CLIENT_ID": "shop-web"})


def test_the_storefront_origin_defaults_to_the_local_gateway_shifted_with_the_ports() -> None:
    assert storefront_origin({}) == "http://127.0.0.1:8000"
    assert storefront_origin({"FUSION_PORT_OFFSET": "100"}) == "http://127.0.0.1:8100"
    assert storefront_origin({"STOREFRONT_ORIGIN": "https://shop.example/"}) == "https://shop.example"


@pytest.mark.parametrize("value", ["shop.example", "https://shop.example/pages", "https://shop.example?x=1",
                                   "ftp://shop.example"])
def test_a_storefront_origin_that_is_not_an_origin_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="STOREFRONT_ORIGIN must be an origin"):
        load_settings({"STOREFRONT_ORIGIN": value})


def test_the_local_issuer_redirects_only_to_the_storefronts_callback() -> None:
    client = storefront_client({"STOREFRONT_ORIGIN": "http://localhost:8200", "STOREFRONT_OIDC_CLIENT_ID": "web"})
    assert (client.client_id, client.origin, client.redirect_uri) == (
        "web", "http://localhost:8200", "http://localhost:8200/auth/callback")
