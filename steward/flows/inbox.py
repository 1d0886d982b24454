"""Decide what one inbound text means and what happens: a pure function of its context.

Order matters and mirrors SPEC §3: loop guards first (so an auto-responder never ping-pongs),
then STOP/START (never trapped in a step), then who the sender is, then any waiting step,
then the intent.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from datetime import timedelta

from steward.flows import grammar, leads, leave, linking, patrol, recruitment, reports, texts
from steward.flows.state import (
    ClearConversation,
    DiscardApplication,
    Effect,
    InboxContext,
    Outcome,
    Reply,
    SetConversation,
    SetOptOut,
)
from steward.settings import Settings

CONFIRM_STEP = "confirm_intent"
# A sender who writes this often in two minutes is a machine (or a flood): stop answering.
FLOOD_LIMIT = 6
# The same text is answered this many times in two minutes: an elderly sender who saw no reply
# yet tries again and must hear "already checked in"; beyond that it is a loop.
REPEAT_ANSWERS = 2
_CJK = re.compile(r"[\u3400-\u9fff]")

_REPORT_INTENTS = frozenset(
    {"report", "report_status", "fix_confirmed", "fix_not_done", "ack", "resolve", "reject"}
)
# How to show the number a report command needs, per intent.
_NUMBER_EXAMPLE = {
    "report_status": ("查12", "STATUS 12"),
    "fix_confirmed": ("是12", "YES 12"),
    "fix_not_done": ("否12", "NO 12"),
    "ack": ("受理12", "ACK 12"),
    "resolve": ("办结12 已清理", "FIXED 12 cleaned"),
    "reject": ("驳回12 重复上报", "REJECT 12 duplicate"),
}


def guess_language(text: str, default: str, hint: str | None = None) -> str:
    """Answer strangers in the language their app says (Telegram), else the script they wrote
    in; a bare command such as /start says nothing about it."""
    if hint:
        return "en" if hint.lower().startswith("en") else "zh"
    if text.startswith("/"):
        return default
    if _CJK.search(text):
        return "zh"
    return "en" if re.search(r"[A-Za-z]", text) else default


@dataclass(frozen=True)
class Needs:
    """What, beyond the sender and their recent traffic, deciding one text will read."""

    patrol: bool = False
    points: bool = False
    reports: bool = False
    report_number: bool = False  # may file a new report: reserve its number
    partner: bool = False
    confirm_target: bool = False
    leave_target: bool = False
    today: bool = False
    vacancy: bool = False  # a resignation may follow: the pair, its leads, the candidates


def needs(
    parsed: grammar.Parsed, step: str | None, has_media: bool, has_location: bool = False
) -> Needs:
    """Decide what to load for a text (parsed as if no step waited) and the live step, if any."""
    if step == CONFIRM_STEP:
        # "1" confirms the intent we asked about, which may be any of them: load for all.
        return Needs(True, True, True, True, True, True, True, True)
    if step == recruitment.QUIT_STEP:
        # "1" resigns (tell the leads and the partner); anything else is read as itself.
        return replace(needs(parsed, None, has_media, has_location), vacancy=True, partner=True)
    intent = parsed.intent
    in_report_step = step is not None and step.startswith("report_")
    files = intent == "report" or in_report_step or has_media
    return Needs(
        patrol=intent in ("check_in", "check_out", "undo"),
        points=intent == "points",
        reports=files or has_location or intent in _REPORT_INTENTS or intent in ("undo", "leave"),
        report_number=files,
        partner=intent in ("leave", "back"),
        confirm_target=intent == "confirm_session" and bool(parsed.name),
        leave_target=intent == "leave" and bool(parsed.name),
        today=intent == "today",
    )


def decide(ctx: InboxContext, fresh: grammar.Parsed, rules: Settings) -> Outcome:
    """Return the reply and effects for one inbound text, parsed once (`fresh`: as if no step
    were waiting)."""
    if _looks_like_a_loop(ctx):
        return Outcome("suppressed", None)
    in_step = _live_step(ctx) is not None
    parsed = grammar.as_step_answer(fresh, ctx.text) if in_step else fresh
    language = (
        ctx.volunteer.language
        if ctx.volunteer
        else guess_language(ctx.text, rules.DEFAULT_LANGUAGE, ctx.sender_language)
    )
    if parsed.intent in ("stop", "start"):
        return _subscription(ctx, parsed.intent == "stop", language)
    if ctx.volunteer is None:
        recruited = recruitment.for_stranger(ctx, fresh, rules)
        if recruited is not None:
            return recruited
        if ctx.channel == "telegram":  # a private chat not linked yet: link it
            return linking.unlinked_chat(ctx, language)
        return _courtesy(ctx, "not_registered", language)
    if ctx.volunteer.status in ("removed", "resigned"):
        return _courtesy(ctx, "removed", language)
    if in_step:
        return _answer_step(ctx, parsed, fresh, rules)
    return _act(ctx, parsed, rules)


def _subscription(ctx: InboxContext, stop: bool, language: str) -> Outcome:
    # Any question waiting for an answer is moot once someone opts out or back in.
    effects: tuple[Effect, ...] = (SetOptOut(stop),)
    if ctx.volunteer is not None:
        effects += (ClearConversation(),)
    draft = ctx.applicant.application if ctx.applicant else None
    if stop and draft is not None and draft.status == "draft":
        effects += (DiscardApplication(draft.id),)  # someone who says STOP leaves nothing kept
    if stop:
        reply = Reply(texts.render("stopped", language), "stop_confirm", despite_opt_out=True)
        return Outcome("stop", reply, effects)
    return Outcome("start", Reply(texts.render("started", language), "reply"), effects)


def _looks_like_a_loop(ctx: InboxContext) -> bool:
    history = ctx.history
    return (
        history.same_text_answers >= REPEAT_ANSWERS
        or history.echoes_our_reply
        or history.echoed_recently
        or history.messages_last_two_minutes >= FLOOD_LIMIT
    )


def _courtesy(ctx: InboxContext, key: str, language: str) -> Outcome:
    # One polite answer a day at most: this caps what an SMS flood can cost.
    if ctx.history.courtesy_reply_within_day:
        return Outcome(key, None)
    return Outcome(key, Reply(texts.render(key, language), key))


def _live_step(ctx: InboxContext) -> str | None:
    step = ctx.conversation
    if step is None or step.expires_at <= ctx.received_at:
        return None
    return step.step


def _answer_step(
    ctx: InboxContext, parsed: grammar.Parsed, fresh: grammar.Parsed, rules: Settings
) -> Outcome:
    step = ctx.conversation
    vol = ctx.volunteer
    assert step is not None and vol is not None
    if step.step == recruitment.QUIT_STEP:
        answered = recruitment.answer_quit(ctx, fresh, rules)
        return answered or _with_step_cleared(_act(ctx, fresh, rules))
    if parsed.intent == "help":
        return _act(ctx, parsed, rules)
    if step.step == CONFIRM_STEP and parsed.intent == "step_answer" and parsed.description == "1":
        confirmed = grammar.Parsed(**{**step.data, "confirm": False})
        return _with_step_cleared(_act(ctx, confirmed, rules))
    if step.step in (reports.CATEGORY_STEP, reports.DESCRIPTION_STEP):
        assert ctx.reports is not None
        return _answer_report_step(ctx, step.step, step.data, rules)
    # Anything else drops the question and is read as a fresh text.
    return _with_step_cleared(_act(ctx, fresh, rules))


def _answer_report_step(
    ctx: InboxContext, step: str, data: dict[str, object], rules: Settings
) -> Outcome:
    vol, rc, now = ctx.volunteer, ctx.reports, ctx.received_at
    assert vol is not None and rc is not None
    if step == reports.CATEGORY_STEP:
        media = reports.media_of(data) + ctx.media
        return reports.answer_category(vol, rc, {**data, "media": media}, ctx.text, now, rules)
    return reports.answer_description(vol, rc, data, ctx.text, ctx.media, now, rules)


def _with_step_cleared(outcome: Outcome) -> Outcome:
    effects = (ClearConversation(), *outcome.effects)
    return Outcome(outcome.intent, outcome.reply, effects, outcome.notices)


def _act(ctx: InboxContext, parsed: grammar.Parsed, rules: Settings) -> Outcome:
    vol = ctx.volunteer
    assert vol is not None
    now = ctx.received_at
    if parsed.confirm:
        return _ask_first(ctx, parsed, rules)
    if parsed.intent == "undo":
        return _undo(ctx, rules)
    if parsed.intent in ("check_in", "check_out"):
        assert ctx.patrol is not None
        action = {"check_in": patrol.check_in, "check_out": patrol.check_out}
        return action[parsed.intent](vol, ctx.patrol, now, rules)
    if ctx.media and not ctx.text.strip():
        return _photo_only(ctx, rules)
    if ctx.location is not None and not ctx.text.strip():
        return _location_only(ctx)
    if parsed.intent in _REPORT_INTENTS:
        return _report_intent(ctx, parsed, rules)
    if parsed.intent == "confirm_session":
        if not parsed.name:
            return Outcome(
                "confirm_session", Reply(texts.render("confirm_needs_name", vol.language), "reply")
            )
        return patrol.confirm_session(vol, ctx.confirm_target, parsed.name, rules)
    if parsed.intent in ("leave", "back"):
        return _leave(ctx, parsed, rules)
    if parsed.intent == "today":
        return leads.today(vol, ctx.today, now, rules)
    if parsed.intent == "points" and ctx.points is not None:
        return Outcome("points", Reply(_points_text(ctx), "reply"))
    menu = grammar.help_text(vol.language)
    if parsed.intent == "help":
        return Outcome("help", Reply(menu, "reply"))
    if parsed.intent == "quit":
        return recruitment.ask_to_quit(ctx, rules)
    if parsed.intent in ("apply", "agree"):
        body = texts.render("apply_already_serving", vol.language, menu=menu)
        return Outcome(parsed.intent, Reply(body, "reply"))
    return Outcome("unknown", Reply(texts.render("unknown", vol.language, menu=menu), "reply"))


def _undo(ctx: InboxContext, rules: Settings) -> Outcome:
    """Take back whichever came last of the sender's check-in, check-out or report."""
    vol, day, rc, now = ctx.volunteer, ctx.patrol, ctx.reports, ctx.received_at
    assert vol is not None and day is not None and rc is not None
    report = rc.own_recent
    window = timedelta(minutes=rules.UNDO_MINUTES)
    if report is not None and report.status != "withdrawn" and now - report.created_at <= window:
        patrolled_at = patrol.last_action_at(day)
        if patrolled_at is None or report.created_at >= patrolled_at:
            return reports.withdraw(vol, report, rc, now, rules)
    return patrol.undo(vol, day, now, rules)


def _location_only(ctx: InboxContext) -> Outcome:
    vol, rc, location = ctx.volunteer, ctx.reports, ctx.location
    assert vol is not None and rc is not None and location is not None
    recent = reports.recent_own_report(rc, ctx.received_at)
    if recent is None:
        body = texts.render("location_needs_report", vol.language)
        return Outcome("location", Reply(body, "reply"))
    return reports.attach_location(vol, recent, location)


def _photo_only(ctx: InboxContext, rules: Settings) -> Outcome:
    vol, rc = ctx.volunteer, ctx.reports
    assert vol is not None and rc is not None
    recent = reports.recent_own_report(rc, ctx.received_at)
    if recent is not None:
        return reports.attach_photos(vol, recent, ctx.media)
    return reports.start_guided(vol, ctx.media, ctx.received_at, rules)


def _report_intent(ctx: InboxContext, parsed: grammar.Parsed, rules: Settings) -> Outcome:
    vol, rc, now = ctx.volunteer, ctx.reports, ctx.received_at
    assert vol is not None and rc is not None
    if parsed.intent == "report":
        return _new_report(ctx, parsed, rules)
    number = parsed.report
    if number is None:
        zh, en = _NUMBER_EXAMPLE[parsed.intent]
        return reports.needs_number(vol.language, zh if vol.language == "zh" else en)
    note = parsed.description or ""
    actions = {
        "report_status": lambda: reports.status(vol, rc, number, rules.tz),
        "fix_confirmed": lambda: reports.confirm_fix(vol, rc, number, now, rules),
        "fix_not_done": lambda: reports.reject_fix(vol, rc, number),
        "ack": lambda: reports.acknowledge(vol, rc, number, now, rules),
        "resolve": lambda: reports.resolve(vol, rc, number, note, now, rules),
        "reject": lambda: reports.reject(vol, rc, number, note, now),
    }
    return actions[parsed.intent]()


def _new_report(ctx: InboxContext, parsed: grammar.Parsed, rules: Settings) -> Outcome:
    vol, rc, now = ctx.volunteer, ctx.reports, ctx.received_at
    assert vol is not None and rc is not None
    description = (parsed.description or "").strip()
    if parsed.category is not None and (description or ctx.media):
        return reports.file_report(vol, rc, parsed.category, description, ctx.media, now, rules)
    data: dict[str, object] = {"media": ctx.media, "description": description}
    if parsed.category is not None:
        return reports.ask_description(vol, {**data, "category": parsed.category}, now, rules)
    return reports.start_guided(vol, ctx.media, now, rules, description=description)


def _leave(ctx: InboxContext, parsed: grammar.Parsed, rules: Settings) -> Outcome:
    vol, rc, now = ctx.volunteer, ctx.reports, ctx.received_at
    assert vol is not None
    if parsed.intent == "back":
        return leave.come_back(vol, ctx.partner, now, rules)
    assert rc is not None
    if parsed.name:
        return leave.leave_for(
            vol, parsed.name, parsed.days, ctx.leave_target, rc.leads, now, rules
        )
    return leave.take_leave(vol, parsed.days, ctx.partner, rc.leads, now, rules)


def _ask_first(ctx: InboxContext, parsed: grammar.Parsed, rules: Settings) -> Outcome:
    vol = ctx.volunteer
    assert vol is not None
    data = {k: v for k, v in asdict(parsed).items() if k != "confirm"}
    expires = ctx.received_at + timedelta(minutes=rules.CONVERSATION_TIMEOUT_MIN)
    effects: tuple[Effect, ...] = (SetConversation(CONFIRM_STEP, data, expires),)
    body = texts.render("did_you_mean", vol.language, keyword=parsed.keyword or parsed.intent)
    return Outcome("did_you_mean", Reply(body, "reply"), effects)


def _points_text(ctx: InboxContext) -> str:
    vol, points = ctx.volunteer, ctx.points
    assert vol is not None and points is not None
    return texts.render(
        "points",
        vol.language,
        name=texts.short_name(vol.name, vol.language),
        balance=points.balance,
        month=points.this_month,
        rank=points.rank,
        ranked=points.ranked,
    )
