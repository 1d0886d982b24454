"""Two `steward serve` replicas on one PostgreSQL database: one runs the scheduler; when it is
killed, the other takes over and its catch-up sends what was due, once."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest

from steward.clock import utcnow
from steward.storage.db import is_postgres
from steward.storage.models import OutboxMessage, Report
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import seed_street
from tests.test_process import READY, free_port, serve_env, spawn_serve

pytestmark = pytest.mark.process
LEADS = "scheduler: this replica leads"
STANDS_BY = "scheduler: this replica is standing by"
DEADLINE = 30.0


class Replica:
    """A running `steward serve` whose log is read as it is written."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process) -> None:
        self.name = name
        self.proc = proc
        self.log = ""
        self._grew = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.log += line.decode(errors="replace")
            self._grew.set()
        self._grew.set()  # the process is gone: wake anyone waiting

    async def wait_for(self, text: str, deadline: float = DEADLINE) -> None:
        """Return once the log contains `text`; fail (showing the log) after `deadline` s."""

        async def seen() -> None:
            while True:
                self._grew.clear()
                if text in self.log:
                    return
                assert not self._reader.done(), f"{self.name} exited:\n{self.log}"
                await self._grew.wait()

        try:
            await asyncio.wait_for(seen(), deadline)
        except TimeoutError:
            pytest.fail(f"{self.name} never logged {text!r}:\n{self.log}")

    async def wait_for_match(self, pattern: str, deadline: float = DEADLINE) -> None:
        """Return once a line of the log matches the regex `pattern` (else as `wait_for`)."""

        async def seen() -> None:
            while True:
                self._grew.clear()
                if re.search(pattern, self.log, re.MULTILINE):
                    return
                assert not self._reader.done(), f"{self.name} exited:\n{self.log}"
                await self._grew.wait()

        try:
            await asyncio.wait_for(seen(), deadline)
        except TimeoutError:
            pytest.fail(f"{self.name} never logged a line matching {pattern!r}:\n{self.log}")

    async def close(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            await asyncio.wait_for(self.proc.wait(), DEADLINE)
        await asyncio.wait_for(self._reader, DEADLINE)


@asynccontextmanager
async def replica(name: str, env: dict[str, str], port: int) -> AsyncIterator[Replica]:
    """Start one replica and return once it says it is ready (from its log, not a timer)."""
    proc = await spawn_serve(env, port)
    running = Replica(name, proc)
    try:
        await running.wait_for(READY.decode())
        yield running
    finally:
        await running.close()


def is_reminder(body: str) -> bool:
    return body.startswith("提醒：上报#1")


async def reminder_sent(twilio: FakeTwilio) -> None:
    """Wait (on the stand-in's own condition, up to the deadline) until it got the reminder."""

    def arrived() -> bool:
        return any(is_reminder(m.body) for m in list(twilio.messages))

    await asyncio.to_thread(twilio.wait_until, arrived, DEADLINE, "the reminder")


def replica_env(db: str, twilio: FakeTwilio, port: int) -> dict[str, str]:
    return {
        **serve_env(db, twilio, f"http://127.0.0.1:{port}"),
        "SCHEDULER": "true",
        "SCHEDULER_RETRY_SECONDS": "0.3",
        "QUIET_HOURS": "",  # the reminder goes now, whatever the hour the suite runs at
        # DEBUG: APScheduler says when a run is done, also a run that queued nothing.
        "LOG_LEVEL": "DEBUG",
    }


async def test_a_standby_replica_takes_over_and_sends_what_is_due_once(
    db: str, twilio: FakeTwilio
) -> None:
    if not is_postgres(db):
        pytest.skip("SQLite runs as one process: there are no replicas to choose a leader from")
    port_a, port_b = free_port(), free_port()
    async with (
        replica("A", replica_env(db, twilio, port_a), port_a) as a,
        replica("B", replica_env(db, twilio, port_b), port_b) as b,
    ):
        await a.wait_for(LEADS)  # A started alone: it took the lock
        await b.wait_for(STANDS_BY)
        assert LEADS not in b.log
        # A's catch-up: reports ran and had nothing to queue (no line of ours for that).
        await a.wait_for_match(r'^.*Job "reports \(trigger: .*executed successfully$')
        assert not re.search(r"job reports at \d\d:\d\d: queued", a.log)

        # A report nobody acknowledged for 25 hours: its lead is due one reminder.
        street = await seed_street()
        now = utcnow()
        await Report.create(
            number=1,
            reporter_id=street.wang.id,
            community_id=street.wang.community_id,
            zone_id=None,
            category=1,
            description="垃圾堆放",
            created_at=now - timedelta(hours=25),
            updated_at=now - timedelta(hours=25),
        )
        a.proc.kill()  # SIGKILL: no shutdown code runs; PostgreSQL ends its session
        await a.proc.wait()

        await b.wait_for(LEADS)
        await b.wait_for_match(r"job reports at \d\d:\d\d: queued 1 message\(s\)$")
        await reminder_sent(twilio)
    # B stopped cleanly: anything it would have sent twice has reached the stand-in by now.
    # (Other jobs may have had something to say to the seeded street: only reminders count.)
    reminders = [m for m in twilio.messages if is_reminder(m.body)]
    assert [m.to for m in reminders] == [street.lead.phone]
    assert await OutboxMessage.filter(body__startswith="提醒：上报#1").count() == 1
