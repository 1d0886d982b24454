"""Storage shells for scheduled jobs: load the state a job decides from, store what it decided."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import cast
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q

from steward.clock import utc
from steward.flows import attendance
from steward.flows.jobs import (
    DayClosePlan,
    JobPlan,
    OpenReport,
    OpenSessionItem,
    PairMember,
    PairToday,
    SessionPlan,
    Settled,
    StewardDay,
)
from steward.flows.state import Notice, SessionState
from steward.settings import parse_hhmm
from steward.storage import report_store
from steward.storage.db import create_once, savepoint
from steward.storage.ledgers import add_points, append_hours
from steward.storage.models import (
    GONE,
    AttendanceDay,
    Community,
    OptOut,
    OutboxMessage,
    Pair,
    PatrolSession,
    PointsEntry,
    Report,
    ReportEvent,
    Role,
    Volunteer,
    VolunteerStatus,
    Zone,
)
from steward.storage.outbox_store import enqueue_routed
from steward.storage.unit import Topic, UnitOfWork


async def open_reports() -> list[OpenReport]:
    """Reports waiting for a lead (new) or for the reporter's check (resolved)."""
    rows = await Report.filter(status__in=["new", "resolved"]).order_by("number")
    result = []
    for row in rows:
        community = await Community.get(id=row.community_id)
        resolved_at = None
        if row.status == "resolved":
            event = (
                await ReportEvent.filter(report_id=row.id, to_status="resolved")
                .order_by("-created_at")
                .first()
            )
            resolved_at = event.created_at if event else row.updated_at
        result.append(
            OpenReport(
                report=report_store.report_view(row, community.street_id),
                community_name=community.name,
                leads=await report_store.people(Role.LEAD, community_id=community.id),
                office=await report_store.people(Role.OFFICE, street_id=community.street_id),
                resolved_at=resolved_at,
            )
        )
    return result


async def pending_notices(notices: tuple[Notice, ...]) -> list[Notice]:
    """Messages not queued before (what a run would really send)."""
    fresh = []
    for notice in notices:
        if notice.dedupe_key and await OutboxMessage.filter(dedupe_key=notice.dedupe_key).exists():
            continue
        if await OptOut.filter(address=notice.to.phone).exists():
            continue
        fresh.append(notice)
    return fresh


async def apply_plan(
    plan: JobPlan, now: datetime, not_before: datetime, units: UnitOfWork
) -> list[Notice]:
    """Store the plan in one transaction; return the messages actually queued."""
    queued = []
    async with units.transaction(Topic.OUTBOX) as conn:
        for move in plan.moves:
            try:
                async with savepoint(conn) as inner:
                    await report_store.move_report(move, None, "job", now, inner)
            except report_store.ReportConflict:
                continue  # someone acted on it meanwhile: nothing to close
        queued = await _enqueue_all(plan.notices, now, not_before, conn)
    return queued


async def _enqueue_all(
    notices: tuple[Notice, ...], now: datetime, not_before: datetime, conn: BaseDBAsyncClient
) -> list[Notice]:
    return await enqueue_routed(list(notices), now, conn, not_before=not_before)


async def open_sessions() -> list[OpenSessionItem]:
    """Patrol sessions still open, with the volunteer's leads."""
    rows = (
        await PatrolSession.filter(ended_at__isnull=True)
        .exclude(volunteer__status__in=GONE)
        .order_by("id")
    )
    items = []
    for row in rows:
        vol = await Volunteer.get(id=row.volunteer_id)
        session = SessionState(
            int(row.id), row.local_date, row.started_at, None, None, None, row.confirmed
        )
        leads = await report_store.people(Role.LEAD, community_id=vol.community_id)
        items.append(OpenSessionItem(report_store.contact(vol), session, leads))
    return items


async def apply_session_plan(
    plan: SessionPlan, now: datetime, not_before: datetime, units: UnitOfWork
) -> list[Notice]:
    """Close overdue sessions (once) and queue the messages, in one transaction."""
    async with units.transaction(Topic.OUTBOX) as conn:
        for close in plan.closes:
            closed = (
                await PatrolSession.filter(id=close.session_id, ended_at__isnull=True)
                .using_db(conn)
                .update(
                    ended_at=utc(close.ended_at),
                    minutes=close.minutes,
                    closed_by=close.closed_by,
                    confirmed=close.confirmed,
                )
            )
            if closed:
                session = await PatrolSession.filter(id=close.session_id).using_db(conn).get()
                vol = (
                    await Volunteer.filter(id=session.volunteer_id)
                    .select_related("pair__zone")
                    .using_db(conn)
                    .get()
                )
                await append_hours(
                    vol.id,
                    int(session.id),
                    close.local_date,
                    close.minutes,
                    zone_name=vol.pair.zone.name if vol.pair and vol.pair.zone else "",
                    confirmed=False,
                    note="closed automatically",
                    now=now,
                    conn=conn,
                )
        queued = await _enqueue_all(plan.notices, now, not_before, conn)
    return queued


async def pairs_today(today: date, tz: ZoneInfo) -> list[PairToday]:
    """Every pair with its members' state for the local day `today`."""
    result = []
    for pair in await Pair.all().order_by("id"):
        members = (
            await Volunteer.filter(pair_id=pair.id, role=Role.STEWARD)
            .exclude(status__in=GONE)
            .order_by("id")
        )
        if not members:
            continue
        zone = await Zone.filter(id=pair.zone_id).first() if pair.zone_id else None
        start = datetime.combine(today, parse_hhmm(pair.patrol_start), tzinfo=tz)
        result.append(
            PairToday(
                pair_id=int(pair.id),
                code=pair.code,
                zone=zone.name if zone else "",
                start=utc(start),
                scheduled=attendance.scheduled_on(pair.patrol_days, today),
                members=tuple([await _member_today(v, today) for v in members]),
                leads=await report_store.people(Role.LEAD, community_id=pair.community_id),
            )
        )
    return result


async def _member_today(vol: Volunteer, today: date) -> PairMember:
    return PairMember(
        contact=report_store.contact(vol),
        # closed_by is NULL while a session is open: NOT (closed_by = 'undone') would drop it.
        checked_in=await PatrolSession.filter(
            Q(closed_by__isnull=True) | ~Q(closed_by="undone"),
            volunteer_id=vol.id,
            local_date=today,
        ).exists(),
        on_leave=attendance.on_leave(vol.on_leave_from, vol.on_leave_until, today),
        opted_out=await OptOut.filter(address=vol.phone).exists(),
    )


async def queue_notices(
    notices: tuple[Notice, ...], now: datetime, not_before: datetime, units: UnitOfWork
) -> list[Notice]:
    """Queue a job's messages in one transaction; return those that were new."""
    async with units.transaction(Topic.OUTBOX) as conn:
        queued = await _enqueue_all(notices, now, not_before, conn)
    return queued


async def steward_days(day: date) -> list[StewardDay]:
    """Stewards serving on `day` (joined by then) whose day is not settled yet, with what
    settling it needs. Nobody is settled absent for a day before they joined."""
    items = []
    people = (
        await Volunteer.filter(role=Role.STEWARD, pair_id__isnull=False, joined_on__lte=day)
        .exclude(status__in=GONE)
        .order_by("id")
    )
    for vol in people:
        if await AttendanceDay.filter(volunteer_id=vol.id, local_date=day).exists():
            continue
        items.append(await _steward_day(vol, day))
    return items


async def _steward_day(vol: Volunteer, day: date) -> StewardDay:
    pair = await Pair.get(id=vol.pair_id)
    community = await Community.get(id=vol.community_id)
    minutes = await PatrolSession.filter(
        volunteer_id=vol.id,
        local_date=day,
        ended_at__isnull=False,
        confirmed=True,
        closed_by__in=["volunteer", "auto"],
    ).values_list("minutes", flat=True)
    history = AttendanceDay.filter(volunteer_id=vol.id, local_date__lt=day)
    if vol.ladder_reset_on is not None:
        history = history.filter(local_date__gt=vol.ladder_reset_on)
    statuses = await history.order_by("-local_date").limit(60).values_list("status", flat=True)
    awards = await PointsEntry.filter(
        volunteer_id=vol.id, local_date=day, kind="patrol_day"
    ).values_list("amount", flat=True)
    return StewardDay(
        contact=report_store.contact(vol),
        status=str(vol.status),
        pair_code=pair.code,
        community=community.name,
        minutes=sum(int(cast(int, m) or 0) for m in minutes),
        scheduled=attendance.scheduled_on(pair.patrol_days, day),
        excused=attendance.on_leave(vol.on_leave_from, vol.on_leave_until, day),
        history=tuple(str(s) for s in reversed(statuses)),
        day_award_given=sum(int(cast(int, a)) for a in awards) > 0,
        day_awards_so_far=len(awards),
        leads=await report_store.people(Role.LEAD, community_id=vol.community_id),
        office=await report_store.people(Role.OFFICE, street_id=vol.street_id),
    )


def _settle(
    row: Settled, day: date, now: datetime
) -> Callable[[BaseDBAsyncClient], Awaitable[AttendanceDay]]:
    def create(db: BaseDBAsyncClient) -> Awaitable[AttendanceDay]:
        return AttendanceDay.create(
            volunteer_id=row.volunteer_id,
            local_date=day,
            status=row.status,
            minutes=row.minutes,
            settled_at=now,
            using_db=db,
        )

    return create


async def apply_day_close(
    plan: DayClosePlan, now: datetime, not_before: datetime, units: UnitOfWork
) -> list[Notice]:
    """Store a settled day in one transaction; a concurrent run's rows win and ours step aside."""
    async with units.transaction(Topic.OUTBOX) as conn:
        for row in plan.settled:
            # The unique (volunteer, day) key decides between two runs at once.
            await create_once(conn, _settle(row, plan.day, now))
        for award in plan.awards:
            assert award.volunteer_id is not None
            await add_points(award.volunteer_id, award, now, conn)
        if plan.flagged:
            await (
                Volunteer.filter(id__in=list(plan.flagged), status__in=["active", "on_leave"])
                .using_db(conn)
                .update(status=VolunteerStatus.FLAGGED)
            )
        queued = await _enqueue_all(plan.notices, now, not_before, conn)
    return queued
