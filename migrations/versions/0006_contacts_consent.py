"""Contacts (PII encrypted, blind-indexed) and the append-only consent ledger.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from alembic import op
from sqlalchemy.dialects import postgresql

from infrastructure.db.rls import disable_tenant_rls, enable_tenant_rls

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("id", GUID(length=16), primary_key=True),
        sa.Column(
            "shop_id",
            GUID(length=16),
            sa.ForeignKey("shops.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("phone", sa.Text),
        sa.Column("phone_index", sa.String(64)),
        sa.Column("email", sa.Text),
        sa.Column("email_index", sa.String(64)),
        sa.Column("first_name", sa.Text),
        sa.Column("last_name", sa.Text),
        sa.Column("shopify_customer_id", sa.BigInteger),
        sa.Column("country", sa.String(2)),
        sa.Column("timezone", sa.String(64)),
        sa.Column("locale", sa.String(16)),
        sa.Column("tags", postgresql.ARRAY(sa.String(64)), nullable=False, server_default="{}"),
        sa.Column("consent_state", sa.String(16), nullable=False, server_default="unknown"),
        sa.Column("consent_updated_at", DateTimeUTC(timezone=True)),
        sa.Column("shopify_updated_at", DateTimeUTC(timezone=True)),
        sa.Column("redacted_at", DateTimeUTC(timezone=True)),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer),
    )
    op.create_index(
        "uq_contacts_shop_phone",
        "contacts",
        ["shop_id", "phone_index"],
        unique=True,
        postgresql_where=sa.text("phone_index IS NOT NULL"),
    )
    op.create_index(
        "uq_contacts_shop_customer",
        "contacts",
        ["shop_id", "shopify_customer_id"],
        unique=True,
        postgresql_where=sa.text("shopify_customer_id IS NOT NULL"),
    )
    op.create_index("ix_contacts_shop_email", "contacts", ["shop_id", "email_index"])
    op.create_index(
        "ix_contacts_shop_state_created", "contacts", ["shop_id", "consent_state", "created_at"]
    )
    op.create_index("ix_contacts_shop_created", "contacts", ["shop_id", "created_at", "id"])
    enable_tenant_rls("contacts")

    op.create_table(
        "consent_events",
        sa.Column("id", GUID(length=16), primary_key=True),
        sa.Column(
            "shop_id",
            GUID(length=16),
            sa.ForeignKey("shops.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "contact_id",
            GUID(length=16),
            sa.ForeignKey("contacts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("previous_state", sa.String(16), nullable=False),
        sa.Column("new_state", sa.String(16), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("occurred_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("wording", sa.Text),
        sa.Column("ip_hash", sa.String(64)),
        sa.Column("user_agent", sa.Text),
        sa.Column("opt_in_level", sa.String(32)),
        sa.Column("evidence", JsonB, nullable=False, server_default="{}"),
        sa.Column("previous_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column(
            "recorded_at", DateTimeUTC(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("sa_orm_sentinel", sa.Integer),
        sa.UniqueConstraint("contact_id", "sequence", name="uq_consent_events_contact_sequence"),
    )
    op.create_index(
        "ix_consent_events_shop_contact", "consent_events", ["shop_id", "contact_id", "sequence"]
    )
    enable_tenant_rls("consent_events")
    # The ledger is append-only for the service: rows are never changed or removed, except
    # through the maintenance path when a whole shop is purged.
    op.execute("REVOKE UPDATE, DELETE ON consent_events FROM blossom_app")


def downgrade() -> None:
    disable_tenant_rls("consent_events")
    op.drop_table("consent_events")
    disable_tenant_rls("contacts")
    op.drop_table("contacts")
