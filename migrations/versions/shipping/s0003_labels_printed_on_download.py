"""shipping: a label may be stored without its document, printed on its first download

Revision ID: s0003
Revises: s0002
Create Date: 2026-12-02
"""

from alembic import op

revision = "s0003"
down_revision = "s0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A label is stored when the order ships; the built-in carrier's document is printed on its first
    # download, from the shipment and the return address as it was at ship time (`sender`, one line an
    # element). Labels stored before keep their document and have no sender. A label always has one of them.
    op.execute(
        "ALTER TABLE shipping.labels ALTER COLUMN document DROP NOT NULL, ADD COLUMN sender TEXT[], "
        "ADD CONSTRAINT labels_printable CHECK (document IS NOT NULL OR sender IS NOT NULL)"
    )


def downgrade() -> None:
    # A label not printed yet cannot be printed in SQL, and dropping its row would leave a shipped order
    # without its label: refuse while any is left. Downloading each one (GET /shipments/{id}/label)
    # prints and stores it; then the downgrade goes through.
    op.execute(
        """
        DO $$
        DECLARE
            unprinted BIGINT := (SELECT count(*) FROM shipping.labels WHERE document IS NULL);
        BEGIN
            IF unprinted > 0 THEN
                RAISE EXCEPTION USING
                    MESSAGE = 'shipping labels not printed yet (document IS NULL): ' || unprinted,
                    HINT = 'download each of them (GET /shipments/{id}/label) to print it, then downgrade again';
            END IF;
        END
        $$"""
    )
    op.execute(
        "ALTER TABLE shipping.labels DROP CONSTRAINT labels_printable, DROP COLUMN sender, "
        "ALTER COLUMN document SET NOT NULL"
    )
