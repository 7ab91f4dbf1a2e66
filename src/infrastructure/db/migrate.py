"""Schema migrations through advanced-alchemy's Alembic integration.

Alembic's environment runs its own event loop, so these are plain functions; async
callers run them in a thread.
"""

from __future__ import annotations

from pathlib import Path

from advanced_alchemy.alembic.commands import AlembicCommands
from advanced_alchemy.config import AlembicAsyncConfig, SQLAlchemyAsyncConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from infrastructure.db.engine import create_owner_engine

# A source checkout keeps migrations at the top level; the wheel ships them in the package.
MIGRATIONS = next(
    path
    for path in (
        Path(__file__).resolve().parents[3] / "migrations",
        Path(__file__).resolve().parent / "migrations",
    )
    if (path / "env.py").exists()
)
VERSION_TABLE = "alembic_versions"


def _commands(url: str) -> AlembicCommands:
    config = SQLAlchemyAsyncConfig(
        engine_instance=create_owner_engine(url),
        alembic_config=AlembicAsyncConfig(
            script_location=str(MIGRATIONS),
            version_table_name=VERSION_TABLE,
            script_config=str(MIGRATIONS / "alembic.ini"),
            template_path=str(MIGRATIONS),
        ),
    )
    return AlembicCommands(sqlalchemy_config=config)


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Autogenerate compares only our tables: procrastinate's schema has its own revisions."""
    return not (type_ == "table" and reflected and compare_to is None)


def upgrade(url: str, revision: str = "head") -> None:
    _commands(url).upgrade(revision)


def downgrade(url: str, revision: str) -> None:
    _commands(url).downgrade(revision)


def current(url: str) -> None:
    _commands(url).current(verbose=True)


def revision(url: str, message: str, *, autogenerate: bool) -> None:
    _commands(url).revision(message=message, autogenerate=autogenerate)


def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


async def schema_revision(connection: AsyncConnection) -> str | None:
    """The revision the database is at, or None when it has never been migrated."""
    exists = await connection.scalar(text(f"SELECT to_regclass('{VERSION_TABLE}') IS NOT NULL"))
    if not exists:
        return None
    return await connection.run_sync(
        lambda sync: MigrationContext.configure(
            sync, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()
    )
