"""The scheduler: triggers in the deployment zone, the catch-up, surviving a failed run, and
one leader among replicas on PostgreSQL.

Triggers are checked through APScheduler's own API with explicit datetimes (no waiting); the
rest waits on conditions with deadlines, never on the clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from steward.cli import cli
from steward.clock import utcnow
from steward.flows.state import Notice
from steward.gateway.scheduler import Scheduler, schedule
from steward.settings import Settings, load_settings
from steward.shells import jobs as job_shells
from steward.storage.db import is_postgres
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import service_settings

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
DEADLINE = 10.0


def fires_on_local_day(settings: Settings, job: str, day: datetime) -> list[datetime]:
    """Every fire time of a job's trigger within one local calendar day (from its midnight)."""
    trigger, _ = schedule(settings)[job]
    end = day + timedelta(days=1)  # same tzinfo: wall-clock arithmetic, the next local midnight
    fires: list[datetime] = []
    previous, now = None, day
    while (fire := trigger.get_next_fire_time(previous, now)) is not None and fire < end:
        fires.append(fire)
        previous, now = fire, fire + timedelta(seconds=1)
    return fires


def test_day_close_fires_at_22_local_time() -> None:
    settings = load_settings(TIMEZONE="Asia/Shanghai", DAY_CLOSE="22:00")
    trigger, _ = schedule(settings)["day_close"]
    fire = trigger.get_next_fire_time(None, datetime(2026, 11, 23, 4, 0, tzinfo=UTC))
    assert fire is not None
    assert fire.isoformat() == "2026-11-23T22:00:00+08:00"
    assert fire == datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


def test_every_trigger_uses_the_deployment_zone_not_the_hosts() -> None:
    settings = load_settings(TIMEZONE="Asia/Shanghai", DIGEST_TIME="18:00")
    moment = datetime(2026, 11, 23, 9, 7, 30, tzinfo=SHANGHAI)
    expected = {
        "reports": "2026-11-23T10:00:00+08:00",
        "sessions": "2026-11-23T09:10:00+08:00",
        "nudges": "2026-11-23T09:10:00+08:00",
        "day_close": "2026-11-23T22:00:00+08:00",
        "digest": "2026-11-23T18:00:00+08:00",
    }
    got = {}
    for name, (trigger, _) in schedule(settings).items():
        fire = trigger.get_next_fire_time(None, moment)
        assert fire is not None
        got[name] = fire.isoformat()
    assert got == expected


@pytest.mark.parametrize(
    ("day", "offset"),
    [(datetime(2026, 3, 8, tzinfo=NEW_YORK), -4), (datetime(2026, 11, 1, tzinfo=NEW_YORK), -5)],
    ids=["spring-forward", "fall-back"],
)
def test_a_daily_trigger_fires_once_on_a_dst_change_day(day: datetime, offset: int) -> None:
    settings = load_settings(TIMEZONE="America/New_York", DIGEST_TIME="08:00")
    fires = fires_on_local_day(settings, "digest", day)
    assert [f.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M") for f in fires] == [
        day.strftime("%Y-%m-%d 08:00")
    ]
    assert fires[0].utcoffset() == timedelta(hours=offset)


def test_jobs_run_offers_every_registered_job_and_all() -> None:
    result = CliRunner().invoke(cli, ["jobs", "run", "no-such-job"])
    assert result.exit_code == 2
    for name in [*job_shells.JOBS, "all"]:
        assert repr(name) in result.output


class Recorder:
    """Fake jobs that record each call; the test waits until enough calls happened."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, datetime]] = []
        self._changed = asyncio.Event()

    def job(self, name: str, fail_first: bool = False) -> Callable[..., Awaitable[list[Notice]]]:
        async def run(
            rules: Settings, now: datetime, *, dry_run: bool, **_: object
        ) -> list[Notice]:
            self.calls.append((name, now))
            self._changed.set()
            if fail_first and self.count()[name] == 1:
                raise RuntimeError(f"{name} broke")
            return []

        return run

    def count(self) -> Counter[str]:
        return Counter(name for name, _ in self.calls)

    async def wait(self, expected: dict[str, int]) -> None:
        async def reached() -> None:
            while True:
                self._changed.clear()
                if all(self.count()[name] >= n for name, n in expected.items()):
                    return
                await self._changed.wait()

        await asyncio.wait_for(reached(), DEADLINE)


async def until(condition: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    """Wait until `condition()` holds (looking every few ms), failing after `deadline` s."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not condition():
        assert loop.time() < end, f"timed out waiting for {what}"
        # A poll of an in-process flag with a deadline, not a wait for time to pass.
        await asyncio.sleep(0.02)  # a flag poll, so: noqa: sleep-ok


@asynccontextmanager
async def started(settings: Settings, retry_seconds: float = 15.0) -> AsyncIterator[Scheduler]:
    scheduler = Scheduler(settings, retry_seconds=retry_seconds)
    await scheduler.start()
    try:
        yield scheduler
    finally:
        await scheduler.stop()


async def test_start_runs_every_scheduled_job_once_as_of_now(
    db: str, twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    jobs = {name: recorder.job(name) for name in ("reports", "day_close", "digest", "adhoc")}
    monkeypatch.setattr(job_shells, "JOBS", jobs)
    caplog.set_level(logging.INFO, logger="steward.gateway.scheduler")
    settings = service_settings(db, twilio, SCHEDULER=True)
    before = utcnow()
    async with started(settings) as scheduler:
        assert scheduler.is_leader
        await recorder.wait({"reports": 1, "day_close": 1, "digest": 1})
        registered = {job.id: job for job in scheduler.apscheduler.get_jobs()}
        assert set(registered) == {"reports", "day_close", "digest"}
        for job in registered.values():
            assert job.trigger.timezone == SHANGHAI
            assert job.coalesce and job.max_instances == 1
            assert job.next_run_time > before  # back on its own schedule after the catch-up
    after = utcnow()
    # stop() let running jobs finish: nothing more can be recorded now.
    assert recorder.count() == {"reports": 1, "day_close": 1, "digest": 1}
    assert all(before <= now <= after for _, now in recorder.calls)
    assert "scheduler: this replica leads" in caplog.text
    assert "job 'adhoc' has no schedule" in caplog.text


async def test_a_failing_run_is_logged_and_later_runs_go_on(
    db: str, twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    jobs = {
        "reports": recorder.job("reports", fail_first=True),
        "day_close": recorder.job("day_close"),
    }
    monkeypatch.setattr(job_shells, "JOBS", jobs)
    async with started(service_settings(db, twilio)) as scheduler:
        await recorder.wait({"reports": 1, "day_close": 1})
        await until(lambda: "scheduler: job reports failed" in caplog.text, "the failure logged")
        assert "RuntimeError: reports broke" in caplog.text
        assert scheduler.apscheduler.running
        scheduler.catch_up()  # the next runs (as on a takeover) go ahead, the failed job too
        await recorder.wait({"reports": 2, "day_close": 2})
        assert scheduler.is_leader
    assert caplog.text.count("scheduler: job reports failed") == 1


async def test_one_leader_among_replicas_and_a_takeover_when_it_goes(
    db: str, twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not is_postgres(db):
        pytest.skip("SQLite is one process: its scheduler always leads (no lock to contend for)")
    recorder = Recorder()
    monkeypatch.setattr(job_shells, "JOBS", {"reports": recorder.job("reports")})
    settings = service_settings(db, twilio, SCHEDULER=True)
    async with (
        started(settings, retry_seconds=0.1) as first,
        started(settings, retry_seconds=0.1) as second,
    ):
        await recorder.wait({"reports": 1})
        assert [first.is_leader, second.is_leader].count(True) == 1
        leader, standby = (first, second) if first.is_leader else (second, first)
        await leader.stop()  # its dedicated connection closes: PostgreSQL frees the lock
        assert not leader.is_leader
        await until(lambda: standby.is_leader, "the standby to take over")
        await recorder.wait({"reports": 2})  # the new leader's catch-up
    assert recorder.count() == {"reports": 2}
