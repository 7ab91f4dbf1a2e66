"""A row that names a contact or a message names one of its own shop's.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-28

Foreign keys on the id alone are checked past row-level security: a shop's consent event,
back-in-stock request, message or inbound text could name another shop's contact, and a
message event or report another shop's message. Such a row would hold a place in the other
shop's data (a consent event takes the contact's next ledger sequence, so the contact's own
shop could record no STOP) and go when the other shop deletes its row. Each reference now
includes the shop: (shop_id, contact_id) must be a contact of that same shop.

An existing cross-shop row makes this migration fail rather than being silently dropped.
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# (table, column, referred table, old constraint, new constraint, on delete)
REFERENCES = (
    (
        "consent_events",
        "contact_id",
        "contacts",
        "fk_consent_events_contact_id_contacts",
        "fk_consent_events_shop_contact",
        "CASCADE",
    ),
    (
        "back_in_stock_requests",
        "contact_id",
        "contacts",
        "fk_back_in_stock_requests_contact_id_contacts",
        "fk_back_in_stock_requests_shop_contact",
        "CASCADE",
    ),
    # Only the contact is forgotten: shop_id is NOT NULL and stays (Postgres 15+).
    (
        "messages",
        "contact_id",
        "contacts",
        "fk_messages_contact_id_contacts",
        "fk_messages_shop_contact",
        "SET NULL (contact_id)",
    ),
    (
        "inbound_messages",
        "contact_id",
        "contacts",
        "fk_inbound_messages_contact_id_contacts",
        "fk_inbound_messages_shop_contact",
        "SET NULL (contact_id)",
    ),
    (
        "message_events",
        "message_id",
        "messages",
        "fk_message_events_message_id_messages",
        "fk_message_events_shop_message",
        "CASCADE",
    ),
    (
        "message_reports",
        "message_id",
        "messages",
        "fk_message_reports_message_id_messages",
        "fk_message_reports_shop_message",
        "CASCADE",
    ),
)

# The key the composite references point at; it leads with shop_id like every tenant index.
TARGETS = (("contacts", "uq_contacts_shop_id"), ("messages", "uq_messages_shop_id"))


def upgrade() -> None:
    for table, name in TARGETS:
        op.create_unique_constraint(name, table, ["shop_id", "id"])
    for table, column, referred, old, new, on_delete in REFERENCES:
        op.drop_constraint(old, table, type_="foreignkey")
        # Raw SQL: SQLAlchemy does not render ON DELETE SET NULL with a column list.
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {new} FOREIGN KEY (shop_id, {column}) "
            f"REFERENCES {referred} (shop_id, id) ON DELETE {on_delete}"
        )


def downgrade() -> None:
    for table, column, referred, old, new, on_delete in reversed(REFERENCES):
        op.drop_constraint(new, table, type_="foreignkey")
        on_delete = on_delete.split(" (")[0]
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {old} FOREIGN KEY ({column}) "
            f"REFERENCES {referred} (id) ON DELETE {on_delete}"
        )
    for table, name in reversed(TARGETS):
        op.drop_constraint(name, table, type_="unique")
