"""Load what `flows.inbox.decide` needs for one message, and only that (SPEC §3, issue 9).

The sender, their waiting step and their recent traffic are read for every text; the rest
follows `flows.inbox.needs`: a check-in reads the day's patrol, `积分` the points, a report the
report context, and so on.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, cast

import phonenumbers
from tortoise.backends.base.client import BaseDBAsyncClient

from steward.clock import local_date
from steward.flows import grammar
from steward.flows.inbox import Needs
from steward.flows.state import (
    ConfirmTarget,
    Contact,
    ConversationStep,
    InboxContext,
    LeaveTarget,
    PatrolDay,
    SenderHistory,
    SessionState,
    SharedContact,
    VolunteerState,
)
from steward.settings import Settings
from steward.storage import leads_store, ledgers, recruitment_store, report_store, sql
from steward.storage.models import (
    GONE,
    ConversationState,
    InboundMessage,
    OutboxMessage,
    PatrolSession,
    Volunteer,
)

LOOP_WINDOW = timedelta(minutes=2)
COURTESY_WINDOW = timedelta(hours=24)
COURTESY_KINDS = ("not_registered", "removed")


async def find_volunteer(address: str, conn: BaseDBAsyncClient) -> Volunteer | None:
    """The volunteer behind an address with their pair, zone and waiting step (one statement),
    row-locked so one person's texts apply one at a time, in order, whichever replica takes
    them."""
    query = Volunteer.filter(phone=address)
    if address.startswith("telegram:"):
        query = Volunteer.filter(telegram_chat_id=int(address.split(":", 1)[1]))
    return (
        await query.select_related("pair__zone", "conversation")
        .select_for_update(of=("volunteers",))
        .using_db(conn)
        .first()
    )


def conversation(vol: Volunteer) -> ConversationStep | None:
    """The step waiting for the volunteer's answer (loaded with them by `find_volunteer`)."""
    row: ConversationState | None = vol.conversation
    if row is None:
        return None
    return ConversationStep(row.step, dict(row.data), row.expires_at)


def volunteer_state(vol: Volunteer) -> VolunteerState:
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
        zone_name=zone_name(vol),
        on_leave_until=vol.on_leave_until,
        on_leave_from=vol.on_leave_from,
        telegram_chat_id=vol.telegram_chat_id,
    )


def zone_name(vol: Volunteer) -> str:
    """The lane of the volunteer's pair (loaded with them by `find_volunteer`)."""
    pair = vol.pair
    return pair.zone.name if pair is not None and pair.zone is not None else ""


async def load(
    row: InboundMessage,
    vol: Volunteer | None,
    step: ConversationStep | None,
    parsed: grammar.Parsed,
    needs: Needs,
    rules: Settings,
    conn: BaseDBAsyncClient,
) -> InboxContext:
    """Gather what deciding this message needs."""
    now = row.received_at
    history = await _history(row, conn, stranger=vol is None or vol.status in GONE)
    media = tuple((str(m.get("url", "")), str(m.get("content_type", ""))) for m in row.media)
    details = row.details or {}
    location = tuple(details["location"]) if "location" in details else None
    if vol is None:
        shared = _shared_contact(details, rules.DEFAULT_REGION)
        return InboxContext(
            row.channel,
            row.address,
            row.text,
            now,
            None,
            history,
            media=media,
            shared_contact=shared,
            contact_match=await _on_roster(shared.phone, conn) if shared else None,
            sender_language=details.get("language_code"),
            applicant=await recruitment_store.applicant_context(
                row.address, parsed.intent == "apply", conn
            ),
        )
    state = volunteer_state(vol)
    today = local_date(now, rules.tz)
    return InboxContext(
        row.channel,
        row.address,
        row.text,
        now,
        state,
        history,
        conversation=step,
        patrol=await patrol_day(vol.id, today, conn) if needs.patrol else None,
        points=(
            await ledgers.points_summary(vol.id, vol.street_id, today, conn)
            if needs.points
            else None
        ),
        media=media,
        reports=(
            await report_store.load_reports_context(
                vol, now, parsed.report, needs.report_number, conn
            )
            if needs.reports
            else None
        ),
        confirm_target=(
            await _confirm_target(state, parsed.name or "", conn)
            if needs.confirm_target and state.role in ("lead", "office")
            else None
        ),
        partner=await _partner(vol.id, vol.pair_id, conn) if needs.partner else None,
        leave_target=(
            await _leave_target(state, parsed.name or "", conn)
            if needs.leave_target and state.role in ("lead", "office")
            else None
        ),
        today=await leads_store.today_scope(state, today, conn) if needs.today else None,
        location=(float(location[0]), float(location[1])) if location else None,
        vacancy=await recruitment_store.vacancy_context(vol, conn) if needs.vacancy else None,
    )


def _shared_contact(details: dict[str, Any], region: str) -> SharedContact | None:
    card = details.get("contact")
    if not isinstance(card, dict):
        return None
    raw = str(card.get("phone") or "")
    user_id = card.get("user_id")
    return SharedContact(e164(raw, region) or raw, int(user_id) if user_id is not None else None)


def e164(raw: str, region: str) -> str | None:
    """A phone number as stored on the roster; Telegram sends it without the leading '+'."""
    text = raw.strip()
    candidates = [text] + ([f"+{text}"] if text.isdigit() else [])
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


async def _on_roster(phone: str, conn: BaseDBAsyncClient) -> Contact | None:
    """The volunteer serving under this phone number, if any (removed ones are not)."""
    vol = await Volunteer.filter(phone=phone).exclude(status__in=GONE).using_db(conn).first()
    return report_store.contact(vol) if vol else None


# The sender's texts and our messages to them over the loop window, in one statement.
_RECENT_TRAFFIC = """
    SELECT 'in' AS way, text, replied FROM inbound_messages
        WHERE address = ? AND received_at >= ? AND id < ?
    UNION ALL
    SELECT 'out' AS way, body AS text, ? AS replied FROM outbox
        WHERE address = ? AND created_at >= ?
"""


async def _history(
    row: InboundMessage, conn: BaseDBAsyncClient, *, stranger: bool
) -> SenderHistory:
    since = row.received_at - LOOP_WINDOW
    traffic = await sql.rows(
        conn, _RECENT_TRAFFIC, [row.address, since, row.id, False, row.address, since]
    )
    recent = [(str(t["text"]), bool(t["replied"])) for t in traffic if t["way"] == "in"]
    ours = {str(t["text"]).strip() for t in traffic if t["way"] == "out"}
    normalised = grammar.normalise(row.text)
    texts = [text.strip() for text, _ in recent]
    return SenderHistory(
        # A photo, a location or a contact card has no text: none of them is "the same text".
        same_text_answers=sum(
            bool(replied) and grammar.normalise(str(text)) == normalised for text, replied in recent
        )
        if normalised
        else 0,
        messages_last_two_minutes=len(recent),
        echoes_our_reply=bool(row.text.strip()) and row.text.strip() in ours,
        echoed_recently=any(text in ours for text in texts if text),
        # Only strangers and removed volunteers get the once-a-day courtesy reply.
        courtesy_reply_within_day=stranger and await _courtesy_sent(row, conn),
    )


async def _courtesy_sent(row: InboundMessage, conn: BaseDBAsyncClient) -> bool:
    return (
        await OutboxMessage.filter(
            address=row.address,
            kind__in=COURTESY_KINDS,
            created_at__gte=row.received_at - COURTESY_WINDOW,
        )
        .using_db(conn)
        .exists()
    )


def session_state(row: PatrolSession) -> SessionState:
    return SessionState(
        id=int(row.id),
        local_date=row.local_date,
        started_at=row.started_at,
        ended_at=row.ended_at,
        minutes=row.minutes,
        closed_by=row.closed_by,
        confirmed=row.confirmed,
    )


# A patrol day holds a handful of sessions; this many recent ones always cover the open one,
# the last check-out and the day's totals.
RECENT_SESSIONS = 12


# The recent sessions and the patrol-day awards of their days (and of `day`), one statement.
_PATROL_DAY = """
    WITH recent AS (
        SELECT id, local_date, started_at, ended_at, minutes, closed_by, confirmed
        FROM patrol_sessions
        WHERE volunteer_id = ? AND (ended_at IS NULL OR local_date >= ?)
        ORDER BY id DESC
        LIMIT ?
    )
    SELECT 'session' AS what, id, local_date, started_at, ended_at, minutes, closed_by,
           confirmed, NULL AS amount
    FROM recent
    UNION ALL
    SELECT 'award' AS what, id, local_date, NULL, NULL, NULL, NULL, NULL, amount
    FROM points_ledger
    WHERE volunteer_id = ? AND kind = 'patrol_day'
      AND (local_date = ? OR local_date IN (SELECT local_date FROM recent))
"""


def _session(row: Any) -> SessionState:
    return SessionState(
        id=int(row["id"]),
        local_date=cast(date, sql.as_date(row["local_date"])),
        started_at=cast(datetime, sql.as_datetime(row["started_at"])),
        ended_at=sql.as_datetime(row["ended_at"]),
        minutes=None if row["minutes"] is None else int(row["minutes"]),
        closed_by=row["closed_by"],
        confirmed=bool(row["confirmed"]),
    )


async def patrol_day(
    volunteer_id: int, today: date, conn: BaseDBAsyncClient, *, of_day: date | None = None
) -> PatrolDay:
    """The volunteer's open session, last check-out and the day's confirmed minutes."""
    since = (of_day or today) - timedelta(days=1)
    found = await sql.rows(
        conn,
        _PATROL_DAY,
        [volunteer_id, since, RECENT_SESSIONS, volunteer_id, of_day or today],
    )
    sessions = sorted((_session(r) for r in found if r["what"] == "session"), key=lambda s: -s.id)
    open_row = next((s for s in sessions if s.ended_at is None), None)
    closed = [s for s in sessions if s.closed_by == "volunteer" and s.ended_at is not None]
    last_closed = max(closed, key=lambda s: s.ended_at or s.started_at, default=None)
    day = open_row.local_date if open_row else (last_closed.local_date if last_closed else today)
    day = of_day or day
    minutes = sum(
        s.minutes or 0
        for s in sessions
        if s.local_date == day
        and s.ended_at is not None
        and s.confirmed
        and s.closed_by in ("volunteer", "auto")
    )
    awards = [
        int(r["amount"])
        for r in found
        if r["what"] == "award" and sql.as_date(r["local_date"]) == day
    ]
    return PatrolDay(
        open_session=open_row,
        last_closed=last_closed,
        closed_minutes_today=minutes,
        day_award_given=sum(awards) > 0,
        day_awards_so_far=len(awards),
    )


async def _partner(
    volunteer_id: int, pair_id: int | None, conn: BaseDBAsyncClient
) -> Contact | None:
    if pair_id is None:
        return None
    mate = (
        await Volunteer.filter(pair_id=pair_id)
        .exclude(id=volunteer_id)
        .exclude(status__in=GONE)
        .using_db(conn)
        .first()
    )
    return report_store.contact(mate) if mate else None


async def _named_in_scope(
    actor: VolunteerState, name: str, conn: BaseDBAsyncClient
) -> Volunteer | None:
    """The one volunteer of that name a lead (community) or office (street) may act for."""
    scope = (
        {"street_id": actor.street_id}
        if actor.role == "office"
        else {"community_id": actor.community_id}
    )
    people = await Volunteer.filter(**scope).exclude(status__in=GONE).using_db(conn)
    wanted = name.strip().casefold()
    matches = [p for p in people if p.name.strip().casefold() == wanted]
    return matches[0] if len(matches) == 1 else None  # unknown or ambiguous: ask again


async def _leave_target(
    actor: VolunteerState, name: str, conn: BaseDBAsyncClient
) -> LeaveTarget | None:
    person = await _named_in_scope(actor, name, conn)
    if person is None:
        return None
    return LeaveTarget(
        report_store.contact(person), await _partner(person.id, person.pair_id, conn)
    )


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
    day = await patrol_day(person.id, session.local_date, conn, of_day=session.local_date)
    return ConfirmTarget(report_store.contact(person), session_state(session), day)
