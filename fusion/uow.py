"""Unit of work: one database transaction that carries the state change, its outgoing events
(transactional outbox) and the record of the incoming event it handles (inbox)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from fusion.binding import Event, new_event
from fusion.contracts import Contract
from fusion.db import Connection, Result, pool
from fusion.topics import topic_for_type
from fusion.tracing import current_traceparent

OUTBOX_CHANNEL = "fusion_outbox"


def schema_of(service: str) -> str:
    """The PostgreSQL schema that holds a service's tables."""
    return service.replace("-", "_")


class UnitOfWork:
    def __init__(self, service: str, conn: Connection) -> None:
        self.service = service
        self.schema = schema_of(service)
        self.conn = conn
        self.events: list[Event] = []

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> Result:
        return self.conn.execute(sql, params)

    def publish(self, topic: str, subject: str, payload: Contract, partition_key: str | None = None) -> Event:
        """Queue an event; it is written to the outbox when the transaction commits."""
        event = new_event(
            topic, self.service, subject, payload, partition_key=partition_key,
            traceparent=current_traceparent.get(),
        )
        self.events.append(event)
        return event

    def first_delivery(self, consumer: str, event: Event) -> bool:
        """Record `event` as handled by `consumer`; False when it was handled before."""
        row = self.execute(
            f"INSERT INTO {self.schema}.inbox (consumer, event_source, event_id) "
            "VALUES (:consumer, :source, :id) ON CONFLICT DO NOTHING RETURNING 1",
            {"consumer": consumer, "source": event.source, "id": event.id},
        ).first()
        return row is not None

    def flush_outbox(self) -> None:
        if not self.events:
            return
        self.execute(
            f"INSERT INTO {self.schema}.outbox (event_id, topic, key, attributes, payload) "
            "SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:topics AS text[]), CAST(:keys AS text[]), "
            "CAST(:attributes AS jsonb[]), CAST(:payloads AS bytea[]))",
            {
                "ids": [e.id for e in self.events],
                "topics": [topic_for_type(e.type).name for e in self.events],
                "keys": [e.partition_key for e in self.events],
                "attributes": [json.dumps(dict(e.attributes)) for e in self.events],
                "payloads": [e.data for e in self.events],
            },
        )
        self.execute(f"SELECT pg_notify('{OUTBOX_CHANNEL}', :schema)", {"schema": self.schema})
        self.events.clear()


@contextmanager
def reading(service: str) -> Iterator[UnitOfWork]:
    """A unit of work for reads: nothing it does is committed, and it publishes nothing."""
    with pool().connect() as conn:
        yield UnitOfWork(service, conn)


@contextmanager
def unit_of_work(service: str) -> Iterator[UnitOfWork]:
    """Commit the block's changes and its events together, or neither."""
    with pool().begin() as conn:
        uow = UnitOfWork(service, conn)
        yield uow
        uow.flush_outbox()
