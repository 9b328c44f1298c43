"""payments: a check of a new intent is scheduled seconds after it is created

Revision ID: p0003
Revises: p0002
Create Date: 2026-12-02
"""

from alembic import op

revision = "p0003"
down_revision = "p0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE payments.payments ADD COLUMN next_check_at TIMESTAMPTZ")
    op.execute(
        "CREATE INDEX payments_checks_due ON payments.payments (next_check_at) "
        "WHERE status = 'pending' AND next_check_at IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX payments.payments_checks_due")
    op.execute("ALTER TABLE payments.payments DROP COLUMN next_check_at")
