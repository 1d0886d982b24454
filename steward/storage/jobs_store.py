"""Storage shells for scheduled jobs: load the state a job decides from, store what it decided."""

from __future__ import annotations

from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from steward.clock import utc
from steward.flows.jobs import JobPlan, OpenReport, OpenSessionItem, SessionPlan
from steward.flows.state import Contact, Notice, SessionState
from steward.storage import report_store
from steward.storage.models import (
    Community,
    HoursEntry,
    OptOut,
    OutboxMessage,
    PatrolSession,
    Report,
    ReportEvent,
    Role,
    Volunteer,
)
from steward.storage.outbox_store import PRIORITY, NewMessage, enqueue, notify_committed


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
                leads=await _people(Role.LEAD, community_id=community.id),
                office=await _people(Role.OFFICE, street_id=community.street_id),
                resolved_at=resolved_at,
            )
        )
    return result


async def _people(role: Role, **where: object) -> tuple[Contact, ...]:
    rows = await Volunteer.filter(role=role, **where).exclude(status="removed").order_by("id")
    return tuple(report_store.contact(v) for v in rows)


def _message(notice: Notice, not_before: datetime | None = None) -> NewMessage:
    return NewMessage(
        not_before=not_before,
        channel="sms",
        address=notice.to.phone,
        body=notice.body,
        kind=notice.kind,
        priority=PRIORITY["alert"],
        dedupe_key=notice.dedupe_key,
        volunteer_id=notice.to.volunteer_id,
    )


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


async def apply_plan(plan: JobPlan, now: datetime, not_before: datetime) -> list[Notice]:
    """Store the plan in one transaction; return the messages actually queued."""
    queued = []
    async with in_transaction() as conn:
        for move in plan.moves:
            try:
                async with in_transaction(conn.connection_name) as savepoint:
                    await report_store.move_report(move, None, "job", now, savepoint)
            except report_store.ReportConflict:
                continue  # someone acted on it meanwhile: nothing to close
        queued = await _enqueue_all(plan.notices, now, not_before, conn)
    notify_committed()
    return queued


async def _enqueue_all(
    notices: tuple[Notice, ...], now: datetime, not_before: datetime, conn: BaseDBAsyncClient
) -> list[Notice]:
    queued = []
    for notice in notices:
        if await enqueue(_message(notice, not_before), now, conn) is not None:
            queued.append(notice)
    return queued


async def open_sessions() -> list[OpenSessionItem]:
    """Patrol sessions still open, with the volunteer's leads."""
    rows = (
        await PatrolSession.filter(ended_at__isnull=True)
        .exclude(volunteer__status="removed")
        .order_by("id")
    )
    items = []
    for row in rows:
        vol = await Volunteer.get(id=row.volunteer_id)
        session = SessionState(
            int(row.id), row.local_date, row.started_at, None, None, None, row.confirmed
        )
        leads = await _people(Role.LEAD, community_id=vol.community_id)
        items.append(OpenSessionItem(report_store.contact(vol), session, leads))
    return items


async def apply_session_plan(
    plan: SessionPlan, now: datetime, not_before: datetime
) -> list[Notice]:
    """Close overdue sessions (once) and queue the messages, in one transaction."""
    async with in_transaction() as conn:
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
                await HoursEntry.create(
                    volunteer_id=session.volunteer_id,
                    session_id=session.id,
                    local_date=close.local_date,
                    minutes=close.minutes,
                    confirmed=False,
                    note="closed automatically",
                    created_at=now,
                    using_db=conn,
                )
        queued = await _enqueue_all(plan.notices, now, not_before, conn)
    notify_committed()
    return queued
