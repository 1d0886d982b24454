"""`steward serve` and `steward db upgrade`: running the service and its database."""

from __future__ import annotations

import asyncio
import gc
import logging

import click

from steward.cli.support import cli_settings
from steward.storage import db


def configure_logging(level: str) -> None:
    """Log at LOG_LEVEL, but APScheduler's own lines only from WARNING unless LOG_LEVEL=DEBUG,
    and the HTTP clients' request lines (httpx's name the bot token, Twilio's the numbers a
    message list is filtered by) never.

    APScheduler logs two INFO lines for every run of every job ("Running job ...", "... executed
    successfully"); the scheduler logs one line of its own instead, for runs that queued
    something.
    """
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)  # also when something set up the root logger before us
    numeric = logging.getLevelNamesMapping()[level]
    aps_level = numeric if numeric == logging.DEBUG else max(numeric, logging.WARNING)
    logging.getLogger("apscheduler").setLevel(aps_level)
    # httpx logs every request's URL at INFO, and a Bot API URL carries the bot token
    # (.../bot<token>/sendMessage): a secret in the log. Its warnings and errors still show.
    # The twilio library logs every request (method, URL, query, headers) and response at INFO:
    # lines nobody reads, phone numbers in the lookup's query, and under load the time it takes
    # to write them.
    for name in ("httpx", "httpcore", "twilio"):
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Run the web service (webhooks, health, metrics), processor, dispatcher and scheduler."""
    import uvicorn

    from steward.app import create_app

    settings = cli_settings()
    configure_logging(settings.LOG_LEVEL)
    app = create_app(settings)
    # Everything imported so far lives as long as the process: out of the collector's sight, a
    # full collection no longer walks it (those walks were the webhooks' slowest moments).
    gc.freeze()
    uvicorn.run(app, host=host, port=port, log_level=settings.LOG_LEVEL.lower())


@click.group(name="db")
def db_group() -> None:
    """Database maintenance."""


@db_group.command()
def upgrade() -> None:
    """Apply pending database migrations."""
    settings = cli_settings()
    asyncio.run(db.upgrade(settings.DATABASE_URL))
    click.echo(f"database is up to date ({safe_url(settings.DATABASE_URL)})")


def safe_url(url: str) -> str:
    """Hide a password in a database URL before printing it."""
    if "@" in url and ":" in url.split("@", 1)[0].split("//", 1)[-1]:
        scheme, rest = url.split("//", 1)
        user = rest.split(":", 1)[0]
        return f"{scheme}//{user}:***@{rest.split('@', 1)[1]}"
    return url
