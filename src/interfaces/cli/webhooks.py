"""`blossom webhooks`: the Shopify webhook inbox — list, show, replay."""

from __future__ import annotations

import uuid

import click

from application.events.replay_webhooks import ReplayWebhooks
from domain.events import EventStatus, WebhookEvent
from interfaces.bootstrap import Container
from interfaces.cli.main import operator, shop_id_for, with_container


def _line(event: WebhookEvent) -> str:
    when = f"{event.received_at:%Y-%m-%d %H:%M:%S}"
    return f"{event.id}  {when}  {event.status.value:<9} {event.attempts:>3}  {event.topic}"


@click.group()
def webhooks() -> None:
    """Shopify webhook deliveries stored in the inbox."""


@webhooks.command("list")
@click.option("--shop", "domain", help="Only this shop (default: every shop).")
@click.option("--status", type=click.Choice([s.value for s in EventStatus]))
@click.option("--topic", help="Only this topic, e.g. orders/create.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
def list_events(domain: str | None, status: str | None, topic: str | None, limit: int) -> None:
    """List events, newest first."""

    async def action(container: Container) -> None:
        scope = (
            container.uow.for_shop(await shop_id_for(container, domain))
            if domain
            else container.uow.maintenance()
        )
        async with scope as uow:
            found = await uow.webhooks.find(
                status=EventStatus(status) if status else None, topic=topic, limit=limit
            )
        for event in found:
            click.echo(_line(event))

    with_container(action)


@webhooks.command()
@click.argument("event_id", type=click.UUID)
@click.option("--payload", is_flag=True, help="Also print the decrypted payload (contains PII).")
def show(event_id: uuid.UUID, payload: bool) -> None:
    """Show one event; the payload only on request."""

    async def action(container: Container) -> None:
        async with container.uow.maintenance() as uow:
            found = await uow.webhooks.get(event_id)
        if found is None:
            raise click.ClickException(f"no event {event_id}")
        event, body = found
        click.echo(_line(event))
        click.echo(f"shop {event.shop_id}  webhook id {event.webhook_id}  api {event.api_version}")
        if event.error:
            click.echo(f"last error: {event.error}")
        if payload:
            click.echo(body.decode())

    with_container(action)


@webhooks.command()
@click.argument("event_id", type=click.UUID, required=False)
@click.option("--failed", is_flag=True, help="Replay every failed event of --shop.")
@click.option(
    "--shop", "domain", help="The shop whose failed events to replay (with an EVENT_ID: its shop)."
)
@click.option("--topic", help="With --failed: only this topic.")
def replay(event_id: uuid.UUID | None, failed: bool, domain: str | None, topic: str | None) -> None:
    """Process an event again: one by id, or all failed ones of a shop (and topic)."""
    if bool(event_id) == failed or (failed and not domain):
        raise click.UsageError("give an EVENT_ID, or --failed with --shop")
    if topic and not failed:
        raise click.UsageError("--topic goes with --failed")
    actor = operator()

    async def action(container: Container) -> None:
        replays = ReplayWebhooks(container.uow)
        if event_id:
            # With --shop the operator says whose event this is: look for it in that shop
            # only, so a mistyped id of another shop's event is refused, never replayed.
            scope = (
                container.uow.for_shop(await shop_id_for(container, domain))
                if domain
                else container.uow.maintenance()
            )
            async with scope as uow:
                found = await uow.webhooks.get(event_id)
            if found is None or not await replays.one(found[0].shop_id, event_id, actor=actor):
                shop = f" of shop {domain}" if domain else ""
                raise click.ClickException(f"no event {event_id}{shop}")
            click.echo(f"event {event_id} queued again")
            return
        count = await replays.failed(await shop_id_for(container, domain), topic=topic, actor=actor)
        click.echo(f"{count} failed event(s) queued again")

    with_container(action)
