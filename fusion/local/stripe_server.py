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


def index_store_by_kind() -> None:
    """List a kind of object from an index instead of scanning the whole store.

    localstripe lists by walking every object it holds, and it lists a charge's refunds each time it
    writes out a charge (in every PaymentIntent answer and webhook): the cost of a request grew with
    every order ever paid, and made localstripe the busiest process of a sustained load. The store
    keeps, per kind ("charge", "refund"…), its objects in the order they were stored, as the scan
    found them."""
    store_class: Any = localstripe.resources.Store
    if getattr(store_class, "_fusion_indexed", False):
        return
    kinds: dict[str, dict[str, Any]] = {}

    def kind_of(key: str) -> str:
        return key.split(":", 1)[0]

    def set_item(self: Any, key: str, value: Any) -> None:
        dict.__setitem__(self, key, value)
        kinds.setdefault(kind_of(key), {})[key] = value

    def del_item(self: Any, key: str) -> None:
        dict.__delitem__(self, key)
        kinds.get(kind_of(key), {}).pop(key, None)

    def clear(self: Any) -> None:  # DELETE /_config/data
        dict.clear(self)
        kinds.clear()

    def list_all(cls: Any, /, url: str, limit: Any = None, starting_after: Any = None, **kwargs: Any) -> Any:
        if kwargs:
            raise localstripe.resources.UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
        listed = localstripe.resources.List(url, limit=limit, starting_after=starting_after)
        listed._list = list(kinds.get(cls.object, {}).values())
        return listed

    for key, value in localstripe.resources.store.items():  # anything stored before the index existed
        kinds.setdefault(kind_of(key), {})[key] = value
    store_class.__setitem__ = set_item  # also the end of its dump to disk after every write
    store_class.__delitem__ = del_item
    store_class.clear = clear
    localstripe.resources.StripeObject._api_list_all = classmethod(list_all)
    store_class._fusion_indexed = True


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
    index_store_by_kind()
    model_manual_capture()
    stripe_browser.install(localstripe.server.app)  # the card Element's card decides, as with Stripe.js
    if deliver_twice():
        send_webhooks_twice()
    web.run_app(localstripe.server.app, host=HOST, port=args.port)


if __name__ == "__main__":
    main()
