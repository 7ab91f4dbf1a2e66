"""Prepaid wallets and their append-only ledger.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

from infrastructure.db.rls import disable_tenant_rls, enable_tenant_rls

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wallets",
        sa.Column(
            "shop_id",
            GUID(length=16),
            sa.ForeignKey("shops.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("balance", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("reserved", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("low_balance_threshold", sa.BigInteger, nullable=False, server_default="1000"),
        sa.Column(
            "updated_at", DateTimeUTC(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        # The database itself refuses an overdraft, whatever the code does.
        sa.CheckConstraint("balance >= 0", name="ck_wallets_balance_not_negative"),
        sa.CheckConstraint("reserved >= 0", name="ck_wallets_reserved_not_negative"),
    )
    enable_tenant_rls("wallets")

    op.create_table(
        "wallet_transactions",
        sa.Column("id", GUID(length=16), primary_key=True),
        sa.Column(
            "shop_id",
            GUID(length=16),
            sa.ForeignKey("shops.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("balance_delta", sa.BigInteger, nullable=False),
        sa.Column("reserved_delta", sa.BigInteger, nullable=False),
        sa.Column("balance_after", sa.BigInteger, nullable=False),
        sa.Column("reserved_after", sa.BigInteger, nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("price_version", sa.String(64)),
        sa.Column(
            "created_at", DateTimeUTC(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("sa_orm_sentinel", sa.Integer),
        sa.UniqueConstraint("shop_id", "reference", name="uq_wallet_transactions_reference"),
    )
    op.create_index(
        "ix_wallet_transactions_shop_created",
        "wallet_transactions",
        ["shop_id", "created_at", "id"],
    )
    enable_tenant_rls("wallet_transactions")
    op.execute("REVOKE UPDATE, DELETE ON wallet_transactions FROM blossom_app")


def downgrade() -> None:
    disable_tenant_rls("wallet_transactions")
    op.drop_table("wallet_transactions")
    disable_tenant_rls("wallets")
    op.drop_table("wallets")
