"""group-commerce: the product copies keep when their price was set, so the newest price wins

Revision ID: g0002
Revises: g0001
Create Date: 2026-12-02
"""

from alembic import op

revision = "g0002"
down_revision = "g0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Copies made before this column existed have no known price time: the epoch, older than any
    # announcement, so the next product.created or product.updated heard replaces them.
    op.execute("ALTER TABLE group_commerce.products ADD COLUMN updated_at TIMESTAMPTZ NOT NULL DEFAULT to_timestamp(0)")
    op.execute("ALTER TABLE group_commerce.products ALTER COLUMN updated_at DROP DEFAULT")


def downgrade() -> None:
    op.execute("ALTER TABLE group_commerce.products DROP COLUMN updated_at")
