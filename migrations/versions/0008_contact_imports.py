"""CSV contact imports: the uploaded file (encrypted, dropped when done) and progress.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from alembic import op

from infrastructure.db.rls import disable_tenant_rls, enable_tenant_rls

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contact_imports",
        sa.Column("id", GUID(length=16), primary_key=True),
        sa.Column(
            "shop_id",
            GUID(length=16),
            sa.ForeignKey("shops.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("processed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("imported", sa.Integer, nullable=False, server_default="0"),
        sa.Column("errors", JsonB, nullable=False, server_default="[]"),
        sa.Column(
            "created_at", DateTimeUTC(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("finished_at", DateTimeUTC(timezone=True)),
        sa.Column("sa_orm_sentinel", sa.Integer),
    )
    op.create_index("ix_contact_imports_shop_created", "contact_imports", ["shop_id", "created_at"])
    enable_tenant_rls("contact_imports")


def downgrade() -> None:
    disable_tenant_rls("contact_imports")
    op.drop_table("contact_imports")
