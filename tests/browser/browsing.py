"""What a shopper or a staff member does in the pages, step by step, with Playwright (Debian's Chromium).

The steps wait on what the page shows (Playwright's auto-waiting `expect`), never on time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platform_runner import RunningPlatform
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Playwright, expect

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_CHROMIUM = "apt-get update && apt-get install -y chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
SLOW = 30_000  # ms: a saga step (reserve, pay, ship) through the whole platform
AXE_SERIOUS = ("serious", "critical")


def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's Chromium; Playwright's own browser builds are never downloaded."""
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: the browser tests drive Debian's Chromium; install it with "
                           f"`{INSTALL_CHROMIUM}`")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


@dataclass(frozen=True)
class ShopPlatform:
    """The running platform, with the database and broker it was given."""

    platform: RunningPlatform
    database_url: str
    brokers: str


@dataclass
class Site:
    """The shop at one origin (the gateway), and where screenshots go."""

    base_url: str
    shots: Path
    errors: list[str] = field(default_factory=list)  # what the pages logged as errors, for the failing test

    def url(self, path: str) -> str:
        return self.base_url + path

    @contextmanager
    def visitor(self, browser: Browser, phone: bool = False) -> Iterator[Page]:
        """A fresh browser context (its own storage: cart, sign-in) with one page."""
        context: BrowserContext = browser.new_context(viewport=PHONE if phone else DESKTOP, base_url=self.base_url)
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))
        page.on("console", lambda message: self._note_refusal(page, message))
        try:
            yield page
        except BaseException:
            self.shot(page, f"failed-{len(list(self.shots.glob('failed-*')))}")  # what the page showed then
            raise
        finally:
            context.close()

    def _note_refusal(self, page: Page, message: ConsoleMessage) -> None:
        """What the Content-Security-Policy refused (an inline script or style, another origin)."""
        if message.type == "error" and "Content Security Policy" in message.text:
            self.errors.append(f"{page.url}: {message.text}")

    def shot(self, page: Page, name: str) -> Path:
        path = self.shots / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


def sign_in_customer(page: Page, customer: str) -> None:
    """The shop's Sign in → the development sign-in page → back where the shopper was, signed in."""
    page.get_by_role("button", name="Sign in", exact=True).first.click()
    page.get_by_label("Customer id").fill(customer)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator("[data-user-name]")).to_contain_text(customer, timeout=SLOW)


def sign_in_staff(page: Page, name: str, scopes: list[str]) -> None:
    page.get_by_role("button", name="Staff sign in").first.click()
    staff_form = page.locator("form", has=page.locator("input[name=kind][value=staff]"))
    staff_form.get_by_label("Name").fill(name)
    for scope in scopes:
        staff_form.get_by_label(scope).check()
    staff_form.get_by_role("button", name="Sign in as staff").click()
    expect(page.locator("[data-user-name]")).to_contain_text(name, timeout=SLOW)


def search(page: Page, text: str) -> None:
    page.get_by_label("Search").fill(text)
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(rf"[?&]q={re.escape(text)}(&|$)"))
    expect(page.locator("[data-result-summary]")).to_contain_text("product", timeout=SLOW)


def add_to_cart_from_results(page: Page, sku: str) -> None:
    button = page.locator(f'[data-product-card="{sku}"]').locator("[data-add]")
    expect(button).to_have_accessible_name(re.compile(r"^Add to cart\b"))
    button.click()
    expect(button).to_have_text(re.compile("^Added ✓"))


def fill_card(page: Page, number: str, container: str = "#card-element") -> None:
    """Types a test card into the card Element (locally localstripe's stand-in: number, month, year, cvc, zip)."""
    element = page.locator(container)
    expect(element.locator("input").first).to_be_visible(timeout=SLOW)
    element.get_by_label("Card number").press_sequentially(number.replace(" ", ""))
    element.get_by_label("Card exp month").fill("12")
    element.get_by_label("Card exp year").fill("30")
    element.get_by_label("Card cvc").fill("123")
    element.get_by_label("Card postal code").fill("10001")


def order_id_of(page: Page) -> str:
    found = re.search(r"/shop/orders/([0-9a-f-]{36})", page.url)
    assert found, page.url
    return found.group(1)


def run_axe(page: Page, axe_source: str) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now (evaluated through the DevTools
    protocol, which the page's Content-Security-Policy does not govern: no inline script is allowed in)."""
    page.evaluate(f"() => {{ {axe_source}\n; window.axe = axe; }}")
    results: dict[str, Any] = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [node["target"] for node in v["nodes"]][:5]}
            for v in results["violations"] if v["impact"] in AXE_SERIOUS]


def describe(violations: list[dict[str, Any]]) -> str:
    return json.dumps(violations, indent=2)
