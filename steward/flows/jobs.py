"""Scheduled jobs as decisions: plain functions of (stored state, now) -> what to send and change.

Nothing here remembers "what happened since the last run": every run recomputes from state, and
every message carries a dedupe key (kind, subject, local date), so a late, repeated or concurrent
run sends nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from steward.clock import local_clock, local_date, utc
from steward.flows import attendance, grammar, patrol, texts
from steward.flows.state import (
    AwardPoints,
    CloseSession,
    Contact,
    MoveReport,
    Notice,
    ReportView,
    SessionState,
)
from steward.settings import Settings, parse_hhmm

URGENT_ACK_HOURS = 2
UNVERIFIED_CLOSE_AFTER = timedelta(hours=48)


@dataclass(frozen=True)
class OpenReport:
    """A report the hourly job looks at, with who answers for it."""

    report: ReportView
    community_name: str
    leads: tuple[Contact, ...]
    office: tuple[Contact, ...]
    resolved_at: datetime | None = None


@dataclass(frozen=True)
class JobPlan:
    notices: tuple[Notice, ...]
    moves: tuple[MoveReport, ...]


def ack_hours(report: ReportView, rules: Settings) -> int:
    """How long a report may wait for a lead before someone is reminded."""
    return URGENT_ACK_HOURS if report.urgent else rules.REPORT_ACK_HOURS


def report_followups(reports: list[OpenReport], now: datetime, rules: Settings) -> JobPlan:
    """Remind leads of waiting reports, escalate to the office, close what nobody checked."""
    notices: list[Notice] = []
    moves: list[MoveReport] = []
    today = local_date(now, rules.tz).isoformat()
    for item in reports:
        report = item.report
        if report.status == "new":
            notices.extend(_chase(item, now, today, rules))
        elif report.status == "resolved" and _unchecked_too_long(item, now):
            moves.append(
                MoveReport(report.number, "resolved", "closed_unverified", "not checked in 48 h")
            )
    return JobPlan(tuple(notices), tuple(moves))


def _unchecked_too_long(item: OpenReport, now: datetime) -> bool:
    return item.resolved_at is not None and now - item.resolved_at >= UNVERIFIED_CLOSE_AFTER


def _chase(item: OpenReport, now: datetime, today: str, rules: Settings) -> list[Notice]:
    report = item.report
    limit = timedelta(hours=ack_hours(report, rules))
    waited = now - report.created_at
    if waited < limit:
        return []
    hours = int(waited.total_seconds() // 3600)
    notices = [
        Notice(
            lead,
            _render("report_reminder", lead.language, item, hours),
            "alert",
            f"report_reminder:{report.number}:{lead.volunteer_id}:{today}",
        )
        for lead in item.leads
    ]
    if waited >= 2 * limit:
        notices.extend(
            Notice(
                person,
                _render("report_escalation", person.language, item, hours),
                "alert",
                f"report_escalation:{report.number}:{person.volunteer_id}:{today}",
            )
            for person in item.office
        )
    return notices


def _render(key: str, language: str, item: OpenReport, hours: int) -> str:
    report = item.report
    return texts.render(
        key,
        language,
        number=report.number,
        category=grammar.category_name(report.category, language),
        place=report.place,
        hours=hours,
        community=item.community_name,
    )


# ---- quiet hours -------------------------------------------------------------------------


def quiet_until(now: datetime, rules: Settings) -> datetime:
    """When a scheduled SMS may go: now, or the end of quiet hours (e.g. 21:00-07:00)."""
    if not rules.QUIET_HOURS.strip():
        return now
    start_text, _, end_text = rules.QUIET_HOURS.partition("-")
    start, end = parse_hhmm(start_text), parse_hhmm(end_text)
    local = utc(now).astimezone(rules.tz)
    clock = local.time()
    overnight = start > end
    quiet = (clock >= start or clock < end) if overnight else (start <= clock < end)
    if not quiet:
        return now
    end_day = local.date() + timedelta(days=1) if overnight and clock >= start else local.date()
    return utc(datetime.combine(end_day, end, tzinfo=rules.tz))


# ---- patrol sessions -----------------------------------------------------------------------


@dataclass(frozen=True)
class OpenSessionItem:
    volunteer: Contact
    session: SessionState
    leads: tuple[Contact, ...]


@dataclass(frozen=True)
class SessionPlan:
    notices: tuple[Notice, ...]
    closes: tuple[CloseSession, ...]


def session_followups(items: list[OpenSessionItem], now: datetime, rules: Settings) -> SessionPlan:
    """Remind to check out once, then close sessions left open past SESSION_MAX_MINUTES."""
    notices: list[Notice] = []
    closes: list[CloseSession] = []
    for item in items:
        session, person = item.session, item.volunteer
        age = now - session.started_at
        started = local_clock(session.started_at, rules.tz)
        if age >= timedelta(minutes=rules.SESSION_MAX_MINUTES):
            closes.append(_auto_close(session, rules))
            notices.extend(_auto_close_notices(item, started, rules))
        elif age >= timedelta(minutes=rules.PATROL_MINUTES + 5):
            body = texts.render(
                "checkout_reminder",
                person.language,
                name=texts.short_name(person.name, person.language),
                time=started,
                hours=rules.PATROL_MINUTES // 60,
            )
            notices.append(Notice(person, body, "nudge", f"checkout_reminder:{session.id}"))
    return SessionPlan(tuple(notices), tuple(closes))


def _auto_close(session: SessionState, rules: Settings) -> CloseSession:
    ended = session.started_at + timedelta(minutes=rules.SESSION_MAX_MINUTES)
    # Unconfirmed until a lead says it was real (SPEC §4); it earns nothing meanwhile.
    return CloseSession(
        session.id, ended, rules.SESSION_MAX_MINUTES, "auto", False, session.local_date
    )


def _auto_close_notices(item: OpenSessionItem, started: str, rules: Settings) -> list[Notice]:
    person, session = item.volunteer, item.session
    max_hours = f"{rules.SESSION_MAX_MINUTES / 60:g}"
    own = texts.render("auto_closed", person.language, time=started, max_hours=max_hours)
    notices = [Notice(person, own, "nudge", f"auto_closed:{session.id}")]
    for lead in item.leads:
        body = texts.render(
            "auto_closed_lead",
            lead.language,
            name=person.name,
            time=started,
            max_hours=max_hours,
        )
        notices.append(
            Notice(lead, body, "alert", f"auto_closed_lead:{session.id}:{lead.volunteer_id}")
        )
    return notices


# ---- nudges ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairMember:
    contact: Contact
    checked_in: bool  # has a patrol session today
    on_leave: bool
    opted_out: bool


@dataclass(frozen=True)
class PairToday:
    pair_id: int
    code: str
    zone: str
    start: datetime  # today's patrol start, as an instant
    scheduled: bool
    members: tuple[PairMember, ...]  # removed volunteers are left out
    leads: tuple[Contact, ...]


def nudges(pairs: list[PairToday], now: datetime, rules: Settings) -> tuple[Notice, ...]:
    """Nudge pairs nobody (or only one) has set out from; tell the leads when nobody has."""
    notices: list[Notice] = []
    for pair in pairs:
        notices.extend(_nudge_pair(pair, now, rules))
    return tuple(notices)


def _nudge_pair(pair: PairToday, now: datetime, rules: Settings) -> list[Notice]:
    available = [m for m in pair.members if not m.on_leave]
    since = now - pair.start
    over = since >= timedelta(minutes=rules.SESSION_MAX_MINUTES)  # the day's patrol is past
    if (
        not pair.scheduled
        or not available
        or over
        or since < timedelta(minutes=rules.NUDGE_AFTER_MIN)
    ):
        return []
    out = [m for m in available if m.checked_in]
    waiting = [m for m in available if not m.checked_in]
    day = local_date(now, rules.tz).isoformat()
    notices: list[Notice] = []
    for member in waiting:
        notices.extend(_nudge(pair, member, out[0] if out else None, day, rules))
    if not out and since >= timedelta(minutes=rules.LEAD_ALERT_AFTER_MIN):
        start = local_clock(pair.start, rules.tz)
        for lead in pair.leads:
            body = texts.render(
                "nudge_lead", lead.language, pair=pair.code, zone=pair.zone, time=start
            )
            key = f"nudge_lead:{pair.pair_id}:{lead.volunteer_id}:{day}"
            notices.append(Notice(lead, body, "alert", key))
    return notices


def _nudge(
    pair: PairToday, member: PairMember, partner_out: PairMember | None, day: str, rules: Settings
) -> list[Notice]:
    person = member.contact
    if member.opted_out:
        # After STOP we may not text them: the leads are asked to call instead.
        return [
            Notice(
                lead,
                texts.render("nudge_stopped_lead", lead.language, name=person.name, pair=pair.code),
                "alert",
                f"nudge_stopped:{person.volunteer_id}:{lead.volunteer_id}:{day}",
            )
            for lead in pair.leads
        ]
    name = texts.short_name(person.name, person.language)
    if partner_out is None:
        start = local_clock(pair.start, rules.tz)
        body = texts.render("nudge_both", person.language, name=name, time=start)
    else:
        partner = texts.short_name(partner_out.contact.name, person.language)
        body = texts.render("nudge_partner", person.language, name=name, partner=partner)
    return [Notice(person, body, "nudge", f"nudge:{person.volunteer_id}:{day}")]


# ---- day close ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StewardDay:
    """One steward's day to settle, with what the ladder needs."""

    contact: Contact
    status: str  # the volunteer's status (active, on_leave, flagged)
    pair_code: str
    community: str
    minutes: int  # confirmed patrol minutes that day
    scheduled: bool
    excused: bool
    history: tuple[str, ...]  # settled days before this one since the last ladder reset
    day_award_given: bool
    day_awards_so_far: int
    leads: tuple[Contact, ...]
    office: tuple[Contact, ...]


@dataclass(frozen=True)
class Settled:
    volunteer_id: int
    status: str
    minutes: int


@dataclass(frozen=True)
class DayClosePlan:
    day: date
    settled: tuple[Settled, ...]
    awards: tuple[AwardPoints, ...]
    flagged: tuple[int, ...]
    notices: tuple[Notice, ...]


def day_to_close(now: datetime, rules: Settings) -> date:
    """The latest local day whose DAY_CLOSE has passed (a late run still settles the right day)."""
    local = utc(now).astimezone(rules.tz)
    if local.time() >= parse_hhmm(rules.DAY_CLOSE):
        return local.date()
    return local.date() - timedelta(days=1)


def day_close(items: list[StewardDay], day: date, rules: Settings) -> DayClosePlan:
    """Settle each steward's day, pay the done days, and climb the absence ladder."""
    settled, awards, flagged, notices = [], [], [], []
    for item in items:
        person = item.contact
        status = attendance.day_status(
            minutes=item.minutes,
            scheduled=item.scheduled,
            excused=item.excused,
            target=rules.PATROL_MINUTES,
        )
        settled.append(Settled(person.volunteer_id, status, item.minutes))
        if status == "done" and not item.day_award_given:
            awards.append(
                patrol.day_award(
                    person.volunteer_id, day, item.day_awards_so_far, rules.POINTS_DONE_DAY
                )
            )
        history = (*item.history, status)
        step = attendance.ladder_step(history)
        if step.step in ("remind", "talk"):
            notices.extend(_ladder_notices(item, step, day))
        low = attendance.too_few_done(history)
        if (step.step == "flag" or low) and item.status in ("active", "on_leave"):
            flagged.append(person.volunteer_id)
            notices.extend(_flag_notices(item, step.absences if step.step == "flag" else None, day))
    return DayClosePlan(day, tuple(settled), tuple(awards), tuple(flagged), tuple(notices))


def _ladder_notices(item: StewardDay, step: attendance.LadderStep, day: date) -> list[Notice]:
    person = item.contact
    key = f"ladder_{step.step}:{person.volunteer_id}:{day.isoformat()}"
    if step.step == "remind":
        name = texts.short_name(person.name, person.language)
        body = texts.render("ladder_remind", person.language, name=name, count=step.absences)
        return [Notice(person, body, "nudge", key)]
    return [
        Notice(
            lead,
            texts.render(
                "ladder_talk",
                lead.language,
                name=person.name,
                pair=item.pair_code,
                count=step.absences,
            ),
            "alert",
            f"{key}:{lead.volunteer_id}",
        )
        for lead in item.leads
    ]


def _flag_notices(item: StewardDay, run: int | None, day: date) -> list[Notice]:
    person = item.contact
    notices = []
    for staff in item.office:
        if run is not None:
            reason = texts.render("flag_reason_run", staff.language, count=run)
        else:
            reason = texts.render("flag_reason_ratio", staff.language)
        body = texts.render(
            "ladder_flag",
            staff.language,
            name=person.name,
            community=item.community,
            pair=item.pair_code,
            reason=reason,
        )
        notices.append(
            Notice(
                staff,
                body,
                "alert",
                f"flagged:{person.volunteer_id}:{staff.volunteer_id}:{day.isoformat()}",
            )
        )
    return notices
