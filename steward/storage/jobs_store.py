"""Storage shells for scheduled jobs: load the state a job decides from, store what it decided."""

from __future__ import annotations

from datetime import datetime

from tortoise.transactions import in_transaction

from steward.flows.jobs import JobPlan, OpenReport
from steward.flows.state import Contact, Notice
from steward.storage import report_store
from steward.storage.models import (
    Community,
    OptOut,
    OutboxMessage,
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


def _message(notice: Notice) -> NewMessage:
    return NewMessage(
        channel="sms",
        address=notice.to.phone,
        body=notice.body,
        kind=notice.kind,
        priority=PRIORITY["alert"],
        dedupe_key=notice.dedupe_key,
        volunteer_id=notice.to.volunteer_id,
    )


async def pending_notices(plan: JobPlan) -> list[Notice]:
    """The plan's messages that have not been queued before (what a run would really send)."""
    fresh = []
    for notice in plan.notices:
        if notice.dedupe_key and await OutboxMessage.filter(dedupe_key=notice.dedupe_key).exists():
            continue
        if await OptOut.filter(address=notice.to.phone).exists():
            continue
        fresh.append(notice)
    return fresh


async def apply_plan(plan: JobPlan, now: datetime) -> list[Notice]:
    """Store the plan in one transaction; return the messages actually queued."""
    queued = []
    async with in_transaction() as conn:
        for move in plan.moves:
            try:
                async with in_transaction(conn.connection_name) as savepoint:
                    await report_store.move_report(move, None, "job", now, savepoint)
            except report_store.ReportConflict:
                continue  # someone acted on it meanwhile: nothing to close
        for notice in plan.notices:
            if await enqueue(_message(notice), now, conn) is not None:
                queued.append(notice)
    notify_committed()
    return queued
