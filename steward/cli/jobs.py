"""`steward jobs run`: any scheduled job, by hand, as of any moment."""

from __future__ import annotations

from datetime import datetime

import click

from steward.cli.support import run_with_db
from steward.clock import utc, utcnow
from steward.settings import Settings
from steward.shells import jobs as job_shells


@click.group()
def jobs() -> None:
    """Scheduled jobs, run by hand."""


@jobs.command(name="run")
@click.argument("job", type=click.Choice([*job_shells.JOBS, "all"]))
@click.option("--at", "at", default=None, help="run as of this time (ISO 8601; default now)")
@click.option("--dry-run", is_flag=True, help="print what would be sent; store nothing")
def run_job(job: str, at: str | None, dry_run: bool) -> None:
    """Run JOB as of --at."""

    async def work(settings: Settings) -> None:
        now = utcnow()
        if at:
            moment = datetime.fromisoformat(at)
            now = utc(moment if moment.tzinfo else moment.replace(tzinfo=settings.tz))
        names = list(job_shells.JOBS) if job == "all" else [job]
        verb = "would send" if dry_run else "sent"
        for name in names:
            sent = await job_shells.run_job(name, settings, now, dry_run=dry_run)
            click.echo(f"{name} at {now.astimezone(settings.tz).isoformat()}: {verb} {len(sent)}")
            for notice in sent:
                click.echo(f"  to {notice.to.name} {notice.to.phone}: {notice.body}")

    run_with_db(work)
