"""Shared fixtures. Database fixtures are lazy: unit tests never start Postgres."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import text

from domain.shops import Shop
from infrastructure.db import migrate
from infrastructure.db.engine import create_owner_engine
from interfaces.bootstrap import Container, build_container
from tests.support.database import create_database, drop_database, server_url
from tests.support.settings import make_settings
from tests.support.tasks import testing_blueprints

UNBALANCED_WALLETS = """
SELECT count(*) FROM wallets w
  LEFT JOIN LATERAL (
       SELECT coalesce(sum(t.balance_delta), 0) AS balance,
              coalesce(sum(t.reserved_delta), 0) AS reserved
         FROM wallet_transactions t WHERE t.shop_id = w.shop_id) l ON true
 WHERE w.balance <> l.balance OR w.reserved <> l.reserved
"""

TABLES = (
    "audit_log, shops, job_failures, unmatched_reports, procrastinate_events, "
    "procrastinate_periodic_defers, procrastinate_jobs, procrastinate_workers"
)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    url, embedded = server_url()
    yield url
    del embedded  # keeps the embedded server alive for the whole session


@pytest.fixture(scope="session")
async def database_url(server: str) -> AsyncIterator[str]:
    url, name = await create_database(server)
    await asyncio.to_thread(migrate.upgrade, url)
    yield url
    await drop_database(server, name)


@pytest.fixture(scope="session")
async def container(database_url: str, data_dir: Path) -> AsyncIterator[Container]:
    built = build_container(
        make_settings(data_dir), database_url=database_url, extra_blueprints=testing_blueprints
    )
    async with built.queue.open_async():
        yield built
    await built.aclose()


@pytest.fixture
async def clean_db(database_url: str) -> AsyncIterator[str]:
    """Every table empty before the test; use in tests that count rows.

    After the test, every wallet must still equal its ledger's sums, whatever it did.
    """
    engine = create_owner_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    yield database_url
    async with engine.connect() as conn:
        unbalanced = await conn.scalar(text(UNBALANCED_WALLETS))
    await engine.dispose()
    assert unbalanced == 0, "a wallet no longer equals the sum of its ledger"


async def add_shop(container: Container, name: str | None = None) -> Shop:
    handle = name or f"shop-{uuid.uuid4().hex[:10]}"
    shop = Shop(
        id=uuid.uuid4(),
        domain=f"{handle}.myshopify.com",
        name=handle,
        installed_at=datetime.now(UTC),
    )
    async with container.uow.maintenance() as uow:
        created = await uow.shops.add(shop)
        await uow.commit()
    return created


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span finished during the test (the process's provider is built once)."""
    exporter = InMemorySpanExporter()
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()
