"""Tenant isolation: the repository scope and Postgres row-level security, each alone."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

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
