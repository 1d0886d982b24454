"""`steward export hours`: the month's service-hours file for the national volunteer system."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from steward.cli.support import run_with_db
from steward.flows import points
from steward.flows.hours_export import hours, write
from steward.flows.points import Period
from steward.settings import Settings
from steward.shells import points as points_shell


def parse_month(text: str) -> Period:
    """Read --month, or stop with a usage error naming it."""
    try:
        return points.month(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--month") from None


def check_output(fmt: str, output: Path | None) -> None:
    """Refuse, before any work, a spreadsheet meant for the terminal."""
    if fmt == "xlsx" and output is None:
        raise click.UsageError("an xlsx file needs -o FILE")


def deliver(data: bytes, output: Path | None) -> None:
    """Write a report to -o FILE, or to standard output."""
    if output is not None:
        output.write_bytes(data)
        click.echo(f"wrote {output}", err=True)
        return
    sys.stdout.flush()  # what click echoed before goes first
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


async def street_id_or_exit(name: str | None) -> int | None:
    """The --street's id (None: every street), or stop naming the street that is not there."""
    try:
        return await points_shell.street_named(name)
    except points_shell.UnknownStreet as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def export() -> None:
    """Files the street office sends on (service hours)."""


@export.command(name="hours")
@click.option("--month", "month_text", required=True, help="YYYY-MM")
@click.option("--street", default=None, help="street name (default: every street)")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv", show_default=True
)
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
def hours_file(
    month_text: str, street: str | None, fmt: str, lang: str, output: Path | None
) -> None:
    """One row per volunteer: confirmed hours and sessions, with totals (CSV is UTF-8 with BOM)."""
    period = parse_month(month_text)
    check_output(fmt, output)

    async def work(settings: Settings) -> None:
        street_id = await street_id_or_exit(street)
        table, data = await points_shell.hours_record(period, street_id=street_id, language=lang)
        deliver(write([table], fmt), output)
        total = sum(line.minutes for line in data.lines)
        click.echo(
            f"{len(table.rows)} volunteer(s), {hours(total):.1f} confirmed hours; "
            f"{data.unconfirmed_sessions} unconfirmed session(s) left out",
            err=True,
        )

    run_with_db(work)
