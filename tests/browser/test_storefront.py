"""The shop and the staff console in a real browser, through the gateway of a running platform.

Shoppers sign in on the development sign-in page, search, fill a cart, pay in the card Element and watch
their order move; a declined card says why and puts the stock back; three shoppers tip a group buy; staff
create a product that is orderable at once, refund an order and replay a dead letter; one customer cannot
open another's order. Each main page is screenshotted (in the run's basetemp, screenshots/) and checked with
axe-core: no serious or critical violation.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from browsing import (
    SLOW,
    ShopPlatform,
    Site,
    add_to_cart_from_results,
    describe,
    fill_card,
    order_id_of,
    run_axe,
    search,
    sign_in_customer,
    sign_in_staff,
)
from platform_runner import PROJECT_ROOT, RunningPlatform, eventually
from playwright.sync_api import Browser, Page, expect

from fusion.binding import new_event
from fusion.contracts import InventoryReleased, StockLine
from fusion.kafka import produce, producer

PAYING_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"
ALL_SCOPES = ["catalog:write", "inventory:write", "orders:manage", "payments:refund", "campaigns:write",
              "shipping:manage", "operations:manage"]


class Looks:
    """Screenshots of the pages and their axe-core check; the test fails on a serious or critical violation."""

    def __init__(self, site: Site, axe_source: str):
        self.site = site
        self.axe_source = axe_source
        self.problems: list[str] = []

    def __call__(self, page: Page, name: str) -> None:
        self.site.shot(page, name)
        violations = run_axe(page, self.axe_source)
        if violations:
            self.problems.append(f"{name} ({page.url}): {describe(violations)}")


@pytest.fixture
def look(site: Site, axe_source: str) -> Iterator[Looks]:
    looks = Looks(site, axe_source)
    site.errors.clear()  # this test's pages only
    yield looks
    assert looks.problems == [], "accessibility violations:\n" + "\n".join(looks.problems)
    assert site.errors == [], f"the pages threw: {site.errors}"


def new_product(platform: RunningPlatform, name: str, price: float, stock: int, category: str = "kitchen") -> Any:
    sku = f"BR-{uuid.uuid4().hex[:8].upper()}"
    status, product = platform.post("catalog", "/products", {"sku": sku, "name": name, "price": price,
                                                             "currency": "USD", "inventory": stock,
                                                             "category": category})
    assert status == 201, product
    eventually(lambda: platform.request("GET", "inventory", f"/inventory/{sku}"),
               lambda answer: answer[0] == 200 and answer[1]["available"] == stock)
    return product


def available(platform: RunningPlatform, sku: str) -> int:
    return int(platform.get("inventory", f"/inventory/{sku}")["available"])


def checkout_with(page: Page, card: str) -> None:
    page.goto("/shop/cart")
    page.get_by_role("link", name="Checkout").click()
    fill_card(page, card)
    page.get_by_role("button", name="Place order and pay").click()


def advance_parcel(shop: ShopPlatform, tracking_number: str) -> None:
    """`fusion carrier advance`: the built-in carrier's next scan, as a developer plays it."""
    result = subprocess.run([sys.executable, "-m", "fusion.cli", "carrier", "advance", tracking_number],
                            cwd=PROJECT_ROOT, env={**os.environ, "DATABASE_URL": shop.database_url},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_a_shopper_searches_pays_by_card_and_watches_the_order_to_delivery(
        shop: ShopPlatform, browser: Browser, site: Site, look: Looks) -> None:
    tea = new_product(shop.platform, "Green tea, 100 g", 7.5, 20)
    pot = new_product(shop.platform, "Cast iron teapot", 42.0, 5)
    with site.visitor(browser) as page:
        page.goto("/")
        sign_in_customer(page, "alice")
        search(page, "tea")
        look(page, "home-search")
        add_to_cart_from_results(page, tea["sku"])
        add_to_cart_from_results(page, pot["sku"])
        expect(page.locator("[data-cart-count]")).to_have_text("2")
        page.goto(f"/shop/products/{pot['id']}")
        expect(page.locator("[data-availability]")).to_contain_text("5 available")
        look(page, "product")
        page.goto("/shop/cart")
        expect(page.locator("[data-subtotal]")).to_have_text("$49.50")
        look(page, "cart")
        page.get_by_role("link", name="Checkout").click()
        fill_card(page, PAYING_CARD)
        look(page, "checkout")
        page.get_by_role("button", name="Place order and pay").click()
        page.wait_for_url(re.compile(r"/shop/orders/[0-9a-f-]{36}"), timeout=SLOW)
        order_id = order_id_of(page)
        expect(page.locator("[data-status]")).to_have_text("shipped", timeout=SLOW)
        expect(page.locator("[data-history] [data-history-status=paid]")).to_be_visible()
        tracking = page.locator("[data-tracking-number]")
        expect(tracking).not_to_be_empty(timeout=SLOW)
        look(page, "order-shipped")
        for _ in range(2):  # label_created → in_transit → delivered
            advance_parcel(shop, tracking.inner_text())
        expect(page.locator("[data-status]")).to_have_text("delivered", timeout=SLOW)
        expect(page.locator("[data-scans] [data-scan=delivered]")).to_be_visible(timeout=SLOW)
        look(page, "order-delivered")
        page.goto("/shop/orders")
        expect(page.locator(f'[data-order="{order_id}"]')).to_contain_text("delivered")
        look(page, "orders")
    assert available(shop.platform, pot["sku"]) == 4


def test_a_declined_card_says_why_and_the_stock_comes_back(
        shop: ShopPlatform, browser: Browser, site: Site, look: Looks) -> None:
    lamp = new_product(shop.platform, "Reading lamp", 25.0, 3, "books")
    with site.visitor(browser) as page:
        page.goto(f"/shop/products/{lamp['id']}")
        sign_in_customer(page, "bob")
        page.get_by_role("button", name="Add to cart").click()
        checkout_with(page, DECLINED_CARD)
        declined = page.get_by_role("alert")
        expect(declined).to_contain_text("Your card was declined", timeout=SLOW)
        expect(declined).to_contain_text("Your card was declined.")  # Stripe's own reason
        look(page, "checkout-declined")
        assert page.url.endswith("/shop/checkout")
    eventually(lambda: available(shop.platform, lamp["sku"]), lambda left: left == 3)
    orders = shop.platform.get("orders", "/orders?customerId=bob")
    assert [order["status"] for order in orders] == ["failed"]


def test_three_shoppers_tip_a_group_buy(shop: ShopPlatform, browser: Browser, site: Site,
                                        look: Looks) -> None:
    kettle = new_product(shop.platform, "Gooseneck kettle", 60.0, 10)
    status, campaign = shop.platform.post("group-commerce", "/campaigns", {
        "productId": kettle["id"], "minParticipants": 3, "maxParticipants": 5, "discountPercentage": 20,
        "expiresAt": (datetime.now(UTC) + timedelta(days=2)).isoformat()})
    assert status == 201, campaign
    eventually(lambda: shop.platform.get("group-commerce", f"/campaigns/{campaign['id']}"),
               lambda found: found["status"] == "active")
    shoppers = ["carol", "dave", "erin"]
    contexts = [site.visitor(browser) for _ in shoppers]
    pages = [context.__enter__() for context in contexts]
    try:
        for taken, (shopper, page) in enumerate(zip(shoppers, pages, strict=True), start=1):
            page.goto(f"/shop/campaigns/{campaign['id']}")
            sign_in_customer(page, shopper)
            page.get_by_role("button", name="Join the group").click()
            fill_card(page, PAYING_CARD, "#seat-card")
            page.get_by_role("button", name=re.compile("^Authorize")).click()
            expect(page.locator("[data-seat]")).to_contain_text("Your card is authorized", timeout=SLOW)
            expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", str(taken), timeout=SLOW)
            if taken == 1:
                look(page, "campaign")
        for page in pages:  # every shopper's page sees the group tip
            expect(page.locator("[data-campaign-status]")).to_have_text("successful", timeout=SLOW)
        look(pages[-1], "campaign-tipped")
        for shopper, page in zip(shoppers, pages, strict=True):
            page.goto("/shop/orders")
            group_order = page.locator("[data-order]", has_text="group buy")
            expect(group_order).to_have_count(1, timeout=SLOW)
            expect(group_order).to_contain_text(re.compile("paid|shipped|delivered"), timeout=SLOW)
            expect(group_order).to_contain_text("$48.00")
            assert shopper in page.locator("[data-user-name]").inner_text()
    finally:
        for context in contexts:
            context.__exit__(None, None, None)


def test_staff_create_a_product_refund_an_order_and_replay_a_dead_letter(
        shop: ShopPlatform, browser: Browser, site: Site, look: Looks) -> None:
    sku = f"BR-NEW-{uuid.uuid4().hex[:6].upper()}"
    with site.visitor(browser) as staff, site.visitor(browser, phone=True) as shopper:
        staff.goto("/console")
        sign_in_staff(staff, "sam", ALL_SCOPES)
        look(staff, "console")
        staff.get_by_role("link", name="Products").first.click()
        create = staff.locator("[data-create]")
        create.get_by_label("SKU").fill(sku)
        create.get_by_label("Name").fill("Linen apron")
        create.get_by_label("Price").fill("18.00")
        create.get_by_label("Stock").fill("4")
        create.get_by_label("Category").fill("kitchen")
        create.get_by_role("button", name="Create product").click()
        expect(staff.locator("[data-notice]")).to_contain_text("Created Linen apron", timeout=SLOW)
        row = staff.locator(f'[data-product-row="{sku}"]')
        expect(row).to_be_visible()
        look(staff, "console-products")
        row.get_by_text("Edit", exact=True).click()
        row.get_by_label("Name").fill("Linen apron, natural")
        row.get_by_role("button", name="Save").click()
        expect(staff.locator("[data-notice]")).to_contain_text("Saved Linen apron", timeout=SLOW)
        row = staff.locator(f'[data-product-row="{sku}"]')
        expect(row).to_contain_text("Linen apron, natural")
        row.get_by_text("Stock", exact=True).click()
        row.get_by_label("Stock on hand").fill("6")
        row.get_by_role("button", name="Set stock").click()
        expect(staff.locator("[data-notice]")).to_contain_text(f"Stock of {sku} set to 6", timeout=SLOW)
        expect(staff.locator(f'[data-product-row="{sku}"] [data-stock-level]')).to_have_text("6 of 6")
        assert shop.platform.get("inventory", f"/inventory/{sku}")["quantity"] == 6

        shopper.goto("/?q=apron")  # orderable at once, from a phone
        sign_in_customer(shopper, "frank")
        add_to_cart_from_results(shopper, sku)
        look(shopper, "home-phone")
        checkout_with(shopper, PAYING_CARD)
        shopper.wait_for_url(re.compile(r"/shop/orders/[0-9a-f-]{36}"), timeout=SLOW)
        order_id = order_id_of(shopper)
        expect(shopper.locator("[data-status]")).to_have_text(re.compile("paid|shipped"), timeout=SLOW)
        look(shopper, "order-phone")

        staff.goto("/console/orders?customerId=frank")
        row = staff.locator(f'[data-order-row="{order_id}"]')
        expect(row).to_be_visible(timeout=SLOW)
        look(staff, "console-orders")
        row.get_by_role("button", name="Refund").click()
        expect(staff.locator("[data-notice]")).to_contain_text("Refunded $18.00", timeout=SLOW)
        eventually(lambda: shop.platform.get("payments", f"/payments?orderId={order_id}"),
                   lambda payments: [payment["status"] for payment in payments] == ["refunded"])

        letter = dead_letter(shop)
        staff.goto("/console/operations")
        row = staff.locator(f'[data-dead-letter="{letter}"]')
        expect(row).to_be_visible(timeout=SLOW)
        expect(staff.locator("[data-status] .facts")).to_contain_text("catalog")
        look(staff, "console-operations")
        row.get_by_role("button", name="Replay").click()
        expect(staff.locator("[data-notice]")).to_contain_text(f"Replayed event {letter}", timeout=SLOW)
        expect(staff.locator(f'[data-dead-letter="{letter}"]')).to_contain_text("Replayed", timeout=SLOW)

        staff.goto("/console/campaigns")  # a group buy of the new product, started and closed from the console
        create = staff.locator("[data-create]")
        create.get_by_label("Product").select_option(label="Linen apron, natural ($18.00)")
        create.get_by_label("Minimum buyers").fill("2")
        create.get_by_label("Maximum buyers").fill("3")
        create.get_by_role("button", name="Start campaign").click()
        expect(staff.locator("[data-notice]")).to_contain_text("Campaign started", timeout=SLOW)
        campaign = staff.locator("[data-campaign-row]", has_text="Linen apron, natural")
        expect(campaign).to_contain_text("active", timeout=SLOW)
        look(staff, "console-campaigns")
        campaign.get_by_role("button", name="Close").click()
        expect(staff.locator("[data-notice]")).to_contain_text("Campaign closed: expired", timeout=SLOW)
        expect(campaign.get_by_role("button", name="Close")).to_be_disabled()

        staff.goto("/console/shipments")
        shipment = staff.locator("[data-shipment-row]").first
        expect(shipment).to_be_visible(timeout=SLOW)
        look(staff, "console-shipments")
        with staff.expect_download() as label:
            shipment.get_by_role("button", name="Label (PDF)").click()
        assert label.value.suggested_filename.endswith(".pdf")
        assert Path(label.value.path()).read_bytes().startswith(b"%PDF")


def dead_letter(shop: ShopPlatform) -> str:
    """An event the router gave up on, as it leaves one on the topic's .dlq (with Knative's error attributes)."""
    subject = f"order-{uuid.uuid4()}"
    event = new_event("inventory.released", "inventory", subject, InventoryReleased(
        order_id=subject, items=[StockLine(sku="BR-GONE", quantity=1)], reason="browser test"))
    kafka = producer(shop.brokers)
    produce(kafka, "inventory.released.dlq",
            event.with_attributes(knativeerrorcode="500", knativeerrordest="http://orders/_functions/fail-order"))
    assert kafka.flush(10) == 0
    return event.id


def test_a_customer_cannot_open_another_customers_order(
        shop: ShopPlatform, browser: Browser, site: Site, look: Looks) -> None:
    mug = new_product(shop.platform, "Enamel mug", 9.0, 10)
    status, order = shop.platform.post("orders", "/orders", {
        "customerId": "grace", "currency": "USD", "items": [{"sku": mug["sku"], "quantity": 1, "price": 9.0}]})
    assert status == 201, order
    with site.visitor(browser) as page:
        page.goto(f"/shop/orders/{order['id']}")
        sign_in_customer(page, "heidi")
        expect(page.get_by_role("alert")).to_contain_text("There is no such order in your account", timeout=SLOW)
        expect(page.locator("[data-order]")).to_be_hidden()
        look(page, "order-not-yours")
    with site.visitor(browser) as page:  # the owner sees it, and may cancel it while it is unpaid
        page.goto(f"/shop/orders/{order['id']}")
        sign_in_customer(page, "grace")
        expect(page.locator("[data-status]")).to_have_text("confirmed", timeout=SLOW)
        page.get_by_role("button", name="Cancel order").click()
        expect(page.locator("[data-status]")).to_have_text("cancelled", timeout=SLOW)
        expect(page.get_by_role("button", name="Cancel order")).to_be_hidden()
    eventually(lambda: available(shop.platform, mug["sku"]), lambda left: left == 10)


def test_a_changed_price_and_missing_stock_are_told_and_a_double_click_orders_once(
        shop: ShopPlatform, browser: Browser, site: Site, look: Looks) -> None:
    vase = new_product(shop.platform, "Glass vase", 10.0, 1)
    with site.visitor(browser) as page:
        page.goto(f"/shop/products/{vase['id']}")
        sign_in_customer(page, "ivan")
        page.get_by_role("button", name="Add to cart").click()
        status, changed = shop.platform.request("PATCH", "catalog", f"/products/{vase['id']}", {"price": 12.0})
        assert status == 200, changed
        checkout_with(page, PAYING_CARD)
        expect(page.locator("[data-notice] [data-new-price]")).to_have_text("$12.00", timeout=SLOW)
        expect(page.locator("[data-total]")).to_have_text("$12.00")
        look(page, "checkout-price-changed")

        page.goto("/shop/cart")  # two, where one is left
        page.get_by_label("Quantity of Glass vase").fill("2")
        page.get_by_label("Quantity of Glass vase").press("Enter")
        expect(page.locator("[data-subtotal]")).to_have_text("$24.00")
        page.get_by_role("link", name="Checkout").click()
        fill_card(page, PAYING_CARD)
        page.get_by_role("button", name="Place order and pay").dblclick()
        expect(page.get_by_role("alert")).to_contain_text("insufficient stock", timeout=SLOW)
    orders = shop.platform.get("orders", "/orders?customerId=ivan")
    assert [(order["status"], order["total"]) for order in orders] == [("failed", 24.0)]


def test_the_console_shows_staff_only_what_their_scopes_allow(browser: Browser, site: Site, look: Looks) -> None:
    with site.visitor(browser) as staff:
        staff.goto("/console")
        sign_in_staff(staff, "cat", ["catalog:write"])
        nav = staff.get_by_role("navigation", name="Console")
        expect(nav.get_by_role("link", name="Products")).to_be_visible()
        for hidden in ("Orders", "Campaigns", "Shipments", "Operations"):
            expect(nav.get_by_role("link", name=hidden)).to_be_hidden()
        staff.goto("/console/orders")
        expect(staff.get_by_text("Your account lacks the orders:manage scope.")).to_be_visible()
        expect(staff.locator("[data-orders]")).to_be_hidden()
        look(staff, "console-without-scope")
