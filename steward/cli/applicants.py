"""`steward applicants`: the street screens applications made by text (SPEC §9)."""

from __future__ import annotations

import click

from steward.cli.points import _actor
from steward.cli.support import run_with_db
from steward.clock import local_date, utcnow
from steward.settings import Settings
from steward.shells import recruitment
from steward.storage.unit import UnitOfWork


@click.group()
def applicants() -> None:
    """Applications by text: list them, approve one into a pair, or decline one."""


@applicants.command(name="list")
@click.option("--street", default=None, help="only this street (its name)")
@click.option("--community", default=None, help="only this community (its name)")
@click.option(
    "--status",
    default="pending",
    show_default=True,
    type=click.Choice([*recruitment.LISTABLE, "all"]),
)
def list_applicants(street: str | None, community: str | None, status: str) -> None:
    """Show applications, oldest first, with their priority marks (党员, 有经验)."""

    async def work(settings: Settings) -> None:
        try:
            found = await recruitment.list_applicants(
                street=street, community=community, status=status
            )
        except recruitment.RecruitmentError as exc:
            raise click.ClickException(str(exc)) from None
        if not found:
            click.echo(f"no {status} applications" if status != "all" else "no applications")
        today = local_date(utcnow(), settings.tz)
        for applicant in found:
            click.echo(applicant.line(today))

    run_with_db(work)


@applicants.command()
@click.argument("number", type=int)
@click.option("--pair", "pair_code", required=True, help="the pair code in their community")
def approve(number: int, pair_code: str) -> None:
    """Approve application NUMBER into a pair with a vacancy; they are sent the pledge."""

    async def work(settings: Settings) -> None:
        try:
            done = await recruitment.approve(
                UnitOfWork(), number, pair_code, actor=_actor(), now=utcnow()
            )
        except recruitment.RecruitmentError as exc:
            raise click.ClickException(str(exc)) from None
        a = done.applicant
        sent = "pledge sent" if done.pledge_queued else "pledge NOT sent (they texted STOP)"
        click.echo(f"#{a.number} {a.name}: approved into {a.community} {done.pair_code}; {sent}")

    run_with_db(work)


@applicants.command()
@click.argument("number", type=int)
@click.argument("reason", nargs=-1, required=True)
def decline(number: int, reason: tuple[str, ...]) -> None:
    """Decline application NUMBER; the applicant is told REASON kindly."""

    async def work(settings: Settings) -> None:
        try:
            done = await recruitment.decline(
                UnitOfWork(), number, " ".join(reason), actor=_actor(), now=utcnow()
            )
        except recruitment.RecruitmentError as exc:
            raise click.ClickException(str(exc)) from None
        a = done.applicant
        told = "told by text" if done.message_queued else "NOT told (they texted STOP)"
        click.echo(f"#{a.number} {a.name}: declined ({done.reason}); {told}")

    run_with_db(work)
