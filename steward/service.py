"""The async shell around the rules: load state, let `flows` decide, store it in one transaction.

Kept apart from `flows` (which never does I/O) and from `storage` (which never formats a
message): this is the only place the two meet for inbound traffic.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from steward import digest_service
from steward.clock import local_date
from steward.flows import inbox, jobs
from steward.flows.state import Notice
from steward.settings import Settings
from steward.storage import inbox_store, jobs_store
from steward.storage.outbox_store import notify_committed
from steward.storage.report_store import ReportConflict

log = logging.getLogger(__name__)


async def process_inbound(inbound_id: int, rules: Settings) -> str | None:
    """Decide and apply one stored message exactly once; return its intent (None if done before)."""
    try:
        return await _process_once(inbound_id, rules)
    except ReportConflict:
        # Someone else moved the report while we decided: decide again on what is there now.
        return await _process_once(inbound_id, rules)


async def _process_once(inbound_id: int, rules: Settings) -> str | None:
    async with in_transaction() as conn:
        row = await inbox_store.lock_unprocessed(inbound_id, conn)
        if row is None:
            return None
        vol = await inbox_store.find_volunteer(row.address, conn)
        context = await inbox_store.load_context(row, vol, rules.tz, conn)
        outcome = inbox.decide(context, rules)
        # The message's own arrival time is "now": a late or replayed run decides the same way.
        await inbox_store.apply_outcome(row, vol, outcome, row.received_at, conn)
    notify_committed()
    return outcome.intent


async def process_pending(rules: Settings) -> int:
    """Process every stored but unprocessed message (after a crash or restart)."""
    done = 0
    for inbound_id in await inbox_store.unprocessed_ids():
        try:
            if await process_inbound(inbound_id, rules) is not None:
                done += 1
        except Exception:  # one bad message must not stop the others; it stays pending
            log.exception("could not process stored message %s", inbound_id)
    return done


async def run_reports_job(rules: Settings, now: datetime, *, dry_run: bool) -> list[Notice]:
    """The hourly report job as of `now`: the messages it sends (or, dry, would send)."""
    plan = jobs.report_followups(await jobs_store.open_reports(), now, rules)
    if dry_run:
        return await jobs_store.pending_notices(plan.notices)
    return await jobs_store.apply_plan(plan, now, jobs.quiet_until(now, rules))


async def run_sessions_job(rules: Settings, now: datetime, *, dry_run: bool) -> list[Notice]:
    """Check-out reminders and the automatic close of sessions left open too long."""
    plan = jobs.session_followups(await jobs_store.open_sessions(), now, rules)
    if dry_run:
        return await jobs_store.pending_notices(plan.notices)
    return await jobs_store.apply_session_plan(plan, now, jobs.quiet_until(now, rules))


async def run_nudges_job(rules: Settings, now: datetime, *, dry_run: bool) -> list[Notice]:
    """Nudge pairs that have not set out; tell the leads when nobody has."""
    pairs = await jobs_store.pairs_today(local_date(now, rules.tz), rules.tz)
    notices = jobs.nudges(pairs, now, rules)
    if dry_run:
        return await jobs_store.pending_notices(notices)
    return await jobs_store.queue_notices(notices, now, jobs.quiet_until(now, rules))


CATCH_UP_DAYS = 7


async def run_day_close_job(rules: Settings, now: datetime, *, dry_run: bool) -> list[Notice]:
    """Settle every unsettled day up to the last DAY_CLOSE (a week back at most), oldest first."""
    last = jobs.day_to_close(now, rules)
    sent: list[Notice] = []
    for back in range(CATCH_UP_DAYS - 1, -1, -1):
        day = last - timedelta(days=back)
        plan = jobs.day_close(await jobs_store.steward_days(day), day, rules)
        if dry_run:
            sent += await jobs_store.pending_notices(plan.notices)
        else:
            sent += await jobs_store.apply_day_close(plan, now, jobs.quiet_until(now, rules))
    return sent


# Every scheduled job by name: `steward jobs run NAME` and the scheduler use this table.
JOBS: dict[str, Callable[..., Awaitable[list[Notice]]]] = {
    "reports": run_reports_job,
    "sessions": run_sessions_job,
    "nudges": run_nudges_job,
    "day_close": run_day_close_job,
    "digest": digest_service.run_digest_job,
}


async def run_job(
    name: str, rules: Settings, now: datetime, *, dry_run: bool = False
) -> list[Notice]:
    """Run one job as of `now`; safe to run late, twice, or on two replicas at once."""
    return await JOBS[name](rules, now, dry_run=dry_run)
