"""Rate limits (GCRA) on an UNLOGGED table: one row per limited key.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # UNLOGGED: a crash may reset limits, which only errs towards letting traffic through;
    # in exchange every decision skips the WAL.
    op.execute(
        """
        CREATE UNLOGGED TABLE rate_limits (
            key text PRIMARY KEY,
            tat timestamptz NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE rate_limits")
