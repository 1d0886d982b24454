"""`steward parse` and `steward outbox`: what support staff ask when a volunteer calls."""

from __future__ import annotations

import json

import click

from steward.cli.support import run_with_db
from steward.settings import Settings


@click.command()
@click.argument("text")
def parse(text: str) -> None:
    """Show how the service reads TEXT, as JSON."""
    from steward.flows.grammar import parse as parse_text

    click.echo(json.dumps(parse_text(text).as_json(), ensure_ascii=False))


@click.command()
@click.option("--status", "status", default=None, help="only messages in this status")
@click.option("--limit", default=50, show_default=True)
def outbox(status: str | None, limit: int) -> None:
    """List recent outbound messages."""
    from steward.storage.outbox_store import recent

    async def work(settings: Settings) -> None:
        for row in await recent(status, limit):
            click.echo(
                f"{row.id}\t{row.status}\t{row.channel}\t{row.address}\t{row.kind}\t"
                f"{row.attempts}\t{row.body[:40]}"
            )

    run_with_db(work)
