"""`blossom shops`: the tenants on this deployment."""

from __future__ import annotations

import click

from application.shops.list_shops import ListShops
from interfaces.bootstrap import build_container
from interfaces.cli.main import run, settings_or_exit


@click.group()
def shops() -> None:
    """Shops installed on this deployment."""


@shops.command("list")
def list_shops() -> None:
    """List every shop with its install state (maintenance path: all shops)."""
    container = build_container(settings_or_exit(), application_name="blossom-cli")

    async def main() -> None:
        try:
            found = await ListShops(container.uow.maintenance())()
        finally:
            await container.aclose()
        if not found:
            click.echo("no shops installed yet")
        for shop in found:
            click.echo(f"{shop.id}  {shop.domain:<40} {shop.status.value:<12} {shop.name}")

    run(main)
