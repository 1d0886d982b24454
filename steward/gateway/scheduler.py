"""APScheduler wiring: one replica at a time (the leader) runs the jobs of `shells.jobs.JOBS`.

Every job computes from stored state and dedupes what it sends (SPEC §5), so the scheduler only
has to call them roughly on time. Two things it adds:

* a catch-up: whenever this replica becomes the one that runs jobs (at start, or on taking over
  from a dead leader) every job runs once as of now, which covers whatever fell due while nobody
  ran them (the in-memory job store forgets missed runs);
* the leader lock (`storage.leader`): when the leader dies, a standing-by replica takes the lock
  on its next retry. SQLite means one process: it always leads.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from steward.clock import utcnow
from steward.metrics import Metrics
from steward.settings import Settings, parse_hhmm
from steward.shells import jobs as job_shells
from steward.storage.leader import LeaderLock
from steward.storage.unit import UnitOfWork

log = logging.getLogger(__name__)

# How long stop() lets a running job finish before cancelling it.
STOP_GRACE_SECONDS = 30.0


def schedule(settings: Settings) -> dict[str, tuple[BaseTrigger, timedelta]]:
    """Each known job's trigger (in the deployment zone) and the period it repeats at."""
    tz = settings.tz
    day_close = parse_hhmm(settings.DAY_CLOSE)
    digest = parse_hhmm(settings.DIGEST_TIME)
    # Cron, not interval, for the 5-minute jobs: aligned to the clock, a nudge due at 08:30
    # goes at 08:30 rather than at whatever minute the process happened to start.
    every_5_min = (CronTrigger(minute="*/5", timezone=tz), timedelta(minutes=5))
    return {
        "reports": (CronTrigger(minute=0, timezone=tz), timedelta(hours=1)),
        "sessions": every_5_min,
        "nudges": every_5_min,
        "day_close": (
            CronTrigger(hour=day_close.hour, minute=day_close.minute, timezone=tz),
            timedelta(days=1),
        ),
        "digest": (
            CronTrigger(hour=digest.hour, minute=digest.minute, timezone=tz),
            timedelta(days=1),
        ),
    }


class Scheduler:
    """Runs the scheduled jobs on the replica that holds the leader lock."""

    def __init__(
        self,
        settings: Settings,
        units: UnitOfWork | None = None,
        metrics: Metrics | None = None,
        *,
        retry_seconds: float | None = None,
    ) -> None:
        self.settings = settings
        self._units = units or UnitOfWork()
        self._metrics = metrics or Metrics()
        self.retry_seconds = (
            settings.SCHEDULER_RETRY_SECONDS if retry_seconds is None else retry_seconds
        )
        self._aps = AsyncIOScheduler(timezone=settings.tz)
        self._lock = LeaderLock(settings.DATABASE_URL)
        self._leader = False
        self._watch: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[Any]] = set()
        self._announced_standby = False

    @property
    def is_leader(self) -> bool:
        return self._leader

    @property
    def apscheduler(self) -> AsyncIOScheduler:
        return self._aps

    async def start(self) -> None:
        """Add the jobs, try to lead once now, and keep trying (or checking the lock) after."""
        plan = schedule(self.settings)
        for name in job_shells.JOBS:
            if name not in plan:
                log.warning(
                    "scheduler: job %r has no schedule; run it with `steward jobs run`", name
                )
                continue
            trigger, period = plan[name]
            self._aps.add_job(
                self._run,
                trigger,
                args=[name],
                id=name,
                name=name,
                coalesce=True,  # several missed fires run once: the job computes from state
                max_instances=1,
                # A run late by less than its period still runs; later than that the next fire
                # (or the catch-up when a leader starts) covers it.
                misfire_grace_time=int(period.total_seconds()),
                next_run_time=None,  # added paused: they run only while this replica leads
            )
        self._aps.start(paused=True)
        await self._try_to_lead()
        self._watch = asyncio.create_task(self._watch_lock(), name="scheduler-leader")

    async def stop(self) -> None:
        """Stop scheduling, let running jobs finish (briefly), and give up the lock."""
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
            self._watch = None
        if self._aps.running:
            self._aps.pause()  # no new runs; shutdown() would cancel the running ones mid-query
        if self._running:
            _, late = await asyncio.wait(self._running, timeout=STOP_GRACE_SECONDS)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._aps.running:
            self._aps.shutdown(wait=False)
        self._leader = False
        await self._lock.release()

    def catch_up(self) -> None:
        """Run every job once, now (each then continues on its own schedule)."""
        now = utcnow()
        for job in self._aps.get_jobs():
            job.modify(next_run_time=now)
        self._aps.wakeup()

    async def _run(self, name: str) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            now = utcnow()
            notices = await job_shells.run_job(name, self.settings, now, units=self._units)
            self._metrics.job_runs.labels(name, "ok").inc()
            self._metrics.job_messages.labels(name).inc(len(notices))
            if notices:  # one line per run that queued something; quiet runs say nothing
                local = now.astimezone(self.settings.tz)
                log.info("job %s at %s: queued %d message(s)", name, f"{local:%H:%M}", len(notices))
        except Exception:  # one failed run must not stop the scheduler; the next run retries
            self._metrics.job_runs.labels(name, "failed").inc()
            log.exception("scheduler: job %s failed", name)
        finally:
            if task is not None:
                self._running.discard(task)

    # ---- leadership ------------------------------------------------------------------------

    async def _watch_lock(self) -> None:
        while True:
            await asyncio.sleep(self.retry_seconds)
            if self._leader:
                await self._check_still_leading()
            else:
                await self._try_to_lead()

    async def _try_to_lead(self) -> None:
        try:
            got = await self._lock.take()
        except Exception as exc:  # no database right now: stand by and try again later
            log.warning("scheduler: could not try the leader lock (%s); retrying", exc)
            await self._lock.release()
            got = False
        if got:
            self._become_leader()
        elif not self._announced_standby:
            log.info("scheduler: this replica is standing by (another one leads)")
            self._announced_standby = True

    async def _check_still_leading(self) -> None:
        """The lock lives as long as our session: a lost connection means we lead no more."""
        try:
            await self._lock.still_held()
        except Exception as exc:
            log.warning("scheduler: lost the leader connection (%s); standing by", exc)
            self._leader = False
            self._announced_standby = True
            self._aps.pause()
            await self._lock.release()

    def _become_leader(self) -> None:
        self._leader = True
        self._announced_standby = False
        log.info("scheduler: this replica leads")
        self._aps.resume()
        self.catch_up()
