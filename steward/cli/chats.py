"""`steward chats`: invite codes that bind Telegram groups, and the groups bound so far."""

from __future__ import annotations

import click

from steward.cli.support import run_with_db
from steward.clock import utc, utcnow
from steward.settings import Settings
from steward.shells import groups as group_shell
from steward.storage.chats_store import UnknownPlace
from steward.storage.unit import UnitOfWork


@click.group()
def chats() -> None:
    """Telegram groups for leads (a community) and the street office."""


@chats.command()
@click.option("--street", required=True, help="street name, as in the roster")
@click.option("--community", default=None, help="community name (required for a lead group)")
@click.option("--role", type=click.Choice(["lead", "office"]), required=True)
def invite(street: str, community: str | None, role: str) -> None:
    """Print a one-time code; `/bind CODE` in the group binds it (valid 7 days)."""
    if role == "lead" and community is None:
        raise click.UsageError("a lead group belongs to a community: give --community")
    if role == "office" and community is not None:
        raise click.UsageError("an office group covers the whole street: leave out --community")

    async def work(settings: Settings) -> None:
        try:
            made = await group_shell.invite(street, community, role, utcnow(), UnitOfWork())
        except UnknownPlace as exc:
            raise click.ClickException(str(exc)) from None
        place = f"{street} {community}" if community else street
        until = utc(made.expires_at).astimezone(settings.tz).strftime("%Y-%m-%d %H:%M")
        click.echo(f"/bind {made.code}")
        click.echo(f"{role} group of {place}; send it in the group before {until}; it works once")

    run_with_db(work)


@chats.command(name="list")
def list_groups() -> None:
    """Show the bound groups."""

    async def work(settings: Settings) -> None:
        groups = await group_shell.bound(UnitOfWork())
        if not groups:
            click.echo("no groups bound yet (steward chats invite)")
        for g in groups:
            click.echo(f"{g.chat_id}\t{g.role}\t{g.place}")

    run_with_db(work)
