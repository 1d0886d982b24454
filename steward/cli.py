"""The `steward` command."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime

import click

from steward.cli_support import cli_settings, run_with_db
from steward.settings import Settings
from steward.shells import jobs as job_shells
from steward.storage import db


def configure_logging(level: str) -> None:
    """Log at LOG_LEVEL, but APScheduler's own lines only from WARNING unless LOG_LEVEL=DEBUG.

    APScheduler logs two INFO lines for every run of every job ("Running job ...", "... executed
    successfully"); the scheduler logs one line of its own instead, for runs that queued
    something.
    """
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)  # also when something set up the root logger before us
    numeric = logging.getLevelNamesMapping()[level]
    aps_level = numeric if numeric == logging.DEBUG else max(numeric, logging.WARNING)
    logging.getLogger("apscheduler").setLevel(aps_level)


@click.group()
def cli() -> None:
    """Alley Steward: patrol programme by SMS and Telegram."""


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Run the web service (webhooks, health, metrics) and the outbox dispatcher."""
    import uvicorn

    from steward.app import create_app

    settings = cli_settings()
    configure_logging(settings.LOG_LEVEL)
    uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.LOG_LEVEL.lower())


@cli.group(name="db")
def db_group() -> None:
    """Database maintenance."""


@db_group.command()
def upgrade() -> None:
    """Apply pending database migrations."""
    settings = cli_settings()
    asyncio.run(db.upgrade(settings.DATABASE_URL))
    click.echo(f"database is up to date ({_safe_url(settings.DATABASE_URL)})")


@cli.command()
@click.argument("text")
def parse(text: str) -> None:
    """Show how the service reads TEXT, as JSON."""
    from steward.flows.grammar import parse as parse_text

    click.echo(json.dumps(parse_text(text).as_json(), ensure_ascii=False))


@cli.command()
@click.option("--status", "status", default=None, help="only messages in this status")
@click.option("--limit", default=50, show_default=True)
def outbox(status: str | None, limit: int) -> None:
    """List recent outbound messages."""
    from steward.storage.models import OutboxMessage

    async def work(settings: Settings) -> None:
        query = OutboxMessage.all()
        if status:
            query = query.filter(status=status)
        for row in await query.order_by("-id").limit(limit):
            click.echo(
                f"{row.id}\t{row.status}\t{row.channel}\t{row.address}\t{row.kind}\t"
                f"{row.attempts}\t{row.body[:40]}"
            )

    run_with_db(work)


@cli.group()
def jobs() -> None:
    """Scheduled jobs, run by hand."""


@jobs.command(name="run")
@click.argument("job", type=click.Choice([*job_shells.JOBS, "all"]))
@click.option("--at", "at", default=None, help="run as of this time (ISO 8601; default now)")
@click.option("--dry-run", is_flag=True, help="print what would be sent; store nothing")
def run_job(job: str, at: str | None, dry_run: bool) -> None:
    """Run JOB as of --at."""
    from steward.clock import utc, utcnow

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


def _safe_url(url: str) -> str:
    """Hide a password in a database URL before printing it."""
    if "@" in url and ":" in url.split("@", 1)[0].split("//", 1)[-1]:
        scheme, rest = url.split("//", 1)
        user = rest.split(":", 1)[0]
        return f"{scheme}//{user}:***@{rest.split('@', 1)[1]}"
    return url


def _attach_optional_groups() -> None:
    from steward.cli_digest import digest
    from steward.cli_review import review
    from steward.cli_roster import roster

    cli.add_command(roster)
    cli.add_command(review)
    cli.add_command(digest)


_attach_optional_groups()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
