"""`steward assess`: the month's scorecards (考核) for stewards and communities."""

from __future__ import annotations

from pathlib import Path

import click

from steward.cli.export import check_output, deliver, parse_month, street_id_or_exit
from steward.cli.support import run_with_db
from steward.clock import utcnow
from steward.flows.hours_export import FORMATS, write
from steward.settings import Settings
from steward.shells import points as points_shell


@click.command()
@click.option("--month", "month_text", required=True, help="YYYY-MM")
@click.option("--street", default=None, help="street name (default: every street)")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
def assess(month_text: str, street: str | None, fmt: str, lang: str, output: Path | None) -> None:
    """Attendance, hours and reports per steward; handling and satisfaction per community.

    Reports are those received in the month, with what became of them since; "overdue" is
    judged as of now.
    """
    period = parse_month(month_text)
    check_output(fmt, output)

    async def work(settings: Settings) -> None:
        street_id = await street_id_or_exit(street)
        tables = await points_shell.assessment(
            period, rules=settings, now=utcnow(), street_id=street_id, language=lang
        )
        deliver(write(tables, fmt), output)

    run_with_db(work)
