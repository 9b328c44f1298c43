"""What happens to a payment: started, confirmed, settled by Stripe, refunded.

Stripe is never called with a transaction open on the hot path: a use case claims what it is about
to do and commits (`uow.commit()`, which also gives the connection back to the pool), calls Stripe,
and records the result in a second transaction. Nothing is locked while Stripe answers; the second
transaction changes only what is still as the first left it (an intent is attached only to a payment
that has none, statuses only move forward), so a webhook or a check that got there first wins.

Starting an order's payment: the first transaction inserts the payment row (unique per order,
under the order row's lock) with a claim on it for CHECK_LEASE_SECONDS (`next_check_at`). Only the
claim's holder creates the PaymentIntent, so the database keeps one intent per order even though
localstripe ignores idempotency keys; Stripe's idempotency key, derived from the order, additionally
makes a create retried after a lost answer return the same intent. When Stripe is down the holder
gives the claim up and fails: the retried request or delivery, or the scheduled checks
(`handlers.run_due_checks`), take it over and create the intent. A claim whose holder died lapses
after the lease and is taken over the same way. A campaign seat's authorization is claimed and
created the same way (its lease runs on `updated_at`); a seat's capture and release only read the
seat under its lock before calling Stripe, and move it forward afterwards.

A refund a staff member asks for is checked under the locks, committed, asked of Stripe (its
idempotency key is the payment's) and recorded afterwards. Still inside one transaction: the refunds
a webhook or an order's closing triggers (rare, and recorded with the event that caused them).

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
    SEAT_AUTHORIZED,
    SEAT_CAPTURE_FAILED,
    SEAT_CAPTURED,
    SEAT_DECLINED,
    SEAT_PENDING,
    SEAT_REFUNDED,
    SEAT_RELEASED,
    SUCCEEDED,
    StripeOutcome,
    auto_confirm_card,
    intent_outcome,
    why_not_payable,
)
from functions.payments.store import DuePayment, Order, Payment, SeatPaymentRow
from fusion.auth import customer_id_for, ensure_owner
from fusion.contracts import Campaign
from fusion.errors import Conflict, NotFound, ProviderRefused, Unavailable
from fusion.money import to_minor
from fusion.uow import UnitOfWork
from fusion.web import Body, utc_now

log = logging.getLogger("functions.payments")
ALREADY_REFUNDED = "charge_already_refunded"
# A new intent is looked up in Stripe this long after it is created, in case its webhook is never
# applied (localstripe sends each once; a webhook that meets a database outage is lost).
CHECK_SOON_SECONDS = 5.0
# How long a claim to create an intent is its holder's: longer than a create can take with the
# gateway's retries; a check claimed by a process that died is due again after it too.
CHECK_LEASE_SECONDS = 30.0


class PaymentRequest(Body):
    order_id: str = Field(alias="orderId", min_length=1, max_length=200)


class SeatPaymentRequest(Body):
    campaign_id: str = Field(min_length=1, max_length=64)
    # Taken from the token when omitted; a customer may name only itself.
    customer_id: str | None = Field(default=None, min_length=1, max_length=128)


@dataclass(frozen=True)
class SeatHold:
    """A seat held for a customer: its card is to be asked for an authorization of the group price."""

    campaign: Campaign
    customer_id: str


@dataclass(frozen=True)
class SeatDecision:
    """What group buying decided for a seat: `capture` it (the group formed) or `release` it."""

    campaign_id: str
    customer_id: str
    decision: Literal["capture", "release"]
    reason: str = ""


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
    campaign_id: str | None = None


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
        payment = _start_payment(uow, order)
    if payment.status == PENDING and payment.provider_payment_id is None:
        raise Unavailable(f"the payment of order {request.order_id} is being started, try again",
                          code="payment_starting")
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
    uow.commit()  # a refund repeated meanwhile is the same refund at Stripe (its key is the payment's)
    with _provider_errors():
        refunded = _refund(uow, payment, "requested")
    return store.find_payment(uow, payment.id) or refunded


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
                                       details.currency, details.campaign_id)
    _start_if_payable(uow, order)


def record_reservation(reserved: OrderReserved, uow: UnitOfWork) -> None:
    """The order's stock is reserved; start its payment if its details arrived first."""
    order = store.record_reservation(uow, reserved.order_id)
    _start_if_payable(uow, order)


def close_order(closed: OrderClosed, uow: UnitOfWork) -> None:
    """The order will not be fulfilled: it stops being payable, and money already taken goes back."""
    order = store.record_closing(uow, closed.order_id, closed.closed_as)
    payment = store.lock_payment_of_order(uow, closed.order_id)
    if payment is not None and payment.status == SUCCEEDED:
        _refund(uow, payment, f"order_{closed.closed_as}")
    elif order.campaign_id is not None and order.customer_id is not None:
        # A group order that failed before its payment was linked: its seat was charged all the same.
        _refund_seat_of(uow, order.campaign_id, order.customer_id, f"order_{closed.closed_as}")


def finish_start(payment: Payment, uow: UnitOfWork) -> Payment:
    """Give a claimed payment that has no intent yet (its starter failed or died) its intent, unless its
    order closed meanwhile."""
    order = store.lock_order(uow, payment.order_id)
    if order is not None and order.closed_as is not None:
        return _fail(uow, payment, f"order_{order.closed_as}", "the order closed before its payment started")
    return _give_intent(uow, payment)


def look_up_in_stripe(payment: DuePayment) -> PaymentCheck:
    """The final outcome Stripe shows for a pending payment's intent (asked outside any transaction).

    With auto-confirmation, an intent holding its test card but never confirmed (its starter died between
    attaching it and charging it, and a redelivery finds the payment started) is charged now."""
    intent = gateway.retrieve_intent(payment.provider_payment_id)
    if intent.status == "requires_confirmation" and gateway.auto_confirm_enabled():
        try:
            intent = gateway.confirm_intent(intent.id)
        except gateway.PaymentDeclined:
            intent = gateway.retrieve_intent(intent.id)  # its last_payment_error says why
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


def _start_payment(uow: UnitOfWork, order: Order) -> Payment:
    """The payment of a payable order whose row the caller has locked, with its intent unless another
    holds the claim to create it."""
    claimed = store.claim_payment(uow, order, CHECK_LEASE_SECONDS)
    if claimed is None:
        existing = store.lock_payment_of_order(uow, order.order_id)
        if existing is None:
            raise LookupError(f"order {order.order_id} has a payment that cannot be read")
        taken_over = store.take_over_start(uow, existing.id, CHECK_LEASE_SECONDS)
        return existing if taken_over is None else _give_intent(uow, taken_over)
    if order.campaign_id is not None:
        return _paid_by_seat(uow, claimed, order.campaign_id)
    if claimed.amount_minor == 0:  # nothing is given away without a rule that says so
        return _fail(uow, claimed, "zero_amount", "an order that costs nothing is not paid")
    return _give_intent(uow, claimed)


def _give_intent(uow: UnitOfWork, claimed: Payment) -> Payment:
    """Commit the claim, create the intent with no transaction open, then attach it (the first attached
    stays) and publish payment.created; a test card is then charged the same way."""
    card = auto_confirm_card(claimed.customer_id) if gateway.auto_confirm_enabled() else None
    uow.commit()
    try:
        intent = gateway.create_intent(claimed.order_id, claimed.amount_minor, claimed.currency, card)
    except gateway.PaymentRefused as exc:
        return _fail(uow, claimed, exc.code or "invalid_request", str(exc))
    except gateway.ProviderUnavailable:
        store.release_start(uow, claimed.id)
        uow.commit()
        raise
    payment = store.attach_intent(uow, claimed.id, intent.id, intent.client_secret, CHECK_SOON_SECONDS)
    if payment is None:  # another holder of a lapsed claim attached first (the same intent at Stripe)
        return store.find_payment(uow, claimed.id) or claimed
    store.publish_created(uow, payment)
    if card:
        uow.commit()
        payment = _confirm_with_test_card(uow, payment, intent.id)
    return payment


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
        refund_id = _refund_at_stripe(payment.provider_payment_id, payment.amount_minor, str(payment.id),
                                      payment.order_id)
    return _mark_refunded(uow, payment, reason, refund_id)


def _refund_at_stripe(intent_id: str, amount_minor: int, payment_id: str, order_id: str) -> str | None:
    """Refund an intent's charge in full; its refund id, or None when Stripe had refunded it already."""
    try:
        return gateway.refund_intent(intent_id, amount_minor, payment_id, order_id)
    except gateway.PaymentRefused as exc:
        if exc.code != ALREADY_REFUNDED:
            raise ProviderRefused(f"Stripe refused the refund: {exc}", code="refund_refused") from exc
        return None


def _mark_refunded(uow: UnitOfWork, payment: Payment, reason: str, refund_id: str | None = None) -> Payment:
    refunded = store.move_payment(uow, payment.id, REFUNDED, refund_id=refund_id)
    if refunded is None:
        return payment
    store.publish_refunded(uow, refunded, reason)
    if payment.provider_payment_id and (seat := store.lock_seat_payment_of_intent(uow, payment.provider_payment_id)):
        _seat_refunded(uow, seat, reason, refund_id)  # a group order's payment is its seat's charge
    return refunded


def _apply_outcome(uow: UnitOfWork, outcome: StripeOutcome) -> bool:
    """Apply what Stripe reports about an intent; False when the intent is not one of our payments.

    Stale or repeated reports change nothing (statuses only move forward). Money that arrives for
    an order that is closed, or after its payment was given up, is refunded instead of kept.
    """
    order_id = outcome.order_id or store.order_id_of(uow, intent_id=outcome.intent_id)
    order = store.lock_order(uow, order_id) if order_id else None
    if (seat := store.lock_seat_payment_of_intent(uow, outcome.intent_id)) is not None:
        _apply_seat_outcome(uow, seat, outcome)
        return True
    payment = store.lock_payment_of_intent(uow, outcome.intent_id)
    if payment is None or outcome.kind == "authorized":  # order payments are captured automatically
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


# Seats of group campaigns: authorized at join, captured when the group forms, released otherwise.


def authorize_seat(hold: SeatHold, uow: UnitOfWork) -> SeatPaymentRow | None:
    """Ask the card for an authorization of the group price; None when the seat's payment is under way already."""
    if hold.campaign.expires_at <= utc_now():
        log.info("seat of %s in campaign %s held past the deadline: not authorized", hold.customer_id,
                 hold.campaign.id)
        return None
    amount_minor = to_minor(hold.campaign.group_price, hold.campaign.currency)
    seat = store.claim_seat_payment(uow, hold.campaign, hold.customer_id, amount_minor)
    if seat is None:
        held = store.lock_seat_payment(uow, hold.campaign.id, hold.customer_id)
        seat = None if held is None else store.take_over_seat_start(uow, held.id, CHECK_LEASE_SECONDS)
        if seat is None:
            return None
    card = auto_confirm_card(hold.customer_id) if gateway.auto_confirm_enabled() else None
    uow.commit()
    try:
        intent = gateway.create_seat_intent(str(seat.id), seat.attempt, seat.campaign_id, seat.customer_id,
                                            seat.amount_minor, seat.currency, card)
    except gateway.PaymentRefused as exc:
        return _decline_seat(uow, seat, exc.code or "invalid_request", str(exc))
    except gateway.ProviderUnavailable:
        store.release_seat_start(uow, seat.id, CHECK_LEASE_SECONDS)
        uow.commit()
        raise
    attached = store.attach_seat_intent(uow, seat, intent.id, intent.client_secret)
    if attached is None:
        return None
    seat = attached
    if card is None:
        return seat
    uow.commit()
    try:
        confirmed = gateway.confirm_intent(intent.id)
    except gateway.PaymentDeclined as exc:
        return _decline_seat(uow, seat, exc.code, exc.reason)
    return _seat_authorized(uow, seat) if confirmed.status == "requires_capture" else seat


def pay_for_seat(request: SeatPaymentRequest, uow: UnitOfWork) -> SeatPaymentRow:
    """The caller's seat payment for a campaign, with the client secret the card is confirmed with."""
    customer_id = customer_id_for(request.customer_id, "customerId")
    seat = store.find_seat_payment(uow, request.campaign_id, customer_id)
    if seat is None:
        raise Conflict(f"no seat of {customer_id} in campaign {request.campaign_id} is waiting for payment: join "
                       "the campaign first (its payment is ready a moment after joining)", code="seat_not_held")
    if seat.status == SEAT_PENDING and seat.provider_payment_id is None:  # claimed; Stripe is creating its intent
        raise Unavailable(f"the payment of the seat in campaign {request.campaign_id} is being started, try again",
                          code="payment_starting")
    return seat


def decide_seat(decision: SeatDecision, uow: UnitOfWork) -> None:
    """Capture a seat of a group that formed, or release a seat that will not be paid."""
    seat = store.lock_seat_payment(uow, decision.campaign_id, decision.customer_id)
    if seat is None:
        log.info("no payment for the seat of %s in campaign %s: nothing to %s", decision.customer_id,
                 decision.campaign_id, decision.decision)
        return
    uow.commit()  # Stripe is asked with nothing locked; the seat then only moves forward from where it was
    if decision.decision == "capture":
        _capture_seat(uow, seat)
    else:
        _release_seat(uow, seat, decision.reason)


def _capture_seat(uow: UnitOfWork, seat: SeatPaymentRow) -> None:
    """Charge an authorized seat once; a capture Stripe refuses fails only this seat."""
    if seat.status != SEAT_AUTHORIZED or not seat.provider_payment_id:
        log.info("seat payment %s is %s: not captured again", seat.id, seat.status)
        return
    try:
        gateway.capture_intent(seat.provider_payment_id, str(seat.id))
    except gateway.PaymentRefused as exc:
        # A capture that reached Stripe before a crash is refused the second time: look before failing it.
        if _intent_status(seat.provider_payment_id) == "succeeded":
            _seat_captured(uow, seat)
            return
        failed = store.move_seat_payment(uow, seat.id, SEAT_CAPTURE_FAILED, failure_code=exc.code or "capture_refused",
                                         failure_reason=str(exc))
        if failed is not None:
            store.publish_seat_failed(uow, "payment.seat.capture-failed", failed)
        return
    _seat_captured(uow, seat)


def _intent_status(intent_id: str) -> str | None:
    """The intent's status at Stripe; None when Stripe does not know it."""
    try:
        return gateway.retrieve_intent(intent_id).status
    except gateway.PaymentRefused:
        return None


def _release_seat(uow: UnitOfWork, seat: SeatPaymentRow, reason: str) -> None:
    """Cancel the seat's authorization (or its intent not yet paid): nothing is charged."""
    if seat.status not in (SEAT_PENDING, SEAT_AUTHORIZED):
        return
    if seat.provider_payment_id:
        try:
            gateway.cancel_intent(seat.provider_payment_id)
        except gateway.PaymentRefused as exc:
            log.warning("seat payment %s: Stripe refused the cancellation (%s); looking at the intent", seat.id, exc)
            if _intent_status(seat.provider_payment_id) == "succeeded":
                raise ProviderRefused(f"seat payment {seat.id} was charged and cannot be released",
                                      code="seat_charged") from exc
    store.move_seat_payment(uow, seat.id, SEAT_RELEASED, failure_reason=reason or None)


def _seat_authorized(uow: UnitOfWork, seat: SeatPaymentRow) -> SeatPaymentRow:
    moved = store.move_seat_payment(uow, seat.id, SEAT_AUTHORIZED)
    if moved is None:
        return seat
    store.publish_seat_moved(uow, "payment.seat.authorized", moved)
    return moved


def _seat_captured(uow: UnitOfWork, seat: SeatPaymentRow) -> None:
    moved = store.move_seat_payment(uow, seat.id, SEAT_CAPTURED)
    if moved is not None:
        store.publish_seat_moved(uow, "payment.seat.captured", moved)


def _decline_seat(uow: UnitOfWork, seat: SeatPaymentRow, code: str | None, reason: str) -> SeatPaymentRow:
    moved = store.move_seat_payment(uow, seat.id, SEAT_DECLINED, failure_code=code, failure_reason=reason)
    if moved is None:
        return seat
    store.publish_seat_failed(uow, "payment.seat.declined", moved)
    return moved


def _apply_seat_outcome(uow: UnitOfWork, seat: SeatPaymentRow, outcome: StripeOutcome) -> None:
    """What Stripe reports about a seat's intent: authorized, declined, or captured (succeeded)."""
    if outcome.kind == "authorized":
        _seat_authorized(uow, seat)
    elif outcome.kind == "failed" and seat.status == SEAT_PENDING:
        _decline_seat(uow, seat, outcome.failure_code, outcome.reason or "the card was declined")
    elif outcome.kind == "succeeded" and seat.status == SEAT_AUTHORIZED:
        _seat_captured(uow, seat)


def _paid_by_seat(uow: UnitOfWork, payment: Payment, campaign_id: str) -> Payment:
    """A group order is paid by its seat's captured authorization: no second charge."""
    seat = store.lock_seat_payment(uow, campaign_id, payment.customer_id or "")
    if seat is None or seat.status != SEAT_CAPTURED or not seat.provider_payment_id:
        return _fail(uow, payment, "seat_not_paid", f"no charged seat in campaign {campaign_id} pays for this order")
    linked = store.attach_intent(uow, payment.id, seat.provider_payment_id, None, CHECK_SOON_SECONDS)
    return payment if linked is None else _succeed(uow, linked)


def _refund_seat_of(uow: UnitOfWork, campaign_id: str, customer_id: str, reason: str) -> None:
    seat = store.lock_seat_payment(uow, campaign_id, customer_id)
    if seat is None or seat.status != SEAT_CAPTURED or not seat.provider_payment_id:
        return
    refund_id = _refund_at_stripe(seat.provider_payment_id, seat.amount_minor, str(seat.id), "")
    log.warning("seat payment %s refunded: its group order is %s", seat.id, reason)
    _seat_refunded(uow, seat, reason, refund_id)


def _seat_refunded(uow: UnitOfWork, seat: SeatPaymentRow, reason: str, refund_id: str | None) -> None:
    refunded = store.move_seat_payment(uow, seat.id, SEAT_REFUNDED, refund_id=refund_id, failure_reason=reason)
    if refunded is not None:
        store.publish_seat_moved(uow, "payment.seat.refunded", refunded)
