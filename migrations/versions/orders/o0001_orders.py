"""orders: orders, their lines and status history, and the product price projection

Revision ID: o0001
Revises:
Create Date: 2026-11-26
"""

from alembic import op

from fusion.plumbing import create_service_schema, drop_service_schema

revision = "o0001"
down_revision = None
branch_labels = ("orders",)
depends_on = None

STATUSES = "'created', 'confirmed', 'paid', 'shipped', 'delivered', 'failed', 'cancelled'"


def upgrade() -> None:
    create_service_schema(op, "orders")
    # The catalog's current prices, fed by product.created, to check the prices a client sends.
    op.execute(
        """
        CREATE TABLE orders.products (
            sku TEXT PRIMARY KEY,
            product_id TEXT NOT NULL,
            name TEXT NOT NULL,
            price_minor BIGINT NOT NULL CHECK (price_minor >= 0),
            currency CHAR(3) NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )"""
    )
    op.execute(
        f"""
        CREATE TABLE orders.orders (
            id UUID PRIMARY KEY,
            customer_id TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ({STATUSES})),
            status_reason TEXT,
            total_minor BIGINT NOT NULL CHECK (total_minor >= 0),
            currency CHAR(3) NOT NULL,
            campaign_id TEXT,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            status_changed_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )"""
    )
    op.execute("CREATE INDEX orders_listing ON orders.orders (created_at DESC, id DESC)")
    op.execute("CREATE INDEX orders_by_customer ON orders.orders (customer_id, created_at DESC, id DESC)")
    op.execute("CREATE INDEX orders_by_status ON orders.orders (status, created_at DESC, id DESC)")
    op.execute(
        "CREATE INDEX orders_awaiting_payment ON orders.orders (status_changed_at) WHERE status = 'confirmed'"
    )
    op.execute("CREATE INDEX orders_by_campaign ON orders.orders (campaign_id) WHERE campaign_id IS NOT NULL")
    op.execute(
        """
        CREATE TABLE orders.order_items (
            order_id UUID NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
            line SMALLINT NOT NULL,
            sku TEXT NOT NULL,
            quantity INTEGER NOT NULL CHECK (quantity > 0),
            price_minor BIGINT NOT NULL CHECK (price_minor >= 0),
            PRIMARY KEY (order_id, line)
        )"""
    )
    op.execute(
        f"""
        CREATE TABLE orders.order_history (
            id BIGSERIAL PRIMARY KEY,
            order_id UUID NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
            status TEXT NOT NULL CHECK (status IN ({STATUSES})),
            reason TEXT,
            at TIMESTAMPTZ NOT NULL DEFAULT now()
        )"""
    )
    op.execute("CREATE INDEX order_history_by_order ON orders.order_history (order_id, id)")


def downgrade() -> None:
    drop_service_schema(op, "orders")
