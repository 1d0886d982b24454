"""The outbox table's operations: enqueue inside a caller's transaction, claim, record results.

Writers call `enqueue` inside the same transaction as the state change that causes the message,
then `notify_committed()` after the commit, which wakes the dispatcher at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from steward.flows.state import Notice
from steward.gateway.messages import OutboundMessage
from steward.storage.db import create_once
from steward.storage.models import OptOut, OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

PRIORITY = {"reply": 0, "alert": 1, "nudge": 2, "digest": 3}
_listeners: list[Callable[[], None]] = []


def on_commit(listener: Callable[[], None]) -> Callable[[], None]:
    """Register a callback run after any transaction that enqueued messages."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener)


def notify_committed() -> None:
    """Tell listeners (the dispatcher) that new messages may be due."""
    for listener in list(_listeners):
        listener()


@dataclass(frozen=True)
class NewMessage:
    channel: str
    address: str
    body: str
    kind: str
    priority: int = 0
    dedupe_key: str | None = None
    volunteer_id: int | None = None
    in_reply_to_id: int | None = None
    despite_opt_out: bool = False
    not_before: datetime | None = None  # held until then (quiet hours)


def from_notice(notice: Notice, *, not_before: datetime | None = None) -> NewMessage:
    """An SMS to someone other than the sender; its place in the queue follows its kind."""
    return NewMessage(
        channel="sms",  # the Telegram issue will route leads' and the office's messages to groups
        address=notice.to.phone,
        body=notice.body,
        kind=notice.kind,
        priority=PRIORITY.get(notice.kind, PRIORITY["alert"]),
        dedupe_key=notice.dedupe_key,
        volunteer_id=notice.to.volunteer_id,
        not_before=not_before,
    )


async def enqueue(msg: NewMessage, now: datetime, conn: BaseDBAsyncClient) -> int | None:
    """Add a message to the outbox; None when skipped (opted out) or already queued (dedupe)."""
    if not msg.despite_opt_out and await OptOut.filter(address=msg.address).using_db(conn).exists():
        return None
    if (
        msg.dedupe_key
        and await OutboxMessage.filter(dedupe_key=msg.dedupe_key).using_db(conn).exists()
    ):
        return None
    row = await create_once(
        conn,
        lambda db: OutboxMessage.create(
            channel=msg.channel,
            address=msg.address,
            body=msg.body,
            kind=msg.kind,
            priority=msg.priority,
            dedupe_key=msg.dedupe_key,
            volunteer_id=msg.volunteer_id,
            in_reply_to_id=msg.in_reply_to_id,
            next_attempt_at=msg.not_before or now,
            created_at=now,
            using_db=db,
        ),
    )
    if row is None:
        return None  # a concurrent writer queued the same dedupe key
    return int(row.id)


async def claim_due(now: datetime, channels: Iterable[str], limit: int) -> list[OutboundMessage]:
    """Mark up to `limit` due messages as sending and return them, replies first.

    On PostgreSQL rows are picked with FOR UPDATE SKIP LOCKED so replicas never share one; the
    conditional update (status still queued) keeps SQLite, which drops that clause, just as safe.
    """
    wanted = list(channels)
    if not wanted:
        return []
    async with in_transaction() as conn:
        rows = (
            await OutboxMessage.filter(
                status=OutboxStatus.QUEUED, next_attempt_at__lte=now, channel__in=wanted
            )
            .order_by("priority", "id")
            .limit(limit)
            .select_for_update(skip_locked=True)
            .using_db(conn)
        )
        claimed = []
        for row in rows:
            updated = (
                await OutboxMessage.filter(id=row.id, status=OutboxStatus.QUEUED)
                .using_db(conn)
                .update(status=OutboxStatus.SENDING, claimed_at=now, updated_at=now)
            )
            if updated:
                claimed.append(OutboundMessage(row.channel, row.address, row.body, int(row.id)))
    return claimed


async def mark_sent(outbox_id: int, provider_id: str, attempts: int, now: datetime) -> None:
    """Record the provider's id; a status callback may already have moved the row further."""
    await OutboxMessage.filter(id=outbox_id, status=OutboxStatus.SENDING).update(
        status=OutboxStatus.SENT,
        provider_id=provider_id,
        attempts=attempts,
        sent_at=now,
        updated_at=now,
    )
    await OutboxMessage.filter(id=outbox_id, provider_id__isnull=True).update(
        provider_id=provider_id, sent_at=now
    )


async def mark_retry(
    outbox_id: int, attempts: int, error: str, code: str | None, at: datetime, now: datetime
) -> None:
    """Put a message back in the queue for a later attempt."""
    await OutboxMessage.filter(id=outbox_id).update(
        status=OutboxStatus.QUEUED,
        attempts=attempts,
        next_attempt_at=at,
        error_text=error[:500],
        error_code=code,
        claimed_at=None,
        updated_at=now,
    )


async def mark_failed(
    outbox_id: int, attempts: int, error: str, code: str | None, now: datetime
) -> None:
    """Give up on a message for good."""
    await OutboxMessage.filter(id=outbox_id).update(
        status=OutboxStatus.FAILED,
        attempts=attempts,
        error_text=error[:500],
        error_code=code,
        updated_at=now,
    )


async def attempts_so_far(outbox_id: int) -> int:
    row = await OutboxMessage.get(id=outbox_id)
    return int(row.attempts)


async def release_stale_claims(older_than: datetime) -> int:
    """Requeue messages a dead dispatcher claimed but never finished."""
    return int(
        await OutboxMessage.filter(status=OutboxStatus.SENDING, claimed_at__lt=older_than).update(
            status=OutboxStatus.QUEUED, claimed_at=None
        )
    )


async def next_due_at(channels: Iterable[str]) -> datetime | None:
    """When the next queued message becomes due, if any."""
    row = (
        await OutboxMessage.filter(status=OutboxStatus.QUEUED, channel__in=list(channels))
        .order_by("next_attempt_at")
        .first()
    )
    return row.next_attempt_at if row else None


async def record_opt_out(address: str, now: datetime) -> None:
    """Remember that the provider says this address has unsubscribed."""
    await OptOut.get_or_create(address=address, defaults={"created_at": now})


async def apply_status(
    provider_id: str,
    new_status: str,
    error_code: str | None,
    is_forward: Callable[[str, str], bool],
    now: datetime,
) -> bool:
    """Move a message forward on a provider status callback; never backwards."""
    async with in_transaction() as conn:
        row = (
            await OutboxMessage.filter(provider_id=provider_id)
            .select_for_update()
            .using_db(conn)
            .first()
        )
        if row is None or not is_forward(str(row.status), new_status):
            return False
        row.status = OutboxStatus(new_status)
        if error_code:
            row.error_code = error_code
        row.updated_at = now
        await row.save(using_db=conn, update_fields=["status", "error_code", "updated_at"])
    return True


def backoff(attempts: int, retry_after: float | None) -> timedelta:
    """Wait before the next attempt: the provider's word, else 2, 4, 8 ... seconds, capped."""
    if retry_after is not None and retry_after > 0:
        return timedelta(seconds=min(retry_after, 3600))
    return timedelta(seconds=min(2**attempts, 900))
