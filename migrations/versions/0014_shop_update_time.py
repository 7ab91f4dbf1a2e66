"""When Shopify made the shop update last applied, so an older one delivered late is dropped.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("shops", sa.Column("shopify_updated_at", DateTimeUTC(timezone=True)))


def downgrade() -> None:
    op.drop_column("shops", "shopify_updated_at")
