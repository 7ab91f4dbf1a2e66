"""Each clue to a contact's time zone in a column of its own: the merchant's, the Shopify
address's, and every zone the phone number spans.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02

Until now `timezone` held one zone, taken from the phone number when it had exactly one,
else the shop's; no merchant could set it. It becomes the merchant's choice, so the zones
stored so far move to `phone_timezones`: quiet hours then read them as before, until
Shopify next sends the contact's number and all of its zones replace them.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("contacts", sa.Column("address_timezone", sa.String(64)))
    op.add_column(
        "contacts",
        sa.Column(
            "phone_timezones",
            postgresql.ARRAY(sa.String(64)),
            nullable=False,
            server_default="{}",
        ),
    )
    op.execute(
        "UPDATE contacts SET phone_timezones = ARRAY[timezone], timezone = NULL "
        "WHERE timezone IS NOT NULL"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE contacts SET timezone = coalesce(timezone, address_timezone, phone_timezones[1])"
    )
    op.drop_column("contacts", "phone_timezones")
    op.drop_column("contacts", "address_timezone")
