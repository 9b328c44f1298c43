"""`fusion trace <order id>`: an order's saga as a timeline, from what the services stored.

Every event about the order is a row of its producer's outbox (topic, attributes, committed and
published times); every handler that took it is a row of its service's inbox (consumer, event id,
processed time); the order's own status history says when each fact happened. Published outbox rows
are kept for a day (the relay deletes older ones), so the timeline of an older order shows its
history only. The inbox records the delivery that succeeded; the attempts that failed before it (and
the deliveries given up on) come from the local router's log, which logs each one with the event and
handler (`.fusion/logs/router.log`; in the cluster, the delivery metrics count them instead).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fusion.db import Connection
from fusion.registry import services
from fusion.uow import schema_of


class UnknownOrder(LookupError):
    """No order has this id."""


@dataclass(frozen=True)
class Entry:
    at: datetime
    what: str  # "event", "handled", "status"
    service: str
    name: str  # topic, handler or status
    detail: str = ""


def _schemas() -> list[str]:
    return [schema_of(service) for service in services()]


def _order_id(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise UnknownOrder(f"{text!r} is not an order id (a UUID)") from None


def _ms(later: datetime, earlier: datetime) -> str:
    return f"{(later - earlier).total_seconds() * 1000:.0f} ms"


@dataclass(frozen=True)
class Published:
    event_id: str
    topic: str
    committed_at: datetime
    published_at: datetime | None


@dataclass(frozen=True)
class FailedAttempts:
    """What the router's log says of one event's delivery to one handler."""

    failed: int = 0
    dead_lettered: bool = False


def failed_attempts(log_lines: Iterable[str]) -> dict[tuple[str, str], FailedAttempts]:
    """(event id, handler) → its failed attempts, from the router's JSON log lines (others are skipped)."""
    found: dict[tuple[str, str], FailedAttempts] = {}
    for line in log_lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("failedAttempt"), int):
            continue
        key = (str(entry.get("eventId")), str(entry.get("handler")))
        seen = found.get(key, FailedAttempts())
        found[key] = FailedAttempts(max(seen.failed, entry["failedAttempt"]),
                                    seen.dead_lettered or entry.get("deadLettered") is True)
    return found


def router_log_attempts(log_file: Path | None) -> dict[tuple[str, str], FailedAttempts]:
    if log_file is None or not log_file.exists():
        return {}
    with log_file.open(encoding="utf-8", errors="replace") as lines:
        return failed_attempts(lines)


def saga_of(conn: Connection, order_text: str,
            attempts: dict[tuple[str, str], FailedAttempts] | None = None) -> tuple[str, list[Entry]]:
    """(a headline, the entries in time order) of the order's saga; `attempts` from the router's log."""
    order_id = _order_id(order_text)
    order = conn.execute("SELECT customer_id, status FROM orders.orders WHERE id = :id", {"id": order_id}).first()
    if order is None:
        raise UnknownOrder(f"no order {order_id}")
    events = _events(conn, order_id)
    entries = _history(conn, order_id) + [_event_entry(service, event) for service, event in events]
    entries += _deliveries(conn, {event.event_id: event for _, event in events}, attempts or {})
    entries.sort(key=lambda entry: (entry.at, ORDER_OF_KINDS.index(entry.what)))
    return f"order {order_id} of {order.customer_id}: {order.status}", entries


# Entries of one transaction share its time: the delivery it handled, then the status, then what it published.
ORDER_OF_KINDS = ("handled", "status", "event")


def _history(conn: Connection, order_id: str) -> list[Entry]:
    rows = conn.execute(
        "SELECT status, reason, occurred_at, late FROM orders.order_history WHERE order_id = :id ORDER BY id",
        {"id": order_id},
    ).all()
    return [Entry(row.occurred_at, "status", "orders", row.status,
                  "; ".join(part for part in (row.reason, "heard late" if row.late else None) if part))
            for row in rows]


def _events(conn: Connection, order_id: str) -> list[tuple[str, Published]]:
    """(producing service, event) of every event about the order still in an outbox: keyed or subject by it."""
    found = []
    for schema in _schemas():
        rows = conn.execute(
            f"SELECT event_id, topic, created_at, published_at FROM {schema}.outbox "
            "WHERE attributes->>'partitionkey' = :id OR attributes->>'subject' = :id ORDER BY id",
            {"id": order_id},
        ).all()
        found += [(schema, Published(row.event_id, row.topic, row.created_at, row.published_at)) for row in rows]
    return found


def _event_entry(service: str, event: Published) -> Entry:
    published = (f"published {_ms(event.published_at, event.committed_at)} after commit"
                 if event.published_at else "not published yet")
    return Entry(event.committed_at, "event", service, event.topic, published)


def _deliveries(conn: Connection, events: dict[str, Published],
                attempts: dict[tuple[str, str], FailedAttempts]) -> list[Entry]:
    """Each handler that took one of the events, from its service's inbox, with the attempts it took."""
    found = []
    handled: set[tuple[str, str]] = set()
    for schema in _schemas():
        rows = conn.execute(
            f"SELECT consumer, event_id, processed_at FROM {schema}.inbox WHERE event_id = ANY(:ids)",
            {"ids": list(events)},
        ).all()
        for row in rows:
            handled.add((row.event_id, row.consumer))
            event = events[row.event_id]
            detail = f"{event.topic}, {_ms(row.processed_at, event.committed_at)} after its commit"
            failed = attempts.get((row.event_id, row.consumer), FailedAttempts()).failed
            if failed:
                detail += f", attempt {failed + 1} ({failed} failed before)"
            found.append(Entry(row.processed_at, "handled", schema, row.consumer, detail))
    for (event_id, handler), seen in attempts.items():
        if event_id in events and seen.dead_lettered and (event_id, handler) not in handled:
            event = events[event_id]
            found.append(Entry(event.published_at or event.committed_at, "handled", "router", handler,
                               f"{event.topic}: dead-lettered after {seen.failed} attempts"))
    return found


def render(headline: str, entries: list[Entry]) -> str:
    """The timeline: time since the first entry, time since the entry before (the hop), what happened."""
    lines = [headline]
    if not entries:
        return headline + "\n  (nothing recorded)\n"
    start = previous = entries[0].at
    for entry in entries:
        marker = {"event": "event", "handled": "  →", "status": "status"}[entry.what]
        lines.append(f"  {_offset(entry.at, start):>10} {('+' + _ms(entry.at, previous)):>9}  "
                     f"{marker:<7}{entry.service:<15} {entry.name:<34} {entry.detail}".rstrip())
        previous = entry.at
    lines.append(f"{sum(e.what == 'event' for e in entries)} events, "
                 f"{sum(e.what == 'handled' for e in entries)} deliveries handled, "
                 f"{_ms(entries[-1].at, start)} from first to last")
    return "\n".join(lines) + "\n"


def _offset(at: datetime, start: datetime) -> str:
    seconds = (at - start).total_seconds()
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"
