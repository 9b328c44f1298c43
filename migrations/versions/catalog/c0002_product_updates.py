"""catalog: products can be changed; updated_at is when their price (and the rest) was last set

Revision ID: c0002
Revises: c0001
Create Date: 2026-12-02
"""

from alembic import op

revision = "c0002"
down_revision = "c0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A product never changed was last set when it was created.
    op.execute("ALTER TABLE catalog.products ADD COLUMN updated_at TIMESTAMPTZ")
    op.execute("UPDATE catalog.products SET updated_at = created_at")
    op.execute("ALTER TABLE catalog.products ALTER COLUMN updated_at SET NOT NULL, "
               "ALTER COLUMN updated_at SET DEFAULT now()")


def downgrade() -> None:
    op.execute("ALTER TABLE catalog.products DROP COLUMN updated_at")
