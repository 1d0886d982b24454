"""Inbound rows: stored in groups before the provider is answered, then claimed for processing.

Lifecycle of a row: stored (processed_at NULL) -> processed (processed_at set, with its intent
and whether it was answered). A row whose processing raised keeps processed_at NULL, counts the
attempt, remembers the error and waits until `retry_at`; after MAX_ATTEMPTS it is closed as
`failed`, so one broken message can never hold up its sender's later texts for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from steward.gateway.messages import InboundMessage as Inbound
from steward.storage import sql
from steward.storage.models import InboundMessage
from steward.storage.unit import Topic, UnitOfWork

MAX_ATTEMPTS = 5
# The most rows one write takes: a flood waits its turn in slices rather than in one giant
# statement (SQLite allows 32,766 parameters; a row has 7).
MAX_GROUP = 500


_GROUP_COLUMNS = (
    ("channel", "text"),
    ("external_id", "text"),
    ("address", "text"),
    ("text", "text"),
    ("media", "jsonb"),
    ("received_at", "timestamptz"),
    ("details", "jsonb"),
)


def _insert_group_sql(conn: BaseDBAsyncClient) -> str:
    # One statement for the whole group, in arrival order (ids are the processing order). The
    # unique (channel, external_id) key skips what was stored before, also a concurrent
    # replica's row, and RETURNING names the rows that are new. (`WHERE true` keeps SQLite from
    # reading ON CONFLICT as part of the SELECT's join.)
    return f"""
        INSERT INTO inbound_messages (channel, external_id, address, text, media, received_at,
                                      details, replied, attempts)
        SELECT r.channel, r.external_id, r.address, r.text, r.media, r.received_at, r.details,
               ?, 0
        FROM {sql.json_table(conn, _GROUP_COLUMNS)}
        WHERE true
        ORDER BY r.ord
        ON CONFLICT (channel, external_id) DO NOTHING
        RETURNING channel, external_id
    """


def _as_row(msg: Inbound) -> dict[str, Any]:
    return {
        "channel": msg.channel,
        "external_id": msg.external_id,
        "address": msg.address,
        "text": msg.text,
        "media": [{"url": m.url, "content_type": m.content_type} for m in msg.media],
        "received_at": msg.received_at.astimezone(UTC),
        "details": _details(msg),
    }


def _details(msg: Inbound) -> dict[str, Any] | None:
    """What came with a Telegram update besides text and photos, as stored."""
    details: dict[str, Any] = {}
    if msg.contact_phone is not None:
        details["contact"] = {"phone": msg.contact_phone, "user_id": msg.contact_user_id}
    if msg.location is not None:
        details["location"] = list(msg.location)
    if msg.language_code:
        details["language_code"] = msg.language_code
    if msg.group is not None:
        details["group"] = asdict(msg.group)
    return details or None


async def insert_group(messages: Sequence[Inbound], conn: BaseDBAsyncClient) -> list[bool]:
    """Insert messages, skipping those stored before; return which ones were new."""
    fresh: dict[tuple[str, str], Inbound] = {}
    for m in messages:
        fresh.setdefault((m.channel, m.external_id), m)
    written = await sql.returning(
        conn,
        _insert_group_sql(conn),
        [False, sql.as_json([_as_row(m) for m in fresh.values()])],
    )
    stored = {(str(r["channel"]), str(r["external_id"])) for r in written}
    seen: set[tuple[str, str]] = set()
    new = []
    for m in messages:
        key = (m.channel, m.external_id)
        new.append(key in stored and key not in seen)
        seen.add(key)
    return new


async def store(msg: Inbound, units: UnitOfWork) -> bool:
    """Store one message in its own transaction; True when it was new."""
    async with units.transaction(Topic.INBOUND) as conn:
        [new] = await insert_group([msg], conn)
    return new


class InboundWriter:
    """Group commit: whatever arrives while one write is under way goes into the next.

    Each caller gets its answer once its row is durable (stored before acknowledged, SPEC §7);
    under load a single commit (one fsync on SQLite) serves many webhooks at once.
    """

    def __init__(self, units: UnitOfWork) -> None:
        self._units = units
        self._waiting: list[tuple[Inbound, asyncio.Future[bool]]] = []
        self._writing: asyncio.Task[None] | None = None
        self._stored = 0  # new rows written so far

    async def store(self, msg: Inbound) -> bool:
        """Store a message durably (with whatever else arrived); True when it was new."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((msg, future))
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write_all(), name="inbound-writer")
        # Shielded: a webhook whose client hung up must not cancel the others' write.
        return await asyncio.shield(future)

    async def _write_all(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
            try:
                async with self._units.transaction(Topic.INBOUND) as conn:
                    new = await insert_group([msg for msg, _ in group], conn)
            except Exception as exc:  # each waiting webhook answers 5xx; Twilio will retry
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self._stored += sum(new)
            for (_, future), is_new in zip(group, new, strict=True):
                if not future.done():
                    future.set_result(is_new)

    def stored(self) -> int:
        """How many new rows this writer has written (the processor keeps pace with it)."""
        return self._stored

    def busy(self) -> bool:
        """A write is waiting or under way: webhooks are waiting for their rows to be durable."""
        return bool(self._waiting) or (self._writing is not None and not self._writing.done())

    async def close(self) -> None:
        """Finish the write in progress (nothing accepted is left unwritten)."""
        if self._writing is not None:
            with contextlib.suppress(Exception):
                await self._writing


@dataclass(frozen=True)
class Due:
    """The rows claimed for one batch, and whether more may be waiting behind them."""

    rows: list[InboundMessage]
    more: bool  # the look-up was full: there may be rows beyond it


async def due(now: datetime, limit: int, conn: BaseDBAsyncClient) -> list[InboundMessage]:
    """Rows to process now, oldest first, claimed for this transaction (see `claim_batch`)."""
    return (await claim_batch(now, limit, conn)).rows


async def claim_batch(now: datetime, limit: int, conn: BaseDBAsyncClient) -> Due:
    """Rows to process now, oldest first, claimed for this transaction.

    A sender's texts apply in the order they came: a row is skipped while an earlier one of
    the same sender is waiting for a retry, or is held by another replica (PostgreSQL).
    """
    pending = (
        await InboundMessage.filter(processed_at__isnull=True)
        .order_by("id")
        .limit(limit)
        .using_db(conn)
    )
    if not pending:
        return Due([], False)
    locked = {int(row.id) for row in pending}
    if conn.capabilities.dialect == "postgres":  # SQLite has one writer: nothing to skip
        locked = {
            int(row.id)
            # Still unprocessed: another replica may have committed a row since we read it.
            for row in await InboundMessage.filter(id__in=list(locked), processed_at__isnull=True)
            .select_for_update(skip_locked=True)
            .using_db(conn)
        }
    blocked: set[str] = set()
    claimed = []
    for row in pending:
        waiting = row.retry_at is not None and row.retry_at > now
        if row.address in blocked or waiting or int(row.id) not in locked:
            blocked.add(row.address)
            continue
        claimed.append(row)
    return Due(claimed, len(pending) >= limit)


async def mark_processed(
    row: InboundMessage,
    intent: str,
    replied: bool,
    volunteer_id: int | None,
    now: datetime,
    conn: BaseDBAsyncClient,
) -> None:
    row.processed_at = now
    row.intent = intent
    row.replied = replied
    row.volunteer_id = volunteer_id
    await row.save(
        using_db=conn, update_fields=["processed_at", "intent", "replied", "volunteer_id"]
    )


async def mark_error(
    row: InboundMessage, error: str, now: datetime, conn: BaseDBAsyncClient
) -> bool:
    """Record a failed attempt; True when it was the last one (the row is then closed)."""
    attempts = int(row.attempts) + 1
    last = attempts >= MAX_ATTEMPTS
    await (
        InboundMessage.filter(id=row.id)
        .using_db(conn)
        .update(
            attempts=attempts,
            last_error=error[:500],
            retry_at=now + retry_delay(attempts),
            processed_at=now if last else None,
            intent="failed" if last else None,
        )
    )
    return last


def retry_delay(attempts: int) -> timedelta:
    """5, 10, 20, 40 s ...: long enough for a database to come back, short for a person."""
    return timedelta(seconds=5 * 2 ** (attempts - 1))


async def next_retry_at() -> datetime | None:
    row = (
        await InboundMessage.filter(processed_at__isnull=True, retry_at__isnull=False)
        .order_by("retry_at")
        .first()
    )
    return row.retry_at if row else None
