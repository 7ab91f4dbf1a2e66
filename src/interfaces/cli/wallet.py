"""`blossom wallet`: a shop's credits — balance, ledger, top-ups, grants, verification."""

from __future__ import annotations

import uuid

import click

from application.billing.fund_wallet import GrantCredits, TopUpWallet
from application.ports import UnitOfWork
from domain.billing import LARGEST_ENTRY
from interfaces.cli.main import in_shop, operator, shop_option


@click.group()
def wallet() -> None:
    """Prepaid SMS credits of one shop."""


@wallet.command()
@shop_option
def balance(domain: str) -> None:
    """Balance, reserved credits and the low-balance threshold."""

    async def action(uow: UnitOfWork) -> None:
        found = await uow.wallet.balance()
        if found is None:
            click.echo("no wallet yet (0 credits)")
            return
        low = "  LOW" if found.low else ""
        click.echo(
            f"balance {found.balance}  reserved {found.reserved}  "
            f"threshold {found.low_balance_threshold}{low}"
        )

    in_shop(domain, action)


@wallet.command()
@shop_option
@click.option("--credits", type=click.IntRange(min=1, max=LARGEST_ENTRY), required=True)
@click.option("--reference", required=True, help="The payment's id: the same one twice adds once.")
def topup(domain: str, credits: int, reference: str) -> None:
    """Add purchased credits (idempotent per reference)."""

    async def action(uow: UnitOfWork) -> None:
        entry = await TopUpWallet()(uow, credits=credits, reference=reference, source=operator())
        click.echo("already recorded" if entry is None else f"balance now {entry.balance_after}")

    in_shop(domain, action)


@wallet.command()
@shop_option
@click.option("--credits", type=click.IntRange(min=1, max=LARGEST_ENTRY), required=True)
@click.option("--reason", required=True, help="Why, for the record.")
@click.option(
    "--reference",
    default=None,
    help="A ticket or case id: the same one twice grants once (so a retry is safe).",
)
def grant(domain: str, credits: int, reason: str, reference: str | None) -> None:
    """Give credits (goodwill, support), with the reason on the ledger."""

    async def action(uow: UnitOfWork) -> None:
        entry = await GrantCredits()(
            uow,
            credits=credits,
            reference=f"grant:{reference or uuid.uuid4()}",
            reason=reason,
            source=operator(),
        )
        click.echo(f"balance now {entry.balance_after}" if entry else "already recorded")

    in_shop(domain, action)


@wallet.command()
@shop_option
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
def ledger(domain: str, limit: int) -> None:
    """The latest ledger entries, newest first."""

    async def action(uow: UnitOfWork) -> None:
        for _, at, e in await uow.wallet.history(limit=limit):
            click.echo(
                f"{at:%Y-%m-%d %H:%M:%S}  {e.entry.kind.value:<10} {e.entry.balance_delta:>+8} "
                f"{e.entry.reserved_delta:>+8}  -> {e.balance_after:>8} / {e.reserved_after:<8} "
                f"{e.entry.reference}  {e.entry.reason}"
            )

    in_shop(domain, action)


@wallet.command()
@shop_option
def verify(domain: str) -> None:
    """Check that the balance and reserved credits equal the ledger's sums."""

    async def action(uow: UnitOfWork) -> bool:
        return await uow.wallet.balanced()

    if not in_shop(domain, action):
        raise click.ClickException("the wallet does NOT match its ledger")
    click.echo("the wallet matches its ledger")
