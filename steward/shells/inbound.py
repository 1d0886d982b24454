"""Process stored inbound messages in batches: one transaction per batch, a savepoint each.

The processor is woken when the inbound writer commits, and otherwise looks again every
`poll_seconds` for retries that fell due and rows other replicas stored. A message that raises
is marked with its error and tried again later; the rest of the batch goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime

from steward.clock import utcnow
from steward.flows import grammar, inbox
from steward.metrics import Metrics
from steward.settings import Settings
from steward.shells import groups
from steward.storage import context, effects, inbound
from steward.storage.db import savepoint
from steward.storage.models import InboundMessage
from steward.storage.report_store import ReportConflict
from steward.storage.unit import Connection, Topic, UnitOfWork

log = logging.getLogger(__name__)


class _OneFailed(Exception):
    """A message of a batch processed without savepoints raised: the batch is rolled back."""


# Messages per transaction: enough to share one commit among a burst, few enough that the
# webhook writer (which waits for the same SQLite connection) is never held up for long.
BATCH_SIZE = 32
STOP_GRACE_SECONDS = 20.0
# How long a batch goes on deciding while webhooks wait for the one SQLite connection, and how
# many of the messages that arrived meanwhile it decides first (at most). Each webhook waits for
# one writer-and-batch cycle. Measured with make bench (32 connections, then 200 msg/s): 10 ms
# slices answered a burst at ~830 msg/s; bare 2 ms slices at ~1,300, but at 200 msg/s the
# decisions then fell behind now and then (reply p50 from 20 ms to 2 s); 2 ms slices that keep
# pace with up to 2 arrivals answered a burst at ~1,200 and replied at 200 msg/s in 25-40 ms.
YIELD_AFTER_SECONDS = 0.002
KEEP_PACE_MOST = 2


async def process_row(row: InboundMessage, rules: Settings, conn: Connection) -> str:
    """Decide and apply one stored message inside the caller's transaction; return its intent."""
    if row.details and "group" in row.details:
        return await groups.process_group_row(row, rules, conn)
    vol = await context.find_volunteer(row.address, conn)
    step = context.conversation(vol) if vol is not None else None
    parsed = grammar.parse(row.text)
    has_location = bool(row.details and "location" in row.details)
    needs = inbox.needs(parsed, step.step if step else None, bool(row.media), has_location)
    ctx = await context.load(row, vol, step, parsed, needs, rules, conn)
    outcome = inbox.decide(ctx, parsed, rules)
    # The message's own arrival time is "now": a late or replayed run decides the same way.
    await effects.apply_outcome(row, vol, outcome, row.received_at, conn)
    return outcome.intent


class Processor:
    """Drains stored messages; one loop per process, woken on commit."""

    def __init__(
        self,
        rules: Settings,
        units: UnitOfWork,
        *,
        poll_seconds: float,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = utcnow,
        yield_to: Callable[[], bool] | None = None,
        yield_after: float = YIELD_AFTER_SECONDS,
        arrivals: Callable[[], int] | None = None,
    ) -> None:
        self._rules = rules
        self._metrics = metrics or Metrics()
        self._units = units
        self._poll = poll_seconds
        self._clock = clock
        # SQLite has one connection and one writer: while webhooks wait for theirs (the inbound
        # writer is busy), a batch commits what it has done and lets them in, so a webhook waits
        # for one message's decision at most, never for a whole batch's.
        self._yield_to = yield_to
        self._yield_after = yield_after
        # How many rows have been stored so far (the writer's count): a batch that lets
        # webhooks in first decides as many as arrived since the one before (up to
        # KEEP_PACE_MOST), so a steady load never builds a backlog behind the webhooks (with
        # bare 2 ms slices it did, now and then, at 200 msg/s); a burst beyond what can be
        # decided waits in the table, as it must.
        self._arrivals = arrivals or (lambda: 0)
        self._arrived_before = 0
        self._wake = asyncio.Event()
        self._drain_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._retries_possible = True  # until a look finds no row waiting for a retry
        self._more_due = False

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="inbound-processor")

    async def stop(self) -> None:
        """Let the batch under way finish (never cancel mid-query), then stop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=STOP_GRACE_SECONDS)
            if not done:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()  # before looking: a wake during drain() is not lost
            timeout = self._poll
            try:
                await self.drain()
                timeout = await self._sleep_for()
            except Exception:  # the loop must survive a bad moment (a database restart)
                log.exception("inbound processing failed; trying again shortly")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
            except TimeoutError:
                self._retries_possible = True  # another replica may have marked one

    async def _sleep_for(self) -> float:
        # Only a failed message waits for a retry: no need to ask after every clean drain.
        if not self._retries_possible:
            return self._poll
        due = await inbound.next_retry_at()
        if due is None:
            self._retries_possible = False
            return self._poll
        return min(self._poll, max(0.0, (due - self._clock()).total_seconds()))

    async def drain(self) -> int:
        """Process every message due now; return how many were handled."""
        handled = 0
        async with self._drain_lock:
            while not self._stopping:
                handled += await self._batch()
                if not self._more_due:  # a wake for rows stored meanwhile brings _run back
                    break
        return handled

    async def _batch(self) -> int:
        """One batch; how many messages it handled (and, in `_more_due`, whether more may be
        due behind it)."""
        try:
            # Most batches fail nowhere: no savepoint per message (two statements each).
            handled, self._more_due = await self._decide_batch(careful=False)
        except _OneFailed:
            # Rolled back whole: decide it again, each message in a savepoint of its own, so
            # the one that fails is marked and the others go through.
            handled, self._more_due = await self._decide_batch(careful=True)
        return handled

    async def _decide_batch(self, *, careful: bool) -> tuple[int, bool]:
        """Decide the due rows in one transaction; how many, and whether more may be due.
        Not careful: a message that raises rolls the whole batch back (`_OneFailed`)."""
        handled: list[tuple[InboundMessage, str]] = []
        async with self._units.transaction(Topic.OUTBOX) as conn:
            batch = await inbound.claim_batch(self._clock(), BATCH_SIZE, conn)
            started, owed = time.monotonic(), self._owed()
            more, done = batch.more, 0
            for row in batch.rows:
                if careful:
                    await self._one(row, conn)
                else:
                    try:
                        handled.append((row, await process_row(row, self._rules, conn)))
                    except Exception as exc:
                        raise _OneFailed from exc
                done += 1
                if done < len(batch.rows) and self._should_yield(started, done, owed):
                    more = True  # the rest are the next batch's first
                    break
        for row, intent in handled:  # once committed
            self._observe(row, intent)
        return done, more

    def _observe(self, row: InboundMessage, intent: str) -> None:
        self._metrics.processed.labels(intent).inc()
        self._metrics.processing.observe(
            max(0.0, (self._clock() - row.received_at).total_seconds())
        )

    def _owed(self) -> int:
        """Rows stored since the previous batch began."""
        arrived = self._arrivals()
        owed, self._arrived_before = arrived - self._arrived_before, arrived
        return owed

    def _should_yield(self, started: float, done: int, owed: int) -> bool:
        # A slice of decisions shares a commit even then (a commit is an fsync), and keeps up
        # with what arrived meanwhile.
        if self._yield_to is None or time.monotonic() - started < self._yield_after:
            return False
        return done >= min(owed, KEEP_PACE_MOST) and self._yield_to()

    async def _one(self, row: InboundMessage, conn: Connection) -> None:
        for attempt in (1, 2):
            try:
                async with savepoint(conn) as inner:
                    intent = await process_row(row, self._rules, inner)
                self._observe(row, intent)
                return
            except ReportConflict:
                if attempt == 1:
                    continue  # someone moved the report meanwhile: decide again on what is there
                error = "report changed twice while deciding"
            except Exception as exc:  # one bad message must not stop the batch
                log.exception("processing message %s failed; it will be retried", row.id)
                error = f"{type(exc).__name__}: {exc}"
            self._metrics.processing_errors.inc()
            self._retries_possible = True
            last = await inbound.mark_error(row, error, self._clock(), conn)
            if last:
                log.error("message %s given up after %s attempts", row.id, inbound.MAX_ATTEMPTS)
            return
