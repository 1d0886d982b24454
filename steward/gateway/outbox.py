"""The dispatcher: claim due outbox rows, pace them per channel, send, record the results.

It is woken at once when a transaction that queued messages commits (so a reply leaves within
milliseconds), and otherwise looks again every OUTBOX_POLL_SECONDS for retries that fell due
and for rows written by other processes (the CLI, another replica). Each channel has a loop of
its own, so one never waits for another. Each round claims what the channel's rate allows in
about a second, sends up to OUTBOX_SENDS_IN_FLIGHT of them at once within the rate (a person's
own messages one after another), and records all their results in one transaction. A claimed
message whose chat may not have it for a while yet (a group's next message, 3 s after its last)
goes back to the queue until then, rather than holding its round, and every claim after it,
open; no later message to that chat overtakes it.

A send whose outcome we never learned (the process died between the provider's answer and our
record of it, or the answer timed out) is not simply sent again. Where the provider can say what
it took (Twilio's Messages list: `Lookup`), the next attempt asks first and records the SID it
finds; only when nothing is found is the message sent. Telegram has no such lookup, so there the
choice is at-least-once: a lost answer means the message may arrive twice, never not at all. The
window is the time between Telegram's answer and the batch's record, about a claim window
(CLAIM_WINDOW_SECONDS) at most.

Across replicas (PostgreSQL), the rates hold because one replica at a time sends on each
channel: the one holding that channel's advisory lock (`storage.dispatch_lock`). Splitting the
rate between replicas instead (each MPS / n) would waste it whenever one is idle, and a shared
counter in the database would put a write on every send and still not see when a request
really reached the provider, which is what the pacer goes by. A held lock keeps the pacer's
whole reasoning in one process, and costs nothing while one replica runs alone. So:

* A replica that does not hold a channel's lock skips that channel and tries the lock on its
  poll ticks. When it queues messages for that channel (a reply to a text it took in) it wakes
  the holder with a NOTIFY, so the reply still leaves within milliseconds; its own wake-ups
  cost it no query (it never spins).
* Each round the holder asks the lock's session whether it is alive, beside the round's claim
  (so it costs no time); if not, the lock is gone and the channel with it, and the batch goes
  back untried. A send whose turn comes after the connection closed is not started either: it
  goes back to the queue untried, for the new holder.
* A takeover pauses first: the new holder never saw what the previous one sent in its last
  second, so it starts nothing for a second and the pacer's margin, and nothing to a chat for
  that chat's spacing and the margin (3 s for a group; `Pacer.resume`). It pauses when it had
  found the lock taken or had lost it, or when the outbox shows the channel claimed or recorded
  within HANDOVER_EVIDENCE; a replica starting alone, with nothing recent there, sends at once.
* A graceful stop ends after the round in progress and then closes the locks' connections; a
  killed replica's session ends with it. Either way the next holder takes the lock on its tick.
  Claims a dead holder left are taken back after the lease by the channel's next holder (only
  by it: another replica could otherwise requeue a row the holder is still sending).
* SQLite is one process: no locks, every channel dispatched here, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta

from steward.clock import utcnow
from steward.flows.groups import mask_phones
from steward.gateway.messages import Lookup, PermanentSendError, RetryableSendError, Sender
from steward.metrics import Metrics
from steward.storage import dispatch_lock, outbox_store
from steward.storage.dispatch_lock import LockFactory
from steward.storage.outbox_store import Claimed, SendOutcome

log = logging.getLogger(__name__)

# The provider's clock and ours may differ by this much when matching its record of a send.
LOOKUP_SKEW = timedelta(minutes=1)
# Claim what the pacer can send within about this long: a reply queued meanwhile never waits
# behind a long claimed batch of nudges, and a claim never comes near its lease.
CLAIM_WINDOW_SECONDS = 1.0
MAX_CLAIM = 100
STOP_GRACE_SECONDS = 20.0
# A channel claimed or recorded this recently (or still claimed) may have had a send in the
# last second by another replica: a replica taking its lock then pauses first. Generous, so
# that clocks of replicas a few seconds apart still see it.
HANDOVER_EVIDENCE = timedelta(seconds=10)
# A claimed message whose chat's spacing would keep it waiting longer than this goes back to
# the queue until its turn instead (see Dispatcher._not_yet).
LATE_TURN_SECONDS = 0.5 * CLAIM_WINDOW_SECONDS


Spacing = Callable[[str], float]


def no_spacing(address: str) -> float:
    return 0.0


def telegram_spacing(address: str) -> float:
    """Telegram's limits per chat: 1 message a second to a person, 20 a minute to a group."""
    return 3.0 if address.startswith("telegram:-") else 1.0


# Sends are spaced by when they really started, and one never starts until a second (and this
# margin) after the send `burst` before it (the rate's worth in one second) reached the provider.
# That arrival is not seen, only bounded: it came before the answer, by at least the return leg,
# and this send's own outward leg is still to come; together those legs take about the quickest
# round trip seen lately (less the provider's own handling, which the margin covers). So no
# window of one second at the provider holds more than `burst`, however late a request left or
# how long it took (a busy event loop, a new connection), and a late send is never made up for
# by the ones after it; a slow but steady provider costs no rate.
WINDOW_MARGIN_SECONDS = 0.01


class Send:
    """One send's place in the pacing: when it started and, once answered, when it ended."""

    __slots__ = ("address", "answered", "due", "ended", "started")

    def __init__(self, address: str, started: float, due: float | None = None) -> None:
        self.address = address
        self.started = started
        self.due = started if due is None else due  # when its wait was over (see Pacer.turn)
        self.ended: float | None = None
        self.answered = asyncio.Event()


class Pacer:
    """Spaces sends on one channel to at most `per_second` overall (Twilio's MPS per sending
    number, Telegram's 30/s) and, per address, to the channel's own spacing."""

    def __init__(
        self,
        per_second: float,
        clock: Callable[[], float] | None = None,
        spacing: Spacing = no_spacing,
        margin: float = WINDOW_MARGIN_SECONDS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.per_second = per_second
        self._interval = 1.0 / per_second
        # The clock and the sleep come together: a test moves one with the other.
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._sleep = sleep
        self._spacing = spacing
        self._margin = margin
        self._next = 0.0
        self._next_to: dict[str, float] = {}
        self._burst = max(1, math.floor(per_second))  # sends allowed in any one second
        self._sends: deque[Send] = deque(maxlen=self._burst)  # the latest, oldest first
        self._round_trips: deque[float] = deque(maxlen=max(self._burst, 10))
        self._gate = asyncio.Lock()
        self._resumed = -math.inf  # until when another dispatcher may have sent (see resume)

    def resume(self) -> None:
        """Another dispatcher may have sent on this channel until now (a handover, whose sends
        this pacer never saw): start nothing before a second and the margin from now, and
        nothing to an address before its own spacing and the margin from now. Whatever it sent
        then lies outside every window that holds one of ours."""
        self._resumed = self._clock()

    def delay(self, address: str = "") -> float:
        """Reserve the next slot (for `address`) on the plain schedule of `per_second`; return
        how long to wait for it. (The dispatcher uses `turn`, which also judges by the sends
        that really happened.)"""
        now = self._clock()
        overall = max(now, self._next)
        self._next = overall + self._interval
        # A chat waiting for its own turn does not hold up the others' slots.
        slot = max(overall, self._next_to.get(address, 0.0))
        gap = self._spacing(address)
        if gap:
            self._next_to = {a: t for a, t in self._next_to.items() if t > now}
            self._next_to[address] = slot + gap
        return slot - now

    def paused(self) -> float:
        """How long until the channel may send at all again (after a handover; else 0)."""
        return max(0.0, self._resumed + 1.0 + self._margin - self._clock())

    def earliest(self, addresses: Sequence[str]) -> list[float]:
        """For each of a batch's sends in order, how long after the channel may send again
        (`paused`) its address's own spacing could let it start, counting the batch's earlier
        sends to that address."""
        start = self._clock() + self.paused()
        before: dict[str, int] = {}
        waits = []
        for address in addresses:
            ahead = before.get(address, 0)
            before[address] = ahead + 1
            own = max(0.0, self._own_turn(address) - start)
            waits.append(own + ahead * self._spacing(address))
        return waits

    def _own_turn(self, address: str) -> float:
        """When the address's own spacing lets it have its next send (-inf: at once)."""
        at = self._next_to.get(address, -math.inf)
        gap = self._spacing(address)
        if gap:
            at = max(at, self._resumed + gap + self._margin)
        return at

    def _wait_for(self, address: str) -> float:
        """How long until a send to `address` may start: the interval after the last start, a
        second and the margin after the `burst`-th last arrived (its answer less the quickest
        recent round trip), the address's own spacing after its last, a second and the margin
        after a handover. Infinite while that `burst`-th last send is unanswered."""
        now = self._clock()
        at = max(self._own_turn(address), self._resumed + 1.0 + self._margin)
        if self._sends:
            at = max(at, self._sends[-1].due + self._interval)
            if len(self._sends) == self._burst:
                ended = self._sends[0].ended
                if ended is None:
                    return math.inf
                quickest = min(self._round_trips, default=0.0)
                at = max(at, ended - quickest + 1.0 + self._margin)
        return at - now

    async def turn(self, address: str = "") -> Send:
        """Wait until a send to `address` may start and mark it started; call `done` with the
        result once it is answered (or failed). Sends take their turns one at a time in the
        order they asked; a chat first waits for its own spacing outside the queue, so it never
        holds up the others."""
        await self.ready(address)
        async with self._gate:
            due = None
            while (wait := self._wait_for(address)) > 0:
                if math.isinf(wait):
                    due = None
                    await self._sends[0].answered.wait()
                else:
                    due = self._clock() + wait
                    await self._sleep(wait)
            started = self._clock()
            # The interval to the next send counts from when this one was due, not from when
            # the event loop got round to starting it: asyncio wakes a millisecond or so late,
            # which at 30/s would cost 3 % of the rate for good. Lateness of more than half an
            # interval is not made up for; the window of one second is the burst rule's anyway.
            due = started if due is None else max(due, started - self._interval / 2)
            send = Send(address, started, due)
            self._sends.append(send)
            self._space(address, send.started)
        return send

    async def ready(self, address: str) -> None:
        """Wait until the address's own spacing lets it have its next send."""
        while (own := self._own_turn(address) - self._clock()) > 0:
            await self._sleep(own)

    def done(self, send: Send) -> None:
        """The provider answered `send` (or it failed): it has arrived there by now."""
        send.ended = self._clock()
        self._round_trips.append(send.ended - send.started)
        send.answered.set()
        self._space(send.address, send.ended)

    def _space(self, address: str, since: float) -> None:
        gap = self._spacing(address)
        if gap:
            now = self._clock()
            self._next_to = {a: t for a, t in self._next_to.items() if t > now}
            self._next_to[address] = since + gap

    @property
    def claim_size(self) -> int:
        return max(1, min(MAX_CLAIM, math.floor(self.per_second * CLAIM_WINDOW_SECONDS)))


SPACINGS: dict[str, Spacing] = {"telegram": telegram_spacing}


class Dispatcher:
    def __init__(
        self,
        senders: Mapping[str, Sender],
        *,
        rates: Mapping[str, float],
        max_attempts: int,
        poll_seconds: float,
        in_flight: int = 1,
        lease: timedelta = timedelta(minutes=2),
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = utcnow,
        spacings: Mapping[str, Spacing] = SPACINGS,
        locks: LockFactory | None = None,
    ) -> None:
        """`locks`: one lock per channel, shared by the replicas (PostgreSQL); None when this
        process is the only one (SQLite), which then dispatches every channel."""
        self._senders = dict(senders)
        self._pacers = {
            name: Pacer(rates.get(name, 30.0), spacing=spacings.get(name, no_spacing))
            for name in self._senders
        }
        self._max_attempts = max_attempts
        self._in_flight = in_flight
        self._poll = poll_seconds
        self._lease = lease
        self._metrics = metrics or Metrics()
        self._clock = clock
        # Each channel has its own loop (see _run_channel), woken by its own event.
        self._wakes = {name: asyncio.Event() for name in self._senders}
        self._task: asyncio.Task[None] | None = None
        self._drain_locks = {name: asyncio.Lock() for name in self._senders}
        self._stopping = False
        # Per channel, the provider ids found by lookups in its current round.
        self._found: dict[str, set[str]] = {name: set() for name in self._senders}
        # Per channel and chat, messages that went back to the queue until their turn (_not_yet).
        self._held_back: dict[str, dict[str, dict[int, datetime]]] = {
            name: {} for name in self._senders
        }
        self._locks = {name: locks(name) for name in self._senders} if locks else {}
        self._held: set[str] = set() if locks else set(self._senders)  # what we dispatch
        self._taken_before: set[str] = set()  # locks found taken, or lost: a takeover follows
        self._standing_by: set[str] = set()  # said so in the log already
        self._queued_here: set[str] = set()  # channels this process queued for since they looked

    def wake(self) -> None:
        """Ask the loops to look for due messages now (this process queued some)."""
        self._queued_here.update(self._senders)
        for event in self._wakes.values():
            event.set()

    @property
    def dispatching(self) -> frozenset[str]:
        """The channels this replica sends on now."""
        return frozenset(self._held)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-dispatcher")

    async def stop(self) -> None:
        """Let the loops finish what they are doing, then close the senders.

        Cancelling mid-query is what we avoid: on SQLite it leaves tortoise's connection lock
        held (the next transaction waits forever), and with asyncpg a cancel landing mid-query
        was seen to be swallowed. So the loops are asked to end (flag + wake) and waited for;
        only if they do not end within STOP_GRACE_SECONDS (a send stuck on the network) are they
        cancelled.
        """
        self._stopping = True
        for event in self._wakes.values():
            event.set()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=STOP_GRACE_SECONDS)
            if not done:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        for lock in self._locks.values():  # the round in progress is over: hand them on
            await lock.release()
        if self._locks:
            self._held.clear()
        for sender in self._senders.values():
            await sender.close()

    async def _run(self) -> None:
        # Each channel at its own pace: a group's spacing or a slow provider never holds up
        # another channel's messages.
        await asyncio.gather(*(self._run_channel(channel) for channel in self._senders))

    async def _run_channel(self, channel: str) -> None:
        wake = self._wakes[channel]
        polled = True  # the first pass also looks for claims a dead replica left
        while not self._stopping:
            # Cleared before looking, not after waiting: a wake during the drain is not lost.
            wake.clear()
            queued_here = channel in self._queued_here
            self._queued_here.discard(channel)
            timeout = self._poll
            try:
                if queued_here and channel not in self._held:
                    await self._tell_holder(channel)
                # A wake-up means new rows; the lock and stale claims are seen to on the tick.
                await self._drain_one(channel, tend=polled, release=polled, defer=True)
                timeout = await self._sleep_for(channel)
            except Exception:  # the loop must survive a bad moment (DB restart, one bad row)
                log.exception("outbox dispatch (%s) failed; trying again shortly", channel)
            try:
                await asyncio.wait_for(wake.wait(), timeout=timeout)
                polled = False
            except TimeoutError:
                polled = True

    async def _sleep_for(self, channel: str) -> float:
        if channel not in self._held:  # nothing to send here: woken, or the tick tries the lock
            return self._poll
        due = await outbox_store.next_due_at([channel])
        if due is None:
            return self._poll
        return min(self._poll, max(0.0, (due - self._clock()).total_seconds()))

    async def drain(self) -> int:
        """Send everything due now on the channels this replica dispatches (on PostgreSQL it
        first tries the locks of the others), waiting out each chat's spacing as it comes;
        return how many sends were attempted."""
        attempted = 0
        while not self._stopping:
            # Once more after any sends: a round may queue on another channel (SMS fallback).
            passes = (self._drain_one(c, tend=True, defer=False) for c in self._senders)
            counts = await asyncio.gather(*passes)
            if not any(counts):
                break
            attempted += sum(counts)
        return attempted

    async def _drain_one(
        self, channel: str, *, tend: bool, defer: bool, release: bool = False
    ) -> int:
        """Send what is due on one channel; with `defer` (the loop) a message whose chat's turn
        is far off goes back to the queue until then rather than holding its round open."""
        async with self._drain_locks[channel]:
            if tend:
                await self._tend_lock(channel)
            if release:
                await self._release_stale(channel)
            attempted = 0
            while not self._stopping and await self._still_dispatching(channel):
                claimed, tried = await self._round(channel, defer)
                if not claimed:
                    break
                attempted += tried
            return attempted

    # ---- one replica per channel (PostgreSQL) ------------------------------------------------

    async def _tend_lock(self, channel: str) -> None:
        """Try the channel's lock unless we hold it (on the poll ticks, and a manual drain)."""
        lock = self._locks.get(channel)
        if lock is None or channel in self._held:
            return  # no lock to share, or one checked before each of its rounds
        try:
            got = await lock.take(self._wakes[channel].set)
        except Exception as exc:  # no database right now: the next tick tries again
            log.warning("outbox: could not try the %s dispatch lock (%s)", channel, exc)
            await lock.release()
            return
        if got:
            await self._take_over(channel)
            return
        self._taken_before.add(channel)
        if channel not in self._standing_by:
            log.info("outbox: another replica dispatches %s; standing by", channel)
            self._standing_by.add(channel)

    async def _take_over(self, channel: str) -> None:
        """Start dispatching `channel`, after a pause when another replica may just have sent."""
        since = self._clock() - HANDOVER_EVIDENCE
        handover = channel in self._taken_before or await dispatch_lock.recently_dispatched(
            channel, since
        )
        if handover:
            self._pacers[channel].resume()
        self._held.add(channel)
        self._standing_by.discard(channel)
        after = " after a pause (another replica may just have sent)" if handover else ""
        log.info("outbox: this replica dispatches %s%s", channel, after)

    async def _still_dispatching(self, channel: str) -> bool:
        """Whether we dispatch `channel`, as far as we know without asking (each round asks the
        lock's session too, alongside its claim)."""
        if not self._locks:
            return True
        if channel not in self._held:
            return False
        if self._locks[channel].held:
            return True
        await self._lose(channel)
        return False

    async def _claim(self, channel: str) -> list[Claimed]:
        """Claim a batch of `channel`; with a lock, ask its session at the same time whether
        it is still ours (one round trip beside the claim's, so no time is lost). If not, the
        batch goes back untried and the channel with the lock."""
        claiming = outbox_store.claim_due(self._clock(), channel, self._pacers[channel].claim_size)
        lock = self._locks.get(channel)
        if lock is None:
            return await claiming
        batch, mine = await asyncio.gather(claiming, lock.check())
        if mine:
            return batch
        if batch:
            addresses = [claimed.message.address for claimed in batch]
            await outbox_store.record([self._not_sent(c) for c in batch], addresses, self._clock())
        await self._lose(channel)
        return []

    async def _lose(self, channel: str) -> None:
        self._held.discard(channel)
        self._taken_before.add(channel)
        self._standing_by.add(channel)
        log.warning(
            "outbox: lost the %s dispatch lock (its connection is gone); standing by", channel
        )
        await self._locks[channel].release()

    async def _release_stale(self, channel: str) -> None:
        """Requeue claims a dead dispatcher left on this channel, if we dispatch it. Between
        this channel's own rounds, so never one of ours in flight (another channel's loop may
        be mid-round: its claims are its own business)."""
        if channel in self._held:
            older_than = self._clock() - self._lease
            await dispatch_lock.release_stale_claims([channel], older_than)

    async def _tell_holder(self, channel: str) -> None:
        """Wake whoever dispatches a channel we do not: we may have queued messages there."""
        try:
            await self._locks[channel].notify()
        except Exception as exc:  # best effort: the holder's next poll finds them
            log.info("outbox: could not wake the %s dispatcher (%s)", channel, exc)

    # ---- rounds --------------------------------------------------------------------------

    async def _round(self, channel: str, defer: bool = True) -> tuple[int, int]:
        """Claim one batch of a channel, send it within the rate, record the results together;
        return how many were claimed and how many of those were tried."""
        batch = await self._claim(channel)
        if not batch:
            return 0, 0
        self._found[channel] = set()
        later = self._not_yet(channel, batch) if defer else {}
        outcomes = {i: self._later(batch[i], at) for i, at in later.items()}
        now = [claimed for i, claimed in enumerate(batch) if i not in later]
        sent = iter(await self._send_all(now))
        results = [outcomes[i] if i in later else next(sent) for i in range(len(batch))]
        addresses = [claimed.message.address for claimed in batch]
        await outbox_store.record(results, addresses, self._clock())
        if any(outcome.unreachable for outcome in results):  # a fallback went on another channel
            for other, event in self._wakes.items():
                if other != channel:
                    event.set()
        return len(batch), len(now)

    def _not_yet(self, channel: str, batch: list[Claimed]) -> dict[int, datetime]:
        """Those of a batch (by index) whose chat may not have them within LATE_TURN_SECONDS,
        with when it may: a group's next message 3 s after its last, a person's third message
        of the batch. Waited for, they would hold the whole round, and every claim after it,
        open that long; so they go back to the queue until then. A message never overtakes an
        earlier one of its chat that is back in the queue so: it goes back until then too."""
        now = self._clock()
        waiting = {
            address: {row: at for row, at in rows.items() if at > now}
            for address, rows in self._held_back[channel].items()
        }
        for claimed in batch:  # these are back
            waiting.get(claimed.message.address, {}).pop(claimed.message.outbox_id, None)
        addresses = [claimed.message.address for claimed in batch]
        pacer = self._pacers[channel]
        # The pause after a handover holds every chat alike: the round waits that out itself
        # (rather than sending the whole queue back, a second later, round after round).
        start = now + timedelta(seconds=pacer.paused())
        later: dict[int, datetime] = {}
        for i, wait in enumerate(pacer.earliest(addresses)):
            row, rows = batch[i].message.outbox_id, waiting.setdefault(addresses[i], {})
            ahead = [at for other, at in rows.items() if other < row]
            if wait > LATE_TURN_SECONDS or ahead:
                rows[row] = later[i] = max([start + timedelta(seconds=wait), *ahead])
        self._held_back[channel] = {address: rows for address, rows in waiting.items() if rows}
        return later

    def _later(self, claimed: Claimed, at: datetime) -> SendOutcome:
        """Back to the queue untried until `at` (still in doubt if it was in doubt)."""
        return SendOutcome(
            claimed.message.outbox_id,
            claimed.attempts,
            retry_at=at,
            unconfirmed=claimed.unconfirmed_since is not None,
        )

    async def _send_all(self, batch: list[Claimed]) -> list[SendOutcome]:
        """Send a claimed batch, up to `in_flight` at once, in claim order per address: a
        person's replies never overtake each other."""
        if not batch:
            return []
        if self._in_flight == 1:
            return [await self._send(claimed) for claimed in batch]
        slots = asyncio.Semaphore(self._in_flight)
        previous: dict[str, asyncio.Task[SendOutcome]] = {}

        async def one(claimed: Claimed, before: asyncio.Task[SendOutcome] | None) -> SendOutcome:
            if before is not None:
                await asyncio.wait({before})
            # A chat waiting for its own turn does so without a slot: the others go meanwhile.
            await self._pacers[claimed.message.channel].ready(claimed.message.address)
            async with slots:
                return await self._send(claimed)

        tasks = []
        for claimed in batch:
            address = claimed.message.address
            task = asyncio.create_task(one(claimed, previous.get(address)))
            previous[address] = task
            tasks.append(task)
        return list(await asyncio.gather(*tasks))

    async def _already_sent(self, claimed: Claimed) -> str | None:
        """The provider id of an earlier attempt that did reach the provider, if it can say."""
        sender = self._senders[claimed.message.channel]
        if claimed.unconfirmed_since is None or not isinstance(sender, Lookup):
            return None  # nothing in doubt, or a provider that cannot tell (at-least-once)
        since = claimed.unconfirmed_since - LOOKUP_SKEW
        candidates = await sender.find_sent(claimed.message, since)
        # A SID another row holds is that row's message (the same text sent twice on purpose).
        found = self._found[claimed.message.channel]
        taken = await outbox_store.known_provider_ids(candidates) | found
        for provider_id in candidates:
            if provider_id not in taken:
                found.add(provider_id)
                log.info("message %s had reached the provider already", claimed.message.outbox_id)
                return provider_id
        return None

    async def _send(self, claimed: Claimed) -> SendOutcome:
        message, attempts = claimed.message, claimed.attempts + 1
        started = time.perf_counter()
        try:
            found = await self._already_sent(claimed)
        except RetryableSendError as exc:
            self._observe(message.channel, "retry", started)
            return self._retry_later(claimed, attempts, exc)
        if found is not None:
            self._observe(message.channel, "found", started)
            return SendOutcome(message.outbox_id, attempts, provider_id=found)
        pacer = self._pacers[message.channel]
        turn = await pacer.turn(message.address)
        lock = self._locks.get(message.channel)
        if lock is not None and not lock.held:  # lost while it waited: the new holder sends it
            pacer.done(turn)
            return self._not_sent(claimed)
        started = time.perf_counter()
        try:
            try:
                result = await self._senders[message.channel].send(message)
            finally:
                pacer.done(turn)
        except RetryableSendError as exc:
            self._observe(message.channel, "retry", started)
            return self._retry_later(claimed, attempts, exc)
        except PermanentSendError as exc:
            self._observe(message.channel, "failed", started)
            log.warning("message %s failed for good: %s", message.outbox_id, _loggable(exc))
            return SendOutcome(
                message.outbox_id,
                attempts,
                error=str(exc),
                code=exc.code,
                unsubscribed=exc.unsubscribed,
                unreachable=exc.unreachable,
            )
        self._observe(message.channel, "sent", started)
        return SendOutcome(message.outbox_id, attempts, provider_id=result.provider_id)

    def _not_sent(self, claimed: Claimed) -> SendOutcome:
        """Back to the queue as it was, untried (still in doubt if it was in doubt)."""
        return SendOutcome(
            claimed.message.outbox_id,
            claimed.attempts,
            retry_at=self._clock(),
            error="not sent: this replica lost the channel's dispatch lock",
            unconfirmed=claimed.unconfirmed_since is not None,
        )

    def _observe(self, channel: str, result: str, started: float) -> None:
        self._metrics.sends.labels(channel, result).inc()
        self._metrics.provider_latency.labels(channel).observe(time.perf_counter() - started)

    def _retry_later(self, claimed: Claimed, attempts: int, exc: RetryableSendError) -> SendOutcome:
        message = claimed.message
        if attempts >= self._max_attempts:
            log.warning(
                "message %s failed after %s attempts: %s",
                message.outbox_id,
                attempts,
                _loggable(exc),
            )
            return SendOutcome(message.outbox_id, attempts, error=str(exc), code=exc.code)
        at = self._clock() + outbox_store.backoff(attempts, exc.retry_after)
        log.info(
            "message %s will be retried at %s: %s",
            message.outbox_id,
            at.isoformat(),
            _loggable(exc),
        )
        self._metrics.retries.labels(message.channel).inc()
        return SendOutcome(
            message.outbox_id,
            attempts,
            retry_at=at,
            error=str(exc),
            code=exc.code,
            unconfirmed=exc.maybe_sent or claimed.unconfirmed_since is not None,
        )


def _loggable(exc: Exception) -> str:
    """A provider's error for the log, phone numbers masked (Twilio's 21211 names the number)."""
    return mask_phones(str(exc))


async def recover_claims(lease: timedelta, *, single_process: bool, now: datetime) -> int:
    """Requeue rows a crashed dispatcher left as sending.

    With SQLite there is one process, so every leftover claim is stale at start-up; with
    PostgreSQL other replicas may be mid-send, so only claims older than the lease are taken back.
    """
    cutoff = now + timedelta(seconds=1) if single_process else now - lease
    return await outbox_store.release_stale_claims(cutoff)
