"""payments: a customer's own payments are listed by an index

Revision ID: p0002
Revises: p0001
Create Date: 2026-12-01
"""

from alembic import op

revision = "p0002"
down_revision = "p0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX payments_by_customer ON payments.payments (customer_id, created_at, id)")


def downgrade() -> None:
    op.execute("DROP INDEX payments.payments_by_customer")
