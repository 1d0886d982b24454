"""Lead and office groups on Telegram: reading commands and buttons, who may act, what to say.

Pure functions. A group command is read into a `Command`; a lead command becomes the same
`grammar.Parsed` an SMS would give (`/ack 12` is `受理12`), so it runs through the same
decisions as a lead's text; office commands go to the office's channel-free shells.
Bots in groups run in privacy mode: they see commands, replies to their own messages and button
presses, nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from steward.flows import grammar, texts

LEAD_COMMANDS = ("today", "reports", "ack", "resolve", "reject", "confirm", "leave", "roster")
OFFICE_ONLY = (
    "digest",
    "flags",
    "keep",
    "remove",
    "award",
    "redeem",
    "export",
    "assess",
    "applicants",
    "approve",
    "decline",
)
# Buttons on a report card (callback data "ack:12") and what each stands for.
CARD_ACTIONS = ("ack", "resolve", "reject")
# The question we ask after 办结 / 驳回 is pressed; the answer is a reply to it, read back here.
_NOTE_PROMPT = re.compile(r"#(\d+)\s*(办结|驳回|fixed|rejected)", re.IGNORECASE)
_COMMAND = re.compile(r"^/([A-Za-z_]+)(?:@(\w+))?(?:\s+(.*))?$", re.DOTALL)
# Chinese mobiles (with or without +86) and other E.164 numbers, as they appear in a text.
_PHONE = re.compile(
    r"(?<![\d*])(\+?86)?(1[3-9]\d)(\d{4})(\d{4})(?!\d)|(?<!\d)(\+\d{2,4})(\d{4,})(\d{4})(?!\d)"
)


@dataclass(frozen=True)
class Command:
    name: str
    args: str = ""
    button: bool = False  # came from a report card's button rather than typed


def parse_command(text: str, bot_username: str | None = None) -> Command | None:
    """`/ack@bot 12` → Command("ack", "12"); None when the text is not a command for us."""
    match = _COMMAND.match(text.strip())
    if match is None:
        return None
    name, addressed_to, args = match.group(1).lower(), match.group(2), match.group(3) or ""
    if addressed_to and bot_username and addressed_to.lower() != bot_username.lower():
        return None  # a command for another bot in the same group
    return Command(name, args.strip())


def parse_button(data: str) -> Command | None:
    """A report card's callback data, "ack:12", as the command it stands for."""
    action, _, number = data.partition(":")
    if action not in CARD_ACTIONS or not number.isdigit():
        return None
    return Command(action, number, button=True)


def note_reply(prompt_text: str, answer: str) -> Command | None:
    """An answer to our "#12 办结: reply with a note" question, as /resolve 12 note."""
    match = _NOTE_PROMPT.search(prompt_text)
    if match is None or not answer.strip():
        return None
    action = "resolve" if match.group(2).lower() in ("办结", "fixed") else "reject"
    return Command(action, f"{match.group(1)} {answer.strip()}")


@dataclass(frozen=True)
class Who:
    role: str
    street_id: int
    community_id: int


def refusal(
    command: Command, group_role: str, group_street: int, group_community: int | None, actor: Who
) -> str | None:
    """Why `actor` may not run `command` in this group (a texts key), or None when they may.

    Leads act in their own community's group; office staff in their street's office group and
    in its communities' lead groups. Office commands belong to the office group.
    """
    if actor.role == "office" and actor.street_id == group_street:
        if command.name in OFFICE_ONLY and group_role != "office":
            return "group_office_only"
        return None
    if actor.role == "lead" and group_role == "lead" and actor.community_id == group_community:
        return "group_office_only" if command.name in OFFICE_ONLY else None
    return "group_refused"


def as_lead_text(command: Command) -> grammar.Parsed | None:
    """The SMS reading of a lead command (None when its arguments do not read)."""
    args = command.args
    if command.name == "today":
        return grammar.Parsed("today")
    if command.name in ("ack", "resolve", "reject"):
        number, _, note = args.partition(" ")
        number = number.lstrip("#")
        if not number.isdigit():
            return None
        if command.name != "ack" and not note.strip():
            return None  # a fix or a refusal says why
        return grammar.Parsed(command.name, report=int(number), description=note.strip() or None)
    if command.name == "confirm":
        return grammar.Parsed("confirm_session", name=args) if args else None
    if command.name == "leave":
        name, _, days = args.rpartition(" ")
        days = days.rstrip("天日").strip()
        if not name.strip() or not days.isdigit():
            return None
        return grammar.Parsed("leave", name=name.strip(), days=int(days))
    return None


def mask_phones(text: str) -> str:
    """Hide the middle of every phone number (`138****5678`): group chats show no numbers."""

    def hide(match: re.Match[str]) -> str:
        if match.group(2):
            return f"{match.group(2)}****{match.group(4)}"  # 138****5678, as SPEC §6 shows
        return f"{match.group(5)}****{match.group(7)}"

    return _PHONE.sub(hide, text)


def usage(command: str, language: str) -> str:
    return render("group_usage", language, usage=_USAGE.get(command, "/" + command))


_USAGE = {
    "ack": "/ack 12",
    "resolve": "/resolve 12 已清理",
    "reject": "/reject 12 重复上报",
    "confirm": "/confirm 王秀英",
    "leave": "/leave 王秀英 3",
    "keep": "/keep 王秀英",
    "remove": "/remove 王秀英",
    "award": "/award 王秀英 10 帮助邻居",
    "redeem": "/redeem 王秀英 50 雨伞",
    "export": "/export 2026-11",
    "assess": "/assess 2026-11",
    "approve": "/approve 3 P01",
    "decline": "/decline 3 名额已满",
    "bind": "/bind 邀请码",
}


def card_keyboard(number: int, language: str, status: str = "new") -> str | None:
    """The stored keyboard name of a report card: buttons for what can still be done."""
    if status == "new":
        return f"card:{number}:{language}"
    if status == "acknowledged":
        return f"cardack:{number}:{language}"
    return None


CARD_LABELS = {
    "zh": {"ack": "受理", "resolve": "办结", "reject": "驳回"},
    "en": {"ack": "Acknowledge", "resolve": "Resolve", "reject": "Reject"},
}


def card_buttons(keyboard: str) -> list[tuple[str, str]] | None:
    """(label, callback data) of the buttons a card keyboard name stands for."""
    kind, _, rest = keyboard.partition(":")
    number, _, language = rest.partition(":")
    labels = CARD_LABELS.get(language, CARD_LABELS["zh"])
    if kind == "card":
        actions: tuple[str, ...] = CARD_ACTIONS
    elif kind == "cardack":
        actions = ("resolve", "reject")
    else:
        return None
    return [(labels[a], f"{a}:{number}") for a in actions]


def card_update(card_text: str, action: str, by: str, note: str | None, language: str) -> str:
    """The card as it reads after a lead acted on it: its text and one line of what happened."""
    line = render(f"card_{action}", language, name=by, note=note or "")
    kept = card_text.split("\n— ", 1)[0]  # a card edited before shows only its newest action
    return f"{kept}\n— {line}".rstrip()


def note_prompt(number: int, action: str, language: str) -> str:
    return render(f"ask_{action}_note", language, number=number)


# Group messages are Telegram only: no SMS budget, but short all the same.
GROUP_TEXTS: dict[str, dict[str, str]] = {
    "group_unbound": {
        "zh": "本群尚未绑定。请街道办用 steward chats invite 生成邀请码，"
        "再在群里发送 /bind 邀请码。",
        "en": "This group is not bound yet. Ask the street office for a code "
        "(steward chats invite), then send /bind CODE here.",
    },
    "group_bound_lead": {
        "zh": "已绑定为{place}片长群。新上报、提醒将发到本群。命令：/today /reports /roster",
        "en": "Bound as the lead group of {place}. New reports and alerts come here. "
        "Commands: /today /reports /roster",
    },
    "group_bound_office": {
        "zh": "已绑定为{place}街道办群。日报、预警将发到本群。命令：/digest /flags /applicants",
        "en": "Bound as the office group of {place}. Digests and flags come here. "
        "Commands: /digest /flags /applicants",
    },
    "bind_unknown": {
        "zh": "邀请码无效，请核对后重发 /bind 邀请码。",
        "en": "That code is not valid. Check it and send /bind CODE again.",
    },
    "bind_used": {
        "zh": "该邀请码已被使用，请向街道办申请新码。",
        "en": "That code has been used already. Ask the street office for a new one.",
    },
    "bind_expired": {
        "zh": "该邀请码已过期（有效期7天），请向街道办申请新码。",
        "en": "That code has expired (codes last 7 days). Ask the street office for a new one.",
    },
    "group_not_linked": {
        "zh": "{name}，请先私聊本机器人并分享手机号完成绑定，再在群里使用命令。",
        "en": "{name}, please link your account first: open a private chat with me and share "
        "your number.",
    },
    "group_refused": {
        "zh": "{name}，只有本社区片长和街道办工作人员可以使用此命令。",
        "en": "{name}, only this community's leads and the street office may use this command.",
    },
    "group_office_only": {
        "zh": "此命令请在街道办群中使用。",
        "en": "Please use this command in the street office group.",
    },
    "group_usage": {"zh": "用法：{usage}", "en": "Usage: {usage}"},
    "group_unknown_command": {
        "zh": "未知命令。片长命令：/today /reports /ack /resolve /reject /confirm /leave /roster",
        "en": "Unknown command. Lead commands: /today /reports /ack /resolve /reject /confirm "
        "/leave /roster",
    },
    "report_card": {
        "zh": "{urgent}新上报#{number}【{category}】{place}{duplicate}\n"
        "{reporter}{phone}：{description}\n转{department}",
        "en": "{urgent}New report #{number} {category}, {place}{duplicate}\n"
        "{reporter} {phone}: {description}\n({department})",
    },
    "card_ack": {"zh": "已受理（{name}）{note}", "en": "acknowledged by {name}{note}"},
    "card_resolve": {"zh": "已办结（{name}）：{note}", "en": "resolved by {name}: {note}"},
    "card_reject": {"zh": "已驳回（{name}）：{note}", "en": "rejected by {name}: {note}"},
    "ask_resolve_note": {
        "zh": "#{number} 办结：请回复本消息，写明处理结果。",
        "en": "#{number} fixed: reply to this message with what was done.",
    },
    "ask_reject_note": {
        "zh": "#{number} 驳回：请回复本消息，写明原因。",
        "en": "#{number} rejected: reply to this message with the reason.",
    },
    "reports_none": {"zh": "{place}目前没有待办上报。", "en": "No open reports in {place}."},
    "reports_head": {"zh": "{place}待办上报{count}条：", "en": "{place}: {count} open reports"},
    "roster_head": {"zh": "{place}名册（{count}组）：", "en": "{place} roster ({count} pairs):"},
    "roster_vacancy": {"zh": "空缺", "en": "vacancy"},
    "applicants_none": {
        "zh": "{place}目前没有待处理的报名。",
        "en": "No open applications in {place}.",
    },
    "applicants_head": {
        "zh": "{place}报名{count}份（/approve 编号 组号，/decline 编号 原因）：",
        "en": "{place}: {count} applications (/approve N PAIR, /decline N reason):",
    },
    "applicant_not_here": {
        "zh": "{place}没有编号{number}的报名。",
        "en": "No application number {number} in {place}.",
    },
    "applicant_approved": {
        "zh": "报名{number}（{name}）已同意，分入{pair}组，已发承诺书等其回复“同意”。",
        "en": "Application {number} ({name}) approved into pair {pair}; the pledge is sent.",
    },
    "applicant_declined": {
        "zh": "报名{number}（{name}）已婉拒，已告知本人。",
        "en": "Application {number} ({name}) declined; they have been told.",
    },
    "export_caption": {
        "zh": "{place}{month}志愿服务时长：{people}人，共{hours}小时（已确认）。",
        "en": "{place} service hours, {month}: {people} volunteers, {hours} confirmed hours.",
    },
    "assess_caption": {
        "zh": "{place}{month}考核表：管家与社区两页。",
        "en": "{place} assessment, {month}: stewards and communities.",
    },
    "points_beyond_balance": {
        "zh": "{name}现有{balance}分，不够兑换{asked}分。",
        "en": "{name} has {balance} points, not enough to redeem {asked}.",
    },
    "points_no_such_person": {
        "zh": "本街道名册上没有“{name}”，请核对姓名或用手机号。",
        "en": "Nobody called {name} in this street; check the name or use the phone number.",
    },
}


@dataclass(frozen=True)
class OpenReportLine:
    number: int
    category: int
    urgent: bool
    place: str
    status: str
    created_at: datetime


@dataclass(frozen=True)
class RosterPair:
    code: str
    patrol_start: str
    members: tuple[tuple[str, str, str], ...]  # name, phone, status


# A group message stays readable on a phone: beyond this, the list says how many more.
MAX_LINES = 30


def reports_list(place: str, reports: list[OpenReportLine], language: str, tz: ZoneInfo) -> str:
    if not reports:
        return render("reports_none", language, place=place)
    lines = [render("reports_head", language, place=place, count=len(reports))]
    for r in reports[:MAX_LINES]:
        urgent = "❗" if r.urgent else ""
        when = r.created_at.astimezone(tz).strftime("%m-%d %H:%M")
        category = grammar.category_name(r.category, language)
        status = texts.status_name(r.status, language)
        lines.append(
            f"{urgent}#{r.number} {category} {texts.clip(r.place, 30)} · {status} · {when}"
        )
    if len(reports) > MAX_LINES:
        lines.append(f"… +{len(reports) - MAX_LINES}")
    return mask_phones("\n".join(lines))


def roster_list(place: str, pairs: list[RosterPair], language: str) -> str:
    lines = [render("roster_head", language, place=place, count=len(pairs))]
    for pair in pairs[:MAX_LINES]:
        people = [
            f"{name} {texts.mask_phone(phone)}" + ("" if status == "active" else f"（{status}）")
            for name, phone, status in pair.members
        ]
        if len(people) < 2:
            people.append(render("roster_vacancy", language))
        lines.append(f"{pair.code} {pair.patrol_start} " + "，".join(people))
    if len(pairs) > MAX_LINES:
        lines.append(f"… +{len(pairs) - MAX_LINES}")
    return "\n".join(lines)


def render(key: str, language: str, **values: object) -> str:
    templates = GROUP_TEXTS[key]
    return (templates.get(language) or templates["zh"]).format(**values)
