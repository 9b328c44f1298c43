"""shipping: a customer's own shipments are listed by an index

Revision ID: s0002
Revises: s0001
Create Date: 2026-12-01
"""

from alembic import op

revision = "s0002"
down_revision = "s0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX shipments_by_customer ON shipping.shipments (customer_id, created_at, id)")


def downgrade() -> None:
    op.execute("DROP INDEX shipping.shipments_by_customer")
