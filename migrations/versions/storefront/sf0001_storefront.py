"""storefront: the schema every service has (outbox, inbox, idempotency keys); the pages keep no data

The relay, the migrations and the checks treat every service alike, so the storefront has one too.

Revision ID: sf0001
Revises:
Create Date: 2026-12-02
"""

from alembic import op

from fusion.plumbing import create_service_schema, drop_service_schema

revision = "sf0001"
down_revision = None
branch_labels = ("storefront",)
depends_on = None


def upgrade() -> None:
    create_service_schema(op, "storefront")


def downgrade() -> None:
    drop_service_schema(op, "storefront")
