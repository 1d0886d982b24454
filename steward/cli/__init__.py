"""The `steward` command: one group, one module per area of work."""

from __future__ import annotations

import click

from steward.cli.applicants import applicants
from steward.cli.assess import assess
from steward.cli.chats import chats
from steward.cli.demo import demo
from steward.cli.digest import digest
from steward.cli.export import export
from steward.cli.jobs import jobs
from steward.cli.points import points
from steward.cli.review import review
from steward.cli.roster import roster
from steward.cli.service import configure_logging, db_group, serve
from steward.cli.support_commands import outbox, parse

__all__ = ["cli", "configure_logging", "main"]


@click.group()
def cli() -> None:
    """Alley Steward: patrol programme by SMS and Telegram."""


for command in (
    serve,
    demo,
    db_group,
    parse,
    outbox,
    jobs,
    roster,
    review,
    digest,
    points,
    assess,
    export,
    chats,
    applicants,
):
    cli.add_command(command)


def main() -> None:
    cli()
