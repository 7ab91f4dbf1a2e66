"""Delivery reports held, shop-less, until a message matches them; inbound texts flagged
for the merchant to read.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29

The reports table mixes every shop's reports, so the tenant policy (one shop per
transaction) cannot guard it. Row-level security still does: the service role may add
rows, as the callback must before any shop is known, but may neither read nor change them;
only the maintenance role, which the message sweep uses, sees them.
"""

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

from infrastructure.db.engine import APP_ROLE, MAINTENANCE_ROLE

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "unmatched_reports",
        sa.Column("id", GUID(length=16), primary_key=True),
        sa.Column("provider_id", sa.String(100)),
        sa.Column("reference", sa.String(100)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("provider_status", sa.String(64)),
        sa.Column("error_code", sa.String(64)),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("reported_at", DateTimeUTC(timezone=True)),
        sa.Column("received_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer),
    )
    # A replayed report is held once, as a matched one is stored once per status.
    op.create_index(
        "uq_unmatched_reports_provider_status",
        "unmatched_reports",
        ["provider_id", "status"],
        unique=True,
        postgresql_where=sa.text("provider_id IS NOT NULL"),
    )
    op.create_index("ix_unmatched_reports_received", "unmatched_reports", ["received_at", "id"])
    op.execute("ALTER TABLE unmatched_reports ENABLE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY callback_hold ON unmatched_reports FOR INSERT TO {APP_ROLE} "
        "WITH CHECK (true)"
    )
    op.execute(
        f"CREATE POLICY maintenance_access ON unmatched_reports TO {MAINTENANCE_ROLE} "
        "USING (true) WITH CHECK (true)"
    )
    op.execute(f"REVOKE SELECT, UPDATE, DELETE ON unmatched_reports FROM {APP_ROLE}")

    op.add_column(
        "inbound_messages",
        sa.Column("needs_review", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index(
        "ix_inbound_messages_shop_review",
        "inbound_messages",
        ["shop_id", "received_at", "id"],
        postgresql_where=sa.text("needs_review"),
    )


def downgrade() -> None:
    op.drop_index("ix_inbound_messages_shop_review", "inbound_messages")
    op.drop_column("inbound_messages", "needs_review")
    op.drop_table("unmatched_reports")
