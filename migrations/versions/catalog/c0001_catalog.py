"""catalog: products

Revision ID: c0001
Revises:
Create Date: 2026-11-26
"""

from alembic import op

from fusion.plumbing import create_service_schema, drop_service_schema

revision = "c0001"
down_revision = None
branch_labels = ("catalog",)
depends_on = None


def upgrade() -> None:
    create_service_schema(op, "catalog")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(
        """
        CREATE TABLE catalog.products (
            id UUID PRIMARY KEY,
            sku TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            description TEXT,
            price_minor BIGINT NOT NULL CHECK (price_minor >= 0),
            price_exponent SMALLINT NOT NULL,
            price NUMERIC GENERATED ALWAYS AS (price_minor / (10::numeric ^ price_exponent)) STORED,
            currency CHAR(3) NOT NULL,
            inventory INTEGER NOT NULL CHECK (inventory >= 0),
            category TEXT,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )"""
    )
    op.execute("CREATE INDEX products_listing ON catalog.products (created_at, id)")
    op.execute("CREATE INDEX products_category ON catalog.products (category, created_at, id)")
    op.execute("CREATE INDEX products_price ON catalog.products (price)")
    op.execute(
        "CREATE INDEX products_text ON catalog.products "
        "USING gin ((name || ' ' || coalesce(description, '')) gin_trgm_ops)"
    )


def downgrade() -> None:
    drop_service_schema(op, "catalog")
