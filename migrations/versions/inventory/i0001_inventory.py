"""inventory: stock per sku and reservations per order

Revision ID: i0001
Revises:
Create Date: 2026-11-26
"""

from alembic import op

from fusion.plumbing import create_service_schema, drop_service_schema

revision = "i0001"
down_revision = None
branch_labels = ("inventory",)
depends_on = None


def upgrade() -> None:
    create_service_schema(op, "inventory")
    # The checks are the last line of defence against overselling: reserved stock never exceeds stock on hand.
    op.execute(
        """
        CREATE TABLE inventory.stock (
            sku TEXT PRIMARY KEY,
            on_hand INTEGER NOT NULL CHECK (on_hand >= 0),
            reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
            available INTEGER GENERATED ALWAYS AS (on_hand - reserved) STORED,
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            CONSTRAINT stock_reserved_within_on_hand CHECK (reserved <= on_hand)
        )"""
    )
    # One row per order ever seen: 'released' without items remembers a cancellation that arrived
    # before the order, so the late order.created reserves nothing.
    op.execute(
        """
        CREATE TABLE inventory.reservations (
            order_id TEXT PRIMARY KEY,
            status TEXT NOT NULL CHECK (status IN ('reserved', 'refused', 'released', 'sold')),
            reason TEXT,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )"""
    )
    op.execute(
        """
        CREATE TABLE inventory.reservation_items (
            order_id TEXT NOT NULL REFERENCES inventory.reservations (order_id) ON DELETE CASCADE,
            sku TEXT NOT NULL,
            quantity INTEGER NOT NULL CHECK (quantity > 0),
            PRIMARY KEY (order_id, sku)
        )"""
    )


def downgrade() -> None:
    drop_service_schema(op, "inventory")
