"""The dead-letter record: one row per failed job attempt.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_failures",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("job_id", sa.BigInteger, nullable=False),
        sa.Column("task", sa.String(255), nullable=False),
        sa.Column("queue", sa.String(255), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("will_retry", sa.Boolean, nullable=False),
        sa.Column("error_type", sa.String(255), nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("traceback", sa.Text, nullable=False),
        sa.Column("traceback_digest", sa.String(64), nullable=False),
        sa.Column(
            "failed_at", DateTimeUTC(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index("ix_job_failures_job", "job_failures", ["job_id", "failed_at"])


def downgrade() -> None:
    op.drop_table("job_failures")
