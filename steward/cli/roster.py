"""`steward roster import|list|export`: the operator's way to load and read the roster."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import click

from steward.cli.support import cli_settings, run_with_db
from steward.clock import local_date, utcnow
from steward.flows.roster import RosterDecodeError, RosterPlan, decode_roster, parse_roster
from steward.settings import Settings
from steward.storage.roster_store import (
    ImportSummary,
    RosterEntry,
    RosterRejected,
    apply_roster,
    export_roster,
    list_roster,
)

# Long lists of new pairs drown the counts; show a few and say how many more.
SHOW_AT_MOST = 10
LIST_COLUMNS = (
    "street",
    "community",
    "pair",
    "zone",
    "name",
    "phone",
    "role",
    "language",
    "status",
)


@click.group()
def roster() -> None:
    """Import, list and export the volunteer roster."""


@roster.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Validate and show what would change; write nothing.")
def import_command(file: Path, dry_run: bool) -> None:
    """Validate FILE and upsert its volunteers (nothing is written if any line is wrong)."""
    plan = _read_plan(file, cli_settings())

    async def work(_: Settings) -> ImportSummary:
        return await apply_roster(plan, dry_run=dry_run)

    try:
        summary = run_with_db(work)
    except RosterRejected as exc:
        _fail([str(e) for e in exc.errors])
    click.echo(describe_summary(summary))


def _read_plan(file: Path, settings: Settings) -> RosterPlan:
    """Decode and validate the file, or print every error and exit 1."""
    try:
        text = decode_roster(file.read_bytes())
    except RosterDecodeError as exc:
        _fail([str(exc)])
    # The age check needs the local day where the volunteers live, not the server's.
    today = local_date(utcnow(), settings.tz)
    result = parse_roster(
        text,
        region=settings.DEFAULT_REGION,
        default_language=settings.DEFAULT_LANGUAGE,
        default_patrol_start=settings.PATROL_START,
        today=today,
    )
    if isinstance(result, list):
        _fail([str(e) for e in result] + [f"{len(result)} error(s); nothing was imported"])
    return result


def _fail(lines: list[str]) -> NoReturn:
    for line in lines:
        click.echo(line, err=True)
    raise SystemExit(1)


def describe_summary(summary: ImportSummary) -> str:
    """Say what an import did, or would do on a dry run."""
    if summary.dry_run:
        head = (
            f"would add {summary.added} volunteers, update {summary.updated}, "
            f"unchanged {summary.unchanged}"
        )
    else:
        head = (
            f"added {summary.added} volunteers, updated {summary.updated}, "
            f"unchanged {summary.unchanged}"
        )
    parts = [head]
    for label, items in (
        ("new streets", summary.new_streets),
        ("new communities", summary.new_communities),
        ("new pairs", summary.new_pairs),
        ("changed pairs", summary.changed_pairs),
    ):
        if items:
            parts.append(f"{label}: {_some(items)}")
    if summary.still_removed:
        parts.append(f"{summary.still_removed} listed but removed (left removed)")
    return "; ".join(parts)


def _some(items: tuple[str, ...]) -> str:
    shown = ", ".join(items[:SHOW_AT_MOST])
    more = len(items) - SHOW_AT_MOST
    return f"{shown} and {more} more" if more > 0 else shown


@roster.command("list")
def list_command() -> None:
    """Print every volunteer (removed ones too) as a table."""

    async def work(_: Settings) -> list[RosterEntry]:
        return await list_roster()

    entries = run_with_db(work)
    if not entries:
        click.echo("the roster is empty")
        return
    click.echo(format_table(entries))


def format_table(entries: list[RosterEntry]) -> str:
    """Lay entries out in aligned columns (CJK characters count as two cells wide)."""
    rows = [list(LIST_COLUMNS)] + [[getattr(e, c) for c in LIST_COLUMNS] for e in entries]
    widths = [max(_width(row[i]) for row in rows) for i in range(len(LIST_COLUMNS))]
    return "\n".join(
        "  ".join(
            cell + " " * (w - _width(cell)) for cell, w in zip(row, widths, strict=True)
        ).rstrip()
        for row in rows
    )


def _width(text: str) -> int:
    return sum(2 if "\u2e80" <= ch <= "\uffef" else 1 for ch in text)


@roster.command("export")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
def export_command(file: Path | None) -> None:
    """Write the active roster as CSV (UTF-8 with BOM, for Excel) to FILE or stdout."""

    async def work(_: Settings) -> str:
        return await export_roster()

    text = run_with_db(work)
    if file is None:
        click.echo("\ufeff" + text, nl=False)
    else:
        file.write_bytes(text.encode("utf-8-sig"))
