"""Row-level security for tenant tables, as one call inside a migration.

`blossom_app` sees only rows whose shop matches `app.shop_id` (set per transaction
by the tenant unit of work); with it unset, it sees nothing. `blossom_maintenance`
is the explicit cross-shop path.
"""

from __future__ import annotations

from alembic import op

from infrastructure.db.engine import APP_ROLE, MAINTENANCE_ROLE

CURRENT_SHOP = "NULLIF(current_setting('app.shop_id', true), '')::uuid"


def enable_tenant_rls(table: str, column: str = "shop_id") -> None:
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {table} TO {APP_ROLE} "
        f"USING ({column} = {CURRENT_SHOP}) WITH CHECK ({column} = {CURRENT_SHOP})"
    )
    op.execute(
        f"CREATE POLICY maintenance_access ON {table} TO {MAINTENANCE_ROLE} "
        "USING (true) WITH CHECK (true)"
    )


def disable_tenant_rls(table: str) -> None:
    op.execute(f"DROP POLICY IF EXISTS maintenance_access ON {table}")
    op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
    op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
