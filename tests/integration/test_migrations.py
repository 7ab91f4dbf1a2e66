"""Migrations: the models and the migrated schema agree, and every revision reverses."""

from __future__ import annotations

import asyncio
import uuid

from advanced_alchemy.base import metadata_registry
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

import infrastructure.db.models  # noqa: F401
from infrastructure.db import migrate
from infrastructure.db.engine import create_owner_engine
from tests.support.database import create_database, drop_database


async def test_models_match_the_migrated_schema(database_url):
    engine = create_owner_engine(database_url)
    async with engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(
                    sync, opts={"include_object": migrate.include_object, "compare_type": True}
                ),
                metadata_registry.get(None),
            )
        )
    await engine.dispose()
    assert diff == []


async def test_downgrade_to_base_and_upgrade_again_leaves_the_same_schema(server):
    url, name = await create_database(server)
    engine = create_owner_engine(url)
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        await asyncio.to_thread(migrate.downgrade, url, "base")
        async with engine.connect() as conn:
            left = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'alembic_versions'"
                )
            )
            functions = await conn.scalar(
                text("SELECT count(*) FROM pg_proc WHERE proname LIKE 'procrastinate%'")
            )
        assert (left, functions) == (0, 0)
        await asyncio.to_thread(migrate.upgrade, url)
        async with engine.connect() as conn:
            assert await migrate.schema_revision(conn) == migrate.head_revision()
    finally:
        await engine.dispose()
        await drop_database(server, name)


async def test_zones_stored_before_0018_are_read_as_the_phones_and_come_back_on_downgrade(server):
    url, name = await create_database(server)
    engine = create_owner_engine(url)
    shop, berlin, unplaced = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    try:
        await asyncio.to_thread(migrate.upgrade, url, "0017")
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO shops (id, domain, name, currency, timezone, country, status, "
                    "created_at, updated_at) VALUES (:id, 'zones.myshopify.com', 'Zones', 'EUR', "
                    "'Europe/Paris', 'FR', 'installed', now(), now())"
                ),
                {"id": shop},
            )
            await conn.execute(
                text(
                    "INSERT INTO contacts (id, shop_id, timezone, created_at, updated_at) "
                    "VALUES (:berlin, :shop, 'Europe/Berlin', now(), now()), "
                    "(:unplaced, :shop, NULL, now(), now())"
                ),
                {"berlin": berlin, "unplaced": unplaced, "shop": shop},
            )
        zones = text("SELECT id, timezone, phone_timezones FROM contacts ORDER BY id = :berlin")

        await asyncio.to_thread(migrate.upgrade, url, "0018")
        async with engine.connect() as conn:
            upgraded = (await conn.execute(zones, {"berlin": berlin})).all()
        await asyncio.to_thread(migrate.downgrade, url, "0017")
        async with engine.connect() as conn:
            restored = (await conn.execute(text("SELECT id, timezone FROM contacts"))).all()

        assert upgraded == [(unplaced, None, []), (berlin, None, ["Europe/Berlin"])]
        assert sorted(restored) == sorted([(berlin, "Europe/Berlin"), (unplaced, None)])
    finally:
        await engine.dispose()
        await drop_database(server, name)
