"""The pages and their rendering: Jinja2 templates, the security headers every answer carries, and the static assets.

The pages are shells: the data comes from the HTTP API, fetched by the page's ES modules with the signed-in
user's token. What a page carries is public: the OIDC client settings, Stripe's publishable key, and the
versioned addresses of its assets. Nothing runs inline, so the Content-Security-Policy allows scripts
and styles from this origin only (and Stripe.js from Stripe's). All of it is fixed for the process: read and
checked once, at boot (`prepare_pages`), so a bad setting stops the process instead of failing a page.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import flask
import jinja2

from functions.storefront.oidc import browser_oidc_config
from fusion.config import browser_stripe
from fusion.web import ApiError

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
TEMPLATES_DIR = HERE / "templates"
CONTENT_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon", ".txt": "text/plain"}
# Stripe.js talks to these besides its own origin (https://docs.stripe.com/security/guide#content-security-policy).
STRIPE_API = "https://api.stripe.com"
STRIPE_FRAMES = "https://hooks.stripe.com"
HOSTED_STRIPE_JS = "https://js.stripe.com"
YEAR = 365 * 24 * 3600


@dataclass(frozen=True)
class Page:
    """One page: its template, its title and the name its script dispatches on (`<body data-page>`)."""

    name: str
    title: str
    path: str = ""  # its route; `{id}` names the product, order or campaign it shows
    area: str = "shop"  # "shop" or "console": which script and navigation the page has
    scope: str = ""  # a console page: the staff scope its entry in the console's navigation is shown for

    @property
    def template(self) -> str:
        return f"{self.area}/{self.name}.html"


# The shop: browse and search, a product, the cart, checkout, the shopper's orders, a group campaign.
SHOP_HOME = Page("home", "Shop", "/")
SHOP_PRODUCT = Page("product", "Product", "/shop/products/{id}")
SHOP_CART = Page("cart", "Your cart", "/shop/cart")
SHOP_CHECKOUT = Page("checkout", "Checkout", "/shop/checkout")
SHOP_ORDERS = Page("orders", "Your orders", "/shop/orders")
SHOP_ORDER = Page("order", "Order", "/shop/orders/{id}")
SHOP_CAMPAIGN = Page("campaign", "Group buy", "/shop/campaigns/{id}")
SHOP_CALLBACK = Page("callback", "Signing in", "/auth/callback")
# The staff console: each page shows what the signed-in staff's scopes allow.
CONSOLE_INDEX = Page("index", "Staff console", "/console", "console")
CONSOLE_PRODUCTS = Page("products", "Products", "/console/products", "console", "catalog:write")
CONSOLE_ORDERS = Page("orders", "Orders", "/console/orders", "console", "orders:manage")
CONSOLE_CAMPAIGNS = Page("campaigns", "Campaigns", "/console/campaigns", "console", "campaigns:write")
CONSOLE_SHIPMENTS = Page("shipments", "Shipments", "/console/shipments", "console", "shipping:manage")
CONSOLE_OPERATIONS = Page("operations", "Operations", "/console/operations", "console", "operations:manage")
CONSOLE_PAGES = (CONSOLE_INDEX, CONSOLE_PRODUCTS, CONSOLE_ORDERS, CONSOLE_CAMPAIGNS, CONSOLE_SHIPMENTS,
                 CONSOLE_OPERATIONS)
NOT_FOUND = Page("not_found", "Page not found")


_templates = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                                undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_templates.globals["console_nav"] = tuple(page for page in CONSOLE_PAGES if page.scope)


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(issuer: str, stripe_js_url: str) -> str:
    """Only this origin, the issuer (its token endpoint; its sign-in page) and Stripe.js with what it needs."""
    stripe = origin_of(stripe_js_url)
    stripe_connect = f"{stripe} {STRIPE_API}" if stripe == HOSTED_STRIPE_JS else stripe
    stripe_frames = f"{stripe} {STRIPE_FRAMES}" if stripe == HOSTED_STRIPE_JS else stripe
    issuer_origin = origin_of(issuer)
    return "; ".join([
        "default-src 'self'",
        f"script-src 'self' {stripe}",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        f"connect-src 'self' {issuer_origin} {stripe_connect}",
        f"frame-src {stripe_frames}",
        f"form-action 'self' {issuer_origin}",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ])


def security_headers(csp: str | None = None) -> dict[str, str]:
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    }
    if csp is not None:
        headers["Content-Security-Policy"] = csp
    return headers


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    digest: str


def _read_asset(path: Path) -> Asset:
    body = path.read_bytes()
    return Asset(body, CONTENT_TYPES[path.suffix], hashlib.sha256(body).hexdigest()[:16])


@cache
def assets() -> dict[str, Asset]:
    """The files of static/ (no folders, nothing hidden) by name, read once."""
    return {path.name: _read_asset(path) for path in sorted(STATIC_DIR.iterdir())
            if path.is_file() and not path.name.startswith(".") and path.suffix in CONTENT_TYPES}


def asset_url(name: str) -> str:
    """/static/<name>?v=<digest>: the version changes with the content, so the file may be cached for a year."""
    url = page_shell().asset_urls.get(name)
    if url is None:
        raise LookupError(f"no static file {name!r} in {STATIC_DIR}")
    return url


def asset_response(request: flask.Request, name: str, version: str | None) -> flask.Response:
    found = assets().get(name)
    if found is None:
        return not_found_page(request)
    etag = f'"{found.digest}"'
    # A versioned address never changes its content; an unversioned one (an ES module's import) is revalidated.
    caching = f"public, max-age={YEAR}, immutable" if version == found.digest else "no-cache"
    headers = {**security_headers(), "ETag": etag, "Cache-Control": caching}
    if request.headers.get("If-None-Match") == etag:
        return flask.Response(b"", status=304, headers=headers)
    return flask.Response(found.body, status=200, content_type=found.content_type, headers=headers)


@dataclass(frozen=True)
class Shell:
    """What every page carries: its script's settings (where to sign in, how to reach Stripe.js), the headers
    of its answer and the versioned addresses of the assets."""

    oidc: dict[str, str]
    stripe: dict[str, str]
    headers: dict[str, str]
    asset_urls: dict[str, str]


@cache
def page_shell() -> Shell:
    """Read and checked once per process (ConfigError for a bad setting)."""
    oidc = browser_oidc_config()
    stripe = browser_stripe()
    csp = content_security_policy(oidc["issuer"], stripe.js_url)
    return Shell(oidc=oidc, stripe={"publishableKey": stripe.publishable_key, "jsUrl": stripe.js_url},
                 headers={**security_headers(csp), "Cache-Control": "no-store"},
                 asset_urls={name: f"/static/{name}?v={found.digest}" for name, found in assets().items()})


def prepare_pages() -> None:
    """The storefront's boot: settle what the pages carry before the first request."""
    page_shell()


def render(page: Page, status: int = 200, resource_id: str = "") -> flask.Response:
    shell = page_shell()
    html = _templates.get_template(page.template).render(
        page=page, asset=asset_url, oidc=shell.oidc, stripe=shell.stripe, resource_id=resource_id)
    return flask.Response(html, status=status, content_type="text/html; charset=utf-8", headers=shell.headers)


def not_found_page(request: flask.Request) -> flask.Response:
    """A page for a browser; for an API client (one that prefers JSON, or takes anything) the API's 404 body."""
    wanted = request.accept_mimetypes.best_match(["application/json", "text/html"])
    if wanted == "text/html":
        return render(NOT_FOUND, 404)
    return ApiError(404, f"no page at {request.path}").response()


def page_id(params: dict[str, str], name: str = "id") -> str | None:
    """The page's resource id when it is a UUID (anything else names no product, order or campaign)."""
    try:
        return str(uuid.UUID(params.get(name, "")))
    except ValueError:
        return None


def serve_page(page: Page, request: flask.Request, params: dict[str, str]) -> flask.Response:
    """The page; one showing a resource (`{id}` in its path) only for an id that can name one."""
    if "id" not in params:
        return render(page)
    resource = page_id(params)
    return not_found_page(request) if resource is None else render(page, resource_id=resource)
