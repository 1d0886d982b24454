"""`steward review`: the street office decides on volunteers the ladder flagged."""

from __future__ import annotations

import click

from steward.cli.support import run_with_db
from steward.clock import utcnow
from steward.flows import office
from steward.settings import Settings
from steward.shells import review as review_shell
from steward.storage import review_store
from steward.storage.unit import UnitOfWork


@click.group()
def review() -> None:
    """Volunteers flagged for review: list them, keep them, or remove them."""


@review.command(name="list")
def list_flagged() -> None:
    """Show everyone awaiting a decision, and why."""

    async def work(settings: Settings) -> None:
        people = await review_store.flagged()
        if not people:
            click.echo("nobody is awaiting review")
        for item in people:
            p = item.person
            reason = office.review_reason(item.history, "zh")
            click.echo(
                f"{p.contact.name}\t{p.contact.phone}\t{item.community}\t{p.pair_code}\t{reason}"
            )

    run_with_db(work)


def _decide(name_or_phone: str, remove: bool) -> None:
    async def work(settings: Settings) -> None:
        try:
            done = await review_shell.decide(
                name_or_phone, remove=remove, rules=settings, now=utcnow(), units=UnitOfWork()
            )
        except review_shell.NotFound as exc:
            raise click.ClickException(str(exc)) from None
        status = done.decision.new_status
        verb = "removed" if remove else f"kept ({status}; absence count starts over)"
        click.echo(f"{done.name} {done.phone}: {verb}; {done.queued} message(s) queued")

    run_with_db(work)


@review.command()
@click.argument("name_or_phone")
def keep(name_or_phone: str) -> None:
    """Keep a flagged volunteer; the absence ladder starts over."""
    _decide(name_or_phone, remove=False)


@review.command(name="remove")
@click.argument("name_or_phone")
def remove_volunteer(name_or_phone: str) -> None:
    """Remove a volunteer; the pair becomes a vacancy and the leads are asked to fill it."""
    _decide(name_or_phone, remove=True)
