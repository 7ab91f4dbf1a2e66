"""When the SMS provider refused a contact's number for good, so it is not texted again.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("contacts", sa.Column("phone_invalid_at", DateTimeUTC(timezone=True)))


def downgrade() -> None:
    op.drop_column("contacts", "phone_invalid_at")
