"""shipping: paid-order projection, shipments, labels and tracking history

Revision ID: s0001
Revises:
Create Date: 2026-11-26
"""

from alembic import op

from fusion.plumbing import create_service_schema, drop_service_schema

revision = "s0001"
down_revision = None
branch_labels = ("shipping",)
depends_on = None


def upgrade() -> None:
    create_service_schema(op, "shipping")
    # Orders that payments reported paid (and later refunded), fed by payment.* events.
    op.execute(
        """
        CREATE TABLE shipping.paid_orders (
            order_id TEXT PRIMARY KEY,
            payment_id TEXT,
            customer_id TEXT,
            paid_at TIMESTAMPTZ,
            refunded_at TIMESTAMPTZ
        )"""
    )
    op.execute(
        """
        CREATE TABLE shipping.shipments (
            id UUID PRIMARY KEY,
            order_id TEXT NOT NULL UNIQUE,
            carrier TEXT NOT NULL,
            tracking_number TEXT NOT NULL UNIQUE,
            status TEXT NOT NULL CHECK (status IN ('label_created', 'in_transit', 'delivered', 'cancelled')),
            label_url TEXT NOT NULL,
            customer_id TEXT,
            recipient TEXT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            delivered_at TIMESTAMPTZ
        )"""
    )
    op.execute("CREATE INDEX shipments_listing ON shipping.shipments (created_at, id)")
    op.execute(
        """
        CREATE TABLE shipping.labels (
            shipment_id UUID PRIMARY KEY REFERENCES shipping.shipments (id) ON DELETE CASCADE,
            content_type TEXT NOT NULL,
            document BYTEA NOT NULL
        )"""
    )
    op.execute(
        """
        CREATE TABLE shipping.tracking_events (
            id BIGSERIAL PRIMARY KEY,
            shipment_id UUID NOT NULL REFERENCES shipping.shipments (id) ON DELETE CASCADE,
            status TEXT NOT NULL,
            description TEXT NOT NULL,
            location TEXT,
            occurred_at TIMESTAMPTZ NOT NULL,
            recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )"""
    )
    op.execute("CREATE INDEX tracking_events_history ON shipping.tracking_events (shipment_id, occurred_at, id)")


def downgrade() -> None:
    drop_service_schema(op, "shipping")
