"""Payments' tables: the order projection, the payments, the seat payments of group campaigns and the
Stripe events already handled.

Locks are always taken in the same order, order row first, payment row second and seat payment last,
so the event handlers, the webhook and the HTTP commands that touch one order run one after the other.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar

from functions.payments.rules import SEAT_REHOLDABLE, SEAT_STATUSES, STATUSES, OrderFacts, can_move, seat_can_move
from fusion.contracts import (
    Campaign,
    PaymentCreated,
    PaymentFailed,
    PaymentRefunded,
    PaymentSucceeded,
    SeatPayment,
    SeatPaymentFailed,
)
from fusion.db import Sql
from fusion.listing import Listing, Page
from fusion.money import to_decimal
from fusion.uow import UnitOfWork

SERVICE = "payments"
R = TypeVar("R")
ORDER_COLUMNS = "order_id, customer_id, total_minor, currency, reserved, closed_as, campaign_id"
PAYMENT_COLUMNS = (
    "id, order_id, customer_id, amount_minor, currency, status, provider, provider_payment_id, "
    "client_secret, failure_code, failure_reason, refund_id, created_at, updated_at"
)


@dataclass(frozen=True)
class Order:
    """What payments knows about an order; total, currency and customer arrive with order.created."""

    order_id: str
    customer_id: str | None
    total_minor: int | None
    currency: str | None
    reserved: bool
    closed_as: str | None
    campaign_id: str | None  # a group order, paid by its seat's captured authorization

    @property
    def facts(self) -> OrderFacts:
        return OrderFacts(known=self.total_minor is not None, reserved=self.reserved, closed_as=self.closed_as)


@dataclass(frozen=True)
class Payment:
    id: uuid.UUID
    order_id: str
    customer_id: str | None
    amount_minor: int
    currency: str
    status: str
    provider: str
    provider_payment_id: str | None
    client_secret: str | None
    failure_code: str | None
    failure_reason: str | None
    refund_id: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class DuePayment:
    """A pending payment whose PaymentIntent is due to be looked up in Stripe."""

    id: uuid.UUID
    provider_payment_id: str


def lock_order(db: Sql, order_id: str) -> Order | None:
    """The order's projection row, locked until the unit of work ends; None when unknown."""
    return db.execute(
        f"SELECT {ORDER_COLUMNS} FROM payments.orders WHERE order_id = :id FOR UPDATE", {"id": order_id}
    ).first_as(Order)



def record_order_details(db: Sql, order_id: str, customer_id: str, total_minor: int, currency: str,
                         campaign_id: str | None = None) -> Order:
    return db.execute(
        "INSERT INTO payments.orders (order_id, customer_id, total_minor, currency, campaign_id) "
        "VALUES (:id, :customer, :total, :currency, :campaign) ON CONFLICT (order_id) DO UPDATE SET "
        "customer_id = EXCLUDED.customer_id, total_minor = EXCLUDED.total_minor, "
        f"currency = EXCLUDED.currency, campaign_id = EXCLUDED.campaign_id, updated_at = now() "
        f"RETURNING {ORDER_COLUMNS}",
        {"id": order_id, "customer": customer_id, "total": total_minor, "currency": currency,
         "campaign": campaign_id},
    ).one_as(Order)


def record_reservation(db: Sql, order_id: str) -> Order:
    return db.execute(
        "INSERT INTO payments.orders (order_id, reserved) VALUES (:id, true) ON CONFLICT (order_id) "
        f"DO UPDATE SET reserved = true, updated_at = now() RETURNING {ORDER_COLUMNS}",
        {"id": order_id},
    ).one_as(Order)


def record_closing(db: Sql, order_id: str, closed_as: str) -> Order:
    """Close the order for payment; the first way it closed is kept."""
    return db.execute(
        "INSERT INTO payments.orders (order_id, closed_as) VALUES (:id, :closed) ON CONFLICT (order_id) "
        "DO UPDATE SET closed_as = coalesce(payments.orders.closed_as, EXCLUDED.closed_as), updated_at = now() "
        f"RETURNING {ORDER_COLUMNS}",
        {"id": order_id, "closed": closed_as},
    ).one_as(Order)


def claim_payment(db: Sql, order: Order, lease_seconds: float) -> Payment | None:
    """Insert the order's pending payment; None when the order already has one (one payment per order).

    The claim is its creator's for `lease_seconds` (`next_check_at`): only the creator gives it an intent
    in that time, after it the scheduled checks do (`take_over_start`)."""
    return db.execute(
        "INSERT INTO payments.payments (id, order_id, customer_id, amount_minor, currency, status, next_check_at) "
        "VALUES (:id, :order_id, :customer, :amount, :currency, 'pending', now() + make_interval(secs => :lease)) "
        f"ON CONFLICT (order_id) DO NOTHING RETURNING {PAYMENT_COLUMNS}",
        {"id": uuid.uuid4(), "order_id": order.order_id, "customer": order.customer_id,
         "amount": order.total_minor, "currency": order.currency, "lease": lease_seconds},
    ).first_as(Payment)


# A pending payment (of an order or of a seat) that has no intent yet: its start was claimed, not finished.
UNSTARTED = "status = 'pending' AND provider_payment_id IS NULL"


def take_over_start(db: Sql, payment_id: uuid.UUID, lease_seconds: float) -> Payment | None:
    """Claim a payment that has no intent yet and whose claim lapsed or was released; None when another
    holds it or it has an intent."""
    return db.execute(
        "UPDATE payments.payments SET next_check_at = now() + make_interval(secs => :lease) "
        f"WHERE id = :id AND {UNSTARTED} AND coalesce(next_check_at, '-infinity') <= now() "
        f"RETURNING {PAYMENT_COLUMNS}",
        {"id": payment_id, "lease": lease_seconds},
    ).first_as(Payment)


def claim_unstarted_payments(db: Sql, lease_seconds: float, batch: int) -> list[Payment]:
    """Payments with no intent whose claim lapsed or was released, claimed for `lease_seconds`."""
    return db.execute(
        "UPDATE payments.payments SET next_check_at = now() + make_interval(secs => :lease) WHERE id IN ("
        f"SELECT id FROM payments.payments WHERE {UNSTARTED} AND next_check_at <= now() "
        f"ORDER BY next_check_at LIMIT :batch FOR UPDATE SKIP LOCKED) AND {UNSTARTED} RETURNING {PAYMENT_COLUMNS}",
        {"lease": lease_seconds, "batch": batch},
    ).all_as(Payment)


def release_start(db: Sql, payment_id: uuid.UUID) -> None:
    """Give up the claim of a payment whose intent could not be created: whoever comes next may create it."""
    db.execute(f"UPDATE payments.payments SET next_check_at = now() WHERE id = :id AND {UNSTARTED}",
               {"id": payment_id})


def _payment_where(db: Sql, column: str, value: object, *, lock: bool) -> Payment | None:
    """The payment whose `column` (a unique one) is `value`; locked until the unit of work ends if `lock`."""
    locking = " FOR UPDATE" if lock else ""
    return db.execute(
        f"SELECT {PAYMENT_COLUMNS} FROM payments.payments WHERE {column} = :value{locking}", {"value": value}
    ).first_as(Payment)


def find_payment(db: Sql, payment_id: uuid.UUID) -> Payment | None:
    return _payment_where(db, "id", payment_id, lock=False)


def find_payments(db: Sql, page: Page, *, order_id: str | None, status: str | None,
                  customer_id: str | None) -> list[Payment]:
    """One page of payments, oldest first; only the customer's own when `customer_id` is given."""
    return _page(db, page, "payments", Payment, customer_id, order_id=order_id, status=status)


def _page(db: Sql, page: Page, table: str, row: type[R], customer_id: str | None, **equal: str | None) -> list[R]:
    """One page of the table's rows, oldest first: the customer's own when given, and those whose columns
    equal the values given (an empty value filters nothing)."""
    columns = ", ".join(column.name for column in fields(row))  # type: ignore[arg-type]
    listing = Listing(f"payments.{table}", columns, order_by="created_at, id")
    if customer_id is not None:
        listing.where("customer_id = :customer_id", customer_id=customer_id)
    for column, value in equal.items():
        if value:
            listing.where(f"{column} = :{column}", **{column: value})
    return listing.fetch(db, page, row)


def lock_payment_of_order(db: Sql, order_id: str) -> Payment | None:
    return _payment_where(db, "order_id", order_id, lock=True)


def lock_payment_of_intent(db: Sql, intent_id: str) -> Payment | None:
    return _payment_where(db, "provider_payment_id", intent_id, lock=True)


def order_id_of(db: Sql, *, payment_id: uuid.UUID | None = None, intent_id: str | None = None) -> str | None:
    """The order a payment belongs to (read without a lock, to know which order row to lock first)."""
    column, value = ("id", payment_id) if payment_id is not None else ("provider_payment_id", intent_id)
    order_id = db.execute(f"SELECT order_id FROM payments.payments WHERE {column} = :value", {"value": value}).scalar()
    return None if order_id is None else str(order_id)


def attach_intent(db: Sql, payment_id: uuid.UUID, intent_id: str, client_secret: str | None,
                  check_after: float) -> Payment | None:
    """Record the payment's intent, and schedule a look at it `check_after` seconds from now; None when the
    payment has one already (the first attached stays)."""
    return db.execute(
        "UPDATE payments.payments SET provider_payment_id = :intent, client_secret = :secret, updated_at = now(), "
        "next_check_at = now() + make_interval(secs => :after) WHERE id = :id AND provider_payment_id IS NULL "
        f"RETURNING {PAYMENT_COLUMNS}",
        {"id": payment_id, "intent": intent_id, "secret": client_secret, "after": check_after},
    ).first_as(Payment)


def _move_forward(db: Sql, table: str, row: type[R], row_id: uuid.UUID, target: str, sources: list[str],
                  changes: Mapping[str, str | None]) -> R | None:
    """Move the row to `target` from one of `sources`, setting `changes` too; the new row, or None."""
    assignments = "".join(f", {name} = :{name}" for name in changes)
    columns = ", ".join(column.name for column in fields(row))  # type: ignore[arg-type]
    return db.execute(
        f"UPDATE payments.{table} SET status = :target, updated_at = now(){assignments} "
        f"WHERE id = :id AND status = ANY(:sources) RETURNING {columns}",
        {"id": row_id, "target": target, "sources": sources, **changes},
    ).first_as(row)


def move_payment(db: Sql, payment_id: uuid.UUID, target: str, **fields: str | None) -> Payment | None:
    """Move a payment to `target` if that is a forward move from its status; the new row, or None."""
    sources = [status for status in STATUSES if can_move(status, target)]
    return _move_forward(db, "payments", Payment, payment_id, target, sources, fields)


def find_due_payments(db: Sql, after_seconds: int, batch: int) -> list[DuePayment]:
    """Pending payments with an intent, not checked for `after_seconds` or whose scheduled check is due,
    least recently checked first."""
    return db.execute(
        "SELECT id, provider_payment_id FROM payments.payments WHERE status = 'pending' "
        "AND provider_payment_id IS NOT NULL "
        "AND (coalesce(checked_at, created_at) <= now() - make_interval(secs => :after) OR next_check_at <= now()) "
        "ORDER BY coalesce(checked_at, created_at) LIMIT :batch",
        {"after": after_seconds, "batch": batch},
    ).all_as(DuePayment)


def claim_due_checks(db: Sql, lease_seconds: float, batch: int) -> list[DuePayment]:
    """Pending payments whose scheduled check is due, claimed: due again after `lease_seconds` unless
    marked checked, so a check cut short is retried and concurrent checkers skip each other's."""
    return db.execute(
        "UPDATE payments.payments SET next_check_at = now() + make_interval(secs => :lease) WHERE id IN ("
        "SELECT id FROM payments.payments WHERE status = 'pending' AND provider_payment_id IS NOT NULL "
        "AND next_check_at <= now() ORDER BY next_check_at LIMIT :batch FOR UPDATE SKIP LOCKED) "
        "RETURNING id, provider_payment_id",
        {"lease": lease_seconds, "batch": batch},
    ).all_as(DuePayment)


def mark_checked(db: Sql, payment_id: uuid.UUID) -> None:
    """The payment was looked at: the scheduled check is done, the minute reconciliation goes on."""
    db.execute("UPDATE payments.payments SET checked_at = now(), next_check_at = NULL WHERE id = :id",
               {"id": payment_id})


def record_stripe_event(db: Sql, event_id: str, event_type: str) -> bool:
    """Remember a Stripe event; False when it was handled before."""
    row = db.execute(
        "INSERT INTO payments.stripe_events (event_id, type) VALUES (:id, :type) ON CONFLICT DO NOTHING RETURNING 1",
        {"id": event_id, "type": event_type},
    ).first()
    return row is not None


def _amount(payment: Payment) -> dict[str, Any]:
    return {"amount": to_decimal(payment.amount_minor, payment.currency), "currency": payment.currency}


def publish_created(uow: UnitOfWork, payment: Payment) -> None:
    payload = PaymentCreated(payment_id=str(payment.id), order_id=payment.order_id, status=payment.status,
                             provider_payment_id=payment.provider_payment_id, customer_id=payment.customer_id,
                             **_amount(payment))
    uow.publish("payment.created", str(payment.id), payload, partition_key=payment.order_id)


def publish_succeeded(uow: UnitOfWork, payment: Payment) -> None:
    payload = PaymentSucceeded(payment_id=str(payment.id), order_id=payment.order_id,
                               customer_id=payment.customer_id, provider_payment_id=payment.provider_payment_id,
                               **_amount(payment))
    uow.publish("payment.succeeded", str(payment.id), payload, partition_key=payment.order_id)


def publish_failed(uow: UnitOfWork, payment: Payment) -> None:
    payload = PaymentFailed(payment_id=str(payment.id), order_id=payment.order_id,
                            reason=payment.failure_reason or "failed", customer_id=payment.customer_id,
                            failure_code=payment.failure_code, provider_payment_id=payment.provider_payment_id)
    uow.publish("payment.failed", str(payment.id), payload, partition_key=payment.order_id)


def publish_refunded(uow: UnitOfWork, payment: Payment, reason: str) -> None:
    payload = PaymentRefunded(payment_id=str(payment.id), order_id=payment.order_id,
                              customer_id=payment.customer_id, refund_id=payment.refund_id, reason=reason,
                              **_amount(payment))
    uow.publish("payment.refunded", str(payment.id), payload, partition_key=payment.order_id)


# seat payments


@dataclass(frozen=True)
class SeatPaymentRow:
    id: uuid.UUID
    campaign_id: str
    customer_id: str
    sku: str
    amount_minor: int
    currency: str
    status: str
    attempt: int
    campaign: dict[str, Any]
    provider_payment_id: str | None
    client_secret: str | None
    failure_code: str | None
    failure_reason: str | None
    refund_id: str | None
    created_at: datetime
    updated_at: datetime


SEAT_COLUMNS = ", ".join(column.name for column in fields(SeatPaymentRow))


def claim_seat_payment(db: Sql, campaign: Campaign, customer_id: str, amount_minor: int) -> SeatPaymentRow | None:
    """The seat's new pending payment (or its next attempt after a decline or release); None when the seat
    already has one under way or settled."""
    reholdable = ", ".join(f"'{status}'" for status in SEAT_REHOLDABLE)
    return db.execute(
        "INSERT INTO payments.seat_payments (id, campaign_id, customer_id, sku, amount_minor, currency, status, "
        "campaign) VALUES (:id, :campaign_id, :customer, :sku, :amount, :currency, 'pending', "
        "CAST(:campaign AS jsonb)) "
        "ON CONFLICT (campaign_id, customer_id) DO UPDATE SET status = 'pending', "
        "attempt = payments.seat_payments.attempt + 1, provider_payment_id = NULL, client_secret = NULL, "
        "failure_code = NULL, failure_reason = NULL, campaign = EXCLUDED.campaign, updated_at = now() "
        f"WHERE payments.seat_payments.status IN ({reholdable}) RETURNING {SEAT_COLUMNS}",
        {"id": uuid.uuid4(), "campaign_id": campaign.id, "customer": customer_id, "sku": campaign.sku,
         "amount": amount_minor, "currency": campaign.currency, "campaign": campaign.model_dump_json(by_alias=True)},
    ).first_as(SeatPaymentRow)


def _seat_where(db: Sql, condition: str, params: dict[str, Any], *, lock: bool) -> SeatPaymentRow | None:
    locking = " FOR UPDATE" if lock else ""
    return db.execute(
        f"SELECT {SEAT_COLUMNS} FROM payments.seat_payments WHERE {condition}{locking}", params
    ).first_as(SeatPaymentRow)


def lock_seat_payment(db: Sql, campaign_id: str, customer_id: str) -> SeatPaymentRow | None:
    return _seat_where(db, "campaign_id = :campaign_id AND customer_id = :customer",
                       {"campaign_id": campaign_id, "customer": customer_id}, lock=True)


def find_seat_payment(db: Sql, campaign_id: str, customer_id: str) -> SeatPaymentRow | None:
    return _seat_where(db, "campaign_id = :campaign_id AND customer_id = :customer",
                       {"campaign_id": campaign_id, "customer": customer_id}, lock=False)


def lock_seat_payment_of_intent(db: Sql, intent_id: str) -> SeatPaymentRow | None:
    return _seat_where(db, "provider_payment_id = :intent", {"intent": intent_id}, lock=True)


def find_seat_payments(db: Sql, page: Page, *, campaign_id: str | None, status: str | None,
                       customer_id: str | None) -> list[SeatPaymentRow]:
    """One page of seat payments, oldest first; only the customer's own when `customer_id` is given."""
    return _page(db, page, "seat_payments", SeatPaymentRow, customer_id, campaign_id=campaign_id, status=status)


def attach_seat_intent(db: Sql, seat: SeatPaymentRow, intent_id: str,
                       client_secret: str | None) -> SeatPaymentRow | None:
    """Record the intent of the seat's attempt; None when the seat has one, or moved to another attempt."""
    return db.execute(
        "UPDATE payments.seat_payments SET provider_payment_id = :intent, client_secret = :secret, updated_at = now() "
        "WHERE id = :id AND attempt = :attempt AND status = 'pending' AND provider_payment_id IS NULL "
        f"RETURNING {SEAT_COLUMNS}",
        {"id": seat.id, "attempt": seat.attempt, "intent": intent_id, "secret": client_secret},
    ).first_as(SeatPaymentRow)


# A seat's unstarted payment is its claimer's while `updated_at` is younger than the lease (seat payments
# have no schedule of their own): a claim given up is dated back by the lease.


def take_over_seat_start(db: Sql, seat_id: uuid.UUID, lease_seconds: float) -> SeatPaymentRow | None:
    """Claim a seat payment with no intent whose claim lapsed or was given up; None otherwise."""
    return db.execute(
        "UPDATE payments.seat_payments SET updated_at = now() "
        f"WHERE id = :id AND {UNSTARTED} AND updated_at <= now() - make_interval(secs => :lease) "
        f"RETURNING {SEAT_COLUMNS}",
        {"id": seat_id, "lease": lease_seconds},
    ).first_as(SeatPaymentRow)


def release_seat_start(db: Sql, seat_id: uuid.UUID, lease_seconds: float) -> None:
    """Give up the claim of a seat payment whose intent could not be created: its retry may create it at once."""
    db.execute(
        "UPDATE payments.seat_payments SET updated_at = now() - make_interval(secs => :lease) "
        f"WHERE id = :id AND {UNSTARTED}",
        {"id": seat_id, "lease": lease_seconds},
    )


def move_seat_payment(db: Sql, seat_id: uuid.UUID, target: str, **fields: str | None) -> SeatPaymentRow | None:
    """Move a seat payment to `target` if that is a forward move from its status; the new row, or None."""
    sources = [status for status in SEAT_STATUSES if seat_can_move(status, target)]
    return _move_forward(db, "seat_payments", SeatPaymentRow, seat_id, target, sources, fields)


def _seat_amount(seat: SeatPaymentRow) -> dict[str, Any]:
    return {"payment_id": str(seat.id), "campaign_id": seat.campaign_id, "user_id": seat.customer_id,
            "amount": to_decimal(seat.amount_minor, seat.currency), "currency": seat.currency}


def publish_seat_moved(uow: UnitOfWork, topic: str, seat: SeatPaymentRow) -> None:
    """payment.seat.authorized, .captured (with the campaign, for the group order) or .refunded."""
    campaign = Campaign.model_validate(seat.campaign) if topic == "payment.seat.captured" else None
    uow.publish(topic, seat.campaign_id, SeatPayment(campaign=campaign, **_seat_amount(seat)))


def publish_seat_failed(uow: UnitOfWork, topic: str, seat: SeatPaymentRow) -> None:
    """payment.seat.declined or payment.seat.capture-failed, with the reason."""
    payload = SeatPaymentFailed(payment_id=str(seat.id), campaign_id=seat.campaign_id, user_id=seat.customer_id,
                                reason=seat.failure_reason or "failed", failure_code=seat.failure_code)
    uow.publish(topic, seat.campaign_id, payload)
