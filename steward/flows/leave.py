"""Leave: 请假 D / LEAVE D, 销假 / BACK, and a lead's 请假 NAME D for someone who cannot text.

Leave runs from today for D days (1-30); those days count as `excused`, never as absences.
The partner and the community's leads are told, so the pair can plan.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from steward.clock import local_date
from steward.flows import texts
from steward.flows.state import (
    Contact,
    LeaveTarget,
    Notice,
    Outcome,
    Reply,
    SetLeave,
    VolunteerState,
    contact_of,
)
from steward.settings import Settings

MAX_DAYS = 30


def _day(value: date, language: str) -> str:
    return f"{value.day} {value:%b}" if language == "en" else f"{value.month}月{value.day}日"


def _reply(key: str, language: str, **values: object) -> Reply:
    return Reply(texts.render(key, language, **values), "reply")


def _valid(days: int | None) -> bool:
    return days is not None and 1 <= days <= MAX_DAYS


def take_leave(
    vol: VolunteerState,
    days: int | None,
    partner: Contact | None,
    leads: tuple[Contact, ...],
    now: datetime,
    rules: Settings,
) -> Outcome:
    """Put the sender on leave from today, and tell the partner and the leads."""
    if not _valid(days):
        return Outcome("leave", _reply("leave_ask_days", vol.language))
    assert days is not None
    today = local_date(now, rules.tz)
    until = today + timedelta(days=days - 1)
    me = contact_of(vol)
    notices = _tell_others(me, days, until, partner, leads)
    reply = _reply("leave_taken", vol.language, days=days, until=_day(until, vol.language))
    return Outcome("leave", reply, (SetLeave(vol.id, until, today),), notices)


def leave_for(
    actor: VolunteerState,
    name: str,
    days: int | None,
    target: LeaveTarget | None,
    leads: tuple[Contact, ...],
    now: datetime,
    rules: Settings,
) -> Outcome:
    """A lead puts a volunteer of their community on leave."""
    lang = actor.language
    if actor.role not in ("lead", "office"):
        return Outcome("leave", _reply("lead_only", lang))
    if not _valid(days):
        return Outcome("leave", _reply("leave_ask_days", lang))
    if target is None:
        return Outcome("leave", _reply("leave_name_not_found", lang, name=name))
    assert days is not None
    person = target.volunteer
    today = local_date(now, rules.tz)
    until = today + timedelta(days=days - 1)
    own = texts.render(
        "leave_by_lead", person.language, days=days, until=_day(until, person.language)
    )
    others = tuple(lead for lead in leads if lead.volunteer_id != actor.id)
    notices = (
        Notice(person, own, "alert", f"leave:{person.volunteer_id}:{until.isoformat()}:self"),
        *_tell_others(person, days, until, target.partner, others),
    )
    reply = _reply("leave_set_for", lang, name=person.name, days=days, until=_day(until, lang))
    return Outcome("leave", reply, (SetLeave(person.volunteer_id, until, today),), notices)


def come_back(
    vol: VolunteerState, partner: Contact | None, now: datetime, rules: Settings
) -> Outcome:
    """End the sender's leave early (or say kindly that there is none)."""
    today = local_date(now, rules.tz)
    if vol.on_leave_until is None or vol.on_leave_until < today:
        return Outcome("back", _reply("not_on_leave", vol.language))
    # The days already taken stay leave (a late day close still reads them as excused).
    yesterday = today - timedelta(days=1)
    if _started_before(vol, today):
        ended = SetLeave(vol.id, yesterday, vol.on_leave_from, in_force=False)
    else:
        ended = SetLeave(vol.id, None, None, in_force=False)
    notices: tuple[Notice, ...] = ()
    if partner is not None:
        body = texts.render("back_partner", partner.language, name=vol.name)
        notices = (Notice(partner, body, "alert"),)
    return Outcome("back", _reply("back_from_leave", vol.language), (ended,), notices)


def _started_before(vol: VolunteerState, today: date) -> bool:
    return vol.on_leave_from is not None and vol.on_leave_from < today


def _tell_others(
    person: Contact,
    days: int,
    until: date,
    partner: Contact | None,
    leads: tuple[Contact, ...],
) -> tuple[Notice, ...]:
    notices = []
    key = f"leave:{person.volunteer_id}:{until.isoformat()}"
    if partner is not None:
        body = texts.render(
            "leave_partner",
            partner.language,
            name=person.name,
            days=days,
            until=_day(until, partner.language),
        )
        notices.append(Notice(partner, body, "alert", f"{key}:{partner.volunteer_id}"))
    for lead in leads:
        body = texts.render(
            "leave_lead",
            lead.language,
            name=person.name,
            days=days,
            until=_day(until, lead.language),
        )
        notices.append(Notice(lead, body, "alert", f"{key}:{lead.volunteer_id}"))
    return tuple(notices)
