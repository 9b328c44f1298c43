"""What a browser needs of localstripe to pay as with Stripe: a card Element whose card decides the outcome.

localstripe's Stripe.js stand-in (`/js.stripe.com/v3/`) draws a card Element, but its `confirmCardPayment`
ignores the card (it only answers a 3-D Secure prompt), and its API cannot confirm an intent with a card
from the browser. Stripe.js does that with the publishable key and the intent's client secret; here
`confirmCardPayment(clientSecret, {payment_method: {card}})` posts the Element's card to
`POST /v1/payment_intents/{id}/_confirm_card` (authorized by the client secret, as Stripe's client-side
confirmation is), which makes a card PaymentMethod of it and confirms the intent. So 4242 4242 4242 4242
pays, 4000 0000 0000 0002 is declined with Stripe's "Your card was declined.", the 3-D Secure test cards
ask first, and the webhooks follow as from Stripe.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import localstripe
import localstripe.resources
from aiohttp import web
from localstripe.errors import UserError

STAND_IN = Path(localstripe.__file__).resolve().parent / "localstripe-v3.js"
CONFIRM_CARD = re.compile(r"^/v1/payment_intents/(pi_\w+)/_confirm_card$")
CONFIRMABLE = ("requires_payment_method", "requires_confirmation")
# Stripe declines this test card when it is charged; localstripe declines it only when it is attached.
GENERIC_DECLINE = "4000000000000002"

CONFIRM_WITH_CARD_JS = r"""
// fusion: confirmCardPayment with the card the Element holds, as Stripe.js does.
(function () {
  const standIn = Stripe;
  Stripe = (apiKey) => {
    const stripe = standIn(apiKey);
    const authenticate = stripe.confirmCardPayment;
    stripe.confirmCardPayment = async (clientSecret, data) => {
      const element = data && data.payment_method && data.payment_method.card;
      const card = element && element.value && element.value.card;
      if (!card || !card.number) {
        return {error: {type: 'validation_error', code: 'incomplete_number',
                        message: 'Your card number is incomplete.'}};
      }
      const pi = clientSecret.match(/^(pi_\w+)_secret_/)[1];
      const response = await fetch(`${LOCALSTRIPE_BASE_API}/v1/payment_intents/${pi}/_confirm_card`, {
        method: 'POST',
        body: JSON.stringify({key: apiKey, client_secret: clientSecret, card: card}),
      });
      const body = await response.json().catch(() => ({}));
      if (response.status !== 200 || body.error) {
        return {error: body.error || {message: 'The payment could not be confirmed.'}};
      }
      if (body.status === 'requires_action') {
        return authenticate(clientSecret, data);
      }
      return {paymentIntent: body};
    };
    return stripe;
  };
})();
"""


@cache  # the installed package's file: read once
def stand_in_script() -> str:
    return STAND_IN.read_text() + CONFIRM_WITH_CARD_JS


def _card_of(body: dict[str, Any]) -> dict[str, str]:
    card = body.get("card")
    if not isinstance(card, dict):
        raise UserError(400, "card: missing")
    number = re.sub(r"\D", "", str(card.get("number", "")))
    if len(number) < 12:
        raise UserError(402, "Your card number is incomplete.", {"code": "incomplete_number", "type": "card_error"})
    return {"number": number, "exp_month": str(card.get("exp_month") or "12"),
            "exp_year": str(card.get("exp_year") or "2030"), "cvc": str(card.get("cvc") or "123")}


def confirm_with_card(intent_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Confirm the intent with the card the browser sent; UserError as Stripe would answer."""
    intents: Any = localstripe.resources.PaymentIntent
    methods: Any = localstripe.resources.PaymentMethod
    intent = intents._api_retrieve(intent_id)
    if not str(body.get("key", "")).startswith("pk_") or body.get("client_secret") != intent.client_secret:
        raise UserError(401, "Unauthorized")
    if intent.status not in CONFIRMABLE:
        raise UserError(400, f"This PaymentIntent's status is {intent.status}; it cannot be confirmed.",
                        {"code": "payment_intent_unexpected_state", "payment_intent": intent._export()})
    method = methods(type="card", card=_card_of(body))
    intent.payment_method = method.id
    intent._confirm(on_failure_now=intent._report_failure)
    exported: dict[str, Any] = intent._export()
    return exported


def decline_generic_test_card() -> None:
    """4000 0000 0000 0002 is declined when charged, as with Stripe."""
    methods: Any = localstripe.resources.PaymentMethod
    if getattr(methods, "_fusion_generic_decline", False):
        return
    charging_is_declined = methods._charging_is_declined

    def declined(self: Any) -> bool:
        return bool(charging_is_declined(self)) or (self.type == "card" and self._card_number == GENERIC_DECLINE)

    methods._charging_is_declined = declined
    methods._fusion_generic_decline = True


@web.middleware
async def browser_payments(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.method == "GET" and request.path == "/js.stripe.com/v3/":
        return web.Response(text=stand_in_script(), content_type="application/javascript")
    found = CONFIRM_CARD.match(request.path)
    if request.method == "POST" and found:
        try:
            body = json.loads(await request.text() or "{}")
            answer = confirm_with_card(found.group(1), body if isinstance(body, dict) else {})
        except UserError as exc:
            return web.json_response(exc.body, status=exc.code)
        except json.JSONDecodeError:
            return web.json_response({"error": {"message": "the body must be JSON"}}, status=400)
        return web.json_response(answer)
    response: web.StreamResponse = await handler(request)
    return response


def install(app: web.Application) -> None:
    """Serve the card-aware stand-in and its confirmation route in front of localstripe's own."""
    decline_generic_test_card()
    app.middlewares.insert(0, browser_payments)
