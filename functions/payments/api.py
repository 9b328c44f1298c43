"""The payments HTTP API: start (or fetch) an order's payment, list and read payments, refund one,
fetch a campaign seat's payment (the card authorization), and Stripe's webhook.

The webhook is verified with Stripe's own signature scheme: a missing or wrong `Stripe-Signature`
answers 400 and changes nothing. Handled events: payment_intent.succeeded (payment.succeeded, or a
seat's capture), payment_intent.amount_capturable_updated (a seat's card authorized:
payment.seat.authorized), payment_intent.payment_failed (payment.failed or payment.seat.declined,
with Stripe's reason) and charge.refunded (payment.refunded, full refunds). Other events are
acknowledged and ignored. Stripe event ids are recorded in the same transaction as their effect, so
a redelivered event changes nothing; a stale one cannot move a payment backwards.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import flask
from pydantic import Field

from functions.payments import flow, gateway, store
from functions.payments.flow import PaymentRequest, RefundRequest, SeatPaymentRequest, StripeEvent
from functions.payments.handlers import checker
from functions.payments.rules import SEAT_STATUSES, STATUSES, outcome_of
from functions.payments.store import SERVICE, Payment, SeatPaymentRow
from fusion.auth import CUSTOMER, SIGNED, customer_or_staff, ensure_owner, staff, visible_customer
from fusion.declare import command, query
from fusion.errors import NotFound
from fusion.listing import page_of
from fusion.money import to_decimal
from fusion.uow import UnitOfWork, reading
from fusion.web import (
    Instant,
    Number,
    View,
    answer,
    choice_param,
    one_of,
    parse_body,
    path_uuid,
    query_choice,
    query_text,
    text_param,
)


class PaymentView(View):
    """An order's payment through its provider (Stripe), with why it failed when it did."""

    id: uuid.UUID
    order_id: str
    customer_id: str | None
    amount: Number
    currency: str
    status: Annotated[str, one_of(STATUSES)]
    provider: str
    provider_payment_id: str | None
    failure_code: str | None
    failure_reason: str | None
    refund_id: str | None
    created_at: Instant
    updated_at: Instant


class PaymentStartView(PaymentView):
    """An order's payment, with the PaymentIntent's client secret the storefront confirms it with."""

    client_secret: str | None


class WebhookReceipt(View):
    """Stripe's event was taken: applied, or a redelivery of one already taken (duplicate)."""

    received: bool
    applied: bool = Field(default=False, description="Whether the event changed a payment; absent on a duplicate.")
    duplicate: bool = Field(default=False, description="Present (true) when the event was already taken.")


def _payment_fields(payment: Payment) -> dict[str, object]:
    return {
        "id": payment.id, "order_id": payment.order_id, "customer_id": payment.customer_id,
        "amount": to_decimal(payment.amount_minor, payment.currency), "currency": payment.currency,
        "status": payment.status, "provider": payment.provider, "provider_payment_id": payment.provider_payment_id,
        "failure_code": payment.failure_code, "failure_reason": payment.failure_reason,
        "refund_id": payment.refund_id, "created_at": payment.created_at, "updated_at": payment.updated_at,
    }


def payment_view(payment: Payment) -> PaymentView:
    return PaymentView.model_validate(_payment_fields(payment))


@command("create-payment", service=SERVICE, routes=["POST /payments"], auth=customer_or_staff("payments:refund"),
         body=PaymentRequest, answers={201: PaymentStartView})
def create_payment(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Start the payment of a payable order, or return the one it has, with the PaymentIntent's client secret."""
    checker.ensure_running()  # it finishes a payment whose intent this request fails to create
    payment = flow.pay_order(parse_body(request, PaymentRequest), uow)
    started = PaymentStartView.model_validate({**_payment_fields(payment), "client_secret": payment.client_secret})
    return answer(started, 201, headers={"Location": f"/payments/{payment.id}"})


@query("list-payments", service=SERVICE, routes=["GET /payments"], auth=customer_or_staff("payments:refund"),
       params=[text_param("orderId", 200), choice_param("status", STATUSES), "limit", "offset"],
       answers=list[PaymentView])
def list_payments(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """List payments, oldest first: orderId, status, limit, offset."""
    order_id = query_text(request, "orderId", 200)
    status = query_choice(request, "status", STATUSES)
    with reading(SERVICE) as db:
        payments = store.find_payments(db, page_of(request), order_id=order_id, status=status,
                                       customer_id=visible_customer())
    return answer([payment_view(payment) for payment in payments])


@query("get-payment", service=SERVICE, routes=["GET /payments/{id}"], auth=customer_or_staff("payments:refund"),
       answers=PaymentView)
def get_payment(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """One payment by id."""
    payment_id = path_uuid(params, "id", "payment")
    with reading(SERVICE) as db:
        payment = store.find_payment(db, payment_id)
    if payment is None:
        raise NotFound("payment", params["id"])
    ensure_owner(payment.customer_id, "payment", params["id"])
    return answer(payment_view(payment))


@command("refund-payment", service=SERVICE, routes=["POST /payments/{id}/refund"], auth=staff("payments:refund"),
         answers=PaymentView)
def refund_payment(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Refund a succeeded payment in full through Stripe and publish payment.refunded."""
    refunded = flow.refund_on_request(RefundRequest(path_uuid(params, "id", "payment")), uow)
    return answer(payment_view(refunded))


class SeatPaymentView(View):
    """A campaign seat's payment: a card authorization of the group price, captured only if the group forms."""

    id: uuid.UUID
    campaign_id: str
    customer_id: str
    amount: Number
    currency: str
    status: Annotated[str, one_of(SEAT_STATUSES)]
    provider_payment_id: str | None
    failure_code: str | None
    failure_reason: str | None
    created_at: Instant
    updated_at: Instant


class SeatPaymentStartView(SeatPaymentView):
    """A seat's payment with the PaymentIntent's client secret, which the storefront confirms the card with."""

    client_secret: str | None


def _seat_fields(seat: SeatPaymentRow) -> dict[str, object]:
    return {
        "id": seat.id, "campaign_id": seat.campaign_id, "customer_id": seat.customer_id,
        "amount": to_decimal(seat.amount_minor, seat.currency), "currency": seat.currency, "status": seat.status,
        "provider_payment_id": seat.provider_payment_id, "failure_code": seat.failure_code,
        "failure_reason": seat.failure_reason, "created_at": seat.created_at, "updated_at": seat.updated_at,
    }


@command("pay-for-seat", service=SERVICE, routes=["POST /seat-payments"], auth=CUSTOMER, body=SeatPaymentRequest,
         answers=SeatPaymentStartView)
def pay_for_seat(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """The signed-in customer's seat payment for a campaign it joined, with the client secret to confirm it."""
    seat = flow.pay_for_seat(parse_body(request, SeatPaymentRequest), uow)
    return answer(SeatPaymentStartView.model_validate({**_seat_fields(seat), "client_secret": seat.client_secret}))


@query("list-seat-payments", service=SERVICE, routes=["GET /seat-payments"],
       auth=customer_or_staff("payments:refund"),
       params=[text_param("campaignId", 64), choice_param("status", SEAT_STATUSES), "limit", "offset"],
       answers=list[SeatPaymentView])
def list_seat_payments(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """List seat payments, oldest first: campaignId, status, limit, offset (a customer sees its own)."""
    campaign_id = query_text(request, "campaignId", 64)
    status = query_choice(request, "status", SEAT_STATUSES)
    with reading(SERVICE) as db:
        seats = store.find_seat_payments(db, page_of(request), campaign_id=campaign_id, status=status,
                                         customer_id=visible_customer())
    return answer([SeatPaymentView.model_validate(_seat_fields(seat)) for seat in seats])


def _stripe_event(request: flask.Request) -> StripeEvent:
    event = gateway.verified_event(request.get_data(), request.headers.get(gateway.SIGNATURE_HEADER))
    return StripeEvent(event["id"], str(event.get("type", "")), outcome_of(event))


@command("stripe-webhook", service=SERVICE, routes=["POST /payments/webhook"], auth=SIGNED, answers=WebhookReceipt)
def stripe_webhook(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Stripe's webhook (signature verified): settles payments as Stripe reports them."""
    receipt = flow.take_stripe_event(_stripe_event(request), uow)
    if receipt == "duplicate":
        return answer(WebhookReceipt(received=True, duplicate=True))
    return answer(WebhookReceipt(received=True, applied=receipt == "applied"))
