"""The payments HTTP API: start (or fetch) an order's payment, list and read payments, refund one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import flask
from pydantic import BaseModel, ConfigDict, Field

from functions.payments import flow, gateway, store
from functions.payments.rules import STATUSES, SUCCEEDED, why_not_payable
from functions.payments.store import PAYMENT_COLUMNS, SERVICE, payment_id_or_none, payment_view
from fusion.db import pool
from fusion.declare import command, query
from fusion.listing import Listing
from fusion.uow import UnitOfWork
from fusion.web import ApiError, conflict, json_response, not_found, parse_body, query_choice


class PaymentRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    order_id: str = Field(alias="orderId", min_length=1, max_length=200)


@contextmanager
def provider_errors() -> Iterator[None]:
    """Stripe being down is the caller's cue to retry, not a server bug."""
    try:
        yield
    except gateway.ProviderUnavailable as exc:
        raise ApiError(503, "the payment provider is unavailable, try again", code="provider_unavailable") from exc


@command("create-payment", service=SERVICE, routes=["POST /payments"], body=PaymentRequest)
def create_payment(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Start the payment of a payable order, or return the one it has, with the PaymentIntent's client secret."""
    order_id = parse_body(request, PaymentRequest).order_id
    order = store.lock_order(uow, order_id)
    if order is None:
        raise not_found("order", order_id)
    facts = store.facts_of(order)
    if not facts.payable:
        raise ApiError(409, f"order {order_id} cannot be paid: {why_not_payable(facts)}", code="order_not_payable")
    with provider_errors():
        payment, _ = flow.start_payment(uow, order)
    return json_response(payment_view(payment, with_client_secret=True), 201,
                         headers={"Location": f"/payments/{payment.id}"})


@query("list-payments", service=SERVICE, routes=["GET /payments"],
       params=["orderId", "status", "limit", "offset"])
def list_payments(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """List payments, oldest first: orderId, status, limit, offset."""
    listing = Listing("payments.payments", PAYMENT_COLUMNS, order_by="created_at, id")
    if order_id := request.args.get("orderId", "").strip():
        listing.where("order_id = :order_id", order_id=order_id)
    if status := query_choice(request, "status", STATUSES):
        listing.where("status = :status", status=status)
    return json_response([payment_view(row) for row in listing.fetch(request)])


@query("get-payment", service=SERVICE, routes=["GET /payments/{id}"])
def get_payment(request: flask.Request, params: dict[str, str]) -> flask.Response:
    """One payment by id."""
    payment_id = payment_id_or_none(params["id"])
    row = None
    if payment_id is not None:
        with pool().connect() as conn:
            sql = f"SELECT {PAYMENT_COLUMNS} FROM payments.payments WHERE id = :id"
            row = conn.execute(sql, {"id": payment_id}).first()
    if row is None:
        raise not_found("payment", params["id"])
    return json_response(payment_view(row))


@command("refund-payment", service=SERVICE, routes=["POST /payments/{id}/refund"])
def refund_payment(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Refund a succeeded payment in full through Stripe and publish payment.refunded."""
    payment_id = payment_id_or_none(params["id"])
    order_id = store.order_id_of(uow, payment_id=payment_id) if payment_id is not None else None
    if order_id is None:
        raise not_found("payment", params["id"])
    store.lock_order(uow, order_id)
    payment = store.lock_payment_of_order(uow, order_id)
    if payment.status != SUCCEEDED:
        raise conflict(f"payment {payment.id} is {payment.status}; only a succeeded payment can be refunded")
    with provider_errors():
        refunded = flow.refund(uow, payment, "requested")
    return json_response(payment_view(refunded))
