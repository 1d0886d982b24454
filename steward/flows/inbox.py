"""Decide what one inbound text means and what happens: a pure function of its context.

Order matters and mirrors SPEC §3: loop guards first (so an auto-responder never ping-pongs),
then STOP/START (never trapped in a step), then who the sender is, then any waiting step,
then the intent.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import timedelta

from steward.flows import grammar, patrol, texts
from steward.flows.state import (
    ClearConversation,
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
_CJK = re.compile(r"[\u3400-\u9fff]")

# Intents handled by flows that later issues bring (reports, leave, lead work).
_NOT_YET = frozenset(
    {
        "report",
        "report_status",
        "fix_confirmed",
        "fix_not_done",
        "leave",
        "back",
        "ack",
        "resolve",
        "reject",
        "today",
        "confirm_session",
    }
)


def guess_language(text: str, default: str) -> str:
    """Answer strangers in the script they wrote in."""
    if _CJK.search(text):
        return "zh"
    return "en" if re.search(r"[A-Za-z]", text) else default


def decide(ctx: InboxContext, rules: Settings) -> Outcome:
    """Return the reply and effects for one inbound text."""
    if _looks_like_a_loop(ctx):
        return Outcome("suppressed", None)
    in_step = _live_step(ctx) is not None
    parsed = grammar.parse(ctx.text, in_step=in_step)
    language = (
        ctx.volunteer.language
        if ctx.volunteer
        else guess_language(ctx.text, rules.DEFAULT_LANGUAGE)
    )
    if parsed.intent in ("stop", "start"):
        return _subscription(ctx, parsed.intent == "stop", language)
    if ctx.volunteer is None:
        return _courtesy(ctx, "not_registered", language)
    if ctx.volunteer.status == "removed":
        return _courtesy(ctx, "removed", language)
    if in_step:
        return _answer_step(ctx, parsed, rules)
    return _act(ctx, parsed, rules)


def _subscription(ctx: InboxContext, stop: bool, language: str) -> Outcome:
    # Any question waiting for an answer is moot once someone opts out or back in.
    effects: tuple[Effect, ...] = (SetOptOut(stop),)
    if ctx.volunteer is not None:
        effects += (ClearConversation(),)
    if stop:
        reply = Reply(texts.render("stopped", language), "stop_confirm", despite_opt_out=True)
        return Outcome("stop", reply, effects)
    return Outcome("start", Reply(texts.render("started", language), "reply"), effects)


def _looks_like_a_loop(ctx: InboxContext) -> bool:
    history = ctx.history
    return (
        history.same_text_answered_recently
        or history.echoes_our_reply
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


def _answer_step(ctx: InboxContext, parsed: grammar.Parsed, rules: Settings) -> Outcome:
    step = ctx.conversation
    assert step is not None
    if parsed.intent == "help":
        return _act(ctx, parsed, rules)
    if step.step == CONFIRM_STEP and parsed.intent == "step_answer" and parsed.description == "1":
        confirmed = grammar.Parsed(**{**step.data, "confirm": False})
        outcome = _act(ctx, confirmed, rules)
        return Outcome(outcome.intent, outcome.reply, (ClearConversation(), *outcome.effects))
    # Anything else drops the question and is read as a fresh text.
    outcome = _act(ctx, grammar.parse(ctx.text), rules)
    return Outcome(outcome.intent, outcome.reply, (ClearConversation(), *outcome.effects))


def _act(ctx: InboxContext, parsed: grammar.Parsed, rules: Settings) -> Outcome:
    vol = ctx.volunteer
    assert vol is not None
    now = ctx.received_at
    if parsed.confirm:
        return _ask_first(ctx, parsed, rules)
    if parsed.intent in ("check_in", "check_out", "undo"):
        assert ctx.patrol is not None
        action = {"check_in": patrol.check_in, "check_out": patrol.check_out, "undo": patrol.undo}
        return action[parsed.intent](vol, ctx.patrol, now, rules)
    if parsed.intent == "points" and ctx.points is not None:
        return Outcome("points", Reply(_points_text(ctx), "reply"))
    menu = grammar.help_text(vol.language)
    if parsed.intent == "help":
        return Outcome("help", Reply(menu, "reply"))
    if parsed.intent in _NOT_YET:
        body = texts.render("not_yet_available", vol.language, menu=menu)
        return Outcome(parsed.intent, Reply(body, "reply"))
    return Outcome("unknown", Reply(texts.render("unknown", vol.language, menu=menu), "reply"))


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
