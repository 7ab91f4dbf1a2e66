"""`blossom contacts`: bulk operations on a shop's contacts."""

from __future__ import annotations

from pathlib import Path

import click

from application.contacts.import_contacts import ImportReport, read_rows
from domain.errors import InvalidValue
from interfaces.bootstrap import Container
from interfaces.cli.main import shop_id_for, shop_option, with_container


@click.group()
def contacts() -> None:
    """Contacts of one shop: CSV import."""


@contacts.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@shop_option
def import_file(file: Path, domain: str) -> None:
    """Import contacts from a CSV file, showing progress and the lines that failed.

    Columns: phone (required), email, first_name, last_name, tags (;-separated), consent
    (subscribed|unsubscribed) and consent_proof, which a subscription must have.
    """
    text = file.read_text(encoding="utf-8-sig")
    try:
        total = sum(1 for _ in read_rows(text))
    except InvalidValue as exc:
        raise click.ClickException(str(exc)) from None

    async def action(container: Container) -> ImportReport:
        shop_id = await shop_id_for(container, domain)
        with click.progressbar(length=total, label="importing") as bar:

            async def advance(report: ImportReport) -> None:
                bar.update(report.processed - bar.pos)

            return await container.import_contacts().run(
                lambda: container.uow.for_shop(shop_id),
                read_rows(text),
                # The ledger's actor is at most 200 characters; a path can be longer.
                actor=f"cli-import:{Path(file.name).name[:100]}",
                progress=advance,
            )

    report = with_container(action)
    click.echo(f"{report.imported} imported, {len(report.errors)} failed of {report.processed}")
    for error in report.errors:
        click.echo(f"  line {error['line']}: {error['error']}")
