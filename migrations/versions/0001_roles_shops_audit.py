"""Runtime roles, shops and the audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from alembic import op

from infrastructure.db.rls import disable_tenant_rls, enable_tenant_rls

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ROLES = ("blossom_app", "blossom_maintenance")


def upgrade() -> None:
    for role in ROLES:
        # Roles are cluster-wide: several databases (tests, staging) share them.
        op.execute(
            f"DO $$ BEGIN CREATE ROLE {role} NOLOGIN; "
            "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
        op.execute(f"GRANT {role} TO CURRENT_USER")
        op.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        op.execute(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}"
        )
        op.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {role}"
        )
        op.execute(f"GRANT SELECT ON alembic_versions TO {role}")

    op.create_table(
        "shops",
        sa.Column("id", GUID(length=16), primary_key=True),
        sa.Column("domain", sa.String(255), nullable=False, unique=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("installed_at", DateTimeUTC(timezone=True)),
        sa.Column("uninstalled_at", DateTimeUTC(timezone=True)),
        sa.Column("settings", JsonB, nullable=False, server_default="{}"),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer),  # advanced-alchemy's bulk-insert sentinel
    )
    enable_tenant_rls("shops", column="id")

    op.create_table(
        "audit_log",
        sa.Column("id", GUID(length=16), primary_key=True),
        sa.Column("shop_id", GUID(length=16), sa.ForeignKey("shops.id", ondelete="CASCADE")),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("details", JsonB, nullable=False, server_default="{}"),
        sa.Column(
            "created_at", DateTimeUTC(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("sa_orm_sentinel", sa.Integer),
    )
    op.create_index("ix_audit_log_shop_created", "audit_log", ["shop_id", "created_at"])
    enable_tenant_rls("audit_log")


def downgrade() -> None:
    disable_tenant_rls("audit_log")
    op.drop_table("audit_log")
    disable_tenant_rls("shops")
    op.drop_table("shops")
    for role in ROLES:
        op.execute(f"REVOKE SELECT ON alembic_versions FROM {role}")
        op.execute(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
            f"REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {role}"
        )
        op.execute(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
            f"REVOKE USAGE, SELECT ON SEQUENCES FROM {role}"
        )
        op.execute(f"REVOKE USAGE ON SCHEMA public FROM {role}")
