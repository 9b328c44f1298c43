"""The payments HTTP API: start (or fetch) an order's payment, list and read payments, refund one,
and Stripe's webhook.

The webhook is verified with Stripe's own signature scheme: a missing or wrong `Stripe-Signature`
answers 400 and changes nothing. Handled events: payment_intent.succeeded (payment.succeeded),
payment_intent.payment_failed (payment.failed, with Stripe's reason) and charge.refunded
(payment.refunded, full refunds). Other events are acknowledged and ignored. Stripe event ids are
recorded in the same transaction as their effect, so a redelivered event changes nothing; a stale
one cannot move a payment backwards.
"""

from __future__ import annotations

from typing import Any

import flask

from functions.payments import flow, gateway, store
from functions.payments.flow import PaymentRequest, RefundRequest, StripeEvent
from functions.payments.rules import STATUSES, outcome_of
from functions.payments.store import SERVICE, Payment
from fusion.auth import SIGNED, customer_or_staff, ensure_owner, staff, visible_customer
from fusion.declare import command, query
from fusion.errors import NotFound
from fusion.listing import page_of
from fusion.money import to_json_number
from fusion.uow import UnitOfWork, reading
from fusion.web import json_response, parse_body, path_uuid, query_choice, query_text


def payment_view(payment: Payment, *, with_client_secret: bool = False) -> dict[str, Any]:
    """A payment as the API returns it (camelCase, decimal amount)."""
    view: dict[str, Any] = {
        "id": str(payment.id),
        "orderId": payment.order_id,
        "customerId": payment.customer_id,
        "amount": to_json_number(payment.amount_minor, payment.currency),
        "currency": payment.currency,
        "status": payment.status,
        "provider": payment.provider,
        "providerPaymentId": payment.provider_payment_id,
        "failureCode": payment.failure_code,
        "failureReason": payment.failure_reason,
        "refundId": payment.refund_id,
        "createdAt": payment.created_at,
        "updatedAt": payment.updated_at,
    }
    if with_client_secret:
        view["clientSecret"] = payment.client_secret
    return view


@command("create-payment", service=SERVICE, routes=["POST /payments"], auth=customer_or_staff("payments:refund"),
         body=PaymentRequest)
def create_payment(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Start the payment of a payable order, or return the one it has, with the PaymentIntent's client secret."""
    payment = flow.pay_order(parse_body(request, PaymentRequest), uow)
    return json_response(payment_view(payment, with_client_secret=True), 201,
                         headers={"Location": f"/payments/{payment.id}"})


@query("list-payments", service=SERVICE, routes=["GET /payments"], auth=customer_or_staff("payments:refund"),
       params=["orderId", "status", "limit", "offset"])
def list_payments(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """List payments, oldest first: orderId, status, limit, offset."""
    order_id = query_text(request, "orderId", 200)
    status = query_choice(request, "status", STATUSES)
    with reading(SERVICE) as db:
        payments = store.find_payments(db, page_of(request), order_id=order_id, status=status,
                                       customer_id=visible_customer())
    return json_response([payment_view(payment) for payment in payments])


@query("get-payment", service=SERVICE, routes=["GET /payments/{id}"], auth=customer_or_staff("payments:refund"))
def get_payment(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """One payment by id."""
    payment_id = path_uuid(params, "id", "payment")
    with reading(SERVICE) as db:
        payment = store.find_payment(db, payment_id)
    if payment is None:
        raise NotFound("payment", params["id"])
    ensure_owner(payment.customer_id, "payment", params["id"])
    return json_response(payment_view(payment))


@command("refund-payment", service=SERVICE, routes=["POST /payments/{id}/refund"], auth=staff("payments:refund"))
def refund_payment(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Refund a succeeded payment in full through Stripe and publish payment.refunded."""
    refunded = flow.refund_on_request(RefundRequest(path_uuid(params, "id", "payment")), uow)
    return json_response(payment_view(refunded))


def _stripe_event(request: flask.Request) -> StripeEvent:
    event = gateway.verified_event(request.get_data(), request.headers.get(gateway.SIGNATURE_HEADER))
    return StripeEvent(event["id"], str(event.get("type", "")), outcome_of(event))


@command("stripe-webhook", service=SERVICE, routes=["POST /payments/webhook"], auth=SIGNED)
def stripe_webhook(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Stripe's webhook (signature verified): settles payments as Stripe reports them."""
    receipt = flow.take_stripe_event(_stripe_event(request), uow)
    if receipt == "duplicate":
        return json_response({"received": True, "duplicate": True})
    return json_response({"received": True, "applied": receipt == "applied"})
