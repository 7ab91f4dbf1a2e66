"""Wallet top-ups bought through Shopify Billing (one-time app purchases).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

from infrastructure.db.rls import disable_tenant_rls, enable_tenant_rls

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wallet_topups",
        sa.Column("id", GUID(length=16), primary_key=True),
        sa.Column(
            "shop_id",
            GUID(length=16),
            sa.ForeignKey("shops.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("package", sa.String(32), nullable=False),
        sa.Column("credits", sa.BigInteger, nullable=False),
        sa.Column("price_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("purchase_id", sa.String(100), nullable=False),
        sa.Column(
            "created_at", DateTimeUTC(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("sa_orm_sentinel", sa.Integer),
        sa.UniqueConstraint("shop_id", "purchase_id", name="uq_wallet_topups_purchase"),
    )
    enable_tenant_rls("wallet_topups")


def downgrade() -> None:
    disable_tenant_rls("wallet_topups")
    op.drop_table("wallet_topups")
