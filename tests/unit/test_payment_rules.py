"""Payment rules without a database: forward-only statuses, test cards, and reading Stripe events."""

from __future__ import annotations

from typing import Any

import pytest

from functions.payments.rules import (
    DECLINING_TEST_CARD,
    SUCCEEDING_TEST_CARD,
    OrderFacts,
    StripeOutcome,
    auto_confirm_card,
    can_move,
    intent_idempotency_key,
    intent_outcome,
    outcome_of,
    seat_can_move,
    seat_intent_idempotency_key,
    why_not_payable,
)


@pytest.mark.parametrize(("current", "target", "allowed"), [
    ("pending", "succeeded", True),
    ("pending", "failed", True),
    ("succeeded", "refunded", True),
    ("failed", "refunded", True),
    ("succeeded", "pending", False),
    ("succeeded", "failed", False),
    ("failed", "succeeded", False),
    ("refunded", "succeeded", False),
    ("refunded", "refunded", False),
    ("pending", "pending", False),
])
def test_payments_only_move_forward(current: str, target: str, allowed: bool) -> None:
    assert can_move(current, target) is allowed


def test_the_auto_confirmation_card_is_chosen_by_the_customer_id_prefix() -> None:
    assert auto_confirm_card("decline-alice") == DECLINING_TEST_CARD
    assert auto_confirm_card("unpaid-bob") is None
    assert auto_confirm_card("alice-decline-") == SUCCEEDING_TEST_CARD
    assert auto_confirm_card(None) == SUCCEEDING_TEST_CARD


def test_the_intent_idempotency_key_is_derived_from_the_order() -> None:
    assert intent_idempotency_key("o-1") == intent_idempotency_key("o-1") != intent_idempotency_key("o-2")


def test_an_order_is_payable_once_known_and_reserved_and_until_closed() -> None:
    assert OrderFacts(known=True, reserved=True, closed_as=None).payable
    assert "not reserved" in why_not_payable(OrderFacts(known=True, reserved=False, closed_as=None))
    assert "details" in why_not_payable(OrderFacts(known=False, reserved=True, closed_as=None))
    closed = OrderFacts(known=True, reserved=True, closed_as="expired")
    assert not closed.payable and why_not_payable(closed) == "the order is expired"


def event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"id": "evt_1", "type": kind, "data": {"object": obj}}


def test_a_succeeded_intent_event_names_the_intent_and_its_order() -> None:
    found = outcome_of(event("payment_intent.succeeded", {"id": "pi_1", "metadata": {"orderId": "o-1"}}))
    assert found == StripeOutcome("succeeded", "pi_1", "o-1")
    assert outcome_of(event("payment_intent.succeeded", {"id": "pi_1"})) == StripeOutcome("succeeded", "pi_1", None)


def test_a_failed_intent_event_carries_stripes_reason_preferring_the_decline_code() -> None:
    error = {"code": "card_declined", "decline_code": "insufficient_funds", "message": "Insufficient funds."}
    found = outcome_of(event("payment_intent.payment_failed", {"id": "pi_2", "last_payment_error": error}))
    assert found == StripeOutcome("failed", "pi_2", None, "insufficient_funds", "Insufficient funds.")
    bare = outcome_of(event("payment_intent.payment_failed", {"id": "pi_2", "last_payment_error": None}))
    assert bare is not None and bare.reason == "the payment was declined" and bare.failure_code is None


def test_only_a_full_refund_of_a_charge_counts() -> None:
    full = {"id": "ch_1", "payment_intent": "pi_3", "refunded": True, "amount_refunded": 100}
    assert outcome_of(event("charge.refunded", full)) == StripeOutcome("refunded", "pi_3", None)
    assert outcome_of(event("charge.refunded", {**full, "refunded": False})) is None
    assert outcome_of(event("charge.refunded", {**full, "payment_intent": None})) is None


@pytest.mark.parametrize("body", [
    {"id": "evt", "type": "customer.created", "data": {"object": {"id": "cus_1"}}},
    {"id": "evt", "type": "payment_intent.succeeded", "data": {"object": {"id": ""}}},
    {"id": "evt", "type": "payment_intent.succeeded", "data": {}},
    {"id": "evt", "type": "payment_intent.succeeded", "data": "nonsense"},
    {"id": "evt"},
])
def test_events_payments_does_not_act_on_give_no_outcome(body: dict[str, Any]) -> None:
    assert outcome_of(body) is None


def test_an_intents_state_settles_a_payment_only_when_it_is_final() -> None:
    assert intent_outcome("pi", "succeeded", None, "o") == StripeOutcome("succeeded", "pi", "o")
    declined = intent_outcome("pi", "requires_payment_method", {"code": "card_declined", "message": "No."}, "o")
    assert declined == StripeOutcome("failed", "pi", "o", "card_declined", "No.")
    canceled = intent_outcome("pi", "canceled", None, None)
    assert canceled is not None and canceled.kind == "failed"
    for waiting in ("requires_payment_method", "requires_confirmation", "requires_action", "processing"):
        assert intent_outcome("pi", waiting, None, "o") is None


def test_an_authorized_seat_is_reported_by_its_event_and_by_its_intents_state() -> None:
    found = outcome_of(event("payment_intent.amount_capturable_updated", {"id": "pi_9", "metadata": {}}))
    assert found == StripeOutcome("authorized", "pi_9", None)
    assert intent_outcome("pi_9", "requires_capture", None, None) == StripeOutcome("authorized", "pi_9", None)


@pytest.mark.parametrize(("current", "target", "allowed"), [
    ("pending", "authorized", True),
    ("pending", "declined", True),
    ("authorized", "captured", True),
    ("authorized", "released", True),
    ("captured", "refunded", True),
    ("captured", "released", False),  # a charged seat is refunded, never released
    ("released", "captured", False),
    ("declined", "authorized", False),
    ("captured", "captured", False),
])
def test_seat_payments_only_move_forward(current: str, target: str, allowed: bool) -> None:
    assert seat_can_move(current, target) is allowed


def test_each_attempt_at_a_seat_gets_its_own_intent() -> None:
    assert seat_intent_idempotency_key("s1", 1) != seat_intent_idempotency_key("s1", 2)
