"""Payments' tables: the order projection and the payments, read and changed inside a unit of work.

Locks are always taken in the same order, order row first and payment row second, so the event
handlers, the webhook and the HTTP commands that touch one order run one after the other.
"""

from __future__ import annotations

import uuid
from typing import Any

from functions.payments.rules import STATUSES, OrderFacts, can_move
from fusion.contracts import PaymentCreated, PaymentFailed, PaymentRefunded, PaymentSucceeded
from fusion.money import to_decimal
from fusion.uow import UnitOfWork

SERVICE = "payments"
ORDER_COLUMNS = "order_id, customer_id, total_minor, currency, reserved, closed_as"
PAYMENT_COLUMNS = (
    "id, order_id, customer_id, amount_minor, currency, status, provider, provider_payment_id, "
    "client_secret, failure_code, failure_reason, refund_id, created_at, updated_at"
)


def facts_of(order: Any) -> OrderFacts:
    return OrderFacts(known=order.total_minor is not None, reserved=order.reserved, closed_as=order.closed_as)


def lock_order(uow: UnitOfWork, order_id: str) -> Any:
    """The order's projection row, locked until the unit of work ends; None when unknown."""
    return uow.execute(
        f"SELECT {ORDER_COLUMNS} FROM payments.orders WHERE order_id = :id FOR UPDATE", {"id": order_id}
    ).first()


def record_order_details(uow: UnitOfWork, order_id: str, customer_id: str, total_minor: int, currency: str) -> Any:
    return uow.execute(
        "INSERT INTO payments.orders (order_id, customer_id, total_minor, currency) "
        "VALUES (:id, :customer, :total, :currency) ON CONFLICT (order_id) DO UPDATE SET "
        "customer_id = EXCLUDED.customer_id, total_minor = EXCLUDED.total_minor, "
        f"currency = EXCLUDED.currency, updated_at = now() RETURNING {ORDER_COLUMNS}",
        {"id": order_id, "customer": customer_id, "total": total_minor, "currency": currency},
    ).one()


def record_reservation(uow: UnitOfWork, order_id: str) -> Any:
    return uow.execute(
        "INSERT INTO payments.orders (order_id, reserved) VALUES (:id, true) ON CONFLICT (order_id) "
        f"DO UPDATE SET reserved = true, updated_at = now() RETURNING {ORDER_COLUMNS}",
        {"id": order_id},
    ).one()


def record_closing(uow: UnitOfWork, order_id: str, closed_as: str) -> Any:
    """Close the order for payment; the first way it closed is kept."""
    return uow.execute(
        "INSERT INTO payments.orders (order_id, closed_as) VALUES (:id, :closed) ON CONFLICT (order_id) "
        "DO UPDATE SET closed_as = coalesce(payments.orders.closed_as, EXCLUDED.closed_as), updated_at = now() "
        f"RETURNING {ORDER_COLUMNS}",
        {"id": order_id, "closed": closed_as},
    ).one()


def payment_id_or_none(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def claim_payment(uow: UnitOfWork, order: Any) -> Any:
    """Insert the order's pending payment; None when the order already has one (one payment per order)."""
    return uow.execute(
        "INSERT INTO payments.payments (id, order_id, customer_id, amount_minor, currency, status) "
        "VALUES (:id, :order_id, :customer, :amount, :currency, 'pending') "
        f"ON CONFLICT (order_id) DO NOTHING RETURNING {PAYMENT_COLUMNS}",
        {"id": uuid.uuid4(), "order_id": order.order_id, "customer": order.customer_id,
         "amount": order.total_minor, "currency": order.currency},
    ).first()


def lock_payment_of_order(uow: UnitOfWork, order_id: str) -> Any:
    return uow.execute(
        f"SELECT {PAYMENT_COLUMNS} FROM payments.payments WHERE order_id = :id FOR UPDATE", {"id": order_id}
    ).first()


def lock_payment_of_intent(uow: UnitOfWork, intent_id: str) -> Any:
    return uow.execute(
        f"SELECT {PAYMENT_COLUMNS} FROM payments.payments WHERE provider_payment_id = :intent FOR UPDATE",
        {"intent": intent_id},
    ).first()


def order_id_of(uow: UnitOfWork, *, payment_id: uuid.UUID | None = None, intent_id: str | None = None) -> str | None:
    """The order a payment belongs to (read without a lock, to know which order row to lock first)."""
    column, value = ("id", payment_id) if payment_id is not None else ("provider_payment_id", intent_id)
    found = uow.execute(f"SELECT order_id FROM payments.payments WHERE {column} = :value", {"value": value}).first()
    return None if found is None else str(found.order_id)


def attach_intent(uow: UnitOfWork, payment_id: uuid.UUID, intent_id: str, client_secret: str | None) -> Any:
    return uow.execute(
        "UPDATE payments.payments SET provider_payment_id = :intent, client_secret = :secret, updated_at = now() "
        f"WHERE id = :id RETURNING {PAYMENT_COLUMNS}",
        {"id": payment_id, "intent": intent_id, "secret": client_secret},
    ).one()


def move_payment(uow: UnitOfWork, payment_id: uuid.UUID, target: str, **fields: str | None) -> Any:
    """Move a payment to `target` if that is a forward move from its status; the new row, or None."""
    sources = [status for status in STATUSES if can_move(status, target)]
    assignments = "".join(f", {name} = :{name}" for name in fields)
    return uow.execute(
        f"UPDATE payments.payments SET status = :target, updated_at = now(){assignments} "
        f"WHERE id = :id AND status = ANY(:sources) RETURNING {PAYMENT_COLUMNS}",
        {"id": payment_id, "target": target, "sources": sources, **fields},
    ).first()


def mark_checked(uow: UnitOfWork, payment_id: uuid.UUID) -> None:
    uow.execute("UPDATE payments.payments SET checked_at = now() WHERE id = :id", {"id": payment_id})


def payment_view(row: Any, *, with_client_secret: bool = False) -> dict[str, Any]:
    """A payment as the API returns it (camelCase, decimal amount)."""
    view: dict[str, Any] = {
        "id": str(row.id),
        "orderId": row.order_id,
        "customerId": row.customer_id,
        "amount": to_decimal(row.amount_minor, row.currency),
        "currency": row.currency,
        "status": row.status,
        "provider": row.provider,
        "providerPaymentId": row.provider_payment_id,
        "failureCode": row.failure_code,
        "failureReason": row.failure_reason,
        "refundId": row.refund_id,
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
    }
    if with_client_secret:
        view["clientSecret"] = row.client_secret
    return view


def _amount(row: Any) -> dict[str, Any]:
    return {"amount": to_decimal(row.amount_minor, row.currency), "currency": row.currency}


def publish_created(uow: UnitOfWork, row: Any) -> None:
    payload = PaymentCreated(payment_id=str(row.id), order_id=row.order_id, status=row.status,
                             provider_payment_id=row.provider_payment_id, customer_id=row.customer_id, **_amount(row))
    uow.publish("payment.created", str(row.id), payload, partition_key=row.order_id)


def publish_succeeded(uow: UnitOfWork, row: Any) -> None:
    payload = PaymentSucceeded(payment_id=str(row.id), order_id=row.order_id, customer_id=row.customer_id,
                               provider_payment_id=row.provider_payment_id, **_amount(row))
    uow.publish("payment.succeeded", str(row.id), payload, partition_key=row.order_id)


def publish_failed(uow: UnitOfWork, row: Any) -> None:
    payload = PaymentFailed(payment_id=str(row.id), order_id=row.order_id, reason=row.failure_reason or "failed",
                            customer_id=row.customer_id, failure_code=row.failure_code,
                            provider_payment_id=row.provider_payment_id)
    uow.publish("payment.failed", str(row.id), payload, partition_key=row.order_id)


def publish_refunded(uow: UnitOfWork, row: Any, reason: str) -> None:
    payload = PaymentRefunded(payment_id=str(row.id), order_id=row.order_id, customer_id=row.customer_id,
                              refund_id=row.refund_id, reason=reason, **_amount(row))
    uow.publish("payment.refunded", str(row.id), payload, partition_key=row.order_id)
