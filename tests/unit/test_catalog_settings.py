"""The catalog lookup's settings, and the 503 a catalog that cannot answer becomes."""

from __future__ import annotations

import pytest

from fusion.config import ConfigError, check_service_secrets, load_settings
from fusion.errors import Invalid, Unavailable
from fusion.web import http_error


def test_development_asks_the_local_catalog_within_three_seconds() -> None:
    settings = load_settings({"FUSION_ENV": "development"})
    assert settings.catalog_url is None and settings.catalog_timeout_seconds == 3.0


def test_a_given_catalog_address_and_timeout_are_taken() -> None:
    settings = load_settings({"CATALOG_URL": "http://list-products.ns.svc.cluster.local/",
                              "CATALOG_TIMEOUT_SECONDS": "0.5"})
    assert settings.catalog_url == "http://list-products.ns.svc.cluster.local"
    assert settings.catalog_timeout_seconds == 0.5


@pytest.mark.parametrize(("env", "problem"), [
    ({"CATALOG_URL": "list-products:80"}, "CATALOG_URL must be an http"),
    ({"CATALOG_TIMEOUT_SECONDS": "soon"}, "CATALOG_TIMEOUT_SECONDS must be a number"),
    ({"CATALOG_TIMEOUT_SECONDS": "0"}, "more than 0 and at most 60"),
    ({"CATALOG_TIMEOUT_SECONDS": "600"}, "more than 0 and at most 60"),
])
def test_bad_catalog_settings_are_refused(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_settings(env)


@pytest.mark.parametrize("service", ["orders", "inventory", "group-commerce"])
def test_the_services_that_look_products_up_need_the_address_outside_development(service: str) -> None:
    with pytest.raises(ConfigError, match=f"CATALOG_URL must be set outside development for {service}"):
        check_service_secrets(service, {"FUSION_ENV": "production"})
    check_service_secrets(service, {"FUSION_ENV": "production", "CATALOG_URL": "http://list-products.ns.svc"})
    check_service_secrets(service, {"FUSION_ENV": "development"})
    check_service_secrets("shipping", {"FUSION_ENV": "production", "SHIPPING_CARRIER_SECRET": "a-real-secret"})


def test_unavailable_answers_503_with_retry_after_and_nothing_else_does() -> None:
    error = http_error(Unavailable("the catalog cannot be reached", code="catalog_unavailable", retry_after=2))
    response = error.response()
    assert response.status_code == 503 and response.headers["Retry-After"] == "2"
    assert response.get_json()["error"] == "catalog_unavailable"
    assert "Retry-After" not in http_error(Invalid("price", "must be a number")).response().headers
