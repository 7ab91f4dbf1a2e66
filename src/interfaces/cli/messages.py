"""`blossom messages`: what happened to a shop's texts, for the engineer on call."""

from __future__ import annotations

import uuid

import click

from application.ports import UnitOfWork
from domain.messages import Message, MessageStatus
from interfaces.bootstrap import Container
from interfaces.cli.main import in_shop, shop_option, with_container


@click.group()
def messages() -> None:
    """A shop's messages: list, show with history; the sweep and the phone-index backfill."""


def _line(m: Message) -> str:
    # Only the last digits of the number: enough to match a complaint, not a contact list.
    scheduled = f"  at {m.scheduled_at:%Y-%m-%d %H:%M}Z" if m.scheduled_at else ""
    return (
        f"{m.id}  {m.created_at:%Y-%m-%d %H:%M:%S}  {m.status.value:<28} {m.category.value:<13}"
        f" …{m.to[-4:]:<4}  {m.segments} seg {m.credits} cr  {m.source}{scheduled}"
    )


@messages.command("list")
@shop_option
@click.option("--status", type=click.Choice([s.value for s in MessageStatus]), default=None)
@click.option("--limit", type=click.IntRange(1, 500), default=50)
def list_messages(domain: str, status: str | None, limit: int) -> None:
    """Newest first."""

    async def action(uow: UnitOfWork) -> None:
        found = await uow.messages.page(
            limit=limit, status=MessageStatus(status) if status else None
        )
        for message in found:
            click.echo(_line(message))
        if not found:
            click.echo("no messages")

    in_shop(domain, action)


@messages.command()
@shop_option
@click.argument("message_id", type=click.UUID)
def show(domain: str, message_id: uuid.UUID) -> None:
    """One message with its status history."""

    async def action(uow: UnitOfWork) -> None:
        message = await uow.messages.get(message_id)
        if message is None:
            raise click.ClickException(f"no message {message_id} in {domain}")
        click.echo(_line(message))
        click.echo(f"provider id {message.provider_id or '-'}  attempts {message.attempts}")
        if message.error:
            click.echo(f"error: {message.error}")
        for change in await uow.messages.history(message_id):
            click.echo(
                f"  {change.at:%Y-%m-%d %H:%M:%S}  {change.status.value}  {change.detail or ''}"
            )

    in_shop(domain, action)


@messages.command()
def sweep() -> None:
    """Give due messages without a job a new one; expire unknown outcomes; apply or drop
    held delivery reports (all shops)."""

    async def action(container: Container) -> None:
        result = await container.sweep_messages()()
        click.echo(
            f"requeued {result.requeued}, expired {result.expired}, "
            f"held reports matched {result.reports_matched}, dropped {result.reports_dropped}"
        )

    with_container(action, open_queue=False)


@messages.command("index-phones")
def index_phones() -> None:
    """Give texts stored before migration 0017 the phone index by which GDPR requests find
    them (all shops; safe to run again)."""

    async def action(container: Container) -> None:
        indexed = await container.index_message_phones()()
        click.echo(f"indexed {indexed} messages and inbound texts")

    with_container(action)
