"""localstripe bound to 127.0.0.1 only, with its state kept in memory.

The stock ``localstripe`` command listens on every interface and pickles its whole store to
``/tmp/localstripe.pickle`` after each write (shared by every instance on the machine, and
reloaded at the next start). Here ``Store.dump_to_disk`` is a no-op and nothing is loaded.

localstripe authorizes a manual-capture PaymentIntent (``requires_capture``), captures and cancels
it, but leaves out three things Stripe does that group buying relies on, added here: the
``payment_intent.amount_capturable_updated`` webhook when the card is authorized, the
``amount_capturable`` / ``amount_received`` fields, and refusing to capture a cancelled intent.

Usage: ``python -m fusion.local.stripe_server --port 8420``
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import localstripe.resources
import localstripe.server
import localstripe.webhooks
from aiohttp import web
from localstripe.webhooks import schedule_webhook

from fusion.config import deliver_twice
from fusion.local import stripe_browser

HOST = "127.0.0.1"


def _no_dump(self: object) -> None:
    return None


def _amount_capturable(intent: Any) -> int:
    return int(intent.amount) if intent.status == "requires_capture" else 0


def _amount_received(intent: Any) -> int:
    return int(intent.amount) if intent.status == "succeeded" else 0


def model_manual_capture() -> None:
    """Give localstripe's PaymentIntent the authorization webhook and amounts Stripe has."""
    intent_class: Any = localstripe.resources.PaymentIntent
    if getattr(intent_class, "_fusion_manual_capture", False):
        return
    create_charge = intent_class._create_charge

    def _create_charge(self: Any, on_failure_now: Any) -> None:
        create_charge(self, on_failure_now)
        if self.status == "requires_capture":
            schedule_webhook(localstripe.resources.Event("payment_intent.amount_capturable_updated", self))

    charge_class: Any = localstripe.resources.Charge
    capture = charge_class._capture

    def _capture(self: Any, amount: Any, on_success: Any = None) -> None:
        intent_id = getattr(self, "payment_intent", None)
        if intent_id and intent_class._api_retrieve(intent_id).status == "canceled":
            raise localstripe.resources.UserError(
                400, "This PaymentIntent could not be captured because it has a status of canceled.")
        capture(self, amount, on_success)

    intent_class._create_charge = _create_charge
    charge_class._capture = _capture
    intent_class.amount_capturable = property(_amount_capturable)
    intent_class.amount_received = property(_amount_received)
    intent_class._fusion_manual_capture = True


def send_webhooks_twice() -> None:
    """Every webhook is sent once more right after the first: Stripe may deliver an event more than once."""
    send = localstripe.webhooks._send_webhook

    async def twice(event: Any) -> None:
        await send(event)
        await send(event)

    localstripe.webhooks._send_webhook = twice


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fusion.local.stripe_server")
    parser.add_argument("--port", type=int, default=8420)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    localstripe.resources.Store.dump_to_disk = _no_dump
    model_manual_capture()
    stripe_browser.install(localstripe.server.app)  # the card Element's card decides, as with Stripe.js
    if deliver_twice():
        send_webhooks_twice()
    web.run_app(localstripe.server.app, host=HOST, port=args.port)


if __name__ == "__main__":
    main()
