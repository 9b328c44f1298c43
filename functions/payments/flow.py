"""What happens to a payment: started, confirmed, settled by Stripe, refunded.

One PaymentIntent per order is guaranteed by our database, not by Stripe (localstripe ignores
idempotency keys): the payment row is inserted first (unique per order, under the order row's
lock) and only the transaction that inserted it calls Stripe. Stripe's idempotency key, derived
from the order, additionally makes a create retried after a rollback return the same intent.
"""

from __future__ import annotations

import logging
from typing import Any

from functions.payments import gateway, store
from functions.payments.rules import FAILED, PENDING, REFUNDED, SUCCEEDED, StripeOutcome, auto_confirm_card
from fusion.uow import UnitOfWork
from fusion.web import ApiError

log = logging.getLogger("functions.payments")
ALREADY_REFUNDED = "charge_already_refunded"


def start_payment(uow: UnitOfWork, order: Any) -> tuple[Any, bool]:
    """(payment, created) for a payable order whose row the caller has locked."""
    claimed = store.claim_payment(uow, order)
    if claimed is None:
        return store.lock_payment_of_order(uow, order.order_id), False
    if claimed.amount_minor == 0:
        return _settle_free_order(uow, claimed), True
    card = auto_confirm_card(order.customer_id) if gateway.auto_confirm_enabled() else None
    try:
        intent = gateway.create_intent(order.order_id, claimed.amount_minor, claimed.currency, card)
    except gateway.PaymentRefused as exc:
        return fail(uow, claimed, exc.code or "invalid_request", str(exc)), True
    payment = store.attach_intent(uow, claimed.id, intent.id, intent.client_secret)
    store.publish_created(uow, payment)
    if card:
        payment = _confirm_with_test_card(uow, payment)
    return payment, True


def _settle_free_order(uow: UnitOfWork, payment: Any) -> Any:
    """An order that costs nothing is paid without asking Stripe (which refuses zero amounts)."""
    store.publish_created(uow, payment)
    paid = store.move_payment(uow, payment.id, SUCCEEDED)
    store.publish_succeeded(uow, paid)
    return paid


def _confirm_with_test_card(uow: UnitOfWork, payment: Any) -> Any:
    """Charge the test card now; a decline fails the payment at once, a success arrives by webhook."""
    try:
        gateway.confirm_intent(payment.provider_payment_id)
    except gateway.PaymentDeclined as exc:
        return fail(uow, payment, exc.code, exc.reason)
    return payment


def fail(uow: UnitOfWork, payment: Any, code: str | None, reason: str) -> Any:
    """Fail a pending payment and publish payment.failed; a payment already settled is left as it is."""
    failed = store.move_payment(uow, payment.id, FAILED, failure_code=code, failure_reason=reason)
    if failed is None:
        return payment
    store.publish_failed(uow, failed)
    return failed


def succeed(uow: UnitOfWork, payment: Any) -> Any:
    succeeded = store.move_payment(uow, payment.id, SUCCEEDED)
    if succeeded is None:
        return payment
    store.publish_succeeded(uow, succeeded)
    return succeeded


def refund(uow: UnitOfWork, payment: Any, reason: str) -> Any:
    """Give a payment's money back in full (through Stripe) and publish payment.refunded."""
    refund_id = None
    if payment.provider_payment_id:
        try:
            refund_id = gateway.refund_intent(payment.provider_payment_id, payment.amount_minor,
                                              str(payment.id), payment.order_id)
        except gateway.PaymentRefused as exc:
            if exc.code != ALREADY_REFUNDED:
                raise ApiError(502, f"Stripe refused the refund: {exc}", code="refund_refused") from exc
    return mark_refunded(uow, payment, reason, refund_id)


def mark_refunded(uow: UnitOfWork, payment: Any, reason: str, refund_id: str | None = None) -> Any:
    refunded = store.move_payment(uow, payment.id, REFUNDED, refund_id=refund_id)
    if refunded is None:
        return payment
    store.publish_refunded(uow, refunded, reason)
    return refunded


def apply_outcome(uow: UnitOfWork, outcome: StripeOutcome) -> bool:
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
        fail(uow, payment, outcome.failure_code, outcome.reason or "the payment was declined")
    else:
        mark_refunded(uow, payment, "provider")
    return True


def _apply_success(uow: UnitOfWork, payment: Any, order: Any) -> None:
    order_closed = order is not None and order.closed_as is not None
    if payment.status == PENDING and not order_closed:
        succeed(uow, payment)
    elif payment.status in (PENDING, FAILED):
        log.warning("payment %s succeeded for order %s that no longer takes it: refunding", payment.id,
                    payment.order_id)
        refund(uow, payment, "late_payment")


def close_order(uow: UnitOfWork, order_id: str, closed_as: str) -> None:
    """The order will not be fulfilled: it stops being payable, and money already taken goes back."""
    store.record_closing(uow, order_id, closed_as)
    payment = store.lock_payment_of_order(uow, order_id)
    if payment is not None and payment.status == SUCCEEDED:
        refund(uow, payment, f"order_{closed_as}")
