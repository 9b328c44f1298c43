"""Stripe behind a few plain functions, through one `stripe.StripeClient` per process.

The client is created on first use from the settings (STRIPE_SECRET_KEY, and STRIPE_API_BASE when
set, e.g. a localstripe URL), so importing this module costs nothing at cold start. Stripe's
errors are translated into three exceptions the functions act on: a declined card, a request
Stripe refuses (retrying it cannot help), and Stripe being unavailable (retrying may help).
Webhook payloads are checked with Stripe's own signature scheme before anything reads them.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from functions.payments.rules import (
    capture_idempotency_key,
    intent_idempotency_key,
    refund_idempotency_key,
    seat_intent_idempotency_key,
)
from fusion.config import settings
from fusion.errors import Invalid

if TYPE_CHECKING:
    import stripe
    from stripe._base_address import BaseAddresses

AUTO_CONFIRM_ENV = "STRIPE_AUTO_CONFIRM"
SIGNATURE_HEADER = "Stripe-Signature"
REQUEST_TIMEOUT_SECONDS = 10.0
NETWORK_RETRIES = 2  # safe: every POST carries an idempotency key

_client: stripe.StripeClient | None = None
_lock = threading.Lock()


class PaymentDeclined(Exception):
    """The card was declined (Stripe answered 402)."""

    def __init__(self, code: str | None, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class PaymentRefused(Exception):
    """Stripe refused the request itself (400): the same request will never succeed."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class ProviderUnavailable(Exception):
    """Stripe could not be reached or failed (network, 5xx, rate limit, credentials): try again later."""


@dataclass(frozen=True)
class Intent:
    id: str
    client_secret: str | None
    status: str
    last_error: Any
    order_id: str | None
    amount_received: int = 0


def stripe_client() -> stripe.StripeClient:
    """The process's Stripe client, created on first use."""
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                _client = _new_client()
    return _client


def _new_client() -> stripe.StripeClient:
    import stripe

    # The SDK's info/debug lines carry whole request and response bodies, client secrets included.
    logging.getLogger("stripe").setLevel(logging.WARNING)
    config = settings()
    base_addresses: BaseAddresses = {"api": config.stripe_api_base} if config.stripe_api_base else {}
    return stripe.StripeClient(
        config.stripe_secret_key,
        base_addresses=base_addresses,
        max_network_retries=NETWORK_RETRIES,
        http_client=stripe.RequestsClient(timeout=REQUEST_TIMEOUT_SECONDS),
    )


def reset_stripe_client() -> None:
    """Forget the client (tests that change the Stripe settings)."""
    global _client
    with _lock:
        _client = None


def auto_confirm_enabled() -> bool:
    """Confirm intents server-side with test cards: only in development, and only when asked to."""
    requested = os.environ.get(AUTO_CONFIRM_ENV, "").strip().lower() in ("1", "true", "yes", "on")
    return requested and settings().environment == "development"


@contextmanager
def _translated_errors() -> Iterator[None]:
    import stripe

    try:
        yield
    except stripe.CardError as exc:
        error = exc.error
        code = (error.decline_code if error else None) or exc.code
        raise PaymentDeclined(code, exc.user_message or (error.message if error else None) or "card declined") from exc
    except stripe.InvalidRequestError as exc:
        raise PaymentRefused(exc.user_message or str(exc), exc.code) from exc
    except stripe.StripeError as exc:
        raise ProviderUnavailable(f"Stripe: {exc.user_message or exc}") from exc


def _intent(obj: Any) -> Intent:
    data: dict[str, Any] = obj.to_dict()
    metadata = data.get("metadata") or {}
    return Intent(
        id=data["id"], client_secret=data.get("client_secret"), status=data.get("status") or "",
        last_error=data.get("last_payment_error"), order_id=metadata.get("orderId"),
        amount_received=int(data.get("amount_received") or 0),
    )


def create_intent(order_id: str, amount_minor: int, currency: str, payment_method: str | None) -> Intent:
    """A PaymentIntent for an order; `payment_method` attaches a card so it can be confirmed server-side."""
    params: dict[str, Any] = {
        "amount": amount_minor,
        "currency": currency.lower(),
        "payment_method_types": ["card"],
        "metadata": {"orderId": order_id},
    }
    if payment_method:
        params["payment_method"] = payment_method
    with _translated_errors():
        created = stripe_client().v1.payment_intents.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": intent_idempotency_key(order_id)},
        )
    return _intent(created)


def create_seat_intent(seat_payment_id: str, attempt: int, campaign_id: str, customer_id: str, amount_minor: int,
                       currency: str, payment_method: str | None) -> Intent:
    """An authorization for a campaign seat: the card is only held (manual capture) until the group forms."""
    params: dict[str, Any] = {
        "amount": amount_minor,
        "currency": currency.lower(),
        "payment_method_types": ["card"],
        "capture_method": "manual",
        "metadata": {"campaignId": campaign_id, "customerId": customer_id, "seatPaymentId": seat_payment_id},
    }
    if payment_method:
        params["payment_method"] = payment_method
    with _translated_errors():
        created = stripe_client().v1.payment_intents.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": seat_intent_idempotency_key(seat_payment_id, attempt)},
        )
    return _intent(created)


def capture_intent(intent_id: str, seat_payment_id: str) -> Intent:
    """Charge what an authorization holds; PaymentRefused when it can no longer be captured."""
    with _translated_errors():
        return _intent(stripe_client().v1.payment_intents.capture(
            intent_id, options={"idempotency_key": capture_idempotency_key(seat_payment_id)},
        ))


def cancel_intent(intent_id: str) -> Intent:
    """Release an authorization (or an intent never paid): nothing is charged."""
    with _translated_errors():
        return _intent(stripe_client().v1.payment_intents.cancel(intent_id))


def confirm_intent(intent_id: str) -> Intent:
    """Charge the intent's card now; PaymentDeclined when the card is declined."""
    with _translated_errors():
        return _intent(stripe_client().v1.payment_intents.confirm(intent_id))


def retrieve_intent(intent_id: str) -> Intent:
    with _translated_errors():
        return _intent(stripe_client().v1.payment_intents.retrieve(intent_id))


def refund_intent(intent_id: str, amount_minor: int, payment_id: str, order_id: str) -> str:
    """Refund an intent's charge in full; the refund's id."""
    with _translated_errors():
        refund = stripe_client().v1.refunds.create(
            params={
                "payment_intent": intent_id,
                "amount": amount_minor,
                "metadata": {"orderId": order_id, "paymentId": payment_id},
            },
            options={"idempotency_key": refund_idempotency_key(payment_id)},
        )
    return str(refund.id)


def _bad_signature(problem: str) -> Invalid:
    return Invalid(SIGNATURE_HEADER, problem, code="invalid_signature")


def verified_event(payload: bytes, signature: str | None) -> dict[str, Any]:
    """The Stripe event in a webhook's `payload`, once its signature proves it came from Stripe."""
    import stripe

    if not signature:
        raise _bad_signature("header is required")
    try:
        stripe.Webhook.construct_event(payload, signature, settings().stripe_webhook_secret)
    except stripe.SignatureVerificationError:
        raise _bad_signature("does not match the payload") from None
    except ValueError:
        raise Invalid("body", "is not a JSON Stripe event") from None
    event = json.loads(payload)
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        raise Invalid("body", "is not a Stripe event")
    return event
