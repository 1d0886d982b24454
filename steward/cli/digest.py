"""`steward digest`: print a street's daily digest, and on request text it to the office."""

from __future__ import annotations

from datetime import date, datetime

import click

from steward.cli.support import run_with_db
from steward.clock import local_date, utcnow
from steward.settings import Settings
from steward.shells import digest as digest_shell
from steward.storage.unit import UnitOfWork


@click.command()
@click.option("--street", default=None, help="street name (default: every street)")
@click.option("--date", "day", default=None, help="local date YYYY-MM-DD (default: today)")
@click.option("--send", is_flag=True, help="also queue the SMS digest to the office staff")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
def digest(street: str | None, day: str | None, send: bool, lang: str) -> None:
    """Print the daily digest of each street (or --street) for --date."""

    chosen = _parse_day(day) if day else None

    async def work(settings: Settings) -> None:
        now = utcnow()
        when = chosen or local_date(now, settings.tz)
        try:
            texts = await digest_shell.digest_for(street, when, lang, settings)
            for _, text in texts:
                click.echo(text + "\n")
            if send:
                await _send(street, when, settings, now)
        except digest_shell.UnknownStreet as exc:
            raise click.ClickException(f"no street named {exc}") from None

    run_with_db(work)


async def _send(street: str | None, day: date, settings: Settings, now: datetime) -> None:
    street_id = await digest_shell.street_id_named(street) if street else None
    queued = await digest_shell.send_digests(
        street_id, day, settings, now, dry_run=False, units=UnitOfWork()
    )
    click.echo(f"queued {len(queued)} digest SMS")
    for notice in queued:
        click.echo(f"  to {notice.to.name} {notice.to.phone}")


def _parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not YYYY-MM-DD", param_hint="--date") from None
