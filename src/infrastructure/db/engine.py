"""Engines and connection URLs.

The service connects with `DATABASE_URL` but runs every statement as the
`blossom_app` role, which is neither superuser nor table owner, so row-level
security applies. Migrations run as the URL's own user, who owns the tables.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.ext import asyncio as sqlalchemy_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession
from sqlalchemy.pool import NullPool

APP_ROLE = "blossom_app"
MAINTENANCE_ROLE = "blossom_maintenance"
# A backend that writes out buffers itself asks the kernel to write them to disk every
# 256 kB (Postgres's own default for the checkpointer). Postgres leaves this off for
# backends, and under sustained ingress their writes then pile up in the page cache until a
# checkpoint's fsync flushes hundreds of megabytes at once, holding every commit's WAL flush
# behind it for ~150 ms (bench/webhook_ingress.py).
BACKEND_FLUSH_AFTER = "256kB"


def sqlalchemy_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql+asyncpg"))


def libpq_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


def create_app_engine(
    url: str, *, pool_size: int = 10, application_name: str = "blossom", pre_ping: bool = True
) -> AsyncEngine:
    """`pre_ping` checks each connection before use (a round trip); without it a connection
    broken by a database restart fails its first statement, and the pool is then renewed."""
    # Looked up when called: OpenTelemetry's SQLAlchemy instrumentation replaces the
    # module's function (configure_tracing), and a copy imported earlier would make engines
    # whose statements are never traced.
    return sqlalchemy_asyncio.create_async_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=pre_ping,
        connect_args={
            "server_settings": {
                "role": APP_ROLE,
                "application_name": application_name,
                "backend_flush_after": BACKEND_FLUSH_AFTER,
            }
        },
    )


def create_owner_engine(url: str) -> AsyncEngine:
    """An engine as the schema owner: migrations and database administration only."""
    return sqlalchemy_asyncio.create_async_engine(sqlalchemy_url(url), poolclass=NullPool)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
