"""`blossom`: run the service, the worker, and the operator commands."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import signal
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import click
import psycopg
from sqlalchemy.exc import DBAPIError

from application.ports import UnitOfWork
from infrastructure.settings import Settings, SettingsError, load_settings
from infrastructure.telemetry.logging import redact
from interfaces.bootstrap import Container, build_container, running


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        click.echo(f"configuration error: {exc.variable}: expected {exc.expected}", err=True)
        sys.exit(2)


def _event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it exists: each database round trip and HTTP exchange costs the event
    loop about half the CPU it costs asyncio's own (bench/webhook_ingress.py)."""
    try:
        import uvloop
    except ImportError:  # Windows: asyncio's loop
        return None
    return uvloop.new_event_loop


def run(coro_factory: Callable[[], Awaitable[Any]]) -> Any:
    """Run a command's coroutine; database trouble becomes one readable line, not a traceback."""

    async def main() -> Any:
        return await coro_factory()

    try:
        with asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
            return runner.run(main())
    except (DBAPIError, asyncpg.PostgresError, OSError, psycopg.OperationalError) as exc:
        reason = redact(str(getattr(exc, "orig", exc))).splitlines()[0]
        raise click.ClickException(
            f"database error: {reason}\n"
            "Check DATABASE_URL and that `blossom db upgrade` has been run."
        ) from None


def with_container(
    action: Callable[[Container], Awaitable[Any]], *, open_queue: bool = False
) -> Any:
    """Run one operator command with a container; `open_queue` also opens the queue's pool
    (needed for procrastinate's job manager)."""
    container = build_container(settings_or_exit(), application_name="blossom-cli")

    async def main() -> Any:
        if open_queue:
            async with running(container):
                return await action(container)
        try:
            return await action(container)
        finally:
            await container.aclose()

    return run(main)


async def shop_id_for(container: Container, domain: str) -> uuid.UUID:
    async with container.uow.for_shop_domain(domain.strip().lower()) as uow:
        if uow.shop_id is None:
            raise click.ClickException(f"no shop {domain}")
        return uow.shop_id


shop_option = click.option(
    "--shop", "domain", required=True, help="The shop's domain, e.g. x.myshopify.com."
)


def in_shop(domain: str, action: Callable[[UnitOfWork], Awaitable[Any]]) -> Any:
    """Run `action` in one committed transaction of the shop."""

    async def scoped(container: Container) -> Any:
        async with container.uow.for_shop(await shop_id_for(container, domain)) as uow:
            result = await action(uow)
            await uow.commit()
            return result

    return with_container(scoped)


def operator() -> str:
    """Who ran a command, for the audit log and the ledger."""
    return f"cli:{getpass.getuser()}"


def stop_event_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """SMS Blossom: Shopify SMS marketing, on Postgres.

    Configuration comes from the environment (see README). Without DATABASE_URL an
    embedded Postgres is started under the data folder.
    """


def _register() -> None:
    from interfaces.cli import contacts, db, demo, jobs, messages, serve, shops, wallet, webhooks

    main.add_command(serve.up)
    main.add_command(serve.api)
    main.add_command(serve.worker)
    main.add_command(db.db)
    main.add_command(jobs.jobs)
    main.add_command(shops.shops)
    main.add_command(webhooks.webhooks)
    main.add_command(contacts.contacts)
    main.add_command(demo.demo)
    main.add_command(wallet.wallet)
    main.add_command(messages.messages)


_register()
