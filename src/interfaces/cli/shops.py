"""`blossom shops`: the tenants on this deployment."""

from __future__ import annotations

import click

from application.errors import ShopifyRejected
from application.shops.list_shops import ListShops
from domain.shops import ShopCredentials
from infrastructure.shopify.signatures import SignatureError, normalize_shop_domain
from interfaces.bootstrap import Container
from interfaces.cli.main import with_container


@click.group()
def shops() -> None:
    """Shops installed on this deployment."""


@shops.command("list")
def list_shops() -> None:
    """List every shop with its install state (maintenance path: all shops)."""

    async def action(container: Container) -> None:
        found = await ListShops(container.uow.maintenance())()
        if not found:
            click.echo("no shops installed yet")
        for shop in found:
            click.echo(f"{shop.id}  {shop.domain:<40} {shop.status.value:<12} {shop.name}")

    with_container(action)


@shops.command()
@click.argument("domain")
@click.option("--access-token", required=True, help="Admin API token of the shop's custom app.")
@click.option(
    "--scopes",
    help="Scopes granted to the custom app (comma-separated; default: SHOPIFY_SCOPES).",
)
def install(domain: str, access_token: str, scopes: str | None) -> None:
    """Install a shop from a custom app's Admin API token, without OAuth.

    Webhook subscriptions and the shop's settings follow through the worker.
    """
    try:
        shop_domain = normalize_shop_domain(domain)
    except SignatureError:
        raise click.BadParameter("expected a domain like example.myshopify.com") from None

    async def action(container: Container) -> None:
        granted = (
            tuple(s.strip() for s in scopes.split(","))
            if scopes
            else container.settings.shopify_scopes
        )
        credentials = ShopCredentials(access_token.strip(), granted, custom_app=True)
        try:
            shop = await container.install_shop()(shop_domain, credentials, source="cli")
        except ShopifyRejected as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"installed {shop.domain} ({shop.id}); webhooks are registered by the worker")

    with_container(action)
