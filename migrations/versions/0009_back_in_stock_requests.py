"""Back-in-stock requests: a shopper asks for one text when a variant is available again.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

from infrastructure.db.rls import disable_tenant_rls, enable_tenant_rls

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "back_in_stock_requests",
        sa.Column("id", GUID(length=16), primary_key=True),
        sa.Column(
            "shop_id",
            GUID(length=16),
            sa.ForeignKey("shops.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "contact_id",
            GUID(length=16),
            sa.ForeignKey("contacts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("variant_id", sa.BigInteger, nullable=False),
        sa.Column("wording", sa.Text, nullable=False),
        sa.Column(
            "created_at", DateTimeUTC(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("notified_at", DateTimeUTC(timezone=True)),
        sa.Column("sa_orm_sentinel", sa.Integer),
    )
    op.create_index(
        "uq_back_in_stock_waiting",
        "back_in_stock_requests",
        ["shop_id", "variant_id", "contact_id"],
        unique=True,
        postgresql_where=sa.text("notified_at IS NULL"),
    )
    enable_tenant_rls("back_in_stock_requests")


def downgrade() -> None:
    disable_tenant_rls("back_in_stock_requests")
    op.drop_table("back_in_stock_requests")
