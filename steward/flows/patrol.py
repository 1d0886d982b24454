"""Check-in, check-out and undo: plain functions of (volunteer, patrol day, now, rules)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from steward.clock import local_clock, local_date
from steward.flows import texts
from steward.flows.state import (
    AwardPoints,
    CloseSession,
    ConfirmSession,
    ConfirmTarget,
    Effect,
    Notice,
    OpenSession,
    Outcome,
    PatrolDay,
    Reply,
    UndoCheckIn,
    UndoCheckOut,
    VolunteerState,
)
from steward.settings import Settings


def day_award(
    volunteer_id: int, day: date, generation: int, amount: int, *, note: str = ""
) -> AwardPoints:
    """The "done day" points (or their reversal), once per day and generation.

    The key makes the award idempotent; an undo adds a reversal under the next generation, so a
    later check-out that reaches the goal again can pay again.
    """
    key = f"patrol_day:{volunteer_id}:{day.isoformat()}:{generation}"
    return AwardPoints(amount, "patrol_day", day, key, note=note, volunteer_id=volunteer_id)


def check_in(vol: VolunteerState, day: PatrolDay, now: datetime, rules: Settings) -> Outcome:
    """Open a patrol session, or say kindly that one is already open."""
    lang = vol.language
    if day.open_session is not None:
        since = local_clock(day.open_session.started_at, rules.tz)
        return Outcome(
            "check_in", Reply(texts.render("already_checked_in", lang, time=since), "reply")
        )
    body = texts.render(
        "checked_in", lang, name=texts.short_name(vol.name, lang), time=local_clock(now, rules.tz)
    )
    effect = OpenSession(started_at=now, local_date=local_date(now, rules.tz))
    return Outcome("check_in", Reply(body, "reply"), (effect,))


def check_out(vol: VolunteerState, day: PatrolDay, now: datetime, rules: Settings) -> Outcome:
    """Close the open session, add up the day and award the day's points once it is done."""
    lang = vol.language
    session = day.open_session
    if session is None:
        return Outcome("check_out", Reply(texts.render("not_checked_in", lang), "reply"))
    minutes = max(0, int((now - session.started_at).total_seconds() // 60))
    at = local_clock(now, rules.tz)
    if minutes > rules.SESSION_MAX_MINUTES:
        # Too long to be a real patrol without a lead's word (SPEC §4): keep it, unconfirmed.
        close = CloseSession(session.id, now, minutes, "auto", False, session.local_date)
        max_hours = f"{rules.SESSION_MAX_MINUTES / 60:g}"
        body = texts.render("checked_out_unconfirmed", lang, time=at, max_hours=max_hours)
        return Outcome("check_out", Reply(body, "reply"), (close,))

    effects: list[Effect] = [
        CloseSession(session.id, now, minutes, "volunteer", True, session.local_date)
    ]
    total = day.closed_minutes_today + minutes
    values = {
        "time": at,
        "duration": texts.duration(minutes, lang),
        "total": texts.duration(total, lang),
    }
    if day.day_award_given:
        key = "checked_out_after_goal"
    elif total >= rules.PATROL_MINUTES:
        key = "checked_out_goal"
        values["points"] = str(rules.POINTS_DONE_DAY)
        effects.append(
            day_award(vol.id, session.local_date, day.day_awards_so_far, rules.POINTS_DONE_DAY)
        )
    else:
        key = "checked_out_partial"
        values["remaining"] = texts.duration(rules.PATROL_MINUTES - total, lang)
    return Outcome("check_out", Reply(texts.render(key, lang, **values), "reply"), tuple(effects))


def last_action_at(day: PatrolDay) -> datetime | None:
    """When the volunteer last checked in or out (what UNDO would take back)."""
    if day.open_session is not None:
        return day.open_session.started_at
    closed = day.last_closed
    return closed.ended_at if closed is not None else None


def undo(vol: VolunteerState, day: PatrolDay, now: datetime, rules: Settings) -> Outcome:
    """Take back the last check-in or check-out if it was within UNDO_MINUTES."""
    lang = vol.language
    window = timedelta(minutes=rules.UNDO_MINUTES)
    opened = day.open_session
    if opened is not None:
        # With a session open, the most recent action was that check-in.
        if now - opened.started_at <= window:
            body = texts.render(
                "undo_check_in", lang, time=local_clock(opened.started_at, rules.tz)
            )
            return Outcome("undo", Reply(body, "reply"), (UndoCheckIn(opened.id, now),))
    else:
        closed = day.last_closed
        if closed is not None and closed.ended_at is not None and now - closed.ended_at <= window:
            return _undo_check_out(vol, day, closed.ended_at, rules)
    body = texts.render("nothing_to_undo", lang, minutes=rules.UNDO_MINUTES)
    return Outcome("undo", Reply(body, "reply"))


def _undo_check_out(
    vol: VolunteerState, day: PatrolDay, ended_at: datetime, rules: Settings
) -> Outcome:
    closed = day.last_closed
    assert closed is not None and closed.minutes is not None
    effects: list[Effect] = [UndoCheckOut(closed.id, closed.minutes, closed.local_date)]
    # The day award goes back only if this very check-out is what reached the goal.
    minutes_without = day.closed_minutes_today - closed.minutes
    if day.day_award_given and minutes_without < rules.PATROL_MINUTES and closed.confirmed:
        effects.append(
            day_award(
                vol.id,
                closed.local_date,
                day.day_awards_so_far,
                -rules.POINTS_DONE_DAY,
                note="undo",
            )
        )
    body = texts.render("undo_check_out", vol.language, time=local_clock(ended_at, rules.tz))
    return Outcome("undo", Reply(body, "reply"), tuple(effects))


def confirm_session(
    actor: VolunteerState, target: ConfirmTarget | None, name: str, rules: Settings
) -> Outcome:
    """A lead vouches for a session closed automatically: its hours count, and maybe the day."""
    lang = actor.language
    if actor.role not in ("lead", "office"):
        return Outcome("confirm_session", Reply(texts.render("lead_only", lang), "reply"))
    if target is None:
        body = texts.render("confirm_not_found", lang, name=name)
        return Outcome("confirm_session", Reply(body, "reply"))
    person, session, day = target.volunteer, target.session, target.day
    minutes = session.minutes or 0
    started = local_clock(session.started_at, rules.tz)
    effects: list[Effect] = [
        ConfirmSession(session.id, person.volunteer_id, minutes, session.local_date)
    ]
    reaches_goal = (
        not day.day_award_given and day.closed_minutes_today + minutes >= rules.PATROL_MINUTES
    )
    values = {"time": started, "duration": texts.duration(minutes, person.language)}
    key = "session_confirmed"
    if reaches_goal:
        key = "session_confirmed_goal"
        values["points"] = str(rules.POINTS_DONE_DAY)
        effects.append(
            day_award(
                person.volunteer_id,
                session.local_date,
                day.day_awards_so_far,
                rules.POINTS_DONE_DAY,
            )
        )
    notice = Notice(
        person,
        texts.render(key, person.language, **values),
        "report_update",
        f"confirmed:{session.id}",
    )
    lead_body = texts.render(
        "session_confirmed_lead",
        lang,
        name=person.name,
        time=started,
        duration=texts.duration(minutes, lang),
    )
    return Outcome("confirm_session", Reply(lead_body, "reply"), tuple(effects), (notice,))
