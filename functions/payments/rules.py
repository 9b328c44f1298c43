"""The rules of payments that need no database: statuses, what Stripe reports, and test cards."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

PENDING = "pending"
SUCCEEDED = "succeeded"
FAILED = "failed"
REFUNDED = "refunded"
STATUSES = (PENDING, SUCCEEDED, FAILED, REFUNDED)

# Forward moves only. A failed payment can still end refunded: a charge that succeeds after the
# order gave up on it (the customer retried a declined card) is given back, never kept.
_NEXT: dict[str, frozenset[str]] = {
    PENDING: frozenset({SUCCEEDED, FAILED, REFUNDED}),
    SUCCEEDED: frozenset({REFUNDED}),
    FAILED: frozenset({REFUNDED}),
    REFUNDED: frozenset(),
}

# A seat of a group campaign is paid by a card authorization (manual capture): held on the card at
# join, captured when the group forms, cancelled (released) when it does not.
SEAT_PENDING = "pending"
SEAT_AUTHORIZED = "authorized"
SEAT_DECLINED = "declined"
SEAT_CAPTURED = "captured"
SEAT_CAPTURE_FAILED = "capture_failed"
SEAT_RELEASED = "released"
SEAT_REFUNDED = "refunded"
SEAT_STATUSES = (SEAT_PENDING, SEAT_AUTHORIZED, SEAT_DECLINED, SEAT_CAPTURED, SEAT_CAPTURE_FAILED, SEAT_RELEASED,
                 SEAT_REFUNDED)
_SEAT_NEXT: dict[str, frozenset[str]] = {
    SEAT_PENDING: frozenset({SEAT_AUTHORIZED, SEAT_DECLINED, SEAT_RELEASED}),
    SEAT_AUTHORIZED: frozenset({SEAT_CAPTURED, SEAT_CAPTURE_FAILED, SEAT_RELEASED}),
    SEAT_CAPTURED: frozenset({SEAT_REFUNDED}),
    SEAT_DECLINED: frozenset(),
    SEAT_CAPTURE_FAILED: frozenset(),
    SEAT_RELEASED: frozenset(),
    SEAT_REFUNDED: frozenset(),
}
SEAT_REHOLDABLE = (SEAT_DECLINED, SEAT_RELEASED)  # a seat given up may be held (and paid for) again

# The Stripe events the webhook acts on (what a webhook endpoint must be subscribed to).
STRIPE_WEBHOOK_EVENTS = ("payment_intent.succeeded", "payment_intent.payment_failed",
                         "payment_intent.amount_capturable_updated", "charge.refunded")

SUCCEEDING_TEST_CARD = "pm_card_visa"
DECLINING_TEST_CARD = "pm_card_chargeCustomerFail"
DECLINING_CUSTOMER_PREFIX = "decline-"
UNPAID_CUSTOMER_PREFIX = "unpaid-"


def can_move(current: str, target: str) -> bool:
    return target in _NEXT.get(current, frozenset())


def seat_can_move(current: str, target: str) -> bool:
    return target in _SEAT_NEXT.get(current, frozenset())


def auto_confirm_card(customer_id: str | None) -> str | None:
    """The Stripe test PaymentMethod that auto-confirmation charges for a customer; None to leave the
    intent waiting for the customer (to exercise the unpaid-order expiry)."""
    customer = customer_id or ""
    if customer.startswith(DECLINING_CUSTOMER_PREFIX):
        return DECLINING_TEST_CARD
    if customer.startswith(UNPAID_CUSTOMER_PREFIX):
        return None
    return SUCCEEDING_TEST_CARD


def intent_idempotency_key(order_id: str) -> str:
    """Stripe idempotency key of an order's PaymentIntent: a retried create returns the first intent."""
    return f"fusioncommerce-payment-intent-{order_id}"


def refund_idempotency_key(payment_id: str) -> str:
    return f"fusioncommerce-refund-{payment_id}"


def seat_intent_idempotency_key(seat_payment_id: str, attempt: int) -> str:
    """One authorization per attempt at a seat: a seat held again after a decline gets a new intent."""
    return f"fusioncommerce-seat-intent-{seat_payment_id}-{attempt}"


def capture_idempotency_key(seat_payment_id: str) -> str:
    return f"fusioncommerce-seat-capture-{seat_payment_id}"


@dataclass(frozen=True)
class OrderFacts:
    """What payments knows about an order from the events it has seen."""

    known: bool  # order.created seen: total, currency and customer are known
    reserved: bool  # inventory.reserved seen
    closed_as: str | None  # cancelled | failed | expired

    @property
    def payable(self) -> bool:
        return self.known and self.reserved and self.closed_as is None


def why_not_payable(facts: OrderFacts) -> str:
    if facts.closed_as is not None:
        return f"the order is {facts.closed_as}"
    if not facts.reserved:
        return "the order's stock is not reserved yet"
    return "the order's details have not arrived yet"


OutcomeKind = Literal["succeeded", "failed", "refunded", "authorized"]


@dataclass(frozen=True)
class StripeOutcome:
    """What a Stripe event says happened to one PaymentIntent."""

    kind: OutcomeKind
    intent_id: str
    order_id: str | None
    failure_code: str | None = None
    reason: str | None = None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _metadata_order_id(obj: Mapping[str, Any]) -> str | None:
    metadata = obj.get("metadata")
    return _text(metadata.get("orderId")) if isinstance(metadata, Mapping) else None


def failure_of(error: Any) -> tuple[str | None, str]:
    """(code, human reason) of a Stripe `last_payment_error`."""
    if not isinstance(error, Mapping):
        return None, "the payment was declined"
    code = _text(error.get("decline_code")) or _text(error.get("code"))
    return code, _text(error.get("message")) or code or "the payment was declined"


def outcome_of(event: Mapping[str, Any]) -> StripeOutcome | None:
    """The outcome a (verified) Stripe event reports, or None for events payments does not act on."""
    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(obj, Mapping):
        return None
    kind = event.get("type")
    if kind == "payment_intent.succeeded" and (intent_id := _text(obj.get("id"))):
        return StripeOutcome("succeeded", intent_id, _metadata_order_id(obj))
    if kind == "payment_intent.amount_capturable_updated" and (intent_id := _text(obj.get("id"))):
        return StripeOutcome("authorized", intent_id, _metadata_order_id(obj))
    if kind == "payment_intent.payment_failed" and (intent_id := _text(obj.get("id"))):
        code, reason = failure_of(obj.get("last_payment_error"))
        return StripeOutcome("failed", intent_id, _metadata_order_id(obj), code, reason)
    # Only a full refund ends a payment; Stripe sets `refunded` once the whole charge is returned.
    if kind == "charge.refunded" and obj.get("refunded") is True and (intent_id := _text(obj.get("payment_intent"))):
        return StripeOutcome("refunded", intent_id, _metadata_order_id(obj))
    return None


def intent_outcome(intent_id: str, status: str, last_error: Any, order_id: str | None) -> StripeOutcome | None:
    """The final outcome a PaymentIntent's current state shows, or None while the customer may still pay."""
    if status == "succeeded":
        return StripeOutcome("succeeded", intent_id, order_id)
    if status == "requires_capture":
        return StripeOutcome("authorized", intent_id, order_id)
    if status == "canceled":
        return StripeOutcome("failed", intent_id, order_id, "canceled", "the payment was canceled")
    if status == "requires_payment_method" and last_error:
        code, reason = failure_of(last_error)
        return StripeOutcome("failed", intent_id, order_id, code, reason)
    return None
