"""The storefront's HTTP functions: the shop's pages, the staff console's pages and their static assets.

Every page is public: it is a shell whose script signs the user in (OIDC code flow with PKCE) and reads
the API with the user's own token, so what a page shows is what that token may read.
"""

from __future__ import annotations

from collections.abc import Callable

import flask

from functions.storefront.pages import Page, asset_response, not_found_page, page_id, render
from fusion.auth import PUBLIC
from fusion.declare import query
from fusion.web import query_text, text_param

SERVICE = "storefront"
HTML = "text/html"

# The shop: browse and search, a product, the cart, checkout, the shopper's orders, a group campaign.
SHOP_PAGES: dict[str, Page] = {
    "/": Page("home", "Shop"),
    "/shop/products/{id}": Page("product", "Product"),
    "/shop/cart": Page("cart", "Your cart"),
    "/shop/checkout": Page("checkout", "Checkout"),
    "/shop/orders": Page("orders", "Your orders"),
    "/shop/orders/{id}": Page("order", "Order"),
    "/shop/campaigns/{id}": Page("campaign", "Group buy"),
    "/auth/callback": Page("callback", "Signing in"),
}
# The staff console: each page shows what the signed-in staff's scopes allow.
CONSOLE_PAGES: dict[str, Page] = {
    "/console": Page("index", "Staff console", "console"),
    "/console/products": Page("products", "Products", "console"),
    "/console/orders": Page("orders", "Orders", "console"),
    "/console/campaigns": Page("campaigns", "Campaigns", "console"),
    "/console/shipments": Page("shipments", "Shipments", "console"),
    "/console/operations": Page("operations", "Operations", "console"),
}


def _serve(pages: dict[str, Page], path: str, request: flask.Request, params: dict[str, str]) -> flask.Response:
    page = pages[path]
    if "id" not in params:
        return render(page)
    resource = page_id(params)
    return not_found_page(request) if resource is None else render(page, resource_id=resource)


@query("shop-home-page", service=SERVICE, routes=["GET /"], auth=PUBLIC, answers=HTML)
def shop_home_page(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """The shop's home: search and browse the catalog (HTML)."""
    return _serve(SHOP_PAGES, "/", request, params)


@query("shop-product-page", service=SERVICE, routes=["GET /shop/products/{id}"], auth=PUBLIC, answers=HTML)
def shop_product_page(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """A product: price, availability, an open group buy (HTML)."""
    return _serve(SHOP_PAGES, "/shop/products/{id}", request, params)


@query("shop-cart-page", service=SERVICE, routes=["GET /shop/cart"], auth=PUBLIC, answers=HTML)
def shop_cart_page(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """The shopper's cart (kept in the browser) (HTML)."""
    return _serve(SHOP_PAGES, "/shop/cart", request, params)


@query("shop-checkout-page", service=SERVICE, routes=["GET /shop/checkout"], auth=PUBLIC, answers=HTML)
def shop_checkout_page(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """Checkout: place the order and pay with a card (HTML)."""
    return _serve(SHOP_PAGES, "/shop/checkout", request, params)


@query("shop-orders-page", service=SERVICE, routes=["GET /shop/orders"], auth=PUBLIC, answers=HTML)
def shop_orders_page(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """The signed-in shopper's orders (HTML)."""
    return _serve(SHOP_PAGES, "/shop/orders", request, params)


@query("shop-order-page", service=SERVICE, routes=["GET /shop/orders/{id}"], auth=PUBLIC, answers=HTML)
def shop_order_page(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """One of the shopper's orders: its status as it moves, cancelling, tracking (HTML)."""
    return _serve(SHOP_PAGES, "/shop/orders/{id}", request, params)


@query("shop-campaign-page", service=SERVICE, routes=["GET /shop/campaigns/{id}"], auth=PUBLIC, answers=HTML)
def shop_campaign_page(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """A group buy: seats taken, the countdown, joining it (HTML)."""
    return _serve(SHOP_PAGES, "/shop/campaigns/{id}", request, params)


@query("shop-callback-page", service=SERVICE, routes=["GET /auth/callback"], auth=PUBLIC, answers=HTML)
def shop_callback_page(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """Where the identity provider sends the browser back after sign-in (HTML)."""
    return _serve(SHOP_PAGES, "/auth/callback", request, params)


@query("console-index-page", service=SERVICE, routes=["GET /console"], auth=PUBLIC, answers=HTML)
def console_index_page(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """The staff console: what the signed-in staff's scopes allow (HTML)."""
    return _serve(CONSOLE_PAGES, "/console", request, params)


@query("console-products-page", service=SERVICE, routes=["GET /console/products"], auth=PUBLIC, answers=HTML)
def console_products_page(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """Staff: create and edit products, set stock (HTML)."""
    return _serve(CONSOLE_PAGES, "/console/products", request, params)


@query("console-orders-page", service=SERVICE, routes=["GET /console/orders"], auth=PUBLIC, answers=HTML)
def console_orders_page(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """Staff: orders by status and customer; cancel, refund (HTML)."""
    return _serve(CONSOLE_PAGES, "/console/orders", request, params)


@query("console-campaigns-page", service=SERVICE, routes=["GET /console/campaigns"], auth=PUBLIC, answers=HTML)
def console_campaigns_page(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """Staff: start and close group buys (HTML)."""
    return _serve(CONSOLE_PAGES, "/console/campaigns", request, params)


@query("console-shipments-page", service=SERVICE, routes=["GET /console/shipments"], auth=PUBLIC, answers=HTML)
def console_shipments_page(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """Staff: shipments and their labels (HTML)."""
    return _serve(CONSOLE_PAGES, "/console/shipments", request, params)


@query("console-operations-page", service=SERVICE, routes=["GET /console/operations"], auth=PUBLIC, answers=HTML)
def console_operations_page(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """Staff: the platform's health, lag and dead letters, with replay (HTML)."""
    return _serve(CONSOLE_PAGES, "/console/operations", request, params)


@query("static-asset", service=SERVICE, routes=["GET /static/{name}"], auth=PUBLIC, params=[text_param("v", 64)],
       answers={200: "*/*"})
def static_asset(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """A stylesheet, script or image of the pages; `v` (the content's digest) makes it cacheable for a year."""
    return asset_response(request, params["name"], query_text(request, "v", 64))


def hand_static_paths_to(serve: Callable[[flask.Request], flask.Response]) -> None:
    """Flask's app (which functions-framework creates) answers /static/<filename> itself, before any function:
    its static route is made to call the service's functions instead, so /static/{name} is `static_asset`."""
    if flask.has_app_context():
        flask.current_app.view_functions["static"] = lambda filename: serve(flask.request)
