"""Recruitment by text (SPEC §9): the application conversation, the pledge, resigning, and the
candidates a vacancy message names. Pure functions of the loaded context.

The application of someone not on the roster lives in its own row (a `draft` until the last
answer), so its waiting step survives restarts and replicas like every other conversation.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import replace
from datetime import date, datetime, timedelta

from steward.clock import local_date
from steward.flows import grammar, texts
from steward.flows.segments import segment_count
from steward.flows.state import (
    ApplicantContext,
    ApplicationState,
    Candidate,
    ClearConversation,
    CommunityChoice,
    Contact,
    DiscardApplication,
    Effect,
    InboxContext,
    JoinFromApplication,
    Notice,
    Outcome,
    Reply,
    Resign,
    SaveApplication,
    SetConversation,
    VacancyContext,
)
from steward.settings import Settings

NAME, COMMUNITY, BIRTH, PARTY, EXPERIENCE, LANE = (
    "apply_name",
    "apply_community",
    "apply_birth",
    "apply_party",
    "apply_experience",
    "apply_lane",
)
STEPS = (NAME, COMMUNITY, BIRTH, PARTY, EXPERIENCE, LANE)
QUESTION = {
    NAME: "apply_ask_name",
    BIRTH: "apply_ask_birth",
    PARTY: "apply_ask_party",
    EXPERIENCE: "apply_ask_experience",
    LANE: "apply_ask_lane",
}
QUIT_STEP = "confirm_quit"
MENU_MAX = 9  # a numbered community menu only when the deployment has at most this many
ADULT_MONTHS = 18 * 12
PLEDGE_DAYS = 7
CANDIDATES_SHOWN = 3
NAME_MAX = 20
LINE_MAX = 100  # one line of experience or lane, as stored

_YES = frozenset({"是", "是的", "对", "党员", "是党员", "中共党员", "yes", "y"})
_NO = frozenset({"否", "不是", "不", "非党员", "群众", "没有", "无", "no", "n"})
_NOTHING = frozenset(
    {"无", "没有", "没", "暂无", "不确定", "不知道", "都行", "都可以", "随便", "跳过"}
    | {"none", "no", "nothing", "n/a", "na", "skip", "-"}
)
_CN_YEAR_DIGITS = {c: str(n) for n, c in enumerate("零一二三四五六七八九")} | {"〇": "0", "○": "0"}
_CN_MONTHS = {
    "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6,
    "七": 7, "八": 8, "九": 9, "十": 10, "十一": 11, "十二": 12,
}  # fmt: skip
# 1965年3月(5日), 1965.3, 1965-03, 1965/3, 1965 3, 65年3月; then maybe a day and 生/出生.
_BIRTH = re.compile(
    r"(\d{4}|\d{2}(?=\s*年))\s*(?:年|[.\-/\s])\s*(\d{1,2})\s*(?:月份?)?"
    r"(?:\s*[.\-/]?\s*\d{1,2}\s*[日号]?)?\s*(?:出生|生)?"
)
_BIRTH_DIGITS = re.compile(r"(\d{4})(\d{2})(\d{2})?")
_CN_BIRTH = re.compile(r"([零〇○一二三四五六七八九]{2,4})年(十[一二]?|[一二三四五六七八九])月")


# ---- reading what applicants write --------------------------------------------------------


def parse_birth(text: str, today: date) -> tuple[int, int] | None:
    """Read a year and month of birth as people write them; None when it is not one."""
    norm = unicodedata.normalize("NFKC", text).strip().rstrip("。.!！ ")
    year = month = None
    if found := _CN_BIRTH.fullmatch(norm):
        year = int("".join(_CN_YEAR_DIGITS[c] for c in found.group(1)))
        month = _CN_MONTHS[found.group(2)]
        if len(found.group(1)) == 2:
            year += 1900
    elif found := _BIRTH_DIGITS.fullmatch(norm) or _BIRTH.fullmatch(norm):
        year, month = int(found.group(1)), int(found.group(2))
        if year < 100:  # 65年3月: a grown-up born last century
            year += 1900
    if year is None or month is None or not 1 <= month <= 12:
        return None
    if year < today.year - 120 or (year, month) > (today.year, today.month):
        return None
    return year, month


def age_in_months(birth: tuple[int, int], today: date) -> int:
    """Whole months since the month of birth (the day is not asked: the month counts)."""
    return (today.year - birth[0]) * 12 + today.month - birth[1]


def age_of(birth: str, today: date) -> int | None:
    """Age in years from a stored YYYY-MM."""
    try:
        year, month = (int(part) for part in birth.split("-")[:2])
    except ValueError:
        return None
    return age_in_months((year, month), today) // 12


def parse_yes_no(text: str) -> bool | None:
    norm = grammar.normalise(text)
    if norm in _YES:
        return True
    if norm in _NO:
        return False
    return None


def parse_line(text: str) -> str:
    """One line of free text, or "" for 无 / NONE."""
    line = grammar.display_text(text)
    return "" if grammar.normalise(line) in _NOTHING else texts.clip(line, LINE_MAX)


def _plain(name: str) -> str:
    norm = grammar.normalise(name).replace(" ", "")
    return norm[:-2] if norm.endswith("社区") and len(norm) > 2 else norm


def choose_community(text: str, communities: tuple[CommunityChoice, ...]) -> CommunityChoice | None:
    """The community an answer names: its menu number, its name, or a unique part of it."""
    norm = grammar.normalise(text)
    if norm.isdigit() and len(communities) <= MENU_MAX:
        index = int(norm) - 1
        return communities[index] if 0 <= index < len(communities) else None
    wanted = _plain(text)
    if not wanted:
        return None
    exact = [c for c in communities if _plain(c.name) == wanted]
    if len(exact) == 1:
        return exact[0]
    partial = [c for c in communities if wanted in _plain(c.name) and len(wanted) >= 2]
    return partial[0] if len(partial) == 1 else None


# ---- asking ---------------------------------------------------------------------------------


def question(step: str, language: str, communities: tuple[CommunityChoice, ...]) -> str:
    """The question a step asks; the community menu only when it is short enough to send."""
    if step != COMMUNITY:
        return texts.render(QUESTION[step], language)
    if 0 < len(communities) <= MENU_MAX:
        menu = " ".join(f"{i}{c.name}" for i, c in enumerate(communities, 1))
        asked = texts.render("apply_ask_community_menu", language, menu=menu)
        if segment_count(asked) <= 1:
            return asked
    return texts.render("apply_ask_community", language)


def _asking(
    app_id: int | None,
    step: str,
    language: str,
    ac: ApplicantContext,
    now: datetime,
    rules: Settings,
    *,
    wrap: str | None = None,
    changes: dict[str, object] | None = None,
) -> Outcome:
    expires = now + timedelta(minutes=rules.CONVERSATION_TIMEOUT_MIN)
    body = question(step, language, ac.communities)
    if wrap is not None:
        body = texts.render(wrap, language, question=body)
    save = SaveApplication(app_id, {**(changes or {}), "step": step, "step_expires_at": expires})
    return Outcome("apply", Reply(body, "reply"), (save,))


# ---- the conversation -----------------------------------------------------------------------


def for_stranger(ctx: InboxContext, fresh: grammar.Parsed, rules: Settings) -> Outcome | None:
    """Answer someone not on the roster when the text belongs to recruitment; None otherwise."""
    ac = ctx.applicant or ApplicantContext(None)
    app, now = ac.application, ctx.received_at
    if app is None:
        if fresh.intent != "apply":
            return None
        language = _language_of(ctx, rules)
        start = {"language": language, "started_at": now}
        return _asking(None, NAME, language, ac, now, rules, changes=start)
    language = app.language
    if app.status == "draft":
        live = app.step in STEPS and app.step_expires_at is not None and app.step_expires_at > now
        if live and app.step is not None:
            parsed = grammar.as_step_answer(fresh, ctx.text)
            if parsed.intent == "help":
                return _asking(app.id, app.step, language, ac, now, rules, wrap="apply_help")
            if fresh.intent == "apply":  # 报名 sent again (no reply seen yet?): ask again
                return _asking(app.id, app.step, language, ac, now, rules)
            return _answer(ctx, app, ac, app.step, rules)
        if fresh.intent == "apply":
            step = app.step if app.step in STEPS else NAME
            return _asking(app.id, step, language, ac, now, rules, wrap="apply_resume")
        return Outcome("apply", Reply(texts.render("apply_paused", language), "reply"))
    if app.status == "approved":
        if fresh.intent == "agree":
            return accept_pledge(app, ac, now, rules)
        return Outcome("agree", Reply(texts.render("pledge_reminder", language), "reply"))
    return Outcome("apply", Reply(texts.render("apply_pending", language), "reply"))


def _language_of(ctx: InboxContext, rules: Settings) -> str:
    from steward.flows.inbox import guess_language  # inbox builds on this module

    return guess_language(ctx.text, rules.DEFAULT_LANGUAGE, ctx.sender_language)


def _answer(
    ctx: InboxContext, app: ApplicationState, ac: ApplicantContext, step: str, rules: Settings
) -> Outcome:
    now, language, text = ctx.received_at, app.language, ctx.text
    following = STEPS[STEPS.index(step) + 1] if step != LANE else None
    changes: dict[str, object] = {}
    if step == NAME:
        name = grammar.display_text(text)
        if not name or len(name) > NAME_MAX or name.isdigit():
            return _asking(app.id, step, language, ac, now, rules, wrap="apply_again")
        changes["name"] = name
    elif step == COMMUNITY:
        chosen = choose_community(text, ac.communities)
        if chosen is None:
            return _asking(app.id, step, language, ac, now, rules, wrap="apply_again")
        changes |= {"community_id": chosen.id}
    elif step == BIRTH:
        today = local_date(now, rules.tz)
        birth = parse_birth(text, today)
        if birth is None:
            return _asking(app.id, step, language, ac, now, rules, wrap="apply_again")
        if age_in_months(birth, today) < ADULT_MONTHS:
            body = texts.render("apply_under_18", language)
            return Outcome("apply", Reply(body, "reply"), (DiscardApplication(app.id),))
        changes["birth"] = f"{birth[0]:04d}-{birth[1]:02d}"
    elif step == PARTY:
        member = parse_yes_no(text)
        if member is None:
            return _asking(app.id, step, language, ac, now, rules, wrap="apply_again")
        changes["party_member"] = member
    elif step == EXPERIENCE:
        changes["experience"] = parse_line(text)
    else:
        changes["lane"] = parse_line(text)
    if following is not None:
        return _asking(app.id, following, language, ac, now, rules, changes=changes)
    return _submit(replace(app, lane=str(changes["lane"])), ac, now, rules)


def _submit(app: ApplicationState, ac: ApplicantContext, now: datetime, rules: Settings) -> Outcome:
    """The last answer is in: the application waits for the street, the leads hear of it."""
    changes = {
        "lane": app.lane,
        "status": "pending",
        "step": None,
        "step_expires_at": None,
        "received_at": now,
    }
    today = local_date(now, rules.tz)
    notices = tuple(
        Notice(
            lead,
            application_alert(app, lead.language, today),
            "alert",
            f"applied:{app.id}:{lead.volunteer_id}",
        )
        for lead in ac.leads
    )
    body = texts.render("apply_received", app.language)
    return Outcome("apply", Reply(body, "reply"), (SaveApplication(app.id, changes),), notices)


def application_alert(app: ApplicationState, language: str, today: date) -> str:
    """What a community's leads read of a new application (the phone masked)."""
    none = texts.render("none_given", language)
    age = age_of(app.birth, today)
    marks = texts.render("mark_party", language) if app.party_member else ""
    body = texts.render(
        "application_lead",
        language,
        number=app.id,
        name=app.name,
        age=age if age is not None else "?",
        marks=marks,
        community=app.community_name,
        phone=texts.mask_phone(app.phone) if app.phone else "Telegram",
        experience=texts.clip(app.experience, 24) or none,
        lane=texts.clip(app.lane, 16) or none,
    )
    return body if segment_count(body) <= 2 else texts.clip(body, 130)


# ---- the pledge ---------------------------------------------------------------------------


def pledge_text(pair_code: str, zone: str, language: str) -> str:
    """The pledge's essentials and how to accept it (two segments at most)."""
    return texts.render("pledge", language, pair=pair_code, zone=texts.clip(zone, 12))


def accept_pledge(
    app: ApplicationState, ac: ApplicantContext, now: datetime, rules: Settings
) -> Outcome:
    """同意: the applicant joins the pair as an active steward; partner and leads are told."""
    language, pair, zone = app.language, app.pair_code, app.zone_name
    if ac.pair_members >= 2:
        body = texts.render("pledge_pair_full", language, pair=pair)
        notices = tuple(
            Notice(
                lead,
                texts.render(
                    "pledge_pair_full_lead", lead.language, name=app.name, pair=pair, number=app.id
                ),
                "alert",
                f"pledge_full:{app.id}:{lead.volunteer_id}:{now.isoformat()}",
            )
            for lead in ac.leads
        )
        return Outcome("agree", Reply(body, "reply"), (), notices)
    joined = JoinFromApplication(app.id, local_date(now, rules.tz))
    name = texts.short_name(app.name, language)
    body = texts.render("joined", language, name=name, pair=pair, zone=zone)
    told: list[Notice] = []
    if ac.partner is not None:
        mate = ac.partner
        phone = app.phone or "Telegram"
        told.append(
            Notice(
                mate,
                texts.render(
                    "joined_partner", mate.language, name=app.name, phone=phone, pair=pair
                ),
                "alert",
                f"joined_partner:{app.id}",
            )
        )
    for lead in ac.leads:
        told.append(
            Notice(
                lead,
                texts.render("joined_lead", lead.language, name=app.name, pair=pair, zone=zone),
                "alert",
                f"joined:{app.id}:{lead.volunteer_id}",
            )
        )
    return Outcome("agree", Reply(body, "reply"), (joined,), tuple(told))


def pledge_due(approved_at: datetime, now: datetime) -> bool:
    """Tell whether an approval has waited the whole week for 同意."""
    return now - approved_at >= timedelta(days=PLEDGE_DAYS)


def lapsed_notices(
    number: int,
    name: str,
    pair_code: str,
    leads: Iterable[Contact],
    candidates: tuple[Candidate, ...],
) -> tuple[Notice, ...]:
    """Tell the leads that an approved applicant never accepted the pledge."""
    return tuple(
        Notice(
            lead,
            texts.render(
                "pledge_lapsed_lead",
                lead.language,
                number=number,
                name=name,
                pair=pair_code,
                candidates=candidate_line(candidates, lead.language),
            ),
            "alert",
            f"pledge_lapsed:{number}:{lead.volunteer_id}",
        )
        for lead in leads
    )


# ---- replacement (递补) -------------------------------------------------------------------


def rank_candidates(candidates: Iterable[Candidate]) -> tuple[Candidate, ...]:
    """The candidates to name, party members and the experienced first, then first come."""
    ordered = sorted(candidates, key=lambda c: (not c.party_member, not c.experienced, c.number))
    return tuple(ordered[:CANDIDATES_SHOWN])


def candidate_line(candidates: tuple[Candidate, ...], language: str) -> str:
    """ "候选：#12王芳（党员）…" for a vacancy message; "" when nobody has applied."""
    if not candidates:
        return ""
    shown = []
    for c in rank_candidates(candidates):
        marks = [
            texts.render(key, language).lstrip("，, ")
            for key, on in (("mark_party", c.party_member), ("mark_experienced", c.experienced))
            if on
        ]
        name = texts.clip(c.name, 8)
        if language == "en":
            shown.append(f"#{c.number} {name}" + (f" ({', '.join(marks)})" if marks else ""))
        else:
            shown.append(f"#{c.number}{name}" + (f"（{'、'.join(marks)}）" if marks else ""))
    joined = ", ".join(shown) if language == "en" else "、".join(shown)
    return texts.render("vacancy_candidates", language, candidates=joined)


def vacancy_notices(name: str, vacancy: VacancyContext, key: str) -> tuple[Notice, ...]:
    """Ask the leads to fill a pair's place, naming who applied (SPEC §9 replacement)."""
    if not vacancy.pair_code:
        return ()
    return tuple(
        Notice(
            lead,
            texts.render(
                "vacancy",
                lead.language,
                name=name,
                pair=vacancy.pair_code,
                zone=vacancy.zone_name,
                candidates=candidate_line(vacancy.candidates, lead.language),
            ),
            "alert",
            f"{key}:{lead.volunteer_id}",
        )
        for lead in vacancy.leads
    )


# ---- resigning (退出) -----------------------------------------------------------------------


def ask_to_quit(ctx: InboxContext, rules: Settings) -> Outcome:
    vol = ctx.volunteer
    assert vol is not None
    expires = ctx.received_at + timedelta(minutes=rules.CONVERSATION_TIMEOUT_MIN)
    effects: tuple[Effect, ...] = (SetConversation(QUIT_STEP, {}, expires),)
    return Outcome("quit", Reply(texts.render("quit_confirm", vol.language), "reply"), effects)


def answer_quit(ctx: InboxContext, fresh: grammar.Parsed, rules: Settings) -> Outcome | None:
    """`1` resigns; a bare other answer cancels; a real command is read as itself (None)."""
    vol, vacancy = ctx.volunteer, ctx.vacancy
    assert vol is not None
    answer = grammar.normalise(ctx.text)
    if answer == "1":
        assert vacancy is not None
        local = local_date(ctx.received_at, rules.tz)
        notices = vacancy_notices(vol.name, vacancy, f"vacancy:{vol.id}:{local.isoformat()}")
        if ctx.partner is not None:
            body = texts.render("quit_partner", ctx.partner.language, name=vol.name)
            notices += (Notice(ctx.partner, body, "alert", f"quit_partner:{vol.id}"),)
        effects: tuple[Effect, ...] = (ClearConversation(), Resign(vol.id))
        reply = Reply(texts.render("quit_done", vol.language), "reply")
        return Outcome("quit", reply, effects, notices)
    if fresh.intent not in ("unknown", "step_answer") and not answer.isdigit():
        return None
    body = texts.render("quit_cancelled", vol.language)
    return Outcome("quit", Reply(body, "reply"), (ClearConversation(),))
