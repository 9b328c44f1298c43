"""Payments' event handlers, and the reconciliation of payments whose webhook never arrived.

An order becomes payable when both order.created (total, currency, customer) and
inventory.reserved have arrived, in either order; whichever arrives second starts the payment.
order.cancelled, order.failed and order.expired make it unpayable for good, and refund a payment
that already succeeded.

Stripe retries webhooks for days, localstripe sends each one once; either way a payment whose
webhook never arrived would wait forever. Every minute, pending payments not checked for
PAYMENTS_RECONCILE_AFTER_SECONDS (default 60) are looked up in Stripe and settled the way their
webhook would have settled them. Intents still waiting for the customer are left alone.

A minute is too long for the webhook localstripe sent once into a database outage, so every new
intent also gets a check scheduled seconds later (`next_check_at`, committed with the intent). The
same checks give their intent to payments claimed but never given one (Stripe was down, or the
process died between the claim and the create; see functions/payments/flow.py). A
checker thread in each payments process that handled a payment event or tick runs the due ones
every second; while the database is down it keeps trying, and settles within a second of its return.
Settling is idempotent (statuses only move forward, under the order's lock), so a check racing the
webhook, or two replicas, change nothing twice.

Seats of group campaigns: group-commerce.seat.held asks the card for an authorization (manual
capture) of the group price; group-commerce.seat.confirmed captures it (the group formed),
group-commerce.seat.released cancels it (nothing is charged). A group order is paid by its seat's
captured authorization: no second charge.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable

from functions.payments import flow, gateway, store
from functions.payments.flow import (
    CHECK_LEASE_SECONDS,
    OrderClosed,
    OrderDetails,
    OrderReserved,
    PaymentCheck,
    SeatDecision,
    SeatHold,
)
from functions.payments.store import SERVICE, DuePayment, Payment
from fusion.binding import Event
from fusion.contracts import (
    InventoryReserved,
    OrderCancelled,
    OrderCreated,
    OrderExpired,
    OrderFailed,
    SeatConfirmed,
    SeatHeld,
    SeatReleased,
)
from fusion.declare import UnprocessableEvent, event_handler, payload_of, scheduled
from fusion.money import MoneyError, normalise_currency, to_minor
from fusion.registry import PAYMENT_EVENTS
from fusion.topics import topic
from fusion.uow import UnitOfWork, reading, unit_of_work

log = logging.getLogger("functions.payments")
RECONCILE_AFTER_ENV = "PAYMENTS_RECONCILE_AFTER_SECONDS"
DEFAULT_RECONCILE_AFTER_SECONDS = 60
BATCH = 50
CHECK_EVERY_SECONDS = 2.0

CLOSING_EVENTS: dict[str, tuple[type[OrderCancelled | OrderFailed | OrderExpired], str]] = {
    topic("order.cancelled").type: (OrderCancelled, "cancelled"),
    topic("order.failed").type: (OrderFailed, "failed"),
    topic("order.expired").type: (OrderExpired, "expired"),
}


def _order_details(order: OrderCreated) -> OrderDetails:
    try:
        currency = normalise_currency(order.currency)
        total_minor = to_minor(order.total, currency)
    except MoneyError as exc:
        raise UnprocessableEvent(f"order {order.order_id}: total {order.total} {order.currency}: {exc}") from None
    return OrderDetails(order.order_id, order.customer_id, total_minor, currency, order.campaign_id)


@event_handler("record-order-for-payment", service=SERVICE, topics=["order.created"], delivery=PAYMENT_EVENTS)
def record_order_for_payment(event: Event, uow: UnitOfWork) -> None:
    """Remember an order's total, currency and customer; start its payment if its stock was reserved first."""
    flow.record_order_details(_order_details(payload_of(event, OrderCreated)), uow)
    checker.ensure_running()


@event_handler("start-payment", service=SERVICE, topics=["inventory.reserved"], delivery=PAYMENT_EVENTS)
def start_payment(event: Event, uow: UnitOfWork) -> None:
    """The order's stock is reserved: create its payment and Stripe PaymentIntent, publish payment.created."""
    reserved = payload_of(event, InventoryReserved)
    flow.record_reservation(OrderReserved(reserved.order_id), uow)
    checker.ensure_running()


@event_handler("close-order-payment", service=SERVICE, topics=["order.cancelled", "order.failed", "order.expired"],
               delivery=PAYMENT_EVENTS)
def close_order_payment(event: Event, uow: UnitOfWork) -> None:
    """The order will not be fulfilled: it can no longer be paid, and a succeeded payment is refunded."""
    contract, closed_as = CLOSING_EVENTS[event.type]
    closing = payload_of(event, contract)
    flow.close_order(OrderClosed(closing.order_id, closed_as), uow)


@event_handler("authorize-seat", service=SERVICE, topics=["group-commerce.seat.held"], delivery=PAYMENT_EVENTS)
def authorize_seat(event: Event, uow: UnitOfWork) -> None:
    """Ask the card of a held seat for an authorization of the group price (captured only if the group forms)."""
    held = payload_of(event, SeatHeld)
    flow.authorize_seat(SeatHold(held.campaign, held.user_id), uow)


@event_handler("settle-seat", service=SERVICE, topics=["group-commerce.seat.confirmed", "group-commerce.seat.released"],
               delivery=PAYMENT_EVENTS)
def settle_seat(event: Event, uow: UnitOfWork) -> None:
    """Capture a seat of a group that formed; cancel the authorization of a seat that will not be paid."""
    if event.type == topic("group-commerce.seat.confirmed").type:
        confirmed = payload_of(event, SeatConfirmed)
        flow.decide_seat(SeatDecision(confirmed.campaign.id, confirmed.user_id, "capture"), uow)
        return
    released = payload_of(event, SeatReleased)
    flow.decide_seat(SeatDecision(released.campaign_id, released.user_id, "release", released.reason), uow)


def reconcile_after_seconds() -> int:
    raw = os.environ.get(RECONCILE_AFTER_ENV, "").strip()
    return int(raw) if raw.isdigit() else DEFAULT_RECONCILE_AFTER_SECONDS


def _record_check(check: PaymentCheck) -> None:
    with unit_of_work(SERVICE) as uow:
        flow.settle_checked(check, uow)


@scheduled("reconcile-payments", service=SERVICE, schedule="* * * * *")
def reconcile_payments(event: Event) -> None:
    """Settle pending payments whose Stripe webhook has not arrived."""
    checker.ensure_running()  # a process restarted since the payment was created checks it too
    with reading(SERVICE) as db:
        due = store.find_due_payments(db, reconcile_after_seconds(), BATCH)
    _check(due)


def run_due_checks() -> int:
    """Give an intent to the payments whose starter failed or died, and look up the payments whose
    scheduled check is due; how many were claimed."""
    with unit_of_work(SERVICE) as uow:
        unstarted = store.claim_unstarted_payments(uow, CHECK_LEASE_SECONDS, BATCH)
        due = store.claim_due_checks(uow, CHECK_LEASE_SECONDS, BATCH)
    _start(unstarted)
    _check(due)
    return len(unstarted) + len(due)


def _start(unstarted: Iterable[Payment]) -> None:
    for payment in unstarted:
        try:
            with unit_of_work(SERVICE) as uow:
                flow.finish_start(payment, uow)
        except gateway.ProviderUnavailable as exc:  # released: the next round tries again
            log.warning("Stripe unavailable, payment %s still has no intent: %s", payment.id, exc)
            return


def _check(due: Iterable[DuePayment]) -> None:
    for payment in due:
        try:
            _record_check(flow.look_up_in_stripe(payment))
        except gateway.ProviderUnavailable as exc:
            log.warning("Stripe unavailable, reconciliation stopped at payment %s: %s", payment.id, exc)
            return
        except gateway.PaymentRefused as exc:
            # e.g. an intent Stripe no longer knows: look again later rather than blocking the queue.
            log.warning("could not reconcile payment %s: %s", payment.id, exc)
            _record_check(PaymentCheck(payment.id, None))


class Checker:
    """The thread that runs the scheduled checks of this process, every CHECK_EVERY_SECONDS."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def ensure_running(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="payment-checks", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        failing = False
        while True:
            try:
                run_due_checks()
                failing = False
            except Exception as exc:  # the database is down: the checks wait in it, the thread must not die
                if not failing:
                    log.warning("scheduled payment checks failed, trying every %.0f s: %s", CHECK_EVERY_SECONDS, exc)
                failing = True
            time.sleep(CHECK_EVERY_SECONDS)


checker = Checker()
