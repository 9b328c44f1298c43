"""The tables every service schema has: outbox, inbox and idempotency keys (used by migrations)."""

from __future__ import annotations

from typing import Any


def create_service_schema(op: Any, schema: str) -> None:
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    op.execute(
        f"""
        CREATE TABLE {schema}.outbox (
            id BIGSERIAL PRIMARY KEY,
            event_id TEXT NOT NULL,
            topic TEXT NOT NULL,
            key TEXT,
            attributes JSONB NOT NULL,
            payload BYTEA,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            published_at TIMESTAMPTZ
        )"""
    )
    op.execute(f"CREATE INDEX outbox_unpublished ON {schema}.outbox (id) WHERE published_at IS NULL")
    op.execute(f"CREATE INDEX outbox_published_at ON {schema}.outbox (published_at)")
    op.execute(
        f"""
        CREATE TABLE {schema}.inbox (
            consumer TEXT NOT NULL,
            event_source TEXT NOT NULL,
            event_id TEXT NOT NULL,
            processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (consumer, event_source, event_id)
        )"""
    )
    op.execute(
        f"""
        CREATE TABLE {schema}.idempotency_keys (
            scope TEXT NOT NULL,
            key TEXT NOT NULL,
            request_hash TEXT NOT NULL,
            status INTEGER NOT NULL,
            body JSONB NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (scope, key)
        )"""
    )


def drop_service_schema(op: Any, schema: str) -> None:
    op.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
