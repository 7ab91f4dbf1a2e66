"""Shop credentials, OAuth states, the webhook inbox and the shop lookup function.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

from infrastructure.db.rls import disable_tenant_rls, enable_tenant_rls

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shop_credentials",
        sa.Column(
            "shop_id",
            GUID(length=16),
            sa.ForeignKey("shops.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("access_token", sa.Text, nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("access_expires_at", DateTimeUTC(timezone=True)),
        sa.Column("refresh_token", sa.Text),
        sa.Column("refresh_expires_at", DateTimeUTC(timezone=True)),
        sa.Column("custom_app", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column(
            "updated_at", DateTimeUTC(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    enable_tenant_rls("shop_credentials")

    op.create_table(
        "oauth_states",
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("shop_domain", sa.String(255), nullable=False),
        sa.Column("expires_at", DateTimeUTC(timezone=True), nullable=False),
    )

    op.create_table(
        "webhook_events",
        sa.Column("id", GUID(length=16), primary_key=True),
        sa.Column(
            "shop_id",
            GUID(length=16),
            sa.ForeignKey("shops.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("topic", sa.String(100), nullable=False),
        sa.Column("webhook_id", sa.String(255), nullable=False),
        sa.Column("event_id", sa.String(255)),
        sa.Column("triggered_at", DateTimeUTC(timezone=True)),
        sa.Column("api_version", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
        sa.Column(
            "received_at", DateTimeUTC(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("processed_at", DateTimeUTC(timezone=True)),
        sa.Column("sa_orm_sentinel", sa.Integer),
        sa.UniqueConstraint("shop_id", "webhook_id", name="uq_webhook_events_shop_webhook"),
    )
    op.create_index(
        "ix_webhook_events_shop_status", "webhook_events", ["shop_id", "status", "received_at"]
    )
    enable_tenant_rls("webhook_events")

    # Resolves a shop domain before any tenant scope exists (webhooks, session tokens):
    # it runs as the owner, so it sees past RLS, and it reveals only the id and status.
    op.execute(
        """
        CREATE FUNCTION blossom_shop_lookup(shop_domain text)
        RETURNS TABLE (id uuid, status varchar)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
        AS $$ SELECT s.id, s.status FROM shops s WHERE s.domain = shop_domain $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION blossom_shop_lookup(text) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION blossom_shop_lookup(text) TO blossom_app")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS blossom_shop_lookup(text)")
    disable_tenant_rls("webhook_events")
    op.drop_table("webhook_events")
    op.drop_table("oauth_states")
    disable_tenant_rls("shop_credentials")
    op.drop_table("shop_credentials")
