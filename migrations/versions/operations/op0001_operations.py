"""operations: the record of replayed dead letters

Revision ID: op0001
Revises:
Create Date: 2026-12-02
"""

from alembic import op

from fusion.plumbing import create_service_schema, drop_service_schema

revision = "op0001"
down_revision = None
branch_labels = ("operations",)
depends_on = None


def upgrade() -> None:
    create_service_schema(op, "operations")
    op.execute(
        """
        CREATE TABLE operations.replays (
            id BIGSERIAL PRIMARY KEY,
            topic TEXT NOT NULL,
            event_id TEXT NOT NULL,
            replayed_by TEXT NOT NULL,
            replayed_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )"""
    )
    op.execute("CREATE INDEX replays_of_event ON operations.replays (topic, event_id)")


def downgrade() -> None:
    drop_service_schema(op, "operations")
