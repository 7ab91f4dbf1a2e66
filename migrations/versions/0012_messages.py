"""Messages with their status history, delivery reports and inbound texts.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

from infrastructure.db.rls import disable_tenant_rls, enable_tenant_rls

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TABLES = ("inbound_messages", "message_reports", "message_events", "messages")


def _shop() -> sa.Column:
    return sa.Column(
        "shop_id", GUID(length=16), sa.ForeignKey("shops.id", ondelete="CASCADE"), nullable=False
    )


def _contact() -> sa.Column:
    return sa.Column(
        "contact_id", GUID(length=16), sa.ForeignKey("contacts.id", ondelete="SET NULL")
    )


def _message() -> sa.Column:
    return sa.Column(
        "message_id",
        GUID(length=16),
        sa.ForeignKey("messages.id", ondelete="CASCADE"),
        nullable=False,
    )


def _at(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, DateTimeUTC(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("id", GUID(length=16), primary_key=True),
        _shop(),
        _contact(),
        sa.Column("recipient", sa.Text, nullable=False),
        sa.Column("country", sa.String(2)),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("charge", sa.String(12), nullable=False),
        sa.Column("encoding", sa.String(8), nullable=False),
        sa.Column("segments", sa.Integer, nullable=False),
        sa.Column("credits", sa.Integer, nullable=False),
        sa.Column("price_version", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("dedupe_key", sa.String(200)),
        sa.Column("provider_id", sa.String(100)),
        sa.Column("error", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        _at("scheduled_at", True),
        _at("claimed_at", True),
        _at("sent_at", True),
        _at("finished_at", True),
        _at("created_at"),
        _at("updated_at"),
        sa.Column("sa_orm_sentinel", sa.Integer),
        sa.UniqueConstraint("shop_id", "idempotency_key", name="uq_messages_idempotency"),
    )
    op.create_index("ix_messages_shop_created", "messages", ["shop_id", "created_at", "id"])
    op.create_index(
        "ix_messages_shop_contact_created", "messages", ["shop_id", "contact_id", "created_at"]
    )
    op.create_index(
        "ix_messages_shop_dedupe",
        "messages",
        ["shop_id", "dedupe_key", "created_at"],
        postgresql_where=sa.text("dedupe_key IS NOT NULL"),
    )
    op.create_index(
        "ix_messages_unfinished",
        "messages",
        ["updated_at"],
        postgresql_where=sa.text("status IN ('queued', 'sending', 'unknown')"),
    )
    op.create_index(
        "ix_messages_provider_id",
        "messages",
        ["provider_id"],
        postgresql_where=sa.text("provider_id IS NOT NULL"),
    )
    op.create_table(
        "message_events",
        sa.Column("id", GUID(length=16), primary_key=True),
        _shop(),
        _message(),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text),
        _at("at"),
        sa.Column("sa_orm_sentinel", sa.Integer),
    )
    op.create_index("ix_message_events_message", "message_events", ["message_id", "at"])
    op.create_table(
        "message_reports",
        sa.Column("id", GUID(length=16), primary_key=True),
        _shop(),
        _message(),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("provider_status", sa.String(64)),
        sa.Column("error_code", sa.String(64)),
        sa.Column("payload", sa.Text, nullable=False),
        _at("reported_at", True),
        _at("received_at"),
        sa.Column("sa_orm_sentinel", sa.Integer),
        sa.UniqueConstraint("shop_id", "message_id", "status", name="uq_message_reports_status"),
    )
    op.create_table(
        "inbound_messages",
        sa.Column("id", GUID(length=16), primary_key=True),
        _shop(),
        _contact(),
        sa.Column("provider_id", sa.String(100)),
        sa.Column("sender", sa.Text, nullable=False),
        sa.Column("receiver", sa.String(20), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("keyword", sa.String(16), nullable=False),
        _at("received_at"),
        sa.Column("sa_orm_sentinel", sa.Integer),
    )
    op.create_index(
        "uq_inbound_messages_provider",
        "inbound_messages",
        ["shop_id", "provider_id"],
        unique=True,
        postgresql_where=sa.text("provider_id IS NOT NULL"),
    )
    op.create_index(
        "ix_inbound_messages_shop_received",
        "inbound_messages",
        ["shop_id", "received_at", "id"],
    )
    for table in TABLES:
        enable_tenant_rls(table)
    # A shop's own number routes replies to it, so no two shops may claim one number.
    op.execute(
        "CREATE UNIQUE INDEX uq_shops_sms_number ON shops ((settings #>> '{messaging,sender}')) "
        "WHERE (settings #>> '{messaging,sender}') ~ '^[+][0-9]+$'"
    )
    # Provider callbacks carry no shop: these two functions find it (running as the owner,
    # past RLS) and reveal nothing but ids.
    op.execute(
        """
        CREATE FUNCTION blossom_message_lookup(message uuid, provider text)
        RETURNS TABLE (shop_id uuid, id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
        AS $$
            SELECT m.shop_id, m.id FROM messages m WHERE m.id = message
            UNION ALL
            SELECT m.shop_id, m.id FROM messages m
             WHERE m.provider_id = provider
            LIMIT 1
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION blossom_sender_lookup(number text)
        RETURNS uuid
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
        AS $$
            SELECT s.id FROM shops s WHERE (s.settings #>> '{messaging,sender}') = number
        $$
        """
    )
    for signature in ("blossom_message_lookup(uuid, text)", "blossom_sender_lookup(text)"):
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO blossom_app")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS blossom_sender_lookup(text)")
    op.execute("DROP FUNCTION IF EXISTS blossom_message_lookup(uuid, text)")
    op.execute("DROP INDEX IF EXISTS uq_shops_sms_number")
    for table in TABLES:
        disable_tenant_rls(table)
        op.drop_table(table)
