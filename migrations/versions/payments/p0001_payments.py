"""payments: order projection, payments and processed Stripe events

Revision ID: p0001
Revises:
Create Date: 2026-11-26
"""

from alembic import op

from fusion.plumbing import create_service_schema, drop_service_schema

revision = "p0001"
down_revision = None
branch_labels = ("payments",)
depends_on = None


def upgrade() -> None:
    create_service_schema(op, "payments")
    # What payments knows about orders, fed by order.* and inventory.* events.
    op.execute(
        """
        CREATE TABLE payments.orders (
            order_id TEXT PRIMARY KEY,
            customer_id TEXT,
            total_minor BIGINT CHECK (total_minor >= 0),
            currency CHAR(3),
            reserved BOOLEAN NOT NULL DEFAULT false,
            closed_as TEXT CHECK (closed_as IN ('cancelled', 'failed', 'expired')),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )"""
    )
    op.execute(
        """
        CREATE TABLE payments.payments (
            id UUID PRIMARY KEY,
            order_id TEXT NOT NULL UNIQUE,
            customer_id TEXT,
            amount_minor BIGINT NOT NULL CHECK (amount_minor >= 0),
            currency CHAR(3) NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'refunded')),
            provider TEXT NOT NULL DEFAULT 'stripe',
            provider_payment_id TEXT UNIQUE,
            client_secret TEXT,
            failure_code TEXT,
            failure_reason TEXT,
            refund_id TEXT,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            checked_at TIMESTAMPTZ
        )"""
    )
    op.execute("CREATE INDEX payments_listing ON payments.payments (created_at, id)")
    op.execute("CREATE INDEX payments_by_status ON payments.payments (status, created_at, id)")
    op.execute(
        "CREATE INDEX payments_to_reconcile ON payments.payments (coalesce(checked_at, created_at)) "
        "WHERE status = 'pending'"
    )
    op.execute(
        """
        CREATE TABLE payments.stripe_events (
            event_id TEXT PRIMARY KEY,
            type TEXT NOT NULL,
            received_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )"""
    )


def downgrade() -> None:
    drop_service_schema(op, "payments")
