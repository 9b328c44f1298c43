"""group-commerce: product projection, campaigns, participants

Revision ID: g0001
Revises:
Create Date: 2026-11-26
"""

from alembic import op

from fusion.plumbing import create_service_schema, drop_service_schema

revision = "g0001"
down_revision = None
branch_labels = ("group-commerce",)
depends_on = None


def upgrade() -> None:
    create_service_schema(op, "group_commerce")
    # The catalog's products as this service needs them, fed by product.created.
    op.execute(
        """
        CREATE TABLE group_commerce.products (
            id UUID PRIMARY KEY,
            sku TEXT NOT NULL,
            price_minor BIGINT NOT NULL CHECK (price_minor >= 0),
            currency CHAR(3) NOT NULL,
            projected_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )"""
    )
    op.execute(
        """
        CREATE TABLE group_commerce.campaigns (
            id UUID PRIMARY KEY,
            product_id UUID NOT NULL,
            sku TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'successful', 'expired', 'closed')),
            min_participants INTEGER NOT NULL CHECK (min_participants >= 1),
            max_participants INTEGER NOT NULL,
            actual_participants INTEGER NOT NULL DEFAULT 0,
            discount_percentage NUMERIC(5, 2) NOT NULL
                CHECK (discount_percentage > 0 AND discount_percentage < 100),
            original_price_minor BIGINT NOT NULL CHECK (original_price_minor >= 0),
            group_price_minor BIGINT NOT NULL CHECK (group_price_minor >= 0),
            currency CHAR(3) NOT NULL,
            expires_at TIMESTAMPTZ NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            tipped_at TIMESTAMPTZ,
            ended_at TIMESTAMPTZ,
            CHECK (max_participants >= min_participants),
            -- The last line of defence against overselling seats.
            CHECK (actual_participants >= 0 AND actual_participants <= max_participants)
        )"""
    )
    op.execute("CREATE INDEX campaigns_listing ON group_commerce.campaigns (created_at, id)")
    op.execute("CREATE INDEX campaigns_status ON group_commerce.campaigns (status, created_at, id)")
    op.execute("CREATE INDEX campaigns_product ON group_commerce.campaigns (product_id, created_at, id)")
    # What the expiry sweep scans every minute: only the campaigns still open.
    op.execute(
        "CREATE INDEX campaigns_open_deadline ON group_commerce.campaigns (expires_at) "
        "WHERE status IN ('active', 'successful')"
    )
    op.execute(
        """
        CREATE TABLE group_commerce.participants (
            campaign_id UUID NOT NULL REFERENCES group_commerce.campaigns (id) ON DELETE CASCADE,
            user_id TEXT NOT NULL,
            joined_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (campaign_id, user_id)
        )"""
    )
    op.execute("CREATE INDEX participants_by_join ON group_commerce.participants (campaign_id, joined_at)")


def downgrade() -> None:
    drop_service_schema(op, "group_commerce")
