"""GDPR requests: Shopify's compliance webhooks and the merchant's own, due in 30 days.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

from infrastructure.db.rls import disable_tenant_rls, enable_tenant_rls

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gdpr_requests",
        sa.Column("id", GUID(length=16), primary_key=True),
        sa.Column(
            "shop_id",
            GUID(length=16),
            sa.ForeignKey("shops.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("shopify_request_id", sa.String(64)),
        # Sealed with the cipher (context `gdpr_requests.<column>:<id>`): they hold PII.
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("received_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("due_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("fulfilled_at", DateTimeUTC(timezone=True)),
        sa.Column("bundle", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("sa_orm_sentinel", sa.Integer),
    )
    op.create_index(
        "ix_gdpr_requests_shop_status_due", "gdpr_requests", ["shop_id", "status", "due_at"]
    )
    enable_tenant_rls("gdpr_requests")


def downgrade() -> None:
    disable_tenant_rls("gdpr_requests")
    op.drop_table("gdpr_requests")
