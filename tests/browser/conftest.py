"""The browser tests' platform: `fusion dev` on shifted ports with its own database and broker, driven through
the gateway by Debian's Chromium.

Its localstripe is started here and handed to the platform as an external Stripe API, so the platform does not
confirm payments itself (STRIPE_AUTO_CONFIRM): the card a shopper types in the card Element decides, as with
Stripe. The platform lives as long as the module of browser tests that uses it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from browsing import ShopPlatform, Site, launch_chromium
from platform_runner import launch, new_database
from playwright.sync_api import Browser, sync_playwright
from support import free_port

from fusion.config import LOCAL_GATEWAY_PORT
from fusion.local.broker import start_broker
from fusion.local.process import ManagedProcess
from fusion.local.stripe import start_localstripe
from fusion.variables import default_of

BROWSER_OFFSET = 450  # beside the other platforms of the suite (200-400, 500): each runs in its own module
PROJECT_ROOT = Path(__file__).resolve().parents[2]
AXE = PROJECT_ROOT / ".axe" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="module")
def shop(postgres: ManagedProcess, infra_dir: Path) -> Iterator[ShopPlatform]:
    broker = start_broker(free_port(), log_file=infra_dir / "browser-broker.log")
    stripe = start_localstripe(free_port(), log_file=infra_dir / "browser-stripe.log")
    database_url = new_database(postgres)
    try:
        running = launch(database_url, broker.url, infra_dir / "browser-state", BROWSER_OFFSET,
                         infra_dir / "browser-platform.out", STRIPE_SECRET_KEY=default_of("STRIPE_SECRET_KEY"),
                         STRIPE_WEBHOOK_SECRET=default_of("STRIPE_WEBHOOK_SECRET"), STRIPE_API_BASE=stripe.url)
        yield ShopPlatform(running, database_url, broker.url)
        assert running.stop() == 0
    finally:
        stripe.stop()
        broker.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def site(shop: ShopPlatform, tmp_path_factory: pytest.TempPathFactory) -> Site:
    shots = tmp_path_factory.getbasetemp() / "screenshots"
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    return Site(f"http://127.0.0.1:{LOCAL_GATEWAY_PORT + BROWSER_OFFSET}", shots)


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: install axe-core with `bash .ci/install-axe` (`make test` runs it)")
    return AXE.read_text()
