"""Stripe's webhook: verified with Stripe's own signature scheme, each Stripe event applied once.

A missing or wrong `Stripe-Signature` answers 400 and changes nothing. Handled events:
payment_intent.succeeded (payment.succeeded), payment_intent.payment_failed (payment.failed,
with Stripe's reason) and charge.refunded (payment.refunded, full refunds). Other events are
acknowledged and ignored. Stripe event ids are recorded in the same transaction as their effect,
so a redelivered event changes nothing; a stale one cannot move a payment backwards.
"""

from __future__ import annotations

import json
from typing import Any

import flask

from functions.payments import flow
from functions.payments.api import provider_errors
from functions.payments.rules import outcome_of
from functions.payments.store import SERVICE
from fusion.config import settings
from fusion.declare import command
from fusion.uow import UnitOfWork
from fusion.web import ApiError, json_response

SIGNATURE_HEADER = "Stripe-Signature"


def _invalid(message: str) -> ApiError:
    return ApiError(400, message, code="invalid_signature", field=SIGNATURE_HEADER)


def verified_event(payload: bytes, signature: str | None) -> dict[str, Any]:
    """The Stripe event in `payload`, once its signature proves it came from Stripe."""
    import stripe

    if not signature:
        raise _invalid(f"{SIGNATURE_HEADER} header is required")
    try:
        stripe.Webhook.construct_event(payload, signature, settings().stripe_webhook_secret)
    except stripe.SignatureVerificationError:
        raise _invalid(f"{SIGNATURE_HEADER} does not match the payload") from None
    except ValueError:
        raise ApiError(400, "the webhook body is not a JSON Stripe event", field="body") from None
    event = json.loads(payload)
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        raise ApiError(400, "the webhook body is not a Stripe event", field="body")
    return event


def _first_delivery(uow: UnitOfWork, event: dict[str, Any]) -> bool:
    row = uow.execute(
        "INSERT INTO payments.stripe_events (event_id, type) VALUES (:id, :type) ON CONFLICT DO NOTHING RETURNING 1",
        {"id": event["id"], "type": str(event.get("type", ""))},
    ).first()
    return row is not None


@command("stripe-webhook", service=SERVICE, routes=["POST /payments/webhook"])
def stripe_webhook(request: flask.Request, params: dict[str, str], uow: UnitOfWork) -> flask.Response:
    """Stripe's webhook (signature verified): settles payments as Stripe reports them."""
    event = verified_event(request.get_data(), request.headers.get(SIGNATURE_HEADER))
    if not _first_delivery(uow, event):
        return json_response({"received": True, "duplicate": True})
    outcome = outcome_of(event)
    applied = False
    if outcome is not None:
        with provider_errors():
            applied = flow.apply_outcome(uow, outcome)
    return json_response({"received": True, "applied": applied})
