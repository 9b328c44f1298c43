"""Payments service: the functions functions-framework serves (`--source functions/payments/main.py`).

Local and test mode: with FUSION_ENV=development and STRIPE_AUTO_CONFIRM=true (the local platform
sets both when it starts localstripe), every PaymentIntent is confirmed server-side with a Stripe
test card, so the order saga runs to the end without a browser. The card is chosen by the order's
customer id:
- `decline-…`: `pm_card_chargeCustomerFail`, declined (payment failed with Stripe's reason, order failed);
- `unpaid-…`: no card, the intent waits for the customer as with real Stripe (the order's unpaid hold
  expires);
- anything else: `pm_card_visa`, which succeeds (payment.succeeded when Stripe's webhook arrives).
A campaign seat's authorization is confirmed the same way, with the joiner's customer id.
"""

from functions.payments.api import (
    create_payment,
    get_payment,
    list_payments,
    list_seat_payments,
    pay_for_seat,
    refund_payment,
    stripe_webhook,
)
from functions.payments.handlers import (
    authorize_seat,
    close_order_payment,
    reconcile_payments,
    record_order_for_payment,
    settle_seat,
    start_payment,
)
from fusion.declare import boot, service_dispatcher
from fusion.registry import Service, declare_service

SERVICE = declare_service(Service(
    name="payments", port=3004, cpu_limit="500m", memory_limit="512Mi", min_replicas=2, max_replicas=8, cpu_target=60,
))
boot(SERVICE.name)
serve = service_dispatcher(SERVICE.name)

__all__ = [
    "SERVICE",
    "authorize_seat",
    "close_order_payment",
    "create_payment",
    "get_payment",
    "list_payments",
    "list_seat_payments",
    "pay_for_seat",
    "reconcile_payments",
    "record_order_for_payment",
    "refund_payment",
    "serve",
    "settle_seat",
    "start_payment",
    "stripe_webhook",
]
