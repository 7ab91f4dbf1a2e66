"""The audit log is append-only for the service role.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-28

It records who installed, renewed, refused or purged what; the service only ever adds to
it. A service role that could rewrite or delete those rows could hide what it did. A shop
purge (maintenance) still removes the shop's rows through the foreign key's cascade.
"""

from alembic import op

from infrastructure.db.engine import APP_ROLE

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(f"REVOKE UPDATE, DELETE ON audit_log FROM {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"GRANT UPDATE, DELETE ON audit_log TO {APP_ROLE}")
