"""Which replica dispatches an outbox channel: a PostgreSQL advisory lock per channel.

Each channel's lock is a session-level advisory lock held on a connection of its own (as
`storage.leader` does for the scheduler): it lasts exactly as long as that session, so a replica
that dies, or whose connection breaks, lets go of it without doing anything. The key is a fixed
constant ("StOB" in the high 32 bits) with a checksum of the channel's name below, so each
channel has its own lock, and none can meet the scheduler's ("Stew" in its high 32 bits).

The holder's connection also LISTENs on the channel's notification name: a replica that queued
messages for a channel it does not dispatch wakes the holder with a NOTIFY, so such a reply
still leaves within milliseconds instead of waiting for the holder's next poll.

SQLite means one process: `for_database` gives no locks, and the dispatcher sends on every
channel as it always has.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from tortoise.expressions import Q

from steward.storage import db
from steward.storage.leader import LeaderLock
from steward.storage.models import OutboxMessage, OutboxStatus

# "StOB" (steward outbox) in the high half of the bigint; the scheduler's key has "Stew" there.
DISPATCH_LOCK_BASE = 0x53744F42 << 32
CHECK_TIMEOUT_SECONDS = 5.0


def lock_key(channel: str) -> int:
    """The advisory lock key of one channel's dispatch."""
    return DISPATCH_LOCK_BASE | zlib.crc32(f"outbox:{channel}".encode())


def notify_name(channel: str) -> str:
    """The LISTEN/NOTIFY channel that wakes the holder of `channel`."""
    return f"steward_outbox_{channel}"


class ChannelLock(LeaderLock):
    """One channel's dispatch lock, on its own connection (opened while we hold or try it)."""

    def __init__(self, database_url: str, channel: str) -> None:
        super().__init__(database_url, lock_key(channel))
        self.channel = channel
        self._held = False
        self._use = asyncio.Lock()  # one statement at a time on the connection

    @property
    def held(self) -> bool:
        """True while we took the lock and its connection is open (no round trip: this is
        what asyncpg knows; a session PostgreSQL ended shows here once its socket closed)."""
        conn = self._conn
        return self._held and conn is not None and not conn.is_closed()

    async def take(self, on_notify: Callable[[], None] | None = None) -> bool:
        """Try to take the lock now; once held, call `on_notify` whenever another replica
        queued messages for this channel."""
        async with self._use:
            if self.held:
                return True
            self._held = await super().take()
            if self._held and on_notify is not None:

                def woken(*_: Any) -> None:
                    on_notify()

                await self._conn.add_listener(notify_name(self.channel), woken)
            return self._held

    async def check(self) -> bool:
        """Whether we still hold the lock, asked of the connection's session (a round trip)."""
        if not self.held:
            return False
        try:
            async with self._use:
                await asyncio.wait_for(super().still_held(), CHECK_TIMEOUT_SECONDS)
        except Exception:  # a broken or silent connection: the lock is gone or cannot be shown
            return False
        return self.held

    async def notify(self) -> None:
        """Wake the holder of this channel (best effort: its next poll finds the rows anyway)."""
        conn = self._conn
        if conn is None or conn.is_closed():
            return
        async with self._use:
            await conn.execute("SELECT pg_notify($1, '')", notify_name(self.channel))

    async def release(self) -> None:
        """Close the connection, which frees the lock."""
        self._held = False
        async with self._use:
            await super().release()


LockFactory = Callable[[str], ChannelLock]


def for_database(database_url: str) -> LockFactory | None:
    """A lock per channel on PostgreSQL; None on SQLite (one process, nothing to share)."""
    if not db.is_postgres(database_url):
        return None
    return lambda channel: ChannelLock(database_url, channel)


async def recently_dispatched(channel: str, since: datetime) -> bool:
    """Whether some dispatcher may have sent on `channel` lately: a row of it is still claimed
    (a holder died mid-round, or is finishing one), or one was claimed or recorded at `since` or
    later. Read once per takeover, so its scan of the table does not matter."""
    recent = Q(status=OutboxStatus.SENDING) | Q(updated_at__gte=since)
    return await OutboxMessage.filter(recent, channel=channel).exists()


async def release_stale_claims(channels: list[str], older_than: datetime) -> int:
    """`outbox_store.release_stale_claims` for the channels this replica dispatches only.

    Called by their dispatcher between its rounds, when none of its own claims is open: a claim
    it finds is a dead holder's. Another channel's claims are its dispatcher's business (another
    replica's, or another loop's of this one); releasing them from here could requeue a row still
    being sent in a long round, which would then go twice.
    """
    if not channels:
        return 0
    return int(
        await OutboxMessage.filter(
            status=OutboxStatus.SENDING, claimed_at__lt=older_than, channel__in=channels
        ).update(status=OutboxStatus.QUEUED)
    )
