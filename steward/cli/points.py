"""`steward points`: the office's points card (award, redeem, correct, show) and the ranking."""

from __future__ import annotations

import getpass
from collections.abc import Awaitable, Callable

import click

from steward.cli.export import street_id_or_exit
from steward.cli.support import run_with_db
from steward.clock import local_date, utcnow
from steward.flows import points as rules_of_points
from steward.flows.assessment import ranking_table
from steward.flows.hours_export import to_text
from steward.flows.points import Period
from steward.settings import Settings
from steward.shells import points as points_shell
from steward.storage.unit import UnitOfWork

Action = Callable[[Settings, int | None], Awaitable[points_shell.Done]]


@click.group()
def points() -> None:
    """Award, redeem and correct points; show a card; rank the stewards (金牌管家)."""


def _actor() -> str:
    # Who ran the command goes into the ledger beside the entry.
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _run_action(street: str | None, action: Action) -> None:
    async def work(settings: Settings) -> None:
        street_id = await street_id_or_exit(street)
        try:
            done = await action(settings, street_id)
        except points_shell.PointsError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"entry {done.entry_id}: {done.message('en')}")

    run_with_db(work)


_STREET = click.option("--street", default=None, help="the street NAME belongs to")


@points.command()
@click.argument("name")
@click.argument("amount", type=int)
@click.argument("reason", nargs=-1, required=True)
@_STREET
def award(name: str, amount: int, reason: tuple[str, ...], street: str | None) -> None:
    """Give NAME (a name, or a phone) AMOUNT points for REASON; they get an SMS."""

    async def action(settings: Settings, street_id: int | None) -> points_shell.Done:
        return await points_shell.award(
            name,
            amount,
            " ".join(reason),
            actor=_actor(),
            rules=settings,
            now=utcnow(),
            units=UnitOfWork(),
            street_id=street_id,
        )

    _run_action(street, action)


@points.command()
@click.argument("name")
@click.argument("amount", type=int)
@click.argument("item", nargs=-1, required=True)
@_STREET
def redeem(name: str, amount: int, item: tuple[str, ...], street: str | None) -> None:
    """Spend AMOUNT of NAME's points on ITEM; refused beyond the balance."""

    async def action(settings: Settings, street_id: int | None) -> points_shell.Done:
        return await points_shell.redeem(
            name,
            amount,
            " ".join(item),
            actor=_actor(),
            rules=settings,
            now=utcnow(),
            units=UnitOfWork(),
            street_id=street_id,
        )

    _run_action(street, action)


@points.command()
@click.argument("entry", type=int)
@click.argument("reason", nargs=-1, required=True)
def correct(entry: int, reason: tuple[str, ...]) -> None:
    """Cancel ledger ENTRY (see `points show`) by a new entry that names it."""

    async def action(settings: Settings, street_id: int | None) -> points_shell.Done:
        return await points_shell.correct(
            entry,
            " ".join(reason),
            actor=_actor(),
            rules=settings,
            now=utcnow(),
            units=UnitOfWork(),
        )

    _run_action(None, action)


@points.command()
@click.argument("name")
@_STREET
def show(name: str, street: str | None) -> None:
    """NAME's balance, this month's gain, rank in the street and latest entries."""

    async def work(settings: Settings) -> None:
        street_id = await street_id_or_exit(street)
        try:
            card = await points_shell.statement(
                name, rules=settings, now=utcnow(), street_id=street_id
            )
        except points_shell.PointsError as exc:
            raise click.ClickException(str(exc)) from None
        h, s = card.holder, card.summary
        click.echo(f"{h.contact.name} {h.contact.phone}  {h.street} {h.community} {h.pair_code}")
        click.echo(
            f"balance {s.balance}, this month {s.this_month:+d}, "
            f"rank {s.rank} of {s.ranked} in the street"
        )
        for line in card.lines:
            marks = [f"corrects {line.corrects_id}"] if line.corrects_id else []
            marks += ["corrected"] if line.corrected else []
            marks += [f"by {line.actor}"] if line.actor else []
            extra = f"  ({', '.join(marks)})" if marks else ""
            click.echo(
                f"  {line.id:>6}  {line.local_date}  {line.amount:+5d}  {line.kind}  "
                f"{line.note}{extra}".rstrip()
            )

    run_with_db(work)


@points.command()
@_STREET
@click.option("--month", "month_text", default=None, help="YYYY-MM (default: this month)")
@click.option("--year", "year_text", default=None, help="YYYY: the 金牌管家 shortlist")
@click.option("--top", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
def ranking(
    street: str | None, month_text: str | None, year_text: str | None, top: int, lang: str
) -> None:
    """Points earned, done days and verified reports; ties broken by confirmed hours."""
    if month_text and year_text:
        raise click.UsageError("give --month or --year, not both")

    async def work(settings: Settings) -> None:
        period = _period(month_text, year_text, settings)
        street_id = await street_id_or_exit(street)
        ranked = await points_shell.ranking(period, rules=settings, street_id=street_id, top=top)
        click.echo(to_text([ranking_table(period, ranked, lang)]), nl=False)

    run_with_db(work)


def _period(month_text: str | None, year_text: str | None, settings: Settings) -> Period:
    try:
        if year_text:
            return rules_of_points.year(year_text)
        if month_text:
            return rules_of_points.month(month_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return rules_of_points.month_of(local_date(utcnow(), settings.tz))
