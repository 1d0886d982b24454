"""What `steward serve` logs about scheduled jobs: APScheduler's own two lines per run only at
LOG_LEVEL=DEBUG, and one line of ours for each run that queued something (none for the rest).

Logging is configured as `steward serve` does it (`configure_logging(settings.LOG_LEVEL)`); the
jobs are fakes that return notices, run through the real Scheduler (and APScheduler) path. The
time a run reads comes from a fixed clock; nothing waits for time to pass.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent

from steward.cli import configure_logging
from steward.clock import reading
from steward.flows.state import Contact, Notice
from steward.gateway.scheduler import Scheduler
from steward.settings import Settings, load_settings
from steward.shells import jobs as job_shells

DEADLINE = 10.0
# 08:31 in Shanghai (the settings' zone), as the line should show it.
AT_0831 = datetime(2026, 11, 23, 0, 31, tzinfo=UTC)


def fake_job(count: int, calls: list[str], name: str) -> Callable[..., Awaitable[list[Notice]]]:
    """A job that queues `count` notices (it only says so: nothing is stored)."""

    async def run(rules: Settings, now: datetime, *, dry_run: bool, **_: object) -> list[Notice]:
        calls.append(name)
        lead = Contact(volunteer_id=1, name="李组长", phone="+8613800000001", language="zh")
        return [Notice(to=lead, body=f"提醒 {i}", kind="nudge") for i in range(count)]

    return run


@pytest.fixture
def configure() -> Iterator[Callable[[str], Settings]]:
    """Configure logging as `steward serve` does for a LOG_LEVEL; put the levels back after."""
    root, aps = logging.getLogger(), logging.getLogger("apscheduler")
    saved = root.level, aps.level

    def at(level: str) -> Settings:
        settings = load_settings(
            LOG_LEVEL=level, TIMEZONE="Asia/Shanghai", DATABASE_URL="sqlite://:memory:"
        )
        configure_logging(settings.LOG_LEVEL)
        return settings

    yield at
    root.setLevel(saved[0])
    aps.setLevel(saved[1])


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The job table, replaced in place: `nudges` queues 3 messages, `sessions` and `reports`
    nothing, and no other job exists (the scheduler and `run_job` share this one table)."""
    seen: list[str] = []
    fakes = {"nudges": 3, "sessions": 0, "reports": 0}
    for name in list(job_shells.JOBS):
        if name not in fakes:
            monkeypatch.delitem(job_shells.JOBS, name)
    for name, count in fakes.items():
        monkeypatch.setitem(job_shells.JOBS, name, fake_job(count, seen, name))
    return seen


def ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "steward.gateway.scheduler"]


def apscheduler_info(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("apscheduler") and r.levelno == logging.INFO
    ]


class Finished:
    """Which jobs' runs APScheduler reports done (it reports after logging "executed ...")."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.jobs: set[str] = set()
        self._changed = asyncio.Event()
        scheduler.apscheduler.add_listener(self._on_event, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)

    def _on_event(self, event: JobExecutionEvent) -> None:
        self.jobs.add(event.job_id)
        self._changed.set()

    async def wait(self, names: set[str]) -> None:
        """Return once each of `names` has finished a run; fail after the deadline."""

        async def reached() -> None:
            while not names <= self.jobs:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(reached(), DEADLINE)


@asynccontextmanager
async def leading(settings: Settings) -> AsyncIterator[Finished]:
    """A started Scheduler (SQLite: it leads at once, and its catch-up runs every job now)."""
    scheduler = Scheduler(settings)
    finished = Finished(scheduler)  # listening before anything can run
    await scheduler.start()
    try:
        yield finished
    finally:
        await scheduler.stop()


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
async def test_one_line_per_run_that_queued_something(
    level: str,
    configure: Callable[[str], Settings],
    calls: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    scheduler = Scheduler(configure(level))
    with reading(lambda: AT_0831):
        for name in ("nudges", "sessions", "nudges", "reports"):
            await scheduler._run(name)
    assert calls == ["nudges", "sessions", "nudges", "reports"]
    assert [(r.levelname, r.getMessage()) for r in ours(caplog)] == [
        ("INFO", "job nudges at 08:31: queued 3 message(s)"),
        ("INFO", "job nudges at 08:31: queued 3 message(s)"),
    ]


async def test_at_info_a_scheduled_run_logs_only_our_line(
    configure: Callable[[str], Settings],
    calls: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = configure("INFO")
    moment = datetime.now(UTC)  # the catch-up fires "now": APScheduler must find it due
    with reading(lambda: moment):
        async with leading(settings) as finished:
            await finished.wait({"nudges", "sessions", "reports"})
    assert sorted(calls) == ["nudges", "reports", "sessions"]
    assert apscheduler_info(caplog) == []
    hhmm = f"{moment.astimezone(settings.tz):%H:%M}"
    lines = [r.getMessage() for r in ours(caplog) if r.getMessage().startswith("job ")]
    assert lines == [f"job nudges at {hhmm}: queued 3 message(s)"]
    assert "scheduler: this replica leads" in caplog.text  # the rest of our INFO lines stay


async def test_at_debug_apscheduler_says_what_it_runs(
    configure: Callable[[str], Settings],
    calls: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = configure("DEBUG")
    moment = datetime.now(UTC)
    with reading(lambda: moment):
        async with leading(settings) as finished:
            await finished.wait({"nudges", "sessions", "reports"})
    aps = apscheduler_info(caplog)
    for name in ("nudges", "sessions", "reports"):
        job = re.escape(f'"{name} (trigger: ')
        assert any(re.match(f"Running job {job}", line) for line in aps), aps
        assert any(re.match(f"Job {job}.*executed successfully", line) for line in aps), aps
    hhmm = f"{moment.astimezone(settings.tz):%H:%M}"
    lines = [r.getMessage() for r in ours(caplog) if r.getMessage().startswith("job ")]
    assert lines == [f"job nudges at {hhmm}: queued 3 message(s)"]


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("DEBUG", logging.DEBUG),
        ("INFO", logging.WARNING),
        ("WARNING", logging.WARNING),
        ("ERROR", logging.ERROR),
    ],
)
def test_apscheduler_level_follows_log_level_only_at_debug(
    level: str, expected: int, configure: Callable[[str], Settings]
) -> None:
    configure(level)
    assert logging.getLogger().level == logging.getLevelNamesMapping()[level]
    for name in ("apscheduler", "apscheduler.scheduler", "apscheduler.executors.default"):
        assert logging.getLogger(name).getEffectiveLevel() == expected


def test_request_urls_with_tokens_stay_out_of_the_log(caplog: pytest.LogCaptureFixture) -> None:
    try:
        for level in ("INFO", "DEBUG"):
            configure_logging(level)
            with caplog.at_level(logging.DEBUG):
                # What httpx logs for each Bot API call: the URL, with the bot's token in it.
                logging.getLogger("httpx").info(
                    "HTTP Request: POST https://api.telegram.org/bot123:SECRET/sendMessage"
                )
            assert "SECRET" not in caplog.text, level
    finally:
        configure_logging("WARNING")
