"""inventory: a campaign's held stock is a reservation whose units pass to its group orders

Revision ID: i0002
Revises: i0001
Create Date: 2026-12-02
"""

from alembic import op

revision = "i0002"
down_revision = "i0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A campaign's hold shrinks as its seats become orders, down to nothing.
    op.execute("ALTER TABLE inventory.reservation_items DROP CONSTRAINT reservation_items_quantity_check")
    op.execute(
        "ALTER TABLE inventory.reservation_items ADD CONSTRAINT reservation_items_quantity_check "
        "CHECK (quantity >= 0)"
    )


def downgrade() -> None:
    op.execute("DELETE FROM inventory.reservation_items WHERE quantity = 0")
    op.execute("ALTER TABLE inventory.reservation_items DROP CONSTRAINT reservation_items_quantity_check")
    op.execute(
        "ALTER TABLE inventory.reservation_items ADD CONSTRAINT reservation_items_quantity_check "
        "CHECK (quantity > 0)"
    )
