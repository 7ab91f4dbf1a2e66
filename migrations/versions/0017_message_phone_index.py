"""Blind indexes of the phone number on messages and inbound texts.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01

A number can text the shop, and get the HELP reply, before it is anyone's contact, so
those rows carry no contact id; a GDPR request must still find them by the person's
number. The number is encrypted, so it is found by the same keyed digest contacts use.
Existing rows keep a NULL index here: the digest needs the decrypted number and the index
key, which a migration does not hold. `blossom messages index-phones` fills them in;
until then they are found by contact only.
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# (table, column, index)
INDEXES = (
    ("messages", "recipient_index", "ix_messages_shop_recipient"),
    ("inbound_messages", "sender_index", "ix_inbound_messages_shop_sender"),
)


def upgrade() -> None:
    for table, column, index in INDEXES:
        op.add_column(table, sa.Column(column, sa.String(64)))
        op.create_index(
            index,
            table,
            ["shop_id", column],
            postgresql_where=sa.text(f"{column} IS NOT NULL"),
        )


def downgrade() -> None:
    for table, column, index in INDEXES:
        op.drop_index(index, table)
        op.drop_column(table, column)
