"""`fusion smoke`: the post-deploy smoke test of a running platform.

It checks the health of every service, then sends one product and one order through the whole
platform: the product's event reaches inventory and orders, the order is idempotent, its events
advance its status and reserve its stock, and the order is cancelled again so that a smoke run
leaves no reserved stock behind. HTTP goes through urllib only, so it runs in a slim image; every
request has a timeout and every wait polls up to `--timeout`, so a broken platform never hangs it.

`report` holds the results, `client` the HTTP calls, `scenario` the steps, `cli` the command.
"""

from __future__ import annotations

from fusion.smoke.cli import build_parser, main, service_urls
from fusion.smoke.report import SmokeReport, StepResult
from fusion.smoke.scenario import STEPS, SmokeTest

__all__ = ["STEPS", "SmokeReport", "SmokeTest", "StepResult", "build_parser", "main", "service_urls"]
