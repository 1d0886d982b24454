"""Inbound messages: store with dedupe, load what the flows need, apply what they decided."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from steward.clock import local_date
from steward.flows import grammar
from steward.flows.state import (
    AttachMedia,
    AwardPoints,
    ClearConversation,
    CloseSession,
    ConfirmSession,
    ConfirmTarget,
    Contact,
    ConversationStep,
    CreateReport,
    Effect,
    InboxContext,
    LeaveTarget,
    MoveReport,
    OpenSession,
    Outcome,
    PatrolDay,
    PointsSummary,
    SenderHistory,
    SessionState,
    SetConversation,
    SetLeave,
    SetOptOut,
    UndoCheckIn,
    UndoCheckOut,
    VolunteerState,
)
from steward.gateway.messages import InboundMessage as Inbound
from steward.storage import leads_store, report_store
from steward.storage.db import create_once
from steward.storage.models import (
    ConversationState,
    HoursEntry,
    InboundMessage,
    OptOut,
    OutboxMessage,
    PatrolSession,
    PointsEntry,
    Volunteer,
    VolunteerStatus,
)
from steward.storage.outbox_store import PRIORITY, NewMessage, enqueue, from_notice

LOOP_WINDOW = timedelta(minutes=2)
COURTESY_WINDOW = timedelta(hours=24)
COURTESY_KINDS = ("not_registered", "removed")


async def store_inbound(msg: Inbound) -> tuple[int, bool]:
    """Store a received message once; return (row id, whether it is new)."""
    existing = await InboundMessage.filter(channel=msg.channel, external_id=msg.external_id).first()
    if existing is not None:
        return int(existing.id), False
    try:
        row = await InboundMessage.create(
            channel=msg.channel,
            external_id=msg.external_id,
            address=msg.address,
            text=msg.text,
            media=[{"url": m.url, "content_type": m.content_type} for m in msg.media],
            received_at=msg.received_at,
        )
    except IntegrityError:
        # A concurrent redelivery won the race; the unique key decided.
        row = await InboundMessage.get(channel=msg.channel, external_id=msg.external_id)
        return int(row.id), False
    return int(row.id), True


async def unprocessed_ids() -> list[int]:
    """Messages stored but never processed (the service stopped in between)."""
    rows = (
        await InboundMessage.filter(processed_at__isnull=True)
        .order_by("id")
        .values_list("id", flat=True)
    )
    return [int(cast(int, r)) for r in rows]


async def lock_unprocessed(inbound_id: int, conn: BaseDBAsyncClient) -> InboundMessage | None:
    """Lock a stored message for processing; None when it is already done."""
    row = await InboundMessage.filter(id=inbound_id).select_for_update().using_db(conn).first()
    if row is None or row.processed_at is not None:
        return None
    return row


async def find_volunteer(address: str, conn: BaseDBAsyncClient) -> Volunteer | None:
    """The volunteer behind an address, row-locked so one person's texts apply in order."""
    query = Volunteer.filter(phone=address)
    if address.startswith("telegram:"):
        query = Volunteer.filter(telegram_chat_id=int(address.split(":", 1)[1]))
    return await query.select_for_update().using_db(conn).first()


async def load_context(
    row: InboundMessage, vol: Volunteer | None, tz: ZoneInfo, conn: BaseDBAsyncClient
) -> InboxContext:
    """Gather everything `flows.inbox.decide` needs for this message."""
    now = row.received_at
    opted_out = await OptOut.filter(address=row.address).using_db(conn).exists()
    history = await _history(row, conn)
    if vol is None:
        return InboxContext(row.channel, row.address, row.text, now, None, opted_out, history)
    state = await _volunteer_state(vol, conn)
    conversation = await _conversation(vol.id, conn)
    media = tuple((str(m.get("url", "")), str(m.get("content_type", ""))) for m in row.media)
    target, wants_number = _report_hints(row.text, conversation, bool(media))
    parsed = grammar.parse(row.text)
    confirm_target = leave_target = None
    if parsed.intent == "confirm_session" and parsed.name and state.role in ("lead", "office"):
        confirm_target = await _confirm_target(state, parsed.name, conn)
    if parsed.intent == "leave" and parsed.name and state.role in ("lead", "office"):
        leave_target = await _leave_target(state, parsed.name, conn)
    today = None
    if parsed.intent == "today":
        today = await leads_store.today_scope(state, local_date(now, tz), conn)
    return InboxContext(
        row.channel,
        row.address,
        row.text,
        now,
        state,
        opted_out,
        history,
        conversation=conversation,
        patrol=await _patrol_day(vol.id, local_date(now, tz), conn),
        points=await points_summary(vol, local_date(now, tz), conn),
        media=media,
        reports=await report_store.load_reports_context(vol, now, target, wants_number, conn),
        confirm_target=confirm_target,
        partner=await _partner(vol.id, vol.pair_id, conn),
        leave_target=leave_target,
        today=today,
    )


async def _partner(
    volunteer_id: int, pair_id: int | None, conn: BaseDBAsyncClient
) -> Contact | None:
    if pair_id is None:
        return None
    mate = (
        await Volunteer.filter(pair_id=pair_id)
        .exclude(id=volunteer_id)
        .exclude(status="removed")
        .using_db(conn)
        .first()
    )
    return _contact(mate) if mate else None


def _contact(vol: Volunteer) -> Contact:
    return Contact(int(vol.id), vol.name, vol.phone, vol.language)


async def _named_in_scope(
    actor: VolunteerState, name: str, conn: BaseDBAsyncClient
) -> Volunteer | None:
    """The one volunteer of that name a lead (community) or office (street) may act for."""
    scope = (
        {"street_id": actor.street_id}
        if actor.role == "office"
        else {"community_id": actor.community_id}
    )
    people = await Volunteer.filter(**scope).exclude(status="removed").using_db(conn)
    wanted = name.strip().casefold()
    matches = [p for p in people if p.name.strip().casefold() == wanted]
    return matches[0] if len(matches) == 1 else None  # unknown or ambiguous: ask again


async def _leave_target(
    actor: VolunteerState, name: str, conn: BaseDBAsyncClient
) -> LeaveTarget | None:
    person = await _named_in_scope(actor, name, conn)
    if person is None:
        return None
    return LeaveTarget(_contact(person), await _partner(person.id, person.pair_id, conn))


async def _confirm_target(
    actor: VolunteerState, name: str, conn: BaseDBAsyncClient
) -> ConfirmTarget | None:
    """The named volunteer's latest unconfirmed automatic close, within the actor's reach."""
    person = await _named_in_scope(actor, name, conn)
    if person is None:
        return None
    session = (
        await PatrolSession.filter(volunteer_id=person.id, closed_by="auto", confirmed=False)
        .using_db(conn)
        .order_by("-started_at")
        .first()
    )
    if session is None:
        return None
    day = await _patrol_day(person.id, session.local_date, conn, of_day=session.local_date)
    return ConfirmTarget(_contact(person), _session_state(session), day)


def _report_hints(
    text: str, conversation: ConversationStep | None, has_media: bool
) -> tuple[int | None, bool]:
    """Which report the text names, and whether it may file a new one (then reserve a number)."""
    parsed = grammar.parse(text)
    in_report_step = conversation is not None and conversation.step.startswith("report_")
    return parsed.report, parsed.intent == "report" or in_report_step or has_media


async def _history(row: InboundMessage, conn: BaseDBAsyncClient) -> SenderHistory:
    since = row.received_at - LOOP_WINDOW
    recent = await InboundMessage.filter(
        address=row.address, received_at__gte=since, id__lt=row.id
    ).using_db(conn)
    normalised = grammar.normalise(row.text)
    same_answered = sum(m.replied and grammar.normalise(m.text) == normalised for m in recent)
    our_recent = {
        str(body).strip()
        for body in await OutboxMessage.filter(address=row.address, created_at__gte=since)
        .using_db(conn)
        .values_list("body", flat=True)
    }
    courtesy = (
        await OutboxMessage.filter(
            address=row.address,
            kind__in=COURTESY_KINDS,
            created_at__gte=row.received_at - COURTESY_WINDOW,
        )
        .using_db(conn)
        .exists()
    )
    return SenderHistory(
        same_text_answers=same_answered,
        messages_last_two_minutes=len(recent),
        echoes_our_reply=bool(row.text.strip()) and row.text.strip() in our_recent,
        echoed_recently=any(m.text.strip() in our_recent for m in recent if m.text.strip()),
        courtesy_reply_within_day=courtesy,
    )


async def _volunteer_state(vol: Volunteer, conn: BaseDBAsyncClient) -> VolunteerState:
    zone_name = ""
    if vol.pair_id is not None:
        await vol.fetch_related("pair__zone", using_db=conn)
        if vol.pair is not None and vol.pair.zone is not None:
            zone_name = vol.pair.zone.name
    return VolunteerState(
        id=vol.id,
        name=vol.name,
        phone=vol.phone,
        role=str(vol.role),
        language=vol.language,
        status=str(vol.status),
        street_id=vol.street_id,
        community_id=vol.community_id,
        pair_id=vol.pair_id,
        zone_name=zone_name,
        on_leave_until=vol.on_leave_until,
        on_leave_from=vol.on_leave_from,
    )


async def _conversation(volunteer_id: int, conn: BaseDBAsyncClient) -> ConversationStep | None:
    row = await ConversationState.filter(volunteer_id=volunteer_id).using_db(conn).first()
    if row is None:
        return None
    return ConversationStep(row.step, dict(row.data), row.expires_at)


def _session_state(row: PatrolSession) -> SessionState:
    return SessionState(
        id=int(row.id),
        local_date=row.local_date,
        started_at=row.started_at,
        ended_at=row.ended_at,
        minutes=row.minutes,
        closed_by=row.closed_by,
        confirmed=row.confirmed,
    )


async def _patrol_day(
    volunteer_id: int, today: date, conn: BaseDBAsyncClient, *, of_day: date | None = None
) -> PatrolDay:
    sessions = PatrolSession.filter(volunteer_id=volunteer_id)
    open_row = (
        await sessions.filter(ended_at__isnull=True).using_db(conn).order_by("-started_at").first()
    )
    last_closed = (
        await sessions.filter(closed_by="volunteer").using_db(conn).order_by("-ended_at").first()
    )
    day = open_row.local_date if open_row else (last_closed.local_date if last_closed else today)
    day = of_day or day
    minutes = (
        await sessions.filter(
            local_date=day,
            ended_at__isnull=False,
            confirmed=True,
            closed_by__in=["volunteer", "auto"],
        )
        .using_db(conn)
        .values_list("minutes", flat=True)
    )
    awards = (
        await PointsEntry.filter(volunteer_id=volunteer_id, local_date=day, kind="patrol_day")
        .using_db(conn)
        .values_list("amount", flat=True)
    )
    return PatrolDay(
        open_session=_session_state(open_row) if open_row else None,
        last_closed=_session_state(last_closed) if last_closed else None,
        closed_minutes_today=sum(int(cast(int, m) or 0) for m in minutes),
        day_award_given=sum(int(cast(int, a)) for a in awards) > 0,
        day_awards_so_far=len(awards),
    )


async def points_summary(vol: Volunteer, today: date, conn: BaseDBAsyncClient) -> PointsSummary:
    """Balance, this month's gain and rank among the street's active volunteers."""
    rows = await (
        PointsEntry.filter(volunteer__street_id=vol.street_id)
        .using_db(conn)
        .values_list("volunteer_id", "amount", "local_date")
    )
    totals: dict[int, int] = {}
    month = 0
    for volunteer_id, amount, day in rows:
        totals[volunteer_id] = totals.get(volunteer_id, 0) + int(amount)
        if volunteer_id == vol.id and day >= today.replace(day=1):
            month += int(amount)
    balance = totals.get(vol.id, 0)
    ranked = (
        await Volunteer.filter(street_id=vol.street_id, status__not="removed")
        .using_db(conn)
        .count()
    )
    above = sum(1 for vid, total in totals.items() if vid != vol.id and total > balance)
    return PointsSummary(balance, month, above + 1, max(ranked, 1))


async def apply_outcome(
    row: InboundMessage,
    vol: Volunteer | None,
    outcome: Outcome,
    now: datetime,
    conn: BaseDBAsyncClient,
) -> None:
    """Store the effects and the reply, and mark the message processed (caller's transaction)."""
    for effect in outcome.effects:
        await _apply(effect, row, vol, now, conn)
    for notice in outcome.notices:
        await enqueue(from_notice(notice), now, conn)
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
        )
        replied = await enqueue(msg, now, conn) is not None
    row.processed_at = now
    row.intent = outcome.intent
    row.replied = replied
    row.volunteer_id = vol.id if vol else None
    await row.save(
        using_db=conn, update_fields=["processed_at", "intent", "replied", "volunteer_id"]
    )


async def _apply(
    effect: Effect,
    row: InboundMessage,
    vol: Volunteer | None,
    now: datetime,
    conn: BaseDBAsyncClient,
) -> None:
    if isinstance(effect, SetOptOut):
        await _set_opt_out(row.address, effect.opted_out, now, conn)
        return
    assert vol is not None, "only a volunteer's message changes patrol state"
    if isinstance(effect, SetLeave):
        await _set_leave(effect, conn)
    elif isinstance(effect, ConfirmSession):
        await _confirm_session(effect, now, conn)
    elif isinstance(effect, CreateReport):
        await report_store.create_report(effect, vol, row.channel, int(row.id), now, conn)
    elif isinstance(effect, AttachMedia):
        await report_store.attach_media(effect, int(row.id), now, conn)
    elif isinstance(effect, MoveReport):
        await report_store.move_report(effect, vol.id, row.channel, now, conn)
    elif isinstance(effect, OpenSession):
        await PatrolSession.create(
            volunteer_id=vol.id,
            pair_id=vol.pair_id,
            local_date=effect.local_date,
            started_at=effect.started_at,
            using_db=conn,
        )
    elif isinstance(effect, CloseSession):
        await _close_session(vol, effect, now, conn)
    elif isinstance(effect, UndoCheckIn):
        await (
            PatrolSession.filter(id=effect.session_id)
            .using_db(conn)
            .update(ended_at=effect.at, minutes=0, closed_by="undone", confirmed=False)
        )
    elif isinstance(effect, UndoCheckOut):
        await _undo_check_out(vol, effect, now, conn)
    elif isinstance(effect, AwardPoints):
        await add_points(effect.volunteer_id or vol.id, effect, now, conn)
    elif isinstance(effect, SetConversation):
        await ConversationState.filter(volunteer_id=vol.id).using_db(conn).delete()
        await ConversationState.create(
            volunteer_id=vol.id,
            step=effect.step,
            data=effect.data,
            expires_at=effect.expires_at,
            using_db=conn,
        )
    elif isinstance(effect, ClearConversation):
        await ConversationState.filter(volunteer_id=vol.id).using_db(conn).delete()


async def _set_opt_out(
    address: str, opted_out: bool, now: datetime, conn: BaseDBAsyncClient
) -> None:
    if opted_out:
        if not await OptOut.filter(address=address).using_db(conn).exists():
            await OptOut.create(address=address, created_at=now, using_db=conn)
    else:
        await OptOut.filter(address=address).using_db(conn).delete()


async def _zone_name(vol: Volunteer, conn: BaseDBAsyncClient) -> str:
    if vol.pair_id is None:
        return ""
    await vol.fetch_related("pair__zone", using_db=conn)
    return vol.pair.zone.name if vol.pair is not None and vol.pair.zone is not None else ""


async def _close_session(
    vol: Volunteer, effect: CloseSession, now: datetime, conn: BaseDBAsyncClient
) -> None:
    await (
        PatrolSession.filter(id=effect.session_id)
        .using_db(conn)
        .update(
            ended_at=effect.ended_at,
            minutes=effect.minutes,
            closed_by=effect.closed_by,
            confirmed=effect.confirmed,
        )
    )
    await append_hours(
        vol, effect.session_id, effect.local_date, effect.minutes, effect.confirmed, "", now, conn
    )


async def _set_leave(effect: SetLeave, conn: BaseDBAsyncClient) -> None:
    person = await Volunteer.filter(id=effect.volunteer_id).using_db(conn).get()
    person.on_leave_until = effect.until
    person.on_leave_from = effect.start
    # Only an active volunteer's status follows leave; a flagged or removed one keeps theirs.
    if effect.in_force and person.status == VolunteerStatus.ACTIVE:
        person.status = VolunteerStatus.ON_LEAVE
    elif not effect.in_force and person.status == VolunteerStatus.ON_LEAVE:
        person.status = VolunteerStatus.ACTIVE
    fields = ["on_leave_until", "on_leave_from", "status", "updated_at"]
    await person.save(using_db=conn, update_fields=fields)


async def _confirm_session(effect: ConfirmSession, now: datetime, conn: BaseDBAsyncClient) -> None:
    confirmed = (
        await PatrolSession.filter(id=effect.session_id, confirmed=False)
        .using_db(conn)
        .update(confirmed=True)
    )
    if confirmed:
        session = await PatrolSession.filter(id=effect.session_id).using_db(conn).get()
        await session.fetch_related("volunteer", using_db=conn)
        await append_hours(
            session.volunteer,
            effect.session_id,
            effect.local_date,
            effect.minutes,
            True,
            "confirmed by a lead",
            now,
            conn,
        )


async def _undo_check_out(
    vol: Volunteer, effect: UndoCheckOut, now: datetime, conn: BaseDBAsyncClient
) -> None:
    await (
        PatrolSession.filter(id=effect.session_id)
        .using_db(conn)
        .update(ended_at=None, minutes=None, closed_by=None, confirmed=True)
    )
    # The ledger is append-only: a reversing entry cancels the hours of the undone check-out.
    await append_hours(
        vol, effect.session_id, effect.local_date, -effect.minutes, True, "undo", now, conn
    )


async def append_hours(
    vol: Volunteer,
    session_id: int,
    day: date,
    minutes: int,
    confirmed: bool,
    note: str,
    now: datetime,
    conn: BaseDBAsyncClient,
) -> None:
    """Add a line to the service-hours ledger (negative minutes reverse an earlier line)."""
    await HoursEntry.create(
        volunteer_id=vol.id,
        session_id=session_id,
        local_date=day,
        minutes=minutes,
        zone_name=await _zone_name(vol, conn),
        confirmed=confirmed,
        note=note,
        created_at=now,
        using_db=conn,
    )


async def add_points(
    volunteer_id: int, award: AwardPoints, now: datetime, conn: BaseDBAsyncClient
) -> bool:
    """Append a points entry once per dedupe key; False when it was already there."""
    if await PointsEntry.filter(dedupe_key=award.dedupe_key).using_db(conn).exists():
        return False
    report_id = None
    if award.report_number is not None:
        report_id = await report_store.report_id_of(award.report_number, conn)
    created = await create_once(
        conn,
        lambda db: PointsEntry.create(
            volunteer_id=volunteer_id,
            report_id=report_id,
            amount=award.amount,
            kind=award.kind,
            local_date=award.local_date,
            note=award.note,
            dedupe_key=award.dedupe_key,
            created_at=now,
            using_db=db,
        ),
    )
    return created is not None  # None: a concurrent run wrote the same key first
