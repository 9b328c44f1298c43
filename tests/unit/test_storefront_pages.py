"""The storefront's pages as functions-framework serves them: shells with the security headers, the config
their scripts need and no inline code; versioned static assets; and the settings of Stripe.js."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import functions_framework
import pytest
from flask.testing import FlaskClient

from functions.storefront.pages import CONSOLE_PAGES, origin_of, page_shell
from fusion import registry
from fusion.config import ConfigError, browser_stripe, settings
from fusion.declare import service_dispatcher

PAGES = ["/", "/shop/products/8d1f4a8e-2f7b-4d4e-9a51-0c9e1f0b7a11", "/shop/cart", "/shop/checkout", "/shop/orders",
         "/shop/orders/8d1f4a8e-2f7b-4d4e-9a51-0c9e1f0b7a11", "/shop/campaigns/8d1f4a8e-2f7b-4d4e-9a51-0c9e1f0b7a11",
         "/auth/callback", "/console", "/console/products", "/console/orders", "/console/campaigns",
         "/console/shipments", "/console/operations"]


@pytest.fixture(scope="module")
def pages() -> Iterator[FlaskClient]:
    app = functions_framework.create_app("serve", "functions/storefront/main.py")
    yield app.test_client()


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_a_shell_with_the_security_headers(pages: FlaskClient, path: str) -> None:
    answer = pages.get(path)
    assert answer.status_code == 200 and answer.mimetype == "text/html"
    policy = answer.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    html = answer.get_data(as_text=True)
    assert '<main id="main"' in html and 'id="fusion-oidc"' in html and 'id="fusion-stripe"' in html
    # every script is a file of this origin or a JSON data block; no inline style either
    for tag in re.findall(r"<script[^>]*>", html):
        assert 'type="application/json"' in tag or re.search(r'src="/static/[\w.-]+\?v=[0-9a-f]{16}"', tag), tag
    assert "style=" not in html and "<style" not in html
    assert "sk_test" not in html and "whsec_" not in html


def test_the_policy_allows_the_issuer_and_stripe_and_nothing_else(pages: FlaskClient,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Stripe's own Stripe.js, as outside a local platform (other tests may point STRIPE_API_BASE at a localstripe)
    for name in ("STRIPE_API_BASE", "STRIPE_JS_URL"):
        monkeypatch.delenv(name, raising=False)
    settings.cache_clear()
    page_shell.cache_clear()
    try:
        header = pages.get("/").headers["Content-Security-Policy"]
    finally:
        settings.cache_clear()
        page_shell.cache_clear()
    policy = dict(part.strip().split(" ", 1) for part in header.split(";"))
    assert policy["script-src"] == "'self' https://js.stripe.com"
    issuer = origin_of(settings().oidc_issuer)
    assert policy["connect-src"] == f"'self' {issuer} https://js.stripe.com https://api.stripe.com"
    assert policy["frame-src"] == "https://js.stripe.com https://hooks.stripe.com"
    assert policy["form-action"] == f"'self' {issuer}"


def test_a_bad_stripe_setting_stops_the_storefront_at_boot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_PUBLISHABLE_KEY", "sk_live_oops")
    page_shell.cache_clear()
    try:
        with pytest.raises(ConfigError, match="publishable key"):
            functions_framework.create_app("serve", "functions/storefront/main.py")
    finally:
        page_shell.cache_clear()


def test_the_console_navigation_lists_each_console_page_for_its_scope(pages: FlaskClient) -> None:
    html = pages.get("/console/orders").get_data(as_text=True)
    links = re.findall(r'<a href="(/console/\w+)" data-scope="([\w:]+)" hidden ?(aria-current="page")?>', html)
    assert [(path, scope) for path, scope, _ in links] == [(page.path, page.scope) for page in CONSOLE_PAGES
                                                           if page.scope]
    assert [path for path, _, current in links if current] == ["/console/orders"]


def test_another_service_answers_static_paths_itself_not_from_a_static_folder(tmp_path: Path) -> None:
    app = functions_framework.create_app("serve", "functions/catalog/main.py")
    app.static_folder = str(tmp_path)
    (tmp_path / "x.txt").write_text("a file Flask would serve")
    answer = app.test_client().get("/static/x.txt")
    assert answer.status_code == 404
    assert answer.get_json() == {"error": "not_found", "message": "no route for GET /static/x.txt"}


def test_a_module_read_for_its_declarations_leaves_the_serving_app_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    app = functions_framework.create_app("serve", "functions/catalog/main.py")
    app.test_client().get("/static/x.txt")  # the app has served: its setup is over
    static = app.view_functions["static"]
    monkeypatch.setattr(registry, "_reading_declarations", 1)  # as within load_all, during a request
    with app.test_request_context("/operations/status"):
        service_dispatcher("orders")
    assert app.view_functions["static"] is static


def test_a_page_of_something_that_cannot_exist_is_a_404_page(pages: FlaskClient) -> None:
    browser = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    answer = pages.get("/shop/products/not-a-product", headers=browser)
    assert answer.status_code == 404 and "Page not found" in answer.get_data(as_text=True)
    assert "Content-Security-Policy" in answer.headers
    # an API client gets the API's 404 body, as the OpenAPI document says
    api = pages.get("/shop/products/not-a-product", headers={"Accept": "*/*"})
    assert api.status_code == 404 and api.get_json()["error"] == "not_found"


def test_a_version_longer_than_a_digest_is_refused(pages: FlaskClient) -> None:
    answer = pages.get(f"/static/site.css?v={'f' * 65}")
    assert answer.status_code == 400 and answer.get_json()["field"] == "v"


def test_a_versioned_asset_is_cached_for_a_year_and_an_unversioned_one_is_revalidated(pages: FlaskClient) -> None:
    version = re.search(r"/static/site\.css\?v=([0-9a-f]{16})", pages.get("/").get_data(as_text=True))
    assert version is not None
    cached = pages.get(f"/static/site.css?v={version.group(1)}")
    assert cached.status_code == 200 and cached.mimetype == "text/css"
    assert cached.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    module = pages.get("/static/shop.js")
    assert module.headers["Cache-Control"] == "no-cache" and module.mimetype == "text/javascript"
    assert pages.get("/static/shop.js", headers={"If-None-Match": module.headers["ETag"]}).status_code == 304


@pytest.mark.parametrize("name", ["nope.css", ".hidden.js", "page.html", "..%2Fapi.py"])
def test_only_the_static_files_are_served(pages: FlaskClient, name: str) -> None:
    assert pages.get(f"/static/{name}").status_code == 404


def test_stripe_js_comes_from_localstripe_locally_and_from_stripe_outside_development() -> None:
    local = browser_stripe({"STRIPE_API_BASE": "http://127.0.0.1:8420"})
    assert local.js_url == "http://127.0.0.1:8420/js.stripe.com/v3/" and local.publishable_key.startswith("pk_test")
    assert browser_stripe({}).js_url == "https://js.stripe.com/v3/"
    deployed = browser_stripe({"FUSION_ENV": "production", "STRIPE_PUBLISHABLE_KEY": "pk_live_abc"})
    assert deployed.js_url == "https://js.stripe.com/v3/" and deployed.origin == "https://js.stripe.com"


@pytest.mark.parametrize(("env", "problem"), [
    ({"FUSION_ENV": "production"}, "STRIPE_PUBLISHABLE_KEY must be set"),
    ({"FUSION_ENV": "staging", "STRIPE_PUBLISHABLE_KEY": "pk_test_fusion_local"}, "public development default"),
    ({"STRIPE_PUBLISHABLE_KEY": "sk_live_oops"}, "publishable key"),
    ({"FUSION_ENV": "production", "STRIPE_PUBLISHABLE_KEY": "pk_live_abc", "STRIPE_JS_URL": "http://js.example"},
     "https://"),
])
def test_bad_stripe_js_settings_are_refused(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        browser_stripe(env)
