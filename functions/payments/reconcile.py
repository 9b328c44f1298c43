"""A safety net for lost webhooks: pending payments are checked against Stripe now and then.

Stripe retries webhooks for days, localstripe sends each one once; either way a payment whose
webhook never arrived would wait forever. Every minute, pending payments not checked for
PAYMENTS_RECONCILE_AFTER_SECONDS (default 60) are looked up in Stripe and settled the way their
webhook would have settled them. Intents still waiting for the customer are left alone.
"""

from __future__ import annotations

import logging
import os
import uuid

from functions.payments import flow, gateway, store
from functions.payments.rules import intent_outcome
from functions.payments.store import SERVICE
from fusion.binding import Event
from fusion.db import pool
from fusion.declare import scheduled
from fusion.uow import unit_of_work

log = logging.getLogger("functions.payments")
RECONCILE_AFTER_ENV = "PAYMENTS_RECONCILE_AFTER_SECONDS"
DEFAULT_RECONCILE_AFTER_SECONDS = 60
BATCH = 50


def reconcile_after_seconds() -> int:
    raw = os.environ.get(RECONCILE_AFTER_ENV, "").strip()
    return int(raw) if raw.isdigit() else DEFAULT_RECONCILE_AFTER_SECONDS


def _due_payments() -> list[tuple[uuid.UUID, str]]:
    sql = (
        "SELECT id, provider_payment_id FROM payments.payments WHERE status = 'pending' "
        "AND provider_payment_id IS NOT NULL "
        "AND coalesce(checked_at, created_at) <= now() - make_interval(secs => :after) "
        "ORDER BY coalesce(checked_at, created_at) LIMIT :batch"
    )
    with pool().connect() as conn:
        rows = conn.execute(sql, {"after": reconcile_after_seconds(), "batch": BATCH}).all()
    return [(row.id, row.provider_payment_id) for row in rows]


def reconcile_payment(payment_id: uuid.UUID, intent_id: str) -> None:
    """Settle one pending payment as its PaymentIntent's current state says."""
    intent = gateway.retrieve_intent(intent_id)
    outcome = intent_outcome(intent.id, intent.status, intent.last_error, intent.order_id)
    with unit_of_work(SERVICE) as uow:
        if outcome is not None:
            flow.apply_outcome(uow, outcome)
        store.mark_checked(uow, payment_id)


@scheduled("reconcile-payments", service=SERVICE, schedule="* * * * *")
def reconcile_payments(event: Event) -> None:
    """Settle pending payments whose Stripe webhook has not arrived."""
    for payment_id, intent_id in _due_payments():
        try:
            reconcile_payment(payment_id, intent_id)
        except gateway.ProviderUnavailable as exc:
            log.warning("Stripe unavailable, reconciliation stopped at payment %s: %s", payment_id, exc)
            return
        except gateway.PaymentRefused as exc:
            # e.g. an intent Stripe no longer knows: look again later rather than blocking the queue.
            log.warning("could not reconcile payment %s: %s", payment_id, exc)
            with unit_of_work(SERVICE) as uow:
                store.mark_checked(uow, payment_id)
