"""Issue reports: filing (one-shot, guided, photos), routing, and the lifecycle.

    new -> acknowledged -> resolved -> verified -> closed
    new | acknowledged -> rejected (with a reason)
    resolved -> acknowledged (the reporter says "not fixed")
    resolved -> closed_unverified (nobody checked within 48 h: the hourly job)
    new -> withdrawn (the reporter's UNDO within UNDO_MINUTES; its points go back)

Every action is a plain function of (who, report context, now, rules) returning an Outcome, with
no channel in it: SMS calls them today, Telegram commands and buttons will call the same ones.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from steward.clock import local_date, utc
from steward.flows import grammar, groups, texts
from steward.flows.segments import segment_count
from steward.flows.state import (
    AttachMedia,
    AwardPoints,
    ClearConversation,
    Contact,
    CreateReport,
    Effect,
    MoveReport,
    Notice,
    Outcome,
    Reply,
    ReportsContext,
    ReportView,
    SetConversation,
    VolunteerState,
)
from steward.settings import Settings

CATEGORY_STEP = "report_category"
DESCRIPTION_STEP = "report_description"
PHOTO_WINDOW = timedelta(minutes=30)
DUPLICATE_WINDOW = timedelta(hours=24)
OPEN_FOR_DUPLICATES = frozenset({"new", "acknowledged", "resolved"})
Media = tuple[tuple[str, str], ...]


def _reply(key: str, language: str, **values: object) -> Reply:
    return Reply(texts.render(key, language, **values), "reply")


def category_menu(language: str) -> str:
    """The nine categories as a numbered list."""
    return " ".join(f"{code}{grammar.category_name(code, language)}" for code in range(1, 10))


# ---- filing ----------------------------------------------------------------------------


def start_guided(
    vol: VolunteerState, media: Media, now: datetime, rules: Settings, *, description: str = ""
) -> Outcome:
    """Ask for the category; a photo or text that came first is kept for the report."""
    key = "report_menu_with_photo" if media else "report_menu"
    data = {"media": _storable(media), "description": description}
    step = SetConversation(CATEGORY_STEP, data, _expiry(now, rules))
    menu = category_menu(vol.language)
    return Outcome("report", _reply(key, vol.language, menu=menu), (step,))


def answer_category(
    vol: VolunteerState,
    rc: ReportsContext,
    data: dict[str, object],
    text: str,
    now: datetime,
    rules: Settings,
) -> Outcome:
    """Read the category answer; ask again kindly when it is not one of the nine."""
    media = media_of(data)
    category = _category_from(text) if text.strip() else None
    if category is None:
        step = SetConversation(
            CATEGORY_STEP, {**data, "media": _storable(media)}, _expiry(now, rules)
        )
        menu = category_menu(vol.language)
        return Outcome("report", _reply("report_menu", vol.language, menu=menu), (step,))
    description = str(data.get("description") or "")
    if description or media:
        outcome = file_report(vol, rc, category, description, media, now, rules)
        return Outcome(
            outcome.intent, outcome.reply, (ClearConversation(), *outcome.effects), outcome.notices
        )
    return ask_description(vol, {**data, "category": category}, now, rules)


def ask_description(
    vol: VolunteerState, data: dict[str, object], now: datetime, rules: Settings
) -> Outcome:
    """Ask what and where, for a report whose category is known."""
    category = int(str(data["category"]))
    stored = {**data, "media": _storable(media_of(data))}
    step = SetConversation(DESCRIPTION_STEP, stored, _expiry(now, rules))
    name = grammar.category_name(category, vol.language)
    return Outcome("report", _reply("report_ask_description", vol.language, category=name), (step,))


def answer_description(
    vol: VolunteerState,
    rc: ReportsContext,
    data: dict[str, object],
    text: str,
    media: Media,
    now: datetime,
    rules: Settings,
) -> Outcome:
    """File the guided report with the description (or photo) just received."""
    category = int(str(data["category"]))
    description = grammar.display_text(text) if text.strip() else ""
    outcome = file_report(vol, rc, category, description, media_of(data) + media, now, rules)
    return Outcome(
        outcome.intent, outcome.reply, (ClearConversation(), *outcome.effects), outcome.notices
    )


def media_of(data: dict[str, object]) -> Media:
    """Photos kept in a conversation step (JSON turns tuples into lists)."""
    value = data.get("media")
    if not isinstance(value, list | tuple):
        return ()
    return tuple(
        (str(item[0]), str(item[1]))
        for item in value
        if isinstance(item, list | tuple) and len(item) == 2
    )


def _storable(media: Media) -> list[list[str]]:
    return [list(item) for item in media]


def file_report(
    vol: VolunteerState,
    rc: ReportsContext,
    category: int,
    description: str,
    media: Media,
    now: datetime,
    rules: Settings,
) -> Outcome:
    """Create a report, thank the reporter, and alert whoever must act on it."""
    urgent = category in grammar.URGENT_CATEGORIES
    duplicate = _earlier_duplicate(rc, category, now)
    report = ReportView(
        id=0,
        number=rc.next_number,
        reporter_id=vol.id,
        community_id=vol.community_id,
        street_id=vol.street_id,
        zone_id=rc.zone_id,
        category=category,
        urgent=urgent,
        status="new",
        description=description,
        place=vol.zone_name,
        created_at=now,
        updated_at=now,
        duplicate_of=duplicate.number if duplicate else None,
    )
    effects: tuple[Effect, ...] = (
        CreateReport(
            report.number,
            category,
            urgent,
            description,
            report.place,
            rc.zone_id,
            report.duplicate_of,
            media,
        ),
        AwardPoints(
            rules.POINTS_REPORT_FILED,
            "report_filed",
            local_date(now, rules.tz),
            f"report_filed:{report.number}",
            report_number=report.number,
        ),
    )
    notices = alerts_for(report, vol, rc, rules)
    reply = _reply(
        "report_filed",
        vol.language,
        number=report.number,
        category=grammar.category_name(category, vol.language),
        points=rules.POINTS_REPORT_FILED,
    )
    return Outcome("report", reply, effects, notices)


def attach_photos(vol: VolunteerState, report: ReportView, media: Media) -> Outcome:
    """Add photos to the sender's report of the last half hour."""
    return Outcome(
        "photo",
        _reply("photo_attached", vol.language, number=report.number),
        (AttachMedia(report.number, media),),
    )


def attach_location(
    vol: VolunteerState, report: ReportView, location: tuple[float, float]
) -> Outcome:
    """Pin a Telegram location to the sender's report of the last half hour."""
    return Outcome(
        "location",
        _reply("location_attached", vol.language, number=report.number),
        (AttachMedia(report.number, (), location),),
    )


def recent_own_report(rc: ReportsContext, now: datetime) -> ReportView | None:
    """The sender's report a photo should join, if made within the last 30 minutes."""
    report = rc.own_recent
    if report is not None and now - report.created_at <= PHOTO_WINDOW:
        return report
    return None


def withdraw(
    vol: VolunteerState, report: ReportView, rc: ReportsContext, now: datetime, rules: Settings
) -> Outcome:
    """Take back the sender's own report (UNDO): its points go back, and whoever was alerted
    hears there is nothing to do. Only a report nobody has acted on yet can be withdrawn."""
    if report.status != "new":
        name = texts.status_name(report.status, vol.language)
        return Outcome(
            "undo", _reply("undo_report_too_late", vol.language, number=report.number, status=name)
        )
    effects: tuple[Effect, ...] = (
        MoveReport(report.number, "new", "withdrawn", "withdrawn by the reporter (UNDO)"),
        AwardPoints(
            -rules.POINTS_REPORT_FILED,
            "report_withdrawn",
            local_date(report.created_at, rules.tz),
            f"report_withdrawn:{report.number}",
            note="undo",
            report_number=report.number,
        ),
    )
    notices = tuple(
        Notice(
            person,
            texts.render(
                "report_withdrawn",
                person.language,
                number=report.number,
                category=grammar.category_name(report.category, person.language),
                place=report.place,
                reporter=texts.short_name(vol.name, person.language),
            ),
            "alert",
            f"report_withdrawn:{report.number}:{person.volunteer_id}",
        )
        for person in _alerted(report, vol, rc)
    )
    body = texts.render(
        "undo_report", vol.language, number=report.number, points=rules.POINTS_REPORT_FILED
    )
    return Outcome("undo", Reply(body, "reply"), effects, notices)


def _alerted(
    report: ReportView, reporter: VolunteerState, rc: ReportsContext
) -> tuple[Contact, ...]:
    """Who got the new-report alert: the community's leads, and the office when urgent."""
    audience = list(rc.leads) + (list(rc.office) if report.urgent else [])
    unique = {p.volunteer_id: p for p in audience if p.volunteer_id != reporter.id}
    return tuple(unique.values())


def alerts_for(
    report: ReportView, reporter: VolunteerState, rc: ReportsContext, rules: Settings
) -> tuple[Notice, ...]:
    """The short alert to the community's leads, and to the office when urgent."""
    return tuple(
        Notice(
            person,
            _alert_text(report, reporter, person.language, rules),
            "alert",
            f"report_alert:{report.number}:{person.volunteer_id}",
            card=report.number,
            group_body=_card_text(report, reporter, person.language, rules),
        )
        for person in _alerted(report, reporter, rc)
    )


def _alert_text(
    report: ReportView, reporter: VolunteerState, language: str, rules: Settings
) -> str:
    def build(description: str) -> str:
        return texts.render(
            "report_alert",
            language,
            urgent=("【紧急】" if language == "zh" else "URGENT ") if report.urgent else "",
            number=report.number,
            category=grammar.category_name(report.category, language),
            place=report.place,
            duplicate=_duplicate_note(report, language),
            reporter=texts.short_name(reporter.name, language),
            phone=texts.mask_phone(reporter.phone),
            description=description,
            department=rules.REPORT_DEPARTMENTS.get(report.category, ""),
        )

    return fit_two_segments(build, report.description or "(照片)")


def _card_text(report: ReportView, reporter: VolunteerState, language: str, rules: Settings) -> str:
    """The alert as a group's report card: the whole description, and buttons instead of
    "reply 受理N"."""
    return groups.render(
        "report_card",
        language,
        urgent=("【紧急】" if language == "zh" else "URGENT ") if report.urgent else "",
        number=report.number,
        category=grammar.category_name(report.category, language),
        place=report.place,
        duplicate=_duplicate_note(report, language),
        reporter=texts.short_name(reporter.name, language),
        phone=texts.mask_phone(reporter.phone),
        description=report.description or ("(照片)" if language == "zh" else "(photo)"),
        department=rules.REPORT_DEPARTMENTS.get(report.category, "-"),
    )


def fit_two_segments(build: Callable[[str], str], free_text: str) -> str:
    """Shorten the free text until the whole message fits two SMS segments."""
    limit = len(free_text)
    while limit > 0 and segment_count(build(texts.clip(free_text, limit))) > 2:
        limit -= 1
    return build(texts.clip(free_text, limit) if limit else "")


def _duplicate_note(report: ReportView, language: str) -> str:
    if report.duplicate_of is None:
        return ""
    return (
        f"（疑似与#{report.duplicate_of}重复）"
        if language == "zh"
        else f" (maybe same as #{report.duplicate_of})"
    )


def _earlier_duplicate(rc: ReportsContext, category: int, now: datetime) -> ReportView | None:
    for report in rc.zone_recent:
        if (
            report.category == category
            and report.status in OPEN_FOR_DUPLICATES
            and now - report.created_at <= DUPLICATE_WINDOW
        ):
            return report
    return None


def _category_from(text: str) -> int | None:
    # Reuse the grammar: "3", "３" or a category word like "路灯" all pick a category.
    parsed = grammar.parse(f"报 {text}")
    if parsed.category is not None:
        return parsed.category
    stripped = grammar.normalise(text)
    return int(stripped) if stripped.isdigit() and 1 <= int(stripped) <= 9 else None


def _expiry(now: datetime, rules: Settings) -> datetime:
    return now + timedelta(minutes=rules.CONVERSATION_TIMEOUT_MIN)


# ---- the reporter's questions and answers ---------------------------------------------


def _own_target(vol: VolunteerState, rc: ReportsContext, number: int) -> ReportView | None:
    target = rc.target
    if target is None or target.number != number or target.reporter_id != vol.id:
        return None
    return target


def needs_number(language: str, example: str) -> Outcome:
    return Outcome("needs_number", _reply("report_needs_number", language, example=example))


def status(vol: VolunteerState, rc: ReportsContext, number: int, tz: ZoneInfo) -> Outcome:
    """Tell reporters where their own report stands; others' reports stay private."""
    report = _own_target(vol, rc, number)
    if report is None:
        return Outcome("report_status", _reply("report_not_found", vol.language, number=number))
    return Outcome(
        "report_status",
        _reply(
            "report_status",
            vol.language,
            number=number,
            category=grammar.category_name(report.category, vol.language),
            status=texts.status_name(report.status, vol.language),
            when=_when(report.updated_at, vol.language, tz),
        ),
    )


def confirm_fix(
    vol: VolunteerState, rc: ReportsContext, number: int, now: datetime, rules: Settings
) -> Outcome:
    """The reporter checked on site and it is fixed: verified, closed, one more point."""
    report = _own_target(vol, rc, number)
    if report is None:
        return Outcome("fix_confirmed", _reply("report_not_found", vol.language, number=number))
    if report.status != "resolved":
        return _wrong_state("fix_confirmed", report, vol.language)
    effects: tuple[Effect, ...] = (
        MoveReport(number, "resolved", "verified", "checked on site"),
        MoveReport(number, "verified", "closed"),
        AwardPoints(
            rules.POINTS_FIX_VERIFIED,
            "report_verified",
            local_date(now, rules.tz),
            f"report_verified:{number}",
            report_number=number,
        ),
    )
    reply = _reply("report_verified", vol.language, number=number, points=rules.POINTS_FIX_VERIFIED)
    return Outcome("fix_confirmed", reply, effects)


def reject_fix(vol: VolunteerState, rc: ReportsContext, number: int) -> Outcome:
    """The reporter says it is not fixed: back to the leads."""
    report = _own_target(vol, rc, number)
    if report is None:
        return Outcome("fix_not_done", _reply("report_not_found", vol.language, number=number))
    if report.status != "resolved":
        return _wrong_state("fix_not_done", report, vol.language)
    notices = tuple(
        Notice(
            lead,
            texts.render(
                "report_reopened_alert",
                lead.language,
                number=number,
                category=grammar.category_name(report.category, lead.language),
            ),
            "alert",
        )
        for lead in rc.leads
    )
    effects = (MoveReport(number, "resolved", "acknowledged", "reporter: not fixed"),)
    return Outcome(
        "fix_not_done", _reply("report_reopened", vol.language, number=number), effects, notices
    )


# ---- what leads (and the office) do -----------------------------------------------------


def _lead_target(actor: VolunteerState, rc: ReportsContext, number: int) -> ReportView | None:
    target = rc.target
    if target is None or target.number != number:
        return None
    if actor.role == "office" and target.street_id == actor.street_id:
        return target
    if actor.role == "lead" and target.community_id == actor.community_id:
        return target
    return None


def _lead_check(
    actor: VolunteerState, rc: ReportsContext, number: int, intent: str
) -> Outcome | ReportView:
    if actor.role not in ("lead", "office"):
        return Outcome(intent, _reply("lead_only", actor.language))
    report = _lead_target(actor, rc, number)
    if report is None:
        return Outcome(intent, _reply("lead_not_found", actor.language, number=number))
    return report


def acknowledge(
    actor: VolunteerState, rc: ReportsContext, number: int, now: datetime, rules: Settings
) -> Outcome:
    """Accept a new report as valid; the reporter hears and earns points."""
    found = _lead_check(actor, rc, number, "ack")
    if isinstance(found, Outcome):
        return found
    if found.status != "new":
        return _wrong_state("ack", found, actor.language)
    effects, notices = _acknowledged(found, rc, now, rules)
    return Outcome(
        "ack", _reply("lead_acknowledged", actor.language, number=number), effects, notices
    )


def resolve(
    actor: VolunteerState,
    rc: ReportsContext,
    number: int,
    note: str,
    now: datetime,
    rules: Settings,
) -> Outcome:
    """Mark a report fixed and ask the reporter to check on site."""
    found = _lead_check(actor, rc, number, "resolve")
    if isinstance(found, Outcome):
        return found
    if found.status not in ("new", "acknowledged"):
        return _wrong_state("resolve", found, actor.language)
    effects: tuple[Effect, ...] = ()
    notices: tuple[Notice, ...] = ()
    if found.status == "new":
        # Fixing it says it was valid: acknowledge on the way (and the reporter's points).
        effects, _ = _acknowledged(found, rc, now, rules)
    effects += (MoveReport(number, "acknowledged", "resolved", note),)
    reporter = rc.target_reporter
    if reporter is not None:
        body = _fit_reporter_text("report_resolved", reporter.language, number, "note", note or "-")
        notices = (
            Notice(reporter, body, "report_update", f"report_resolved:{number}:{now.isoformat()}"),
        )
    return Outcome(
        "resolve", _reply("lead_resolved", actor.language, number=number), effects, notices
    )


def reject(
    actor: VolunteerState, rc: ReportsContext, number: int, reason: str, now: datetime
) -> Outcome:
    """Turn a report down with a reason the reporter is told."""
    found = _lead_check(actor, rc, number, "reject")
    if isinstance(found, Outcome):
        return found
    if not reason.strip():
        return Outcome("reject", _reply("reject_needs_reason", actor.language, number=number))
    if found.status not in ("new", "acknowledged"):
        return _wrong_state("reject", found, actor.language)
    notices: tuple[Notice, ...] = ()
    reporter = rc.target_reporter
    if reporter is not None:
        body = _fit_reporter_text("report_rejected", reporter.language, number, "reason", reason)
        notices = (Notice(reporter, body, "report_update", f"report_rejected:{number}"),)
    effects = (MoveReport(number, found.status, "rejected", reason),)
    return Outcome(
        "reject", _reply("lead_rejected", actor.language, number=number), effects, notices
    )


def _acknowledged(
    report: ReportView, rc: ReportsContext, now: datetime, rules: Settings
) -> tuple[tuple[Effect, ...], tuple[Notice, ...]]:
    effects: tuple[Effect, ...] = (
        MoveReport(report.number, "new", "acknowledged"),
        AwardPoints(
            rules.POINTS_REPORT_VALID,
            "report_valid",
            local_date(now, rules.tz),
            f"report_valid:{report.number}",
            volunteer_id=report.reporter_id,
            report_number=report.number,
        ),
    )
    reporter = rc.target_reporter
    if reporter is None:
        return effects, ()
    body = texts.render(
        "report_acknowledged",
        reporter.language,
        number=report.number,
        points=rules.POINTS_REPORT_VALID,
    )
    return effects, (Notice(reporter, body, "report_update", f"report_ack:{report.number}"),)


def _fit_reporter_text(key: str, language: str, number: int, field: str, free_text: str) -> str:
    return fit_two_segments(
        lambda text: texts.render(key, language, number=number, **{field: text}), free_text
    )


def _wrong_state(intent: str, report: ReportView, language: str) -> Outcome:
    name = texts.status_name(report.status, language)
    return Outcome(
        intent, _reply("report_wrong_state", language, number=report.number, status=name)
    )


def _when(moment: datetime, language: str, tz: ZoneInfo) -> str:
    local = utc(moment).astimezone(tz)
    clock = f"{local.hour}:{local.minute:02d}"
    if language == "en":
        return f"{local.day} {local:%b} {clock}"
    return f"{local.month}月{local.day}日{clock}"
