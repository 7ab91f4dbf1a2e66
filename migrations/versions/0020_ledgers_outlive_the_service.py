"""The service role deletes no contact and no shop: only a shop purge, as maintenance, does.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-28

`consent_events` and `wallet_transactions` are append-only for `blossom_app` (0006, 0010),
but a foreign key's ON DELETE CASCADE deletes past privileges: deleting a contact took its
consent ledger with it, and deleting the shop its wallet ledger too. Nothing in the service
deletes either row (a GDPR erasure redacts a contact; `PurgeShop` deletes the shop on the
maintenance path), so the service role loses DELETE on both tables.
"""

from alembic import op

from infrastructure.db.engine import APP_ROLE

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(f"REVOKE DELETE ON contacts, shops FROM {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"GRANT DELETE ON contacts, shops TO {APP_ROLE}")
