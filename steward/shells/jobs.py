"""The scheduled jobs' shells: load stored state, let `flows.jobs` decide, store the plan.

Every job recomputes from what is stored as of `now`, and every message it queues carries a
dedupe key, so a late, repeated or concurrent run (two replicas, a restart) sends nothing twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from steward.clock import local_date
from steward.flows import jobs
from steward.flows.state import Notice
from steward.settings import Settings
from steward.shells import digest, recruitment
from steward.storage import jobs_store
from steward.storage.unit import UnitOfWork


async def run_reports_job(
    rules: Settings, now: datetime, *, dry_run: bool, units: UnitOfWork
) -> list[Notice]:
    """The hourly follow-ups as of `now`: reports waiting too long, and approved applicants
    whose week to accept the pledge ran out (SPEC §9). Returns the messages it sends (or, dry,
    would send)."""
    plan = jobs.report_followups(await jobs_store.open_reports(), now, rules)
    not_before = jobs.quiet_until(now, rules)
    lapsed = await recruitment.lapse_pledges(units, now, not_before=not_before, dry_run=dry_run)
    if dry_run:
        return await jobs_store.pending_notices(plan.notices) + lapsed
    return await jobs_store.apply_plan(plan, now, not_before, units) + lapsed


async def run_sessions_job(
    rules: Settings, now: datetime, *, dry_run: bool, units: UnitOfWork
) -> list[Notice]:
    """Check-out reminders and the automatic close of sessions left open too long."""
    plan = jobs.session_followups(await jobs_store.open_sessions(), now, rules)
    if dry_run:
        return await jobs_store.pending_notices(plan.notices)
    return await jobs_store.apply_session_plan(plan, now, jobs.quiet_until(now, rules), units)


async def run_nudges_job(
    rules: Settings, now: datetime, *, dry_run: bool, units: UnitOfWork
) -> list[Notice]:
    """Nudge pairs that have not set out; tell the leads when nobody has."""
    pairs = await jobs_store.pairs_today(local_date(now, rules.tz), rules.tz)
    notices = jobs.nudges(pairs, now, rules)
    if dry_run:
        return await jobs_store.pending_notices(notices)
    return await jobs_store.queue_notices(notices, now, jobs.quiet_until(now, rules), units)


CATCH_UP_DAYS = 7


async def run_day_close_job(
    rules: Settings, now: datetime, *, dry_run: bool, units: UnitOfWork
) -> list[Notice]:
    """Settle every unsettled day up to the last DAY_CLOSE (a week back at most), oldest first."""
    last = jobs.day_to_close(now, rules)
    sent: list[Notice] = []
    week = [last - timedelta(days=back) for back in range(CATCH_UP_DAYS - 1, -1, -1)]
    for day in await jobs_store.days_to_settle(week):
        plan = jobs.day_close(await jobs_store.steward_days(day), day, rules)
        if dry_run:
            sent += await jobs_store.pending_notices(plan.notices)
        else:
            not_before = jobs.quiet_until(now, rules)
            sent += await jobs_store.apply_day_close(plan, now, not_before, units)
    return sent


Job = Callable[..., Awaitable[list[Notice]]]
# Every scheduled job by name: `steward jobs run NAME` and the scheduler use this table.
JOBS: dict[str, Job] = {
    "reports": run_reports_job,
    "sessions": run_sessions_job,
    "nudges": run_nudges_job,
    "day_close": run_day_close_job,
    "digest": digest.run_digest_job,
}


async def run_job(
    name: str,
    rules: Settings,
    now: datetime,
    *,
    dry_run: bool = False,
    units: UnitOfWork | None = None,
) -> list[Notice]:
    """Run one job as of `now`; safe to run late, twice, or on two replicas at once.

    `units` carries the running service's commit listeners (the dispatcher sends at once);
    without it (a command-line run) the service's next poll finds the queued messages.
    """
    return await JOBS[name](rules, now, dry_run=dry_run, units=units or UnitOfWork())
