"""Tenant isolation: the repository scope and Postgres row-level security, each alone."""

from __future__ import annotations

import contextlib
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from domain.billing import EntryKind, WalletEntry
from tests.conftest import add_shop

pytestmark = pytest.mark.usefixtures("clean_db")


async def test_query_without_shop_filter_sees_only_current_shops_rows(container):
    shop_a, shop_b = await add_shop(container), await add_shop(container)
    for shop in (shop_a, shop_b):
        async with container.uow.for_shop(shop.id) as uow:
            await uow.audit.record(action="test.event", actor="test", subject=shop.domain)
            await uow.commit()

    async with container.uow.for_shop(shop_a.id) as uow:
        # Deliberately unscoped SQL: only RLS stands between shop A and shop B here.
        subjects = (await uow.session.execute(text("SELECT subject FROM audit_log"))).scalars()
        shops = await uow.shops.list()

    assert list(subjects) == [shop_a.domain]
    assert [s.id for s in shops] == [shop_a.id]


async def test_shop_cannot_read_another_shop_by_id(container):
    shop_a, shop_b = await add_shop(container), await add_shop(container)
    async with container.uow.for_shop(shop_a.id) as uow:
        assert await uow.shops.get(shop_b.id) is None
        assert (await uow.shops.get(shop_a.id)).domain == shop_a.domain


async def test_shop_cannot_write_rows_for_another_shop(container):
    shop_a, shop_b = await add_shop(container), await add_shop(container)
    async with container.uow.for_shop(shop_a.id) as uow:
        with pytest.raises(DBAPIError, match="row-level security"):
            await uow.session.execute(
                text(
                    "INSERT INTO audit_log (id, shop_id, action, actor, subject, details) "
                    "VALUES (gen_random_uuid(), :shop, 'x', 'x', 'x', '{}')"
                ),
                {"shop": shop_b.id},
            )
    async with container.uow.for_shop(shop_a.id) as uow:
        updated = await uow.session.execute(
            text("UPDATE shops SET name = 'hijacked' WHERE id = :id"), {"id": shop_b.id}
        )
        assert updated.rowcount == 0


async def test_unset_shop_scope_sees_no_tenant_rows(container):
    shop = await add_shop(container)
    async with container.uow.for_shop(shop.id) as uow:
        await uow.audit.record(action="test.event", actor="test")
        await uow.commit()

    async with container.sessions() as session:
        audit = await session.scalar(text("SELECT count(*) FROM audit_log"))
        shops = await session.scalar(text("SELECT count(*) FROM shops"))
        role = await session.scalar(text("SELECT current_user"))

    assert (audit, shops) == (0, 0)
    assert role == "blossom_app"


async def test_runtime_role_is_neither_superuser_nor_owner(container):
    async with container.sessions() as session:
        row = (
            await session.execute(
                text(
                    "SELECT r.rolsuper, r.rolbypassrls, "
                    "(SELECT count(*) FROM pg_tables WHERE tableowner = current_user) "
                    "FROM pg_roles r WHERE r.rolname = current_user"
                )
            )
        ).one()
    assert tuple(row) == (False, False, 0)


async def test_maintenance_path_sees_every_shop(container):
    shop_a, shop_b = await add_shop(container), await add_shop(container)
    async with container.uow.maintenance() as uow:
        domains = {s.domain for s in await uow.shops.list()}
    assert {shop_a.domain, shop_b.domain} <= domains


# Rows that name another row of the same shop, each as shop A naming shop B's row. A foreign
# key on the id alone is checked past row-level security, so it would accept them.
_CROSS_SHOP_REFERENCES = {
    "consent_events": (
        "INSERT INTO consent_events (id, shop_id, contact_id, sequence, previous_state, "
        "new_state, source, actor, occurred_at, previous_hash, hash) VALUES (gen_random_uuid(), "
        ":shop, :contact, 1, 'unknown', 'subscribed', 'admin', 'x', now(), '', '')"
    ),
    "back_in_stock_requests": (
        "INSERT INTO back_in_stock_requests (id, shop_id, contact_id, variant_id, wording) "
        "VALUES (gen_random_uuid(), :shop, :contact, 1, 'x')"
    ),
    "messages": (
        "INSERT INTO messages (id, shop_id, contact_id, recipient, body, category, source, "
        "status, charge, encoding, segments, credits, price_version, idempotency_key, "
        "created_at, updated_at) VALUES (gen_random_uuid(), :shop, :contact, 'x', 'x', "
        "'marketing', 'x', 'queued', 'none', 'gsm', 1, 1, 'v', gen_random_uuid()::text, "
        "now(), now())"
    ),
    "inbound_messages": (
        "INSERT INTO inbound_messages (id, shop_id, contact_id, sender, receiver, body, "
        "keyword, received_at) VALUES (gen_random_uuid(), :shop, :contact, 'x', 'x', 'x', "
        "'STOP', now())"
    ),
    "message_events": (
        "INSERT INTO message_events (id, shop_id, message_id, status, at) "
        "VALUES (gen_random_uuid(), :shop, :message, 'failed', now())"
    ),
    "message_reports": (
        "INSERT INTO message_reports (id, shop_id, message_id, status, payload, received_at) "
        "VALUES (gen_random_uuid(), :shop, :message, 'failed', 'x', now())"
    ),
}


async def _contact_and_message(container, shop_id):
    contact, message = uuid.uuid4(), uuid.uuid4()
    async with container.uow.maintenance() as uow:
        await uow.session.execute(
            text(
                "INSERT INTO contacts (id, shop_id, created_at, updated_at) "
                "VALUES (:contact, :shop, now(), now())"
            ),
            {"contact": contact, "shop": shop_id},
        )
        await uow.session.execute(
            text(
                _CROSS_SHOP_REFERENCES["messages"].replace("gen_random_uuid(), :shop", ":id, :shop")
            ),
            {"id": message, "shop": shop_id, "contact": contact},
        )
        await uow.commit()
    return contact, message


@pytest.mark.parametrize("table", sorted(_CROSS_SHOP_REFERENCES))
async def test_shop_cannot_attach_rows_to_another_shops_contact_or_message(container, table):
    shop_a, shop_b = await add_shop(container), await add_shop(container)
    contact_b, message_b = await _contact_and_message(container, shop_b.id)

    async with container.uow.for_shop(shop_a.id) as uow:
        with pytest.raises(IntegrityError, match="foreign key"):
            await uow.session.execute(
                text(_CROSS_SHOP_REFERENCES[table]),
                {"shop": shop_a.id, "contact": contact_b, "message": message_b},
            )


async def test_another_shop_cannot_take_a_place_in_a_contacts_consent_ledger(container):
    """Shop A's row on B's contact would hold B's next ledger sequence: B could then record
    no consent change (a STOP) for its own contact."""
    shop_a, shop_b = await add_shop(container), await add_shop(container)
    contact_b, _ = await _contact_and_message(container, shop_b.id)
    first_event = _CROSS_SHOP_REFERENCES["consent_events"]

    async with container.uow.for_shop(shop_a.id) as uow:
        with contextlib.suppress(IntegrityError):
            await uow.session.execute(text(first_event), {"shop": shop_a.id, "contact": contact_b})
            await uow.commit()
    async with container.uow.for_shop(shop_b.id) as uow:
        await uow.session.execute(text(first_event), {"shop": shop_b.id, "contact": contact_b})
        await uow.commit()


async def test_a_deleted_contacts_messages_stay_with_their_shop(container):
    # The same-shop reference forgets only the contact: shop_id is part of it, and NOT NULL.
    shop = await add_shop(container)
    contact, message = await _contact_and_message(container, shop.id)
    async with container.uow.maintenance() as uow:
        await uow.session.execute(text("DELETE FROM contacts WHERE id = :id"), {"id": contact})
        row = await uow.session.execute(
            text("SELECT shop_id, contact_id FROM messages WHERE id = :id"), {"id": message}
        )
        assert tuple(row.one()) == (shop.id, None)


@pytest.mark.parametrize(
    ("statement", "ledger"),
    [
        ("DELETE FROM contacts WHERE shop_id = :shop", "consent_events"),
        ("DELETE FROM shops WHERE id = :shop", "consent_events"),
        ("DELETE FROM shops WHERE id = :shop", "wallet_transactions"),
    ],
)
async def test_the_service_cannot_empty_an_append_only_ledger_through_a_cascade(
    container, statement, ledger
):
    """blossom_app may neither update nor delete ledger rows, and a foreign key's cascade
    deletes past that: only the maintenance path (a shop purge) removes a contact or shop."""
    shop = await add_shop(container)
    contact, _ = await _contact_and_message(container, shop.id)
    async with container.uow.for_shop(shop.id) as uow:
        await uow.session.execute(
            text(_CROSS_SHOP_REFERENCES["consent_events"]), {"shop": shop.id, "contact": contact}
        )
        await uow.wallet.ensure()
        await uow.wallet.apply(
            WalletEntry(EntryKind.GRANT, 5, 0, reference="test:grant", reason="t", source="t")
        )
        await uow.commit()

    async with container.uow.for_shop(shop.id) as uow:
        with pytest.raises(DBAPIError, match="permission denied"):
            await uow.session.execute(text(statement), {"shop": shop.id})
    async with container.uow.for_shop(shop.id) as uow:
        assert await uow.session.scalar(text(f"SELECT count(*) FROM {ledger}")) == 1


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"],
)
async def test_the_service_can_only_add_to_the_audit_log(container, statement):
    shop = await add_shop(container)
    async with container.uow.for_shop(shop.id) as uow:
        await uow.audit.record(action="shop.installed", actor="test", subject=shop.domain)
        await uow.commit()
    async with container.uow.for_shop(shop.id) as uow:
        with pytest.raises(DBAPIError, match="permission denied"):
            await uow.session.execute(text(statement))
    async with container.uow.for_shop(shop.id) as uow:
        kept = await uow.session.scalar(text("SELECT count(*) FROM audit_log WHERE actor = 'test'"))
    assert kept == 1
