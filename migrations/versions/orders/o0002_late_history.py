"""orders: the status history keeps facts that arrived late, at the time they happened

Revision ID: o0002
Revises: o0001
Create Date: 2026-12-01
"""

from alembic import op

revision = "o0002"
down_revision = "o0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # `at` stays the time an entry was written; `occurred_at` is when its fact happened.
    op.execute(
        "ALTER TABLE orders.order_history ADD COLUMN late BOOLEAN NOT NULL DEFAULT false, "
        "ADD COLUMN occurred_at TIMESTAMPTZ NOT NULL DEFAULT now()"
    )
    op.execute("UPDATE orders.order_history SET occurred_at = at")
    # The state machine reaches each status once, so one entry per status: a fact heard twice is kept once.
    op.execute("CREATE UNIQUE INDEX order_history_one_per_status ON orders.order_history (order_id, status)")


def downgrade() -> None:
    op.execute("DROP INDEX orders.order_history_one_per_status")
    op.execute("ALTER TABLE orders.order_history DROP COLUMN occurred_at, DROP COLUMN late")
