"""The outbox table's operations: enqueue inside a caller's transaction, claim, record results.

Writers call `enqueue` inside the same transaction as the state change that causes the message
(a `UnitOfWork` transaction on the OUTBOX topic, whose commit wakes the dispatcher at once).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from steward.flows.groups import card_keyboard, mask_phones
from steward.flows.state import Contact, Notice
from steward.gateway.messages import OutboundMessage
from steward.storage import chats_store, sql
from steward.storage.models import (
    OptOut,
    OutboxMessage,
    OutboxStatus,
    Role,
    Volunteer,
    is_forward,
)
from steward.storage.report_store import contact, people

log = logging.getLogger(__name__)

PRIORITY = {"reply": 0, "alert": 1, "nudge": 2, "digest": 3}


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
    keyboard: str | None = None
    edit_message_id: int | None = None  # Telegram: replace this message of ours instead
    attachment: str | None = None  # Telegram: a picture (file path) with the body as caption


def telegram_address(chat_id: int) -> str:
    return f"telegram:{chat_id}"


def from_notice(notice: Notice, *, not_before: datetime | None = None) -> NewMessage:
    """A message to someone other than the sender, by Telegram once they linked it, else SMS;
    its place in the queue follows its kind."""
    chat = notice.to.telegram_chat_id
    return NewMessage(
        channel="telegram" if chat is not None else "sms",
        address=telegram_address(chat) if chat is not None else notice.to.phone,
        body=notice.body,
        kind=notice.kind,
        priority=PRIORITY.get(notice.kind, PRIORITY["alert"]),
        dedupe_key=notice.dedupe_key,
        volunteer_id=notice.to.volunteer_id,
        not_before=not_before,
    )


# One statement per queued message: skipped for an address that said STOP (unless the message
# is the STOP confirmation itself), and left out when its dedupe key is queued already (the
# unique key decides, also against a concurrent writer, without aborting its transaction).
_ENQUEUE = """
    INSERT INTO outbox (channel, address, body, kind, priority, dedupe_key, status, attempts,
                        next_attempt_at, created_at, volunteer_id, in_reply_to_id, keyboard,
                        edit_message_id, attachment)
    SELECT ?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?, ?, ?, ?
    WHERE ? OR NOT EXISTS (SELECT 1 FROM opt_outs WHERE address = ?)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id
"""


async def enqueue(msg: NewMessage, now: datetime, conn: BaseDBAsyncClient) -> int | None:
    """Add a message to the outbox; None when skipped (opted out) or already queued (dedupe)."""
    rows = await sql.returning(
        conn,
        _ENQUEUE,
        [
            msg.channel,
            msg.address,
            msg.body,
            msg.kind,
            msg.priority,
            msg.dedupe_key,
            msg.not_before or now,
            now,
            msg.volunteer_id,
            msg.in_reply_to_id,
            msg.keyboard,
            msg.edit_message_id,
            msg.attachment,
            msg.despite_opt_out,
            msg.address,
        ],
    )
    return int(rows[0]["id"]) if rows else None


async def enqueue_notices(
    notices: Iterable[Notice],
    now: datetime,
    conn: BaseDBAsyncClient,
    *,
    not_before: datetime | None = None,
) -> int:
    """Queue notices, each to its person, except that what is meant for leads or the office
    goes to their bound Telegram group instead (one message there, however many leads);
    return how many were queued."""
    return len(await enqueue_routed(list(notices), now, conn, not_before=not_before))


async def enqueue_routed(
    notices: list[Notice],
    now: datetime,
    conn: BaseDBAsyncClient,
    *,
    not_before: datetime | None = None,
) -> list[Notice]:
    """As `enqueue_notices`, returning the notices whose message was queued now."""
    queued = []
    for notice, msg in await routed(notices, conn, not_before=not_before):
        if await enqueue(msg, now, conn) is not None:
            queued.append(notice)
    return queued


async def routed(
    notices: list[Notice], conn: BaseDBAsyncClient, *, not_before: datetime | None = None
) -> list[tuple[Notice, NewMessage]]:
    """The messages for `notices`: by Telegram or SMS to each person, or once to the group
    that now takes their alerts (phones masked there; a new report's alert becomes a card)."""
    groups = await chats_store.groups_for((n.to.volunteer_id for n in notices), conn)
    messages: list[tuple[Notice, NewMessage]] = []
    seen: set[tuple[int, str]] = set()
    for notice in notices:
        chat = groups.get(notice.to.volunteer_id)
        if chat is None:
            messages.append((notice, from_notice(notice, not_before=not_before)))
            continue
        body = mask_phones(notice.group_body or notice.body)
        if (chat, body) in seen:
            continue  # the same alert to a second lead: the group has it already
        seen.add((chat, body))
        messages.append(
            (
                notice,
                NewMessage(
                    channel="telegram",
                    address=telegram_address(chat),
                    body=body,
                    kind=notice.kind,
                    priority=PRIORITY.get(notice.kind, PRIORITY["alert"]),
                    dedupe_key=_group_key(notice, chat),
                    not_before=not_before,
                    keyboard=card_keyboard(notice.card, notice.to.language)
                    if notice.card
                    else None,
                ),
            )
        )
    return messages


def _group_key(notice: Notice, chat: int) -> str | None:
    """A lead's copy of an alert is keyed by the lead ("report_alert:12:7"); the group's copy
    by the group, so that every lead's copy is the same one message."""
    key = notice.dedupe_key
    if key is None:
        return None
    person = f":{notice.to.volunteer_id}"
    if key.endswith(person):
        key = key[: -len(person)]
    return f"{key}:group{chat}"


async def find_card(
    address: str, report_number: int, conn: BaseDBAsyncClient
) -> tuple[int, str] | None:
    """The Telegram message id and text of the card we sent a group for a report, if sent."""
    rows = await (
        OutboxMessage.filter(
            address=address,
            keyboard__startswith=f"card:{report_number}:",
            provider_id__isnull=False,
            edit_message_id__isnull=True,
        )
        .using_db(conn)
        .order_by("-id")
        .limit(1)
    )
    if not rows or rows[0].provider_id is None:
        return None
    # "tg:<chat>:<message id>" (see gateway.telegram.TelegramSender)
    return int(rows[0].provider_id.rsplit(":", 1)[1]), rows[0].body


_BATCH_COLUMNS = (
    ("channel", "text"),
    ("address", "text"),
    ("body", "text"),
    ("kind", "text"),
    ("priority", "integer"),
    ("dedupe_key", "text"),
    ("next_attempt_at", "timestamptz"),
    ("volunteer_id", "integer"),
    ("in_reply_to_id", "bigint"),
    ("keyboard", "text"),
    ("despite_opt_out", "boolean"),
)


def _enqueue_batch_sql(conn: BaseDBAsyncClient) -> str:
    # _ENQUEUE for many rows in one statement: the same opt-out rule and unique dedupe key.
    return f"""
        INSERT INTO outbox (channel, address, body, kind, priority, dedupe_key, status, attempts,
                            next_attempt_at, created_at, volunteer_id, in_reply_to_id, keyboard)
        SELECT r.channel, r.address, r.body, r.kind, r.priority, r.dedupe_key, 'queued', 0,
               r.next_attempt_at, ?, r.volunteer_id, r.in_reply_to_id, r.keyboard
        FROM {sql.json_table(conn, _BATCH_COLUMNS)}
        WHERE r.despite_opt_out OR NOT EXISTS (SELECT 1 FROM opt_outs WHERE address = r.address)
        ORDER BY r.ord
        ON CONFLICT (dedupe_key) DO NOTHING
        RETURNING id, dedupe_key
    """


async def enqueue_many(
    messages: Sequence[NewMessage], now: datetime, conn: BaseDBAsyncClient
) -> list[int | None]:
    """`enqueue` for a batch in one statement, in order; the id of each message, or None.

    Every message needs a dedupe key (that is how a row written is told from one skipped); a
    key repeated within the batch is queued once, for its first message.
    """
    if not messages:
        return []
    first: dict[str, int] = {}
    for i, msg in enumerate(messages):
        if msg.dedupe_key is None:
            raise ValueError("enqueue_many needs a dedupe key on every message")
        first.setdefault(msg.dedupe_key, i)
    batch = [messages[i] for i in sorted(first.values())]
    rows = [
        {
            "channel": m.channel,
            "address": m.address,
            "body": m.body,
            "kind": m.kind,
            "priority": m.priority,
            "dedupe_key": m.dedupe_key,
            "next_attempt_at": m.not_before or now,
            "volunteer_id": m.volunteer_id,
            "in_reply_to_id": m.in_reply_to_id,
            "keyboard": m.keyboard,
            "despite_opt_out": m.despite_opt_out,
        }
        for m in batch
    ]
    written = await sql.returning(conn, _enqueue_batch_sql(conn), [now, sql.as_json(rows)])
    ids = {str(row["dedupe_key"]): int(row["id"]) for row in written}
    return [
        ids.get(str(m.dedupe_key)) if first[str(m.dedupe_key)] == i else None
        for i, m in enumerate(messages)
    ]


@dataclass(frozen=True)
class Claimed:
    """A message claimed for sending, with the attempts it has had so far.

    `unconfirmed_since`: an earlier attempt may have reached the provider without our learning
    it (a process died mid-send, or the answer timed out); the message cannot have gone before
    this moment (its row's creation). Ask the provider before sending it again.
    """

    message: OutboundMessage
    attempts: int
    unconfirmed_since: datetime | None = None


@dataclass(frozen=True)
class SendOutcome:
    """What became of one send: sent (with the provider's id), to retry at a time, or failed."""

    outbox_id: int
    attempts: int
    provider_id: str | None = None
    retry_at: datetime | None = None
    error: str = ""
    code: str | None = None
    unsubscribed: bool = False  # the provider says the person opted out: record it
    unreachable: bool = False  # the address is gone for good: use the person's other channel
    unconfirmed: bool = False  # to retry, but this attempt may have reached the provider

    @property
    def sent(self) -> bool:
        return self.provider_id is not None


# What a claim returns of a row; `was_claimed` is its claimed_at before this claim.
_CLAIMED_COLUMNS = (
    "id, channel, address, body, keyboard, edit_message_id, attachment, attempts, priority, "
    "created_at"
)

# PostgreSQL: pick and mark in one statement; SKIP LOCKED keeps replicas off each other's rows.
_CLAIM_POSTGRES = f"""
    WITH picked AS (
        SELECT id AS picked_id, claimed_at AS was_claimed FROM outbox
        WHERE status = 'queued' AND channel = ? AND next_attempt_at <= ?
        ORDER BY priority, id
        LIMIT ?
        FOR UPDATE SKIP LOCKED
    )
    UPDATE outbox SET status = 'sending', claimed_at = ?, updated_at = ?
    FROM picked WHERE outbox.id = picked.picked_id
    RETURNING {", ".join(f"outbox.{c.strip()}" for c in _CLAIMED_COLUMNS.split(","))},
              picked.was_claimed
"""

# SQLite (one writer, no SKIP LOCKED, and RETURNING sees only new values): read, then mark
# what is still queued; no transaction needed, as the mark's condition decides.
_DUE_SQLITE = f"""
    SELECT {_CLAIMED_COLUMNS}, claimed_at AS was_claimed FROM outbox
    WHERE status = 'queued' AND channel = ? AND next_attempt_at <= ?
    ORDER BY priority, id
    LIMIT ?
"""
_TAKE_SQLITE = """
    UPDATE outbox SET status = 'sending', claimed_at = ?, updated_at = ?
    WHERE status = 'queued' AND id IN (SELECT value FROM json_each(?))
    RETURNING id
"""


async def claim_due(now: datetime, channel: str, limit: int) -> list[Claimed]:
    """Mark up to `limit` due messages of one channel as sending and return them, replies first.

    A queued row that still has a `claimed_at` had an attempt whose outcome we never learned.
    """
    conn = connections.get("default")
    if conn.capabilities.dialect == "postgres":
        rows = await sql.returning(conn, _CLAIM_POSTGRES, [channel, now, limit, now, now])
    else:
        due = await sql.rows(conn, _DUE_SQLITE, [channel, now, limit])
        if not due:
            return []
        ids = json.dumps([int(r["id"]) for r in due])
        taken = {int(r["id"]) for r in await sql.returning(conn, _TAKE_SQLITE, [now, now, ids])}
        rows = [r for r in due if int(r["id"]) in taken]
    rows = sorted(rows, key=lambda r: (int(r["priority"]), int(r["id"])))
    return [
        Claimed(
            OutboundMessage(
                str(r["channel"]),
                str(r["address"]),
                str(r["body"]),
                int(r["id"]),
                r["keyboard"],
                None if r["edit_message_id"] is None else int(r["edit_message_id"]),
                r["attachment"],
            ),
            int(r["attempts"]),
            sql.as_datetime(r["created_at"]) if r["was_claimed"] is not None else None,
        )
        for r in rows
    ]


# A status callback may already have moved a row on (delivered): never move it back. One
# statement for all the sent messages of a batch.
_SENT_COLUMNS = (("oid", "bigint"), ("sid", "text"), ("tries", "integer"))


def _mark_sent_sql(conn: BaseDBAsyncClient) -> str:
    return f"""
        UPDATE outbox SET
            status = CASE WHEN outbox.status = 'sending' THEN 'sent' ELSE outbox.status END,
            provider_id = COALESCE(outbox.provider_id, r.sid),
            attempts = r.tries, sent_at = COALESCE(outbox.sent_at, ?), updated_at = ?,
            claimed_at = NULL
        FROM {sql.json_table(conn, _SENT_COLUMNS)}
        WHERE outbox.id = r.oid
    """


async def record(outcomes: Sequence[SendOutcome], addresses: Sequence[str], now: datetime) -> None:
    """Record a batch of send results (and any opt-outs they reveal), all or nothing."""
    sent = [
        {"oid": o.outbox_id, "sid": o.provider_id, "tries": o.attempts} for o in outcomes if o.sent
    ]
    others = [(o, a) for o, a in zip(outcomes, addresses, strict=True) if not o.sent]
    if not others:  # the usual round: one statement, atomic on its own
        if sent:
            conn = connections.get("default")
            await sql.execute(conn, _mark_sent_sql(conn), [now, now, sql.as_json(sent)])
        return
    async with in_transaction() as conn:
        if sent:
            await sql.execute(conn, _mark_sent_sql(conn), [now, now, sql.as_json(sent)])
        for o, address in others:
            if o.unsubscribed and not await OptOut.filter(address=address).using_db(conn).exists():
                await OptOut.create(address=address, created_at=now, using_db=conn)
            retry = o.retry_at is not None
            await (
                OutboxMessage.filter(id=o.outbox_id)
                .using_db(conn)
                .update(
                    status=OutboxStatus.QUEUED if retry else OutboxStatus.FAILED,
                    attempts=o.attempts,
                    next_attempt_at=o.retry_at if retry else now,
                    error_text=o.error[:500],
                    error_code=o.code,
                    # Kept on a retry that may have gone: the next claim asks first.
                    claimed_at=now if retry and o.unconfirmed else None,
                    updated_at=now,
                )
            )
            if o.unreachable:
                await _fall_back(o.outbox_id, now, conn)


async def _fall_back(outbox_id: int, now: datetime, conn: BaseDBAsyncClient) -> None:
    """A Telegram chat that blocked us or is gone: unlink it, and send this message by SMS.

    The failed Telegram row stays as the record of the first attempt; the SMS is a new row
    naming it in its dedupe key, so a second failure report can never send it twice.
    """
    row = await OutboxMessage.filter(id=outbox_id).using_db(conn).get()
    if row.channel != "telegram" or row.volunteer_id is None:
        return
    person = await Volunteer.filter(id=row.volunteer_id).using_db(conn).first()
    if person is None:
        return
    await (
        Volunteer.filter(id=person.id, telegram_chat_id=int(row.address.split(":", 1)[1]))
        .using_db(conn)
        .update(telegram_chat_id=None)
    )
    fallback = NewMessage(
        channel="sms",
        address=person.phone,
        body=row.body,
        kind=row.kind,
        priority=row.priority,
        dedupe_key=f"fallback:{row.id}",
        volunteer_id=person.id,
    )
    await enqueue(fallback, now, conn)


async def release_stale_claims(older_than: datetime) -> int:
    """Requeue messages a dead dispatcher claimed but never finished.

    Their `claimed_at` stays: the send may have reached the provider just before the death, so
    the next claim asks the provider first (see `Claimed.unconfirmed_since`).
    """
    return int(
        await OutboxMessage.filter(status=OutboxStatus.SENDING, claimed_at__lt=older_than).update(
            status=OutboxStatus.QUEUED
        )
    )


async def known_provider_ids(ids: Sequence[str]) -> set[str]:
    """Those of `ids` some outbox row holds already (a provider's message is one row's only)."""
    if not ids:
        return set()
    rows = await OutboxMessage.filter(provider_id__in=list(ids)).values_list(
        "provider_id", flat=True
    )
    return {str(r) for r in rows}


async def next_due_at(channels: Iterable[str]) -> datetime | None:
    """When the next queued message becomes due, if any."""
    row = (
        await OutboxMessage.filter(status=OutboxStatus.QUEUED, channel__in=list(channels))
        .order_by("next_attempt_at")
        .first()
    )
    return row.next_attempt_at if row else None


@dataclass(frozen=True)
class Moved:
    """A message a status callback moved on, with whom it was for (a volunteer, if any)."""

    outbox_id: int
    channel: str
    status: str
    body: str
    kind: str
    person: Contact | None
    leads: tuple[Contact, ...]


async def apply_status(
    provider_id: str,
    new_status: str,
    error_code: str | None,
    now: datetime,
    conn: BaseDBAsyncClient,
) -> Moved | None:
    """Move a message forward on a provider status callback (never backwards); None if not."""
    row = (
        await OutboxMessage.filter(provider_id=provider_id)
        .select_for_update()
        .using_db(conn)
        .first()
    )
    if row is None or not is_forward(str(row.status), new_status):
        return None
    row.status = OutboxStatus(new_status)
    if error_code:
        row.error_code = error_code
    row.updated_at = now
    await row.save(using_db=conn, update_fields=["status", "error_code", "updated_at"])
    person = None
    leads: tuple[Contact, ...] = ()
    if row.volunteer_id is not None:
        vol = await Volunteer.filter(id=row.volunteer_id).using_db(conn).first()
        if vol is not None:
            person = contact(vol)
            leads = await people(Role.LEAD, conn, community_id=vol.community_id)
    return Moved(int(row.id), row.channel, new_status, row.body, row.kind, person, leads)


async def recent(status: str | None, limit: int) -> list[OutboxMessage]:
    """The latest outbox rows, newest first (optionally of one status)."""
    query = OutboxMessage.all()
    if status:
        query = query.filter(status=status)
    return await query.order_by("-id").limit(limit)


async def depth_by_status() -> dict[str, int]:
    """How many outbox rows stand in each status (for the operator's gauge)."""
    counts = {str(status): 0 for status in OutboxStatus}
    rows = (
        await OutboxMessage.all()
        .group_by("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    for status, n in rows:
        counts[str(status)] = int(n)
    return counts


def backoff(attempts: int, retry_after: float | None) -> timedelta:
    """Wait before the next attempt: the provider's word, else 2, 4, 8 ... seconds, capped."""
    if retry_after is not None and retry_after > 0:
        return timedelta(seconds=min(retry_after, 3600))
    return timedelta(seconds=min(2**attempts, 900))
