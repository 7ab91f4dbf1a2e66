"""`blossom db`: schema migrations (run as the database owner)."""

from __future__ import annotations

import click

from infrastructure.db import migrate
from interfaces.bootstrap import resolve_database_url
from interfaces.cli.main import settings_or_exit


def _url() -> str:
    url, _ = resolve_database_url(settings_or_exit())
    return url


@click.group()
def db() -> None:
    """Database schema: upgrade, downgrade, current revision, new revision."""


@db.command()
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Migrate up to REVISION (default: head)."""
    migrate.upgrade(_url(), revision)


@db.command()
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Migrate down to REVISION (e.g. -1, 0002 or base)."""
    migrate.downgrade(_url(), revision)


@db.command()
def current() -> None:
    """Show the revision the database is at."""
    migrate.current(_url())


@db.command()
@click.option("-m", "--message", required=True, help="What the revision changes.")
@click.option("--autogenerate/--empty", default=True, help="Diff the models against the database.")
def revision(message: str, autogenerate: bool) -> None:
    """Create a new migration file under migrations/versions."""
    migrate.revision(_url(), message, autogenerate=autogenerate)
