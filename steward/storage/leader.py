"""Who runs the scheduled jobs: a PostgreSQL session-level advisory lock (SPEC §10).

The lock lives on a dedicated connection held for as long as this replica leads; when the
replica dies its session ends and PostgreSQL frees the lock for a standing-by one. SQLite means
one process, which always leads. The same kind of lock, under keys of their own, says which
replica dispatches each outbox channel (`storage.dispatch_lock`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from steward.storage import db

# The key every replica of this service tries ("Steward" + 1, as a bigint).
LEADER_LOCK_KEY = 0x5374657761726401


def asyncpg_dsn(url: str) -> str:
    """The DATABASE_URL as asyncpg.connect wants it (postgresql://...)."""
    return "postgresql://" + db.normalise_url(url)[len("asyncpg://") :]


class LeaderLock:
    def __init__(self, database_url: str, key: int = LEADER_LOCK_KEY) -> None:
        self._url = database_url
        self._key = key
        self._postgres = db.is_postgres(database_url)
        self._conn: Any = None  # asyncpg.Connection, open while we hold or try the lock

    async def take(self) -> bool:
        """Try to take the lock now; True when this replica holds it."""
        if not self._postgres:
            return True
        import asyncpg

        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(asyncpg_dsn(self._url), timeout=10)
        return bool(await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self._key))

    async def still_held(self) -> None:
        """Raise when the lock's connection is gone (the lock went with it)."""
        if self._postgres:
            await self._conn.fetchval("SELECT 1", timeout=10)

    async def release(self) -> None:
        """Close the connection, which frees the lock."""
        conn, self._conn = self._conn, None
        if conn is None or conn.is_closed():
            return
        try:
            await asyncio.wait_for(conn.close(), 5)
        except Exception:  # closing a broken connection: just drop it
            conn.terminate()
