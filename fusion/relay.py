"""The outbox relay: publishes committed outbox rows to Kafka.

It wakes on the NOTIFY that every unit of work sends at commit, so an event is published right
after its transaction commits, and it sweeps every `sweep_interval` seconds for rows left behind
while the broker was down. Rows are marked published only once the broker acknowledged them, so
nothing is lost; a row may be published twice after a crash, which the consumers' inbox absorbs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from fusion import metrics, tracing, wakeup
from fusion.binding import Event
from fusion.config import to_libpq_url
from fusion.kafka import ensure_topics, group_lag, produce, producer
from fusion.topics import all_topic_names
from fusion.uow import OUTBOX_CHANNEL

log = logging.getLogger("fusion.relay")
BATCH_SIZE = 500
KEEP_PUBLISHED_SECONDS = 24 * 3600


class PublishFailed(RuntimeError):
    """Some outbox rows were not acknowledged by the broker; they stay unpublished."""


class OutboxRelay:
    def __init__(self, database_url: str, brokers: str, schemas: list[str], *, flush_timeout: float = 10.0):
        self.database_url = to_libpq_url(database_url)
        self.brokers = brokers
        self.schemas = schemas
        self.flush_timeout = flush_timeout
        self._producer: Any = None
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self.published = 0

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.database_url, row_factory=tuple_row, connect_timeout=3)
        return self._conn

    def _kafka(self) -> Any:
        if self._producer is None:
            self._producer = producer(self.brokers)
        return self._producer

    def publish_pending(self, schemas: Iterable[str] | None = None) -> int:
        """One pass over the outboxes of `schemas` (default: all); returns how many rows were published."""
        total = 0
        for schema in self.schemas if schemas is None else schemas:
            while True:
                count, full_batch = self._publish_batch(schema)
                total += count
                if not full_batch:
                    break
        self.published += total
        return total

    def _publish_batch(self, schema: str) -> tuple[int, bool]:
        conn = self._connection()
        with conn.transaction():
            rows = conn.execute(
                f"SELECT id, topic, attributes, payload FROM {schema}.outbox WHERE published_at IS NULL "
                "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                (BATCH_SIZE,),
            ).fetchall()
            if not rows:
                return 0, False
            started = time.perf_counter()
            delivered = self._produce(rows)
            metrics.observe_publish(schema, time.perf_counter() - started)
            if delivered:
                conn.execute(f"UPDATE {schema}.outbox SET published_at = now() WHERE id = ANY(%s)", (delivered,))
        if len(delivered) < len(rows):
            raise PublishFailed(f"{len(rows) - len(delivered)} of {len(rows)} events from {schema} not acknowledged")
        return len(rows), len(rows) == BATCH_SIZE

    def _produce(self, rows: list[tuple[Any, ...]]) -> list[int]:
        kafka = self._kafka()
        delivered: list[int] = []

        def acknowledged(row_id: int) -> Callable[[Any, Any], None]:
            def callback(error: Any, _message: Any) -> None:
                if error is None:
                    delivered.append(row_id)
                else:
                    log.warning("broker refused outbox row %s: %s", row_id, error)

            return callback

        for row_id, topic_name, attributes, payload in rows:
            event = Event(attributes, bytes(payload) if payload is not None else None)
            with tracing.span(f"publish {topic_name}", "producer", event.attributes.get("traceparent"),
                              {"messaging.destination.name": topic_name, "messaging.message.id": event.id}) as traced:
                produce(kafka, topic_name, tracing.carried_by(event, traced), on_delivery=acknowledged(row_id))
            kafka.poll(0)
        kafka.flush(self.flush_timeout)
        acknowledged_rows = set(delivered)
        wakeup.sender().published(row[1] for row in rows if row[0] in acknowledged_rows)
        return delivered

    def delete_published(self, older_than: float = KEEP_PUBLISHED_SECONDS) -> None:
        conn = self._connection()
        with conn.transaction():
            for schema in self.schemas:
                conn.execute(
                    f"DELETE FROM {schema}.outbox WHERE published_at < now() - make_interval(secs => %s)",
                    (older_than,),
                )

    def backlog(self) -> dict[str, tuple[int, float]]:
        """Per schema: the outbox rows waiting to be published, and the age in seconds of the oldest one.

        Its own connection: Prometheus scrapes from another thread than the one publishing."""
        with psycopg.connect(self.database_url, row_factory=tuple_row, connect_timeout=3, autocommit=True) as conn:
            return {schema: conn.execute(
                f"SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 "
                f"FROM {schema}.outbox WHERE published_at IS NULL").fetchone() or (0, 0.0)
                for schema in self.schemas}

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(2)
        if self._conn is not None:
            self._conn.close()

    def run(self, stop: threading.Event, sweep_interval: float = 1.0) -> None:
        """Publish on every commit notification and every sweep, until `stop` is set."""
        backoff = 0.5
        last_cleanup = 0.0
        listener: psycopg.Connection[tuple[Any, ...]] | None = None
        committed: set[str] | None = None  # None: sweep every schema
        last_sweep = 0.0
        while not stop.is_set():
            try:
                if listener is None or listener.closed:
                    listener = psycopg.connect(self.database_url, autocommit=True, connect_timeout=3)
                    listener.execute(f"LISTEN {OUTBOX_CHANNEL}")
                    committed = None
                if time.monotonic() - last_sweep > sweep_interval:
                    committed = None  # a busy stream of commits must not starve the sweep
                if committed is None:
                    last_sweep = time.monotonic()
                    committed = self._waiting_schemas(listener)
                self.publish_pending(committed)
                backoff = 0.5
                if time.monotonic() - last_cleanup > 60:
                    self.delete_published()
                    last_cleanup = time.monotonic()
                committed = self._wait_for_commits(listener, sweep_interval)
            except PublishFailed as exc:
                committed = None
                log.warning("%s; retrying in %.1f s", exc, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                self._recreate_topics()
            except psycopg.OperationalError as exc:
                committed = None
                log.warning("database unavailable for the relay: %s; retrying in %.1f s", exc, backoff)
                listener = None
                self._conn = None
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        if listener is not None:
            listener.close()
        self.close()

    def _wait_for_commits(self, listener: psycopg.Connection[tuple[Any, ...]], timeout: float) -> set[str] | None:
        """The schemas whose transactions committed events (from their NOTIFY), or None when the sweep is due."""
        notified = {note.payload for note in listener.notifies(timeout=timeout, stop_after=1)}
        if not notified:
            return None
        notified |= {note.payload for note in listener.notifies(timeout=0.001)}  # the ones that came meanwhile
        return notified & set(self.schemas)

    def _waiting_schemas(self, conn: psycopg.Connection[tuple[Any, ...]]) -> set[str]:
        """The schemas with unpublished rows, asked in one statement: a sweep of a quiet platform is one
        round trip, not a transaction per schema."""
        probes = " UNION ALL ".join(
            f"SELECT '{schema}' WHERE EXISTS (SELECT 1 FROM {schema}.outbox WHERE published_at IS NULL)"
            for schema in self.schemas)
        return {row[0] for row in conn.execute(probes).fetchall()} if probes else set()

    def _recreate_topics(self) -> None:
        """A memory-only broker that restarted has lost its topics: create them again."""
        try:
            ensure_topics(self.brokers, all_topic_names(), timeout=3)
        except Exception as exc:
            log.info("topics not checked, broker still unavailable: %s", exc)


def register_metrics(relay: OutboxRelay, trigger_groups: Mapping[str, str]) -> None:
    """The relay's gauges, read on each scrape: every outbox's backlog and, given the Triggers' consumer
    groups (group → handler), their lag as Kafka has it: the cluster's counterpart of the local router's."""
    def backlog(column: int) -> dict[tuple[str, ...], float]:
        return {(schema,): float(row[column]) for schema, row in relay.backlog().items()}

    gauges = [
        metrics.Gauges(metrics.OUTBOX_WAITING, "outbox rows not yet published", ["schema"], lambda: backlog(0)),
        metrics.Gauges(metrics.OUTBOX_OLDEST, "age of the oldest unpublished outbox row", ["schema"],
                       lambda: backlog(1)),
    ]
    if trigger_groups:
        gauges.append(metrics.Gauges(
            metrics.CONSUMER_LAG, "messages a handler's consumer group has not committed yet", ["handler", "group"],
            lambda: {(trigger_groups[group], group): float(lag)
                     for group, lag in group_lag(relay.brokers, trigger_groups).items()}))
    metrics.register_gauges(*gauges)
