"""Confirmed orders that are not paid within the hold time are cancelled, so their stock is released."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from functions.orders.lifecycle import OrderStatus
from functions.orders.store import move_order
from fusion import logs
from fusion.binding import Event
from fusion.config import settings
from fusion.contracts import OrderCancelled
from fusion.db import pool
from fusion.declare import scheduled
from fusion.uow import unit_of_work
from fusion.web import utc_now

SERVICE = "orders"
EXPIRY_REASON = "payment not received in time"
BATCH_SIZE = 200
log = logging.getLogger(__name__)


def payment_deadline_passed_before(now: datetime, hold_seconds: int) -> datetime:
    """Orders confirmed before this moment have waited longer than the hold for their payment."""
    return now - timedelta(seconds=hold_seconds)


def _overdue_orders(cutoff: datetime, limit: int) -> list[uuid.UUID]:
    with pool().connect() as conn:
        return list(conn.execute(
            "SELECT id FROM orders.orders WHERE status = 'confirmed' AND status_changed_at < :cutoff "
                 "ORDER BY status_changed_at LIMIT :limit",
            {"cutoff": cutoff, "limit": limit},
        ).scalars())


def _cancel_unpaid(order_id: uuid.UUID) -> bool:
    """Cancel one confirmed order in its own transaction; False when it was paid or changed meanwhile."""
    with unit_of_work(SERVICE) as uow:
        moved = move_order(uow, order_id, OrderStatus.CANCELLED, EXPIRY_REASON, only_from={OrderStatus.CONFIRMED})
        if moved is None:
            return False
        uow.publish("order.cancelled", subject=str(order_id), payload=OrderCancelled(
            order_id=str(order_id), customer_id=moved.order.customer_id,
            previous_status=moved.previous_status.value, reason=EXPIRY_REASON,
        ))
        return True


def expire_unpaid(hold_seconds: int, now: datetime | None = None, batch_size: int = BATCH_SIZE) -> list[str]:
    """Cancel every confirmed order unpaid for longer than `hold_seconds`; the ids of those cancelled."""
    cutoff = payment_deadline_passed_before(now or utc_now(), hold_seconds)
    expired: list[str] = []
    while True:
        overdue = _overdue_orders(cutoff, batch_size)
        for order_id in overdue:
            with logs.log_context(orderId=str(order_id)):
                if _cancel_unpaid(order_id):
                    expired.append(str(order_id))
        if len(overdue) < batch_size:
            return expired


@scheduled("expire-unpaid-orders", service=SERVICE, schedule="* * * * *")
def expire_unpaid_orders(event: Event) -> None:
    """Cancel confirmed orders not paid within ORDER_HOLD_SECONDS (order.cancelled, "payment not received in time")."""
    expired = expire_unpaid(settings().order_hold_seconds)
    if expired:
        log.info("cancelled %d unpaid orders", len(expired))
