"""`fusion verify`: the business invariants that hold across the services' data, audited in PostgreSQL.

Each check is one SQL query returning the rows that break it (nothing when it holds), so a check is
added by appending a `Check` to `CHECKS`. `violations()` runs them all; a rollback gate calls it.
The time limits come from the platform's own policies (`Limits.from_settings`): a confirmed order
waits for its payment ORDER_HOLD_SECONDS and the expiry runs every minute; every other step of the
saga is a couple of event hops, each of which the router gives up on after its delivery policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fusion.db import Connection, pool

EXPIRY_EVERY_SECONDS = 60  # the unpaid-order expiry is scheduled every minute
HOPS_PER_STEP = 2  # e.g. created → (order.created) → reserved → (inventory.reserved) → confirmed
UNPUBLISHED_AFTER_SECONDS = 60.0  # the relay publishes on commit and sweeps every second
PAID = "('paid', 'shipped', 'delivered')"  # an order in one of these has been paid
SHIPPED = "('shipped', 'delivered')"
COUNTED_SEATS = "('authorized', 'confirmed', 'captured', 'refunded')"  # what a campaign's actualParticipants counts


@dataclass(frozen=True)
class Limits:
    """How long an order may stay in a state, and an outbox row unpublished, before it is a violation."""

    confirmed_seconds: float  # confirmed, waiting for its payment
    step_seconds: float  # created or paid, waiting for the next event
    unpublished_seconds: float = UNPUBLISHED_AFTER_SECONDS

    @classmethod
    def from_settings(cls, unpublished_seconds: float = UNPUBLISHED_AFTER_SECONDS) -> Limits:
        from fusion.config import settings

        step = HOPS_PER_STEP * longest_delivery_seconds()
        return cls(settings().order_hold_seconds + EXPIRY_EVERY_SECONDS + step, step, unpublished_seconds)

    def params(self) -> dict[str, float]:
        return {"confirmed_seconds": self.confirmed_seconds, "step_seconds": self.step_seconds,
                "unpublished_seconds": self.unpublished_seconds}


def longest_delivery_seconds() -> float:
    """The longest an event handler's delivery lasts before it is dead-lettered: every attempt timing out."""
    from fusion.registry import load_all

    policies = [spec.policy for spec in load_all().values() if spec.kind == "cloudevent"]
    return max(sum(p.wait_before(n) for n in range(1, p.retries + 1)) + (p.retries + 1) * p.timeout
               for p in policies)


@dataclass(frozen=True)
class Check:
    name: str
    meaning: str  # what must hold
    sql: str  # the rows that break it; may use :confirmed_seconds, :step_seconds, :unpublished_seconds


@dataclass(frozen=True)
class Violation:
    check: str
    meaning: str
    row: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        found = ", ".join(f"{name}={value}" for name, value in self.row.items())
        return f"{self.check}: {self.meaning} ({found})"


CHECKS: list[Check] = [
    Check("no-negative-stock", "stock on hand, reserved and available are never negative",
          "SELECT sku, on_hand, reserved, available FROM inventory.stock "
          "WHERE on_hand < 0 OR reserved < 0 OR available < 0"),
    Check("reserved-stock-is-open-reservations", "a sku's reserved stock equals the units of its open reservations",
          "SELECT s.sku, s.reserved, COALESCE(r.units, 0) AS open_reservations FROM inventory.stock s "
          "LEFT JOIN (SELECT i.sku, SUM(i.quantity) AS units FROM inventory.reservations r "
          "JOIN inventory.reservation_items i USING (order_id) WHERE r.status = 'reserved' GROUP BY i.sku) r "
          "USING (sku) WHERE s.reserved <> COALESCE(r.units, 0)"),
    # A group order's payment is its seat's charge, linked by payments: it has one too.
    Check("paid-order-has-one-succeeded-payment", "every paid order has exactly one succeeded payment",
          f"SELECT o.id AS order_id, o.status, COALESCE(p.status, 'none') AS payment FROM orders.orders o "
          f"LEFT JOIN payments.payments p ON p.order_id = o.id::text "
          f"WHERE o.status IN {PAID} AND p.status IS DISTINCT FROM 'succeeded'"),
    Check("succeeded-payment-has-order", "every succeeded payment belongs to an order",
          "SELECT p.id AS payment_id, p.order_id FROM payments.payments p "
          "LEFT JOIN orders.orders o ON o.id::text = p.order_id WHERE p.status = 'succeeded' AND o.id IS NULL"),
    Check("shipped-order-has-label", "every shipped order has a shipment with its label",
          f"SELECT o.id AS order_id, o.status FROM orders.orders o "
          f"LEFT JOIN shipping.shipments s ON s.order_id = o.id::text "
          f"LEFT JOIN shipping.labels l ON l.shipment_id = s.id WHERE o.status IN {SHIPPED} AND l.shipment_id IS NULL"),
    Check("shipped-order-was-paid", "every shipped order has `paid` in its status history",
          f"SELECT o.id AS order_id, o.status FROM orders.orders o WHERE o.status IN {SHIPPED} AND NOT EXISTS "
          f"(SELECT 1 FROM orders.order_history h WHERE h.order_id = o.id AND h.status = 'paid')"),
    Check("campaign-seats-are-participants",
          "a campaign's seat counts equal its participants: counted seats (an expired campaign's released at "
          "expiry) and seats waiting for their card",
          f"SELECT c.id AS campaign_id, c.status, c.actual_participants, c.held_seats, "
          f"COALESCE(p.counted, 0) AS counted, COALESCE(p.held, 0) AS held FROM group_commerce.campaigns c "
          f"LEFT JOIN (SELECT campaign_id, count(*) FILTER (WHERE status IN {COUNTED_SEATS} "
          f"OR (status = 'released' AND status_reason = 'campaign_expired')) AS counted, "
          f"count(*) FILTER (WHERE status = 'held') AS held FROM group_commerce.participants GROUP BY campaign_id) p "
          f"ON p.campaign_id = c.id "
          f"WHERE c.actual_participants <> COALESCE(p.counted, 0) OR c.held_seats <> COALESCE(p.held, 0)"),
    Check("campaign-within-maximum", "a campaign never has more seats, counted or waiting, than its maximum",
          "SELECT id AS campaign_id, actual_participants, held_seats, max_participants FROM group_commerce.campaigns "
          "WHERE actual_participants + held_seats > max_participants"),
    Check("charged-seat-has-group-order", "every charged campaign seat becomes a group order",
          "SELECT s.campaign_id, s.customer_id FROM payments.seat_payments s WHERE s.status IN ('captured', "
          "'refunded') AND s.updated_at < now() - make_interval(secs => :step_seconds) AND NOT EXISTS "
          "(SELECT 1 FROM orders.orders o WHERE o.campaign_id = s.campaign_id AND o.customer_id = s.customer_id)"),
    Check("order-not-stuck", "no order waits in created, confirmed or paid longer than its policies allow",
          "SELECT id AS order_id, status, status_changed_at FROM orders.orders "
          "WHERE (status = 'confirmed' AND status_changed_at < now() - make_interval(secs => :confirmed_seconds)) "
          "OR (status IN ('created', 'paid') AND status_changed_at < now() - make_interval(secs => :step_seconds))"),
]


def outbox_check(schemas: list[str]) -> Check:
    """No outbox row of any service stays unpublished longer than the limit."""
    rows = " UNION ALL ".join(
        f"SELECT '{schema}' AS service, id, topic, created_at FROM {schema}.outbox "
        f"WHERE published_at IS NULL AND created_at < now() - make_interval(secs => :unpublished_seconds)"
        for schema in schemas
    )
    return Check("outbox-published", "no event stays unpublished in an outbox longer than the limit", rows)


def checks() -> list[Check]:
    from fusion.registry import services
    from fusion.uow import schema_of

    return [*CHECKS, outbox_check([schema_of(service) for service in services()])]


def violations(conn: Connection | None = None, limits: Limits | None = None) -> list[Violation]:
    """Every row that breaks a check, on `conn` (by default a connection of the pool, read only)."""
    params = (limits or Limits.from_settings()).params()
    if conn is not None:
        return _run(conn, params)
    with pool().connect(snapshot=True) as own:  # every check reads the same moment
        return _run(own, params)


def _run(conn: Connection, params: dict[str, float]) -> list[Violation]:
    found = []
    for check in checks():
        rows = conn.execute(check.sql, params).all()
        found += [Violation(check.name, check.meaning, row._asdict()) for row in rows]
    return found
