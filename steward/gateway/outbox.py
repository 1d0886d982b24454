"""The dispatcher: claim due outbox rows, pace them per channel, send, record the result.

It is woken at once when a transaction that queued messages commits (so a reply leaves within
milliseconds), and otherwise looks again every OUTBOX_POLL_SECONDS for retries that fell due
and for rows written by other processes (the CLI, another replica).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from steward.clock import utcnow
from steward.gateway.messages import OutboundMessage, PermanentSendError, RetryableSendError, Sender
from steward.storage import outbox_store

log = logging.getLogger(__name__)

# Provider codes that mean "this person has unsubscribed" (Twilio 21610).
UNSUBSCRIBED_CODES = frozenset({"21610"})
# One message is claimed right before it is sent, so a claim never has to outlive a send (up to
# the client's timeout plus one pacing slot): a slow batch can never pass its lease to another
# replica while this one is still working through it.
CLAIM_SIZE = 1
STOP_GRACE_SECONDS = 20.0


class Pacer:
    """Spaces sends on one channel to at most `per_second` (Twilio's MPS per sending number)."""

    def __init__(self, per_second: float, clock: Callable[[], float] | None = None) -> None:
        self._interval = 1.0 / per_second
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._next = 0.0

    def delay(self) -> float:
        """Reserve the next slot; return how long to wait for it."""
        now = self._clock()
        slot = max(now, self._next)
        self._next = slot + self._interval
        return slot - now


class Dispatcher:
    def __init__(
        self,
        senders: Mapping[str, Sender],
        *,
        rates: Mapping[str, float],
        max_attempts: int,
        poll_seconds: float,
        lease: timedelta = timedelta(minutes=2),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._senders = dict(senders)
        self._pacers = {name: Pacer(rates.get(name, 30.0)) for name in self._senders}
        self._max_attempts = max_attempts
        self._poll = poll_seconds
        self._lease = lease
        self._clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._drain_lock = asyncio.Lock()
        self._stopping = False

    def wake(self) -> None:
        """Ask the loop to look for due messages now."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-dispatcher")

    async def stop(self) -> None:
        """Let the loop finish what it is doing, then close the senders.

        Cancelling mid-query is what we avoid: on SQLite it leaves tortoise's connection lock
        held (the next transaction waits forever), and with asyncpg a cancel landing mid-query
        was seen to be swallowed. So the loop is asked to end (flag + wake) and waited for;
        only if it does not end within STOP_GRACE_SECONDS (a send stuck on the network) is it
        cancelled.
        """
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=STOP_GRACE_SECONDS)
            if not done:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        for sender in self._senders.values():
            await sender.close()

    async def _run(self) -> None:
        while not self._stopping:
            # Cleared before looking, not after waiting: a wake during drain() is not lost.
            self._wake.clear()
            timeout = self._poll
            try:
                # A replica that died mid-send leaves claims behind; take them back once stale.
                await outbox_store.release_stale_claims(self._clock() - self._lease)
                await self.drain()
                timeout = await self._sleep_for()
            except Exception:  # the loop must survive a bad moment (DB restart, one bad row)
                log.exception("outbox dispatch failed; trying again shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    async def _sleep_for(self) -> float:
        due = await outbox_store.next_due_at(self._senders)
        if due is None:
            return self._poll
        return min(self._poll, max(0.0, (due - self._clock()).total_seconds()))

    async def drain(self) -> int:
        """Send everything due now; return how many sends were attempted."""
        attempted = 0
        async with self._drain_lock:
            while not self._stopping and (
                batch := await outbox_store.claim_due(self._clock(), self._senders, CLAIM_SIZE)
            ):
                for message in batch:
                    await self._send(message)
                    attempted += 1
        return attempted

    async def _send(self, message: OutboundMessage) -> None:
        wait = self._pacers[message.channel].delay()
        if wait > 0:
            await asyncio.sleep(wait)
        sender = self._senders[message.channel]
        attempts = await outbox_store.attempts_so_far(message.outbox_id) + 1
        try:
            result = await sender.send(message)
        except RetryableSendError as exc:
            await self._retry_later(message, attempts, exc)
        except PermanentSendError as exc:
            log.warning("message %s failed for good: %s", message.outbox_id, exc)
            await outbox_store.mark_failed(
                message.outbox_id, attempts, str(exc), exc.code, self._clock()
            )
            if exc.code in UNSUBSCRIBED_CODES:
                await outbox_store.record_opt_out(message.address, self._clock())
        else:
            await outbox_store.mark_sent(
                message.outbox_id, result.provider_id, attempts, self._clock()
            )

    async def _retry_later(
        self, message: OutboundMessage, attempts: int, exc: RetryableSendError
    ) -> None:
        now = self._clock()
        if attempts >= self._max_attempts:
            log.warning("message %s failed after %s attempts: %s", message.outbox_id, attempts, exc)
            await outbox_store.mark_failed(message.outbox_id, attempts, str(exc), exc.code, now)
            return
        at = now + outbox_store.backoff(attempts, exc.retry_after)
        log.info("message %s will be retried at %s: %s", message.outbox_id, at.isoformat(), exc)
        await outbox_store.mark_retry(message.outbox_id, attempts, str(exc), exc.code, at, now)


async def recover_claims(lease: timedelta, *, single_process: bool, now: datetime) -> int:
    """Requeue rows a crashed dispatcher left as sending.

    With SQLite there is one process, so every leftover claim is stale at start-up; with
    PostgreSQL other replicas may be mid-send, so only claims older than the lease are taken back.
    """
    cutoff = now + timedelta(seconds=1) if single_process else now - lease
    return await outbox_store.release_stale_claims(cutoff)
