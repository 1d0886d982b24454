"""The office's points actions and monthly records, free of any channel.

`steward points|assess|export` call these today; the office group's /award, /redeem,
/ranking, /assess and /export will too. An award, redemption or correction is one unit of work:
the named volunteer, their balance (locked against a concurrent redemption), the new ledger line
and the SMS that tells them commit together, or none of them does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from steward.clock import local_date
from steward.flows import assessment as rules_of_assessment
from steward.flows import points
from steward.flows.hours_export import HoursMonth, Table, hours_table
from steward.flows.jobs import URGENT_ACK_HOURS, quiet_until
from steward.flows.points import Decision, Holder, LedgerLine, Period, Ranked
from steward.flows.state import PointsSummary
from steward.settings import Settings
from steward.storage import assess_store, points_store
from steward.storage.ledgers import points_summary
from steward.storage.outbox_store import enqueue, from_notice
from steward.storage.unit import Connection, Topic, UnitOfWork

# The typed errors callers catch (all are points.PointsError).
PointsError = points.PointsError
NoSuchVolunteer = points.NoSuchVolunteer
AmbiguousName = points.AmbiguousName
BeyondBalance = points.BeyondBalance
BadRequest = points.BadRequest
NoSuchEntry = points.NoSuchEntry
AlreadyCorrected = points.AlreadyCorrected


class UnknownStreet(LookupError):
    """No street by that name."""


@dataclass(frozen=True)
class Done:
    """An office action that was recorded (or had been, for a repeated request key)."""

    holder: Holder
    kind: str
    amount: int  # signed, as in the ledger
    text: str  # the reason or the item
    balance: int  # after the entry
    entry_id: int
    sms_queued: bool
    repeated: bool = False

    def message(self, language: str = "en", *, mask: bool = False) -> str:
        """What to tell the operator (`mask` hides the phone, for a group chat)."""
        return points.done_message(
            self.kind,
            self.holder,
            self.amount,
            self.text,
            self.balance,
            sms_queued=self.sms_queued,
            repeated=self.repeated,
            language=language,
            mask=mask,
        )


@dataclass(frozen=True)
class Statement:
    """A volunteer's points card: balance, this month, rank in the street, latest entries."""

    holder: Holder
    summary: PointsSummary
    lines: list[LedgerLine]


async def street_named(name: str | None) -> int | None:
    """The id of the street so named (None for None); UnknownStreet when there is none."""
    if name is None:
        return None
    street_id = await points_store.street_id_named(name)
    if street_id is None:
        raise UnknownStreet(f"no street named {name!r}")
    return street_id


Decide = Callable[[Holder, int, str, int, date, str], Decision]
_DECIDE: dict[str, Decide] = {points.AWARD: points.award, points.REDEEM: points.redeem}


async def award(
    name_or_phone: str,
    amount: int,
    reason: str,
    *,
    actor: str,
    rules: Settings,
    now: datetime,
    units: UnitOfWork,
    street_id: int | None = None,
    key: str | None = None,
) -> Done:
    """Give points with a reason; the volunteer gets an SMS.

    `key` makes a retried request (a redelivered Telegram update) record once.
    """
    return await _act(
        points.AWARD, name_or_phone, amount, reason, actor, rules, now, units, street_id, key
    )


async def redeem(
    name_or_phone: str,
    amount: int,
    item: str,
    *,
    actor: str,
    rules: Settings,
    now: datetime,
    units: UnitOfWork,
    street_id: int | None = None,
    key: str | None = None,
) -> Done:
    """Spend points on a prize; BeyondBalance (with the balance) when there are too few."""
    return await _act(
        points.REDEEM, name_or_phone, amount, item, actor, rules, now, units, street_id, key
    )


async def _act(
    kind: str,
    name_or_phone: str,
    amount: int,
    text: str,
    actor: str,
    rules: Settings,
    now: datetime,
    units: UnitOfWork,
    street_id: int | None,
    key: str | None,
) -> Done:
    async with units.transaction(Topic.OUTBOX) as conn:
        holder = await points_store.find_holder(
            name_or_phone, rules.DEFAULT_REGION, street_id, conn
        )
        volunteer_id = holder.contact.volunteer_id
        balance = await points_store.locked_balance(volunteer_id, conn)
        if key is not None and (earlier := await points_store.line_by_key(key, conn)):
            return _repeated(holder, earlier, balance)
        request = key or points.entry_key(kind, volunteer_id, now)
        decide = _DECIDE[kind]
        decision = decide(holder, amount, text, balance, local_date(now, rules.tz), request)
        return await _store(decision, actor, rules, now, conn)


def _repeated(holder: Holder, earlier: LedgerLine, balance: int) -> Done:
    return Done(
        holder, earlier.kind, earlier.amount, earlier.note, balance, earlier.id, False, True
    )


async def correct(
    entry_id: int,
    reason: str,
    *,
    actor: str,
    rules: Settings,
    now: datetime,
    units: UnitOfWork,
) -> Done:
    """Cancel a ledger entry by a new one naming it; the volunteer gets an SMS."""
    async with units.transaction(Topic.OUTBOX) as conn:
        original = await points_store.line(entry_id, conn)
        holder = await points_store.holder_of(original.volunteer_id, conn)
        balance = await points_store.locked_balance(original.volunteer_id, conn)
        decision = points.correct(holder, original, reason, balance, local_date(now, rules.tz))
        return await _store(decision, actor, rules, now, conn)


async def _store(
    decision: Decision, actor: str, rules: Settings, now: datetime, conn: Connection
) -> Done:
    entry = decision.entry
    entry_id = await points_store.append(
        decision.holder.contact.volunteer_id, entry, actor, now, conn
    )
    if entry_id is None:  # a concurrent request wrote the same key first
        if entry.corrects_id is not None:
            raise AlreadyCorrected(f"entry {entry.corrects_id} was corrected already")
        raise PointsError(f"{entry.dedupe_key} is recorded already")
    queued = False
    if decision.holder.serving:
        # Not a reply to the volunteer's own text: it waits out the quiet hours like a job's.
        message = from_notice(decision.notice, not_before=quiet_until(now, rules))
        queued = await enqueue(message, now, conn) is not None
    return Done(
        decision.holder, entry.kind, entry.amount, entry.note, decision.balance, entry_id, queued
    )


async def statement(
    name_or_phone: str,
    *,
    rules: Settings,
    now: datetime,
    street_id: int | None = None,
    latest: int = 10,
) -> Statement:
    """The volunteer's balance, month and rank (as their 积分 reply says) and latest entries."""
    holder = await points_store.find_holder(name_or_phone, rules.DEFAULT_REGION, street_id)
    volunteer_id = holder.contact.volunteer_id
    conn = points_store.client(None)
    summary = await points_summary(volunteer_id, holder.street_id, local_date(now, rules.tz), conn)
    lines = await points_store.recent_lines(volunteer_id, latest)
    return Statement(holder, summary, lines)


async def ranking(
    period: Period, *, rules: Settings, street_id: int | None = None, top: int = 10
) -> list[Ranked]:
    """The period's top `top` (a month, or the year: the 金牌管家 shortlist)."""
    return await points_store.ranking(period, rules.tz, street_id=street_id, top=top)


async def assessment(
    period: Period,
    *,
    rules: Settings,
    now: datetime,
    street_id: int | None = None,
    language: str = "zh",
) -> list[Table]:
    """The month's scorecards: stewards, then communities (their leads' work)."""
    stewards = await assess_store.steward_months(period, rules.tz, street_id=street_id)
    timelines = await assess_store.report_timelines(period, rules.tz, street_id=street_id)
    refs = await assess_store.communities(street_id=street_id)
    months = rules_of_assessment.communities(
        refs, timelines, now, rules.REPORT_ACK_HOURS, URGENT_ACK_HOURS
    )
    return [
        rules_of_assessment.steward_table(period, stewards, language),
        rules_of_assessment.community_table(period, months, language),
    ]


async def hours_record(
    period: Period, *, street_id: int | None = None, language: str = "zh"
) -> tuple[Table, HoursMonth]:
    """The month's service-hours file for the national system, and the facts behind it."""
    data = await assess_store.hours_month(period, street_id=street_id)
    return hours_table(period, data, language), data
