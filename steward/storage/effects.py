"""Apply what the flows decided for one message: its effects, its notices and its reply.

Runs inside the caller's transaction (one savepoint per message), so the state change and every
message it causes commit together or not at all. Each effect type has one small applier.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from steward.flows.state import (
    AttachMedia,
    AwardPoints,
    ClearConversation,
    CloseSession,
    ConfirmSession,
    CreateReport,
    DiscardApplication,
    Effect,
    JoinFromApplication,
    LinkTelegram,
    MoveReport,
    OpenSession,
    Outcome,
    Resign,
    SaveApplication,
    SetConversation,
    SetLeave,
    SetOptOut,
    UndoCheckIn,
    UndoCheckOut,
)
from steward.storage import inbound, ledgers, recruitment_store, report_store
from steward.storage.context import zone_name
from steward.storage.models import (
    ConversationState,
    InboundMessage,
    OptOut,
    PatrolSession,
    Volunteer,
    VolunteerStatus,
)
from steward.storage.outbox_store import PRIORITY, NewMessage, enqueue, enqueue_notices


@dataclass(frozen=True)
class Applying:
    """One message's effects being stored: where they came from, who sent them, and when."""

    row: InboundMessage
    vol: Volunteer | None
    now: datetime
    conn: BaseDBAsyncClient

    @property
    def sender(self) -> Volunteer:
        assert self.vol is not None, "only a volunteer's message changes patrol state"
        return self.vol


async def apply_outcome(
    row: InboundMessage,
    vol: Volunteer | None,
    outcome: Outcome,
    now: datetime,
    conn: BaseDBAsyncClient,
) -> None:
    """Store the effects and the reply, and mark the message processed (caller's transaction)."""
    applying = Applying(row, vol, now, conn)
    for effect in outcome.effects:
        await APPLIERS[type(effect)](effect, applying)
    await enqueue_notices(outcome.notices, now, conn)
    replied = False
    if outcome.reply is not None:
        msg = NewMessage(
            channel=row.channel,
            address=row.address,
            body=outcome.reply.body,
            kind=outcome.reply.kind,
            priority=PRIORITY["reply"],
            volunteer_id=vol.id if vol else None,
            in_reply_to_id=int(row.id),
            despite_opt_out=outcome.reply.despite_opt_out,
            dedupe_key=f"reply:{row.id}",
            keyboard=outcome.reply.keyboard,
        )
        replied = await enqueue(msg, now, conn) is not None
    await inbound.mark_processed(row, outcome.intent, replied, vol.id if vol else None, now, conn)


async def _link_telegram(effect: LinkTelegram, a: Applying) -> None:
    # One chat belongs to one volunteer: whoever had it before (a re-registered phone) lets go.
    await (
        Volunteer.filter(telegram_chat_id=effect.chat_id)
        .exclude(id=effect.volunteer_id)
        .using_db(a.conn)
        .update(telegram_chat_id=None)
    )
    await (
        Volunteer.filter(id=effect.volunteer_id)
        .using_db(a.conn)
        .update(telegram_chat_id=effect.chat_id)
    )


async def _set_opt_out(effect: SetOptOut, a: Applying) -> None:
    if not effect.opted_out:
        await OptOut.filter(address=a.row.address).using_db(a.conn).delete()
    elif not await OptOut.filter(address=a.row.address).using_db(a.conn).exists():
        await OptOut.create(address=a.row.address, created_at=a.now, using_db=a.conn)


async def _set_leave(effect: SetLeave, a: Applying) -> None:
    person = await Volunteer.filter(id=effect.volunteer_id).using_db(a.conn).get()
    person.on_leave_until = effect.until
    person.on_leave_from = effect.start
    # Only an active volunteer's status follows leave; a flagged or removed one keeps theirs.
    if effect.in_force and person.status == VolunteerStatus.ACTIVE:
        person.status = VolunteerStatus.ON_LEAVE
    elif not effect.in_force and person.status == VolunteerStatus.ON_LEAVE:
        person.status = VolunteerStatus.ACTIVE
    fields = ["on_leave_until", "on_leave_from", "status", "updated_at"]
    await person.save(using_db=a.conn, update_fields=fields)


async def _confirm_session(effect: ConfirmSession, a: Applying) -> None:
    confirmed = (
        await PatrolSession.filter(id=effect.session_id, confirmed=False)
        .using_db(a.conn)
        .update(confirmed=True)
    )
    if not confirmed:
        return
    person = (
        await Volunteer.filter(id=effect.volunteer_id)
        .select_related("pair__zone")
        .using_db(a.conn)
        .get()
    )
    await ledgers.append_hours(
        person.id,
        effect.session_id,
        effect.local_date,
        effect.minutes,
        zone_name=zone_name(person),
        confirmed=True,
        note="confirmed by a lead",
        now=a.now,
        conn=a.conn,
    )


async def _create_report(effect: CreateReport, a: Applying) -> None:
    await report_store.create_report(effect, a.sender, a.row.channel, int(a.row.id), a.now, a.conn)


async def _attach_media(effect: AttachMedia, a: Applying) -> None:
    await report_store.attach_media(effect, int(a.row.id), a.now, a.conn)


async def _move_report(effect: MoveReport, a: Applying) -> None:
    await report_store.move_report(effect, a.sender.id, a.row.channel, a.now, a.conn)


async def _open_session(effect: OpenSession, a: Applying) -> None:
    await PatrolSession.create(
        volunteer_id=a.sender.id,
        pair_id=a.sender.pair_id,
        local_date=effect.local_date,
        started_at=effect.started_at,
        using_db=a.conn,
    )


async def _close_session(effect: CloseSession, a: Applying) -> None:
    await (
        PatrolSession.filter(id=effect.session_id)
        .using_db(a.conn)
        .update(
            ended_at=effect.ended_at,
            minutes=effect.minutes,
            closed_by=effect.closed_by,
            confirmed=effect.confirmed,
        )
    )
    await ledgers.append_hours(
        a.sender.id,
        effect.session_id,
        effect.local_date,
        effect.minutes,
        zone_name=zone_name(a.sender),
        confirmed=effect.confirmed,
        note="",
        now=a.now,
        conn=a.conn,
    )


async def _undo_check_in(effect: UndoCheckIn, a: Applying) -> None:
    await (
        PatrolSession.filter(id=effect.session_id)
        .using_db(a.conn)
        .update(ended_at=effect.at, minutes=0, closed_by="undone", confirmed=False)
    )


async def _undo_check_out(effect: UndoCheckOut, a: Applying) -> None:
    await (
        PatrolSession.filter(id=effect.session_id)
        .using_db(a.conn)
        .update(ended_at=None, minutes=None, closed_by=None, confirmed=True)
    )
    # The ledger is append-only: a reversing entry cancels the hours of the undone check-out.
    await ledgers.append_hours(
        a.sender.id,
        effect.session_id,
        effect.local_date,
        -effect.minutes,
        zone_name=zone_name(a.sender),
        confirmed=True,
        note="undo",
        now=a.now,
        conn=a.conn,
    )


async def _award_points(effect: AwardPoints, a: Applying) -> None:
    await ledgers.add_points(effect.volunteer_id or a.sender.id, effect, a.now, a.conn)


async def _set_conversation(effect: SetConversation, a: Applying) -> None:
    await ConversationState.filter(volunteer_id=a.sender.id).using_db(a.conn).delete()
    await ConversationState.create(
        volunteer_id=a.sender.id,
        step=effect.step,
        data=effect.data,
        expires_at=effect.expires_at,
        using_db=a.conn,
    )


async def _clear_conversation(effect: ClearConversation, a: Applying) -> None:
    await ConversationState.filter(volunteer_id=a.sender.id).using_db(a.conn).delete()


async def _save_application(effect: SaveApplication, a: Applying) -> None:
    await recruitment_store.save(
        effect.application_id, effect.changes, a.row.channel, a.row.address, a.conn
    )


async def _discard_application(effect: DiscardApplication, a: Applying) -> None:
    await recruitment_store.discard(effect.application_id, a.conn)


async def _join_from_application(effect: JoinFromApplication, a: Applying) -> None:
    await recruitment_store.join(effect.application_id, effect.joined_on, a.now, a.conn)


async def _resign(effect: Resign, a: Applying) -> None:
    await recruitment_store.resign(effect.volunteer_id, a.conn)


Applier = Callable[[Any, Applying], Awaitable[None]]
APPLIERS: dict[type[Effect], Applier] = {
    LinkTelegram: _link_telegram,
    SetOptOut: _set_opt_out,
    SetLeave: _set_leave,
    ConfirmSession: _confirm_session,
    CreateReport: _create_report,
    AttachMedia: _attach_media,
    MoveReport: _move_report,
    OpenSession: _open_session,
    CloseSession: _close_session,
    UndoCheckIn: _undo_check_in,
    UndoCheckOut: _undo_check_out,
    AwardPoints: _award_points,
    SetConversation: _set_conversation,
    ClearConversation: _clear_conversation,
    SaveApplication: _save_application,
    DiscardApplication: _discard_application,
    JoinFromApplication: _join_from_application,
    Resign: _resign,
}
