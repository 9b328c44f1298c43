"""The storefront's HTTP functions: the shop's pages, the staff console's pages and their static assets.

Every page is public: it is a shell whose script signs the user in (OIDC code flow with PKCE) and reads
the API with the user's own token, so what a page shows is what that token may read. The pages themselves
(path, template, title) are in `pages`; each function here declares one of them.
"""

from __future__ import annotations

from collections.abc import Callable

import flask

from functions.storefront.pages import (
    CONSOLE_CAMPAIGNS,
    CONSOLE_INDEX,
    CONSOLE_OPERATIONS,
    CONSOLE_ORDERS,
    CONSOLE_PRODUCTS,
    CONSOLE_SHIPMENTS,
    SHOP_CALLBACK,
    SHOP_CAMPAIGN,
    SHOP_CART,
    SHOP_CHECKOUT,
    SHOP_HOME,
    SHOP_ORDER,
    SHOP_ORDERS,
    SHOP_PRODUCT,
    Page,
    asset_response,
    serve_page,
)
from fusion.auth import PUBLIC
from fusion.declare import HttpFunction, QueryFn, query
from fusion.web import query_text, text_param

SERVICE = "storefront"
HTML = "text/html"


def _page(name: str, page: Page) -> Callable[[QueryFn], HttpFunction]:
    """Declares the function of `page`: GET at its path, public, answering HTML."""
    return query(name, service=SERVICE, routes=[f"GET {page.path}"], auth=PUBLIC, answers=HTML)


@_page("shop-home-page", SHOP_HOME)
def shop_home_page(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """The shop's home: search and browse the catalog (HTML)."""
    return serve_page(SHOP_HOME, request, params)


@_page("shop-product-page", SHOP_PRODUCT)
def shop_product_page(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """A product: price, availability, an open group buy (HTML)."""
    return serve_page(SHOP_PRODUCT, request, params)


@_page("shop-cart-page", SHOP_CART)
def shop_cart_page(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """The shopper's cart (kept in the browser) (HTML)."""
    return serve_page(SHOP_CART, request, params)


@_page("shop-checkout-page", SHOP_CHECKOUT)
def shop_checkout_page(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """Checkout: place the order and pay with a card (HTML)."""
    return serve_page(SHOP_CHECKOUT, request, params)


@_page("shop-orders-page", SHOP_ORDERS)
def shop_orders_page(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """The signed-in shopper's orders (HTML)."""
    return serve_page(SHOP_ORDERS, request, params)


@_page("shop-order-page", SHOP_ORDER)
def shop_order_page(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """One of the shopper's orders: its status as it moves, cancelling, tracking (HTML)."""
    return serve_page(SHOP_ORDER, request, params)


@_page("shop-campaign-page", SHOP_CAMPAIGN)
def shop_campaign_page(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """A group buy: seats taken, the countdown, joining it (HTML)."""
    return serve_page(SHOP_CAMPAIGN, request, params)


@_page("shop-callback-page", SHOP_CALLBACK)
def shop_callback_page(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """Where the identity provider sends the browser back after sign-in (HTML)."""
    return serve_page(SHOP_CALLBACK, request, params)


@_page("console-index-page", CONSOLE_INDEX)
def console_index_page(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """The staff console: what the signed-in staff's scopes allow (HTML)."""
    return serve_page(CONSOLE_INDEX, request, params)


@_page("console-products-page", CONSOLE_PRODUCTS)
def console_products_page(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """Staff: create and edit products, set stock (HTML)."""
    return serve_page(CONSOLE_PRODUCTS, request, params)


@_page("console-orders-page", CONSOLE_ORDERS)
def console_orders_page(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """Staff: orders by status and customer; cancel, refund (HTML)."""
    return serve_page(CONSOLE_ORDERS, request, params)


@_page("console-campaigns-page", CONSOLE_CAMPAIGNS)
def console_campaigns_page(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """Staff: start and close group buys (HTML)."""
    return serve_page(CONSOLE_CAMPAIGNS, request, params)


@_page("console-shipments-page", CONSOLE_SHIPMENTS)
def console_shipments_page(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """Staff: shipments and their labels (HTML)."""
    return serve_page(CONSOLE_SHIPMENTS, request, params)


@_page("console-operations-page", CONSOLE_OPERATIONS)
def console_operations_page(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """Staff: the platform's health, lag and dead letters, with replay (HTML)."""
    return serve_page(CONSOLE_OPERATIONS, request, params)


@query("static-asset", service=SERVICE, routes=["GET /static/{name}"], auth=PUBLIC, params=[text_param("v", 64)],
       answers={200: "*/*"})
def static_asset(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """A stylesheet, script or image of the pages; `v` (the content's digest) makes it cacheable for a year."""
    return asset_response(request, params["name"], query_text(request, "v", 64))

