"""What happens to a payment: started, confirmed, settled by Stripe, refunded.

One PaymentIntent per order is guaranteed by our database, not by Stripe (localstripe ignores
idempotency keys): the payment row is inserted first (unique per order, under the order row's
lock) and only the transaction that inserted it calls Stripe. Stripe's idempotency key, derived
from the order, additionally makes a create retried after a rollback return the same intent.

The use cases an HTTP caller starts answer Stripe being down with `Unavailable` (try again). The
event handlers let `gateway.ProviderUnavailable` through: the delivery fails and is retried.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from functions.payments import gateway, store
from functions.payments.rules import (
    FAILED,
    PENDING,
    REFUNDED,
    SUCCEEDED,
    StripeOutcome,
    auto_confirm_card,
    intent_outcome,
    why_not_payable,
)
from functions.payments.store import DuePayment, Order, Payment
from fusion.auth import ensure_owner
from fusion.errors import Conflict, NotFound, ProviderRefused, Unavailable
from fusion.uow import UnitOfWork
from fusion.web import Body

log = logging.getLogger("functions.payments")
ALREADY_REFUNDED = "charge_already_refunded"
# A new intent is looked up in Stripe this long after it is created, in case its webhook is never
# applied (localstripe sends each once; a webhook that meets a database outage is lost).
CHECK_SOON_SECONDS = 5.0


class PaymentRequest(Body):
    order_id: str = Field(alias="orderId", min_length=1, max_length=200)


@dataclass(frozen=True)
class RefundRequest:
    payment_id: uuid.UUID


@dataclass(frozen=True)
class OrderDetails:
    """What order.created tells payments, the total already in minor units."""

    order_id: str
    customer_id: str
    total_minor: int
    currency: str


@dataclass(frozen=True)
class OrderReserved:
    order_id: str


@dataclass(frozen=True)
class OrderClosed:
    order_id: str
    closed_as: str  # cancelled | failed | expired


@dataclass(frozen=True)
class StripeEvent:
    """A verified Stripe event: its id (to apply it once) and what it reports, if payments acts on it."""

    id: str
    type: str
    outcome: StripeOutcome | None


StripeEventReceipt = Literal["duplicate", "applied", "ignored"]


@dataclass(frozen=True)
class PaymentCheck:
    """What a look at a pending payment's PaymentIntent in Stripe found (None: nothing final yet)."""

    payment_id: uuid.UUID
    outcome: StripeOutcome | None


@contextmanager
def _provider_errors() -> Iterator[None]:
    """Stripe being down is the caller's cue to retry, not a server bug."""
    try:
        yield
    except gateway.ProviderUnavailable as exc:
        raise Unavailable("the payment provider is unavailable, try again", code="provider_unavailable") from exc


# Use cases


def pay_order(request: PaymentRequest, uow: UnitOfWork) -> Payment:
    """Start the payment of a payable order, or return the one it has."""
    order = store.lock_order(uow, request.order_id)
    if order is None:
        raise NotFound("order", request.order_id)
    ensure_owner(order.customer_id, "order", request.order_id)
    if not order.facts.payable:
        raise Conflict(f"order {request.order_id} cannot be paid: {why_not_payable(order.facts)}",
                       code="order_not_payable")
    with _provider_errors():
        payment, _ = _start_payment(uow, order)
    return payment


def refund_on_request(request: RefundRequest, uow: UnitOfWork) -> Payment:
    """Refund a succeeded payment in full."""
    order_id = store.order_id_of(uow, payment_id=request.payment_id)
    if order_id is None:
        raise NotFound("payment", request.payment_id)
    store.lock_order(uow, order_id)
    payment = store.lock_payment_of_order(uow, order_id)
    if payment is None:
        raise NotFound("payment", request.payment_id)
    if payment.status != SUCCEEDED:
        raise Conflict(f"payment {payment.id} is {payment.status}; only a succeeded payment can be refunded")
    with _provider_errors():
        return _refund(uow, payment, "requested")


def take_stripe_event(event: StripeEvent, uow: UnitOfWork) -> StripeEventReceipt:
    """Apply a Stripe event once: a redelivered one changes nothing."""
    if not store.record_stripe_event(uow, event.id, event.type):
        return "duplicate"
    if event.outcome is None:
        return "ignored"
    with _provider_errors():
        applied = _apply_outcome(uow, event.outcome)
    return "applied" if applied else "ignored"


def record_order_details(details: OrderDetails, uow: UnitOfWork) -> None:
    """Remember an order's total, currency and customer; start its payment if its stock was reserved first."""
    order = store.record_order_details(uow, details.order_id, details.customer_id, details.total_minor,
                                       details.currency)
    _start_if_payable(uow, order)


def record_reservation(reserved: OrderReserved, uow: UnitOfWork) -> None:
    """The order's stock is reserved; start its payment if its details arrived first."""
    order = store.record_reservation(uow, reserved.order_id)
    _start_if_payable(uow, order)


def close_order(closed: OrderClosed, uow: UnitOfWork) -> None:
    """The order will not be fulfilled: it stops being payable, and money already taken goes back."""
    store.record_closing(uow, closed.order_id, closed.closed_as)
    payment = store.lock_payment_of_order(uow, closed.order_id)
    if payment is not None and payment.status == SUCCEEDED:
        _refund(uow, payment, f"order_{closed.closed_as}")


def look_up_in_stripe(payment: DuePayment) -> PaymentCheck:
    """The final outcome Stripe shows for a pending payment's intent (asked outside any transaction)."""
    intent = gateway.retrieve_intent(payment.provider_payment_id)
    return PaymentCheck(payment.id, intent_outcome(intent.id, intent.status, intent.last_error, intent.order_id))


def settle_checked(check: PaymentCheck, uow: UnitOfWork) -> None:
    """Settle a payment as the look at its intent found, and remember it was looked at."""
    if check.outcome is not None:
        _apply_outcome(uow, check.outcome)
    store.mark_checked(uow, check.payment_id)


# Steps


def _start_if_payable(uow: UnitOfWork, order: Order) -> None:
    if order.facts.payable:
        _start_payment(uow, order)


def _start_payment(uow: UnitOfWork, order: Order) -> tuple[Payment, bool]:
    """(payment, created) for a payable order whose row the caller has locked."""
    claimed = store.claim_payment(uow, order)
    if claimed is None:
        existing = store.lock_payment_of_order(uow, order.order_id)
        if existing is None:
            raise LookupError(f"order {order.order_id} has a payment that cannot be read")
        return existing, False
    if claimed.amount_minor == 0:  # nothing is given away without a rule that says so
        return _fail(uow, claimed, "zero_amount", "an order that costs nothing is not paid"), True
    card = auto_confirm_card(order.customer_id) if gateway.auto_confirm_enabled() else None
    try:
        intent = gateway.create_intent(order.order_id, claimed.amount_minor, claimed.currency, card)
    except gateway.PaymentRefused as exc:
        return _fail(uow, claimed, exc.code or "invalid_request", str(exc)), True
    payment = store.attach_intent(uow, claimed.id, intent.id, intent.client_secret, CHECK_SOON_SECONDS)
    store.publish_created(uow, payment)
    if card:
        payment = _confirm_with_test_card(uow, payment, intent.id)
    return payment, True


def _confirm_with_test_card(uow: UnitOfWork, payment: Payment, intent_id: str) -> Payment:
    """Charge the test card now; a decline fails the payment at once, a success arrives by webhook."""
    try:
        gateway.confirm_intent(intent_id)
    except gateway.PaymentDeclined as exc:
        return _fail(uow, payment, exc.code, exc.reason)
    return payment


def _fail(uow: UnitOfWork, payment: Payment, code: str | None, reason: str) -> Payment:
    """Fail a pending payment and publish payment.failed; a payment already settled is left as it is."""
    failed = store.move_payment(uow, payment.id, FAILED, failure_code=code, failure_reason=reason)
    if failed is None:
        return payment
    store.publish_failed(uow, failed)
    return failed


def _succeed(uow: UnitOfWork, payment: Payment) -> Payment:
    succeeded = store.move_payment(uow, payment.id, SUCCEEDED)
    if succeeded is None:
        return payment
    store.publish_succeeded(uow, succeeded)
    return succeeded


def _refund(uow: UnitOfWork, payment: Payment, reason: str) -> Payment:
    """Give a payment's money back in full (through Stripe) and publish payment.refunded."""
    refund_id = None
    if payment.provider_payment_id:
        try:
            refund_id = gateway.refund_intent(payment.provider_payment_id, payment.amount_minor,
                                              str(payment.id), payment.order_id)
        except gateway.PaymentRefused as exc:
            if exc.code != ALREADY_REFUNDED:
                raise ProviderRefused(f"Stripe refused the refund: {exc}", code="refund_refused") from exc
    return _mark_refunded(uow, payment, reason, refund_id)


def _mark_refunded(uow: UnitOfWork, payment: Payment, reason: str, refund_id: str | None = None) -> Payment:
    refunded = store.move_payment(uow, payment.id, REFUNDED, refund_id=refund_id)
    if refunded is None:
        return payment
    store.publish_refunded(uow, refunded, reason)
    return refunded


def _apply_outcome(uow: UnitOfWork, outcome: StripeOutcome) -> bool:
    """Apply what Stripe reports about an intent; False when the intent is not one of our payments.

    Stale or repeated reports change nothing (statuses only move forward). Money that arrives for
    an order that is closed, or after its payment was given up, is refunded instead of kept.
    """
    order_id = outcome.order_id or store.order_id_of(uow, intent_id=outcome.intent_id)
    order = store.lock_order(uow, order_id) if order_id else None
    payment = store.lock_payment_of_intent(uow, outcome.intent_id)
    if payment is None:
        return False
    if order is None or order.order_id != payment.order_id:
        order = store.lock_order(uow, payment.order_id)
    if outcome.kind == "succeeded":
        _apply_success(uow, payment, order)
    elif outcome.kind == "failed":
        _fail(uow, payment, outcome.failure_code, outcome.reason or "the payment was declined")
    else:
        _mark_refunded(uow, payment, "provider")
    return True


def _apply_success(uow: UnitOfWork, payment: Payment, order: Order | None) -> None:
    order_closed = order is not None and order.closed_as is not None
    if payment.status == PENDING and not order_closed:
        _succeed(uow, payment)
    elif payment.status in (PENDING, FAILED):
        log.warning("payment %s succeeded for order %s that no longer takes it: refunding", payment.id,
                    payment.order_id)
        _refund(uow, payment, "late_payment")
