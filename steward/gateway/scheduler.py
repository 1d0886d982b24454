"""APScheduler wiring and the leader lock: one replica at a time runs the jobs of `service.JOBS`.

Every job computes from stored state and dedupes what it sends (SPEC §5), so the scheduler only
has to call them roughly on time. Two things it adds:

* a catch-up: whenever this replica becomes the one that runs jobs (at start, or on taking over
  from a dead leader) every job runs once as of now, which covers whatever fell due while nobody
  ran them (the in-memory job store forgets missed runs);
* on PostgreSQL, a session-level advisory lock held on a dedicated asyncpg connection decides who
  leads. When the leader dies its session ends, PostgreSQL releases the lock, and a standing-by
  replica takes it on its next retry. SQLite means one process: it always leads.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from steward import service
from steward.clock import utcnow
from steward.settings import Settings, parse_hhmm
from steward.storage import db

log = logging.getLogger(__name__)

# pg_try_advisory_lock key shared by every replica of this service ("Steward" + 1, a bigint).
LEADER_LOCK_KEY = 0x5374657761726401
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


def asyncpg_dsn(url: str) -> str:
    """The DATABASE_URL as asyncpg.connect wants it (postgresql://...)."""
    return "postgresql://" + db.normalise_url(url)[len("asyncpg://") :]


class Scheduler:
    """Runs the scheduled jobs on the replica that holds the leader lock."""

    def __init__(self, settings: Settings, *, retry_seconds: float | None = None) -> None:
        self.settings = settings
        self.retry_seconds = (
            settings.SCHEDULER_RETRY_SECONDS if retry_seconds is None else retry_seconds
        )
        self._postgres = db.is_postgres(settings.DATABASE_URL)
        self._aps = AsyncIOScheduler(timezone=settings.tz)
        self._conn: Any = None  # asyncpg.Connection: held open for as long as we lead
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
        for name in service.JOBS:
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
        await self._close_connection()

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
            notices = await service.run_job(name, self.settings, utcnow())
            log.info("scheduler: %s queued %d message(s)", name, len(notices))
        except Exception:  # one failed run must not stop the scheduler; the next run retries
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
            got = await self._take_lock()
        except Exception as exc:  # no database right now: stand by and try again later
            log.warning("scheduler: could not try the leader lock (%s); retrying", exc)
            await self._close_connection()
            got = False
        if got:
            self._become_leader()
        elif not self._announced_standby:
            log.info("scheduler: this replica is standing by (another one leads)")
            self._announced_standby = True

    async def _take_lock(self) -> bool:
        if not self._postgres:
            return True
        import asyncpg

        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(asyncpg_dsn(self.settings.DATABASE_URL), timeout=10)
        return bool(await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", LEADER_LOCK_KEY))

    async def _check_still_leading(self) -> None:
        """The lock lives as long as our session: a lost connection means we lead no more."""
        if not self._postgres:
            return
        try:
            await self._conn.fetchval("SELECT 1", timeout=10)
        except Exception as exc:
            log.warning("scheduler: lost the leader connection (%s); standing by", exc)
            self._leader = False
            self._announced_standby = True
            self._aps.pause()
            await self._close_connection()

    def _become_leader(self) -> None:
        self._leader = True
        self._announced_standby = False
        log.info("scheduler: this replica leads")
        self._aps.resume()
        self.catch_up()

    async def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None or conn.is_closed():
            return
        try:
            await asyncio.wait_for(conn.close(), 5)
        except Exception:  # closing a broken connection: just drop it
            conn.terminate()
