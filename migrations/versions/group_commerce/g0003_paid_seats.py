"""group-commerce: seats paid by an authorization, campaigns backed by held stock

Revision ID: g0003
Revises: g0002
Create Date: 2026-12-02
"""

from alembic import op

revision = "g0003"
down_revision = "g0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # "pending" until inventory holds the stock for every seat; "refused" when it could not.
    op.execute("ALTER TABLE group_commerce.campaigns DROP CONSTRAINT campaigns_status_check")
    op.execute(
        "ALTER TABLE group_commerce.campaigns ADD CONSTRAINT campaigns_status_check "
        "CHECK (status IN ('pending', 'refused', 'active', 'successful', 'expired', 'closed'))"
    )
    op.execute("ALTER TABLE group_commerce.campaigns ALTER COLUMN status SET DEFAULT 'pending'")
    op.execute(
        "ALTER TABLE group_commerce.campaigns "
        "ADD COLUMN held_seats INTEGER NOT NULL DEFAULT 0 CHECK (held_seats >= 0), "
        "ADD COLUMN refunded_seats INTEGER NOT NULL DEFAULT 0 CHECK (refunded_seats >= 0), "
        "ADD COLUMN leader TEXT, "
        "ADD COLUMN status_reason TEXT, "
        # Seats being paid for count against the maximum too: nobody pays for a seat that is not there.
        "ADD CONSTRAINT campaigns_seats_within_max CHECK (actual_participants + held_seats <= max_participants)"
    )
    # held: waiting for its authorization; authorized: counted; confirmed: to be charged (the group
    # formed); captured: charged; released: never charged; failed: the charge failed; refunded.
    op.execute(
        "ALTER TABLE group_commerce.participants "
        "ADD COLUMN status TEXT NOT NULL DEFAULT 'authorized' CHECK (status IN "
        "('held', 'authorized', 'confirmed', 'captured', 'released', 'failed', 'refunded')), "
        "ADD COLUMN hold_expires_at TIMESTAMPTZ, "
        "ADD COLUMN status_reason TEXT, "
        "ADD COLUMN updated_at TIMESTAMPTZ NOT NULL DEFAULT now()"
    )
    op.execute(
        "CREATE INDEX participants_holds_due ON group_commerce.participants (hold_expires_at) "
        "WHERE status = 'held'"
    )
    op.execute(
        "CREATE INDEX participants_by_user ON group_commerce.participants (user_id) "
        "WHERE status IN ('held', 'authorized', 'confirmed')"
    )


def downgrade() -> None:
    op.execute("DROP INDEX group_commerce.participants_by_user")
    op.execute("DROP INDEX group_commerce.participants_holds_due")
    op.execute(
        "ALTER TABLE group_commerce.participants DROP COLUMN status, DROP COLUMN hold_expires_at, "
        "DROP COLUMN status_reason, DROP COLUMN updated_at"
    )
    op.execute(
        "ALTER TABLE group_commerce.campaigns DROP CONSTRAINT campaigns_seats_within_max, "
        "DROP COLUMN held_seats, DROP COLUMN refunded_seats, DROP COLUMN leader, DROP COLUMN status_reason"
    )
    op.execute("UPDATE group_commerce.campaigns SET status = 'expired' WHERE status IN ('pending', 'refused')")
    op.execute("ALTER TABLE group_commerce.campaigns ALTER COLUMN status SET DEFAULT 'active'")
    op.execute("ALTER TABLE group_commerce.campaigns DROP CONSTRAINT campaigns_status_check")
    op.execute(
        "ALTER TABLE group_commerce.campaigns ADD CONSTRAINT campaigns_status_check "
        "CHECK (status IN ('active', 'successful', 'expired', 'closed'))"
    )
