"""One replica at a time dispatches each outbox channel (PostgreSQL): two dispatchers on one
database in this process, each with its own locks, as two replicas have.

The handover pause is the dispatcher's own real second; the tests wait for it, they do not
sleep through it.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import pytest
from tortoise.transactions import in_transaction

from steward.clock import utcnow
from steward.gateway.messages import OutboundMessage, SendResult
from steward.gateway.outbox import WINDOW_MARGIN_SECONDS, Dispatcher, Pacer, telegram_spacing
from steward.storage import dispatch_lock, outbox_store
from steward.storage.db import is_postgres, normalise_url
from steward.storage.dispatch_lock import ChannelLock, lock_key
from steward.storage.leader import LEADER_LOCK_KEY
from steward.storage.models import OutboxMessage, OutboxStatus
from steward.storage.outbox_store import NewMessage
from tests.harness import record_outcomes
from tests.test_outbox import VirtualTime
from tests.test_scheduler import until

GROUP = "telegram:-100300"
_keys = itertools.count(1)
# Which dispatcher's task is running: set before start(), inherited by the task it creates.
_who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="test")


def test_each_channel_has_its_own_key_and_sqlite_has_no_locks() -> None:
    keys = {lock_key(channel) for channel in ("sms", "telegram")}
    assert len(keys) == 2 and LEADER_LOCK_KEY not in keys
    assert all(0 < key < 2**63 for key in keys)  # a PostgreSQL bigint
    assert dispatch_lock.for_database("sqlite://data/x.sqlite3") is None
    assert dispatch_lock.for_database("postgres://u@h:5432/d") is not None


async def test_a_pacer_resumed_after_a_handover_waits_a_second_and_each_chats_spacing() -> None:
    """Whatever another dispatcher sent up to the handover is outside every window that holds
    one of ours: the first send starts a second (and the margin) later, a group's after its
    three seconds (and the margin)."""
    time = VirtualTime()
    time.now = 50.0
    pacer = Pacer(30, clock=time, sleep=time.sleep, spacing=telegram_spacing)
    pacer.resume()
    first = await pacer.turn("telegram:7")
    assert first.started == pytest.approx(51.0 + WINDOW_MARGIN_SECONDS)
    pacer.done(first)
    group = await pacer.turn(GROUP)
    assert group.started == pytest.approx(53.0 + WINDOW_MARGIN_SECONDS)


# ---- two dispatchers on one PostgreSQL database --------------------------------------------


@dataclass(frozen=True)
class Sent:
    by: str
    address: str
    outbox_id: int
    at: float  # time.perf_counter()


class Recorder:
    """The senders of both dispatchers: who sent what, when; optionally held at the first."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.hold: asyncio.Event | None = None
        self.holding = asyncio.Event()  # a send is waiting for `hold`

    def sender(self, name: str, channel: str) -> Any:
        recorder = self

        class Recording:
            def __init__(self) -> None:
                self.channel = channel

            async def send(self, message: OutboundMessage) -> SendResult:
                if recorder.hold is not None:
                    recorder.holding.set()
                    await recorder.hold.wait()
                    recorder.hold = None
                recorder.sent.append(
                    Sent(name, message.address, message.outbox_id, time.perf_counter())
                )
                return SendResult(provider_id=f"{name}-{next(_keys)}", status="sent")

            async def close(self) -> None:
                pass

        return Recording()

    def by(self, name: str) -> list[Sent]:
        return [s for s in self.sent if s.by == name]


def dispatcher(
    db: str,
    recorder: Recorder,
    name: str,
    *,
    poll: float,
    channels: tuple[str, ...] = ("sms", "telegram"),
    locks: list[ChannelLock] | None = None,
    rate: float = 100.0,
) -> Dispatcher:
    factory = dispatch_lock.for_database(db)
    assert factory is not None

    def made(channel: str) -> ChannelLock:
        lock = factory(channel)
        if locks is not None:
            locks.append(lock)
        return lock

    return Dispatcher(
        {c: recorder.sender(name, c) for c in channels},
        rates={c: rate for c in channels},
        max_attempts=8,
        poll_seconds=poll,
        in_flight=1,
        locks=made,
    )


@asynccontextmanager
async def running(d: Dispatcher, name: str) -> AsyncIterator[Dispatcher]:
    token = _who.set(name)
    try:
        d.start()
    finally:
        _who.reset(token)
    try:
        yield d
    finally:
        await d.stop()


def counted(calls: Counter[str], real: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls[_who.get()] += 1
        return await real(*args, **kwargs)

    return wrapper


async def queue(*addresses: str) -> list[int]:
    now = utcnow()
    ids = []
    async with in_transaction() as conn:
        for address in addresses:
            channel = "telegram" if address.startswith("telegram:") else "sms"
            row = await outbox_store.enqueue(NewMessage(channel, address, "好", "reply"), now, conn)
            assert row is not None
            ids.append(row)
    return ids


async def all_sent() -> bool:
    return not await OutboxMessage.exclude(status=OutboxStatus.SENT).exists()


async def settled(what: str) -> None:
    """Wait until every row is sent (the dispatchers' own loops do it)."""
    done = asyncio.Event()

    async def watch() -> None:
        while not await all_sent():
            # The dispatchers' loops send; look at the table again shortly, with a deadline.
            await asyncio.sleep(0.02)  # noqa: sleep-ok
        done.set()

    await asyncio.wait_for(watch(), 20)
    assert done.is_set(), what


def skip_on_sqlite(db: str) -> None:
    if not is_postgres(db):
        pytest.skip("SQLite is one process: its dispatcher sends on every channel, no lock")


async def test_one_dispatcher_per_channel_woken_by_the_other_then_a_paused_handover(
    db: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    skip_on_sqlite(db)
    caplog.set_level(logging.INFO, logger="steward.gateway.outbox")
    claims, dues = Counter[str](), Counter[str]()
    monkeypatch.setattr(outbox_store, "claim_due", counted(claims, outbox_store.claim_due))
    monkeypatch.setattr(outbox_store, "next_due_at", counted(dues, outbox_store.next_due_at))
    recorded = record_outcomes(monkeypatch)
    recorder = Recorder()
    # A looks again only every 30 s: what it sends sooner, a wake-up brought it.
    a = dispatcher(db, recorder, "A", poll=30.0)
    b = dispatcher(db, recorder, "B", poll=0.05)
    async with running(a, "A"):
        await until(lambda: a.dispatching == {"sms", "telegram"}, "A to take both locks")
        async with running(b, "B"):
            await until(lambda: caplog.text.count("dispatches telegram; standing by") == 1, "B")
            assert b.dispatching == frozenset()
            # B queued them (its commit wakes B): B wakes A, and A sends at once.
            began = time.perf_counter()
            ids = await queue("+8613900000001", "+8613900000002", "telegram:11", GROUP)
            for _ in range(20):  # many commits on B: none makes it claim or spin
                b.wake()
                await asyncio.sleep(0)
            await settled("A to send what B queued")
            assert time.perf_counter() - began < 5.0  # well before A's next poll
            assert {s.outbox_id for s in recorder.by("A")} == set(ids) and not recorder.by("B")
            assert claims["B"] == 0 and dues["B"] == 0
            last_of_a = max(s.at for s in recorder.sent)

            await a.stop()  # after its round: the locks go with its connections
            await until(lambda: b.dispatching == {"sms", "telegram"}, "B to take over")
            later = await queue("+8613900000003", "telegram:12", GROUP)
            b.wake()
            await settled("B to send after its pause")
    after = {s.outbox_id: s for s in recorder.by("B")}
    assert set(after) == set(later) and len(recorder.sent) == len(ids) + len(later)
    assert all(s.at >= last_of_a + 1.0 for s in after.values())
    assert after[later[2]].at >= last_of_a + 3.0  # the group's spacing, across the handover
    # The pause held the person's message in its round; only the group's went back to wait.
    waited = {o.outbox_id for o in recorded if o.retry_at is not None and not o.error}
    assert later[1] not in waited and later[2] in waited
    assert "this replica dispatches sms after a pause" in caplog.text
    assert claims["A"] > 0 and claims["B"] > 0


async def terminate_holder(db: str, channel: str) -> None:
    """End the PostgreSQL session that holds `channel`'s lock (as a restart or an admin would)."""
    conn = await asyncpg.connect(normalise_url(db).replace("asyncpg://", "postgresql://"))
    try:
        ended = await conn.fetchval(
            """
            SELECT count(pg_terminate_backend(pid)) FROM pg_locks
            WHERE locktype = 'advisory' AND granted AND objsubid = 1
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND ((classid::bigint << 32) | objid::bigint) = $1
            """,
            lock_key(channel),
        )
    finally:
        await conn.close()
    assert ended == 1


async def test_a_holder_whose_session_ends_sends_nothing_more_and_the_other_takes_over(
    db: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A's session is ended while a send of its round is on the wire: that one completes, the
    next of the round is not started (it goes back to the queue untried), and B, which tries
    the lock on its ticks, takes over and sends it."""
    skip_on_sqlite(db)
    caplog.set_level(logging.INFO, logger="steward.gateway.outbox")
    recorder = Recorder()
    recorder.hold = asyncio.Event()
    first, second = await queue("+8613900000001", "+8613900000002")
    locks: list[ChannelLock] = []
    a = dispatcher(db, recorder, "A", poll=30.0, channels=("sms",), locks=locks, rate=2)
    b = dispatcher(db, recorder, "B", poll=0.05, channels=("sms",))
    async with running(a, "A"):
        await asyncio.wait_for(recorder.holding.wait(), 20)  # A claimed both, sends the first
        async with running(b, "B"):
            await until(lambda: "dispatches sms; standing by" in caplog.text, "B to stand by")
            await terminate_holder(db, "sms")
            await until(lambda: not locks[0].held, "A to see its session gone")
            hold, recorder.hold = recorder.hold, None
            assert hold is not None
            hold.set()
            await settled("B to send the second")
            assert "lost the sms dispatch lock" in caplog.text
            assert a.dispatching == frozenset() and b.dispatching == {"sms"}
    assert [(s.by, s.outbox_id) for s in recorder.sent] == [("A", first), ("B", second)]
    row = await OutboxMessage.get(id=second)
    assert (row.attempts, row.status) == (1, OutboxStatus.SENT)  # the untried one cost nothing


async def test_a_stale_claim_is_taken_back_only_for_the_channels_held(db: str) -> None:
    """A claim on a channel another replica dispatches is that replica's to take back."""
    skip_on_sqlite(db)
    old = datetime(2025, 1, 1, tzinfo=utcnow().tzinfo)
    ids = await queue("+8613900000001", "telegram:11")
    await OutboxMessage.filter(id__in=ids).update(status=OutboxStatus.SENDING, claimed_at=old)
    assert await dispatch_lock.release_stale_claims(["sms"], utcnow()) == 1
    statuses = {r.channel: r.status for r in await OutboxMessage.all()}
    assert statuses == {"sms": OutboxStatus.QUEUED, "telegram": OutboxStatus.SENDING}
    assert await dispatch_lock.release_stale_claims([], utcnow()) == 0
