"""payments: seat payments of group campaigns, authorized at join and captured when the group forms

Revision ID: p0004
Revises: p0003
Create Date: 2026-12-02
"""

from alembic import op

revision = "p0004"
down_revision = "p0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE payments.seat_payments (
            id UUID PRIMARY KEY,
            campaign_id TEXT NOT NULL,
            customer_id TEXT NOT NULL,
            sku TEXT NOT NULL,
            amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
            currency CHAR(3) NOT NULL,
            status TEXT NOT NULL CHECK (status IN
                ('pending', 'authorized', 'declined', 'captured', 'capture_failed', 'released', 'refunded')),
            attempt INTEGER NOT NULL DEFAULT 1,
            campaign JSONB NOT NULL,
            provider_payment_id TEXT UNIQUE,
            client_secret TEXT,
            failure_code TEXT,
            failure_reason TEXT,
            refund_id TEXT,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            UNIQUE (campaign_id, customer_id)
        )"""
    )
    op.execute("CREATE INDEX seat_payments_listing ON payments.seat_payments (created_at, id)")
    # Group orders: payments links them to the seat payment that already charged the card.
    op.execute("ALTER TABLE payments.orders ADD COLUMN campaign_id TEXT")


def downgrade() -> None:
    op.execute("ALTER TABLE payments.orders DROP COLUMN campaign_id")
    op.execute("DROP TABLE payments.seat_payments")
