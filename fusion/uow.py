"""Unit of work: one database transaction that carries the state change, its outgoing events
(transactional outbox) and the record of the incoming event it handles (inbox).

A use case that waits on something slow (a payment provider) commits part-way with `commit()`: what
it did so far and its events are committed, the connection goes back to the pool while it waits,
and its next statement begins a new transaction. Such a use case must be safe to run again from the
start. If it then fails, the records that would make its retry a no-op (its inbox row, an unanswered
Idempotency-Key) are removed, so the retried delivery or request runs it again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any

from fusion.binding import Event, new_event
from fusion.contracts import Contract
from fusion.db import Connection, Result, pool
from fusion.topics import topic_for_type
from fusion.tracing import current_traceparent

OUTBOX_CHANNEL = "fusion_outbox"
log = logging.getLogger("fusion.uow")


def schema_of(service: str) -> str:
    """The PostgreSQL schema that holds a service's tables."""
    return service.replace("-", "_")


class UnitOfWork:
    def __init__(self, service: str, conn: Connection, transactions: ExitStack | None = None) -> None:
        self.service = service
        self.schema = schema_of(service)
        self._conn: Connection | None = conn
        self._transactions = transactions  # None: a reading unit of work, which commits nothing
        self.events: list[Event] = []
        self.committed_part = False
        self._undo_on_failure: list[tuple[str, dict[str, Any]]] = []

    @property
    def conn(self) -> Connection:
        """The connection of the current transaction; after `commit()`, a new one from the pool."""
        if self._conn is None:
            assert self._transactions is not None
            self._conn = self._transactions.enter_context(pool().begin())
        return self._conn

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> Result:
        return self.conn.execute(sql, params)

    def commit(self) -> None:
        """Commit the work so far with its events, and give the connection back until the next statement."""
        if self._transactions is None:
            raise RuntimeError("a reading unit of work commits nothing")
        if self._conn is not None:
            self.flush_outbox()
            self._transactions.close()
            self._conn = None
        self.committed_part = True

    def undo_on_failure(self, sql: str, params: dict[str, Any]) -> None:
        """Run `sql` in a transaction of its own if the work fails after committing part of it."""
        self._undo_on_failure.append((sql, params))

    def undo_after_failure(self) -> None:
        if not self.committed_part or not self._undo_on_failure:
            return
        try:
            with pool().begin() as conn:
                for sql, params in self._undo_on_failure:
                    conn.execute(sql, params)
        except Exception as exc:  # the database is down too: the retry finds the records, the checks finish the work
            log.warning("could not undo the records of a failed %s unit of work: %s", self.service, exc)

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
        if row is not None:
            self.undo_on_failure(
                f"DELETE FROM {self.schema}.inbox WHERE consumer = :consumer AND event_source = :source "
                "AND event_id = :id", {"consumer": consumer, "source": event.source, "id": event.id})
        return row is not None

    def flush_outbox(self) -> None:
        if not self.events:
            return
        # One round trip: a data-modifying WITH runs to completion whether or not the query reads it.
        self.execute(
            f"WITH written AS (INSERT INTO {self.schema}.outbox (event_id, topic, key, attributes, payload) "
            "SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:topics AS text[]), CAST(:keys AS text[]), "
            f"CAST(:attributes AS jsonb[]), CAST(:payloads AS bytea[]))) SELECT pg_notify('{OUTBOX_CHANNEL}', :schema)",
            {
                "ids": [e.id for e in self.events],
                "topics": [topic_for_type(e.type).name for e in self.events],
                "keys": [e.partition_key for e in self.events],
                "attributes": [json.dumps(dict(e.attributes)) for e in self.events],
                "payloads": [e.data for e in self.events],
                "schema": self.schema,
            },
        )
        self.events.clear()


@contextmanager
def reading(service: str, snapshot: bool = False) -> Iterator[UnitOfWork]:
    """A unit of work for reads: nothing it does is committed, and it publishes nothing. With `snapshot`,
    all its statements see the same moment."""
    with pool().connect(snapshot) as conn:
        yield UnitOfWork(service, conn)


@contextmanager
def unit_of_work(service: str) -> Iterator[UnitOfWork]:
    """Commit the block's changes and its events together, or neither (or, after `uow.commit()`, each part)."""
    uow: UnitOfWork | None = None
    try:
        with ExitStack() as transactions:
            uow = UnitOfWork(service, transactions.enter_context(pool().begin()), transactions)
            yield uow
            uow.flush_outbox()
    except BaseException:
        if uow is not None:
            uow.undo_after_failure()
        raise
