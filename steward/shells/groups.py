"""A stored message from a Telegram lead or office group, decided and applied in the caller's
transaction (the processor's savepoint), like any text.

`/bind CODE` binds the group; an unbound group hears one line a day and nothing else. In a
bound group only the community's leads and the street's office staff may act (the Telegram
user linked to the roster by their private chat). Lead commands run through the very decisions
an SMS from that lead would (`flows.inbox.decide`); the answer goes to the group, phones
masked, and a report card whose report moved is edited to say so. Office commands call the
office's channel-free shells, nested in the same transaction.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from steward.clock import local_date
from steward.flows import groups, inbox
from steward.flows import office as office_rules
from steward.flows import points as points_rules
from steward.flows.digest import digest_text
from steward.flows.hours_export import to_xlsx
from steward.flows.state import MoveReport, Outcome, Reply, SenderHistory
from steward.settings import Settings
from steward.shells import digest as digest_shell
from steward.shells import points as points_shell
from steward.shells import recruitment as recruitment_shell
from steward.shells import review as review_shell
from steward.storage import chats_store, context, digest_store, effects, inbound, review_store
from steward.storage.chats_store import Actor, Binding
from steward.storage.models import InboundMessage, Role
from steward.storage.outbox_store import PRIORITY, NewMessage, enqueue, find_card
from steward.storage.unit import Connection, UnitOfWork

_LEAD_INTENTS = ("today", "ack", "resolve", "reject", "confirm", "leave")
_AMOUNT = re.compile(r"^(.+?)\s+(\d+)\s+(.+)$")


def chat_of(address: str) -> int:
    return int(address.split(":", 1)[1])


async def process_group_row(row: InboundMessage, rules: Settings, conn: Connection) -> str:
    """Decide and apply one group message; return its intent."""
    post: dict[str, Any] = (row.details or {})["group"]
    chat = chat_of(row.address)
    command = _command_of(row.text, post)
    language = _language(post.get("language_code") or (row.details or {}).get("language_code"))
    if command is None:
        return await _answer(row, None, "group_chatter", conn)
    if command.name in ("bind", "start") and command.args:
        return await _bind(row, chat, command.args, post, language, conn)
    binding = await chats_store.group_of(chat, conn)
    if binding is None:
        day = local_date(row.received_at, rules.tz).isoformat()
        body = groups.render("group_unbound", language)
        return await _answer(row, body, "group_unbound", conn, dedupe=f"unbound:{chat}:{day}")
    who = await chats_store.actor(int(post["user_id"]), conn)
    if who is None:
        body = groups.render("group_not_linked", language, name=post.get("user_name", ""))
        return await _answer(row, body, "group_refused", conn)
    language = who.language
    problem = groups.refusal(
        command,
        binding.role,
        binding.street_id,
        binding.community_id,
        groups.Who(who.role, who.street_id, who.community_id),
    )
    if problem is not None:
        return await _answer(row, groups.render(problem, language, name=who.name), problem, conn)
    if command.name in _LEAD_INTENTS:
        return await _lead_command(row, command, post, who, binding, rules, conn)
    return await _listing_or_office(row, command, who, binding, rules, conn)


def _command_of(text: str, post: dict[str, Any]) -> groups.Command | None:
    if post.get("callback_id"):
        return groups.parse_button(text)
    if post.get("reply_to_text"):
        answer = groups.note_reply(post["reply_to_text"], text)
        if answer is not None:
            return answer
    return groups.parse_command(text)


def _language(code: str | None) -> str:
    return "en" if code and code.lower().startswith("en") else "zh"


async def _answer(
    row: InboundMessage,
    body: str | None,
    intent: str,
    conn: Connection,
    *,
    dedupe: str | None = None,
    keyboard: str | None = None,
) -> str:
    """Reply to the group (phones masked) and mark the message processed."""
    replied = False
    if body is not None:
        msg = NewMessage(
            channel=row.channel,
            address=row.address,
            body=groups.mask_phones(body),
            kind="reply",
            priority=PRIORITY["reply"],
            in_reply_to_id=int(row.id),
            dedupe_key=dedupe or f"reply:{row.id}",
            keyboard=keyboard,
        )
        replied = await enqueue(msg, row.received_at, conn) is not None
    await inbound.mark_processed(row, intent, replied, None, row.received_at, conn)
    return intent


async def _bind(
    row: InboundMessage,
    chat: int,
    code: str,
    post: dict[str, Any],
    language: str,
    conn: Connection,
) -> str:
    result = await chats_store.bind(code, chat, post.get("title", ""), row.received_at, conn)
    if result.binding is None:
        return await _answer(row, groups.render(f"bind_{result.problem}", language), "bind", conn)
    key = "group_bound_lead" if result.binding.role == "lead" else "group_bound_office"
    return await _answer(
        row, groups.render(key, language, place=result.binding.place), "bind", conn
    )


async def _lead_command(
    row: InboundMessage,
    command: groups.Command,
    post: dict[str, Any],
    who: Actor,
    binding: Binding,
    rules: Settings,
    conn: Connection,
) -> str:
    if command.button and command.name in ("resolve", "reject"):
        # A fix or a refusal says why: ask for it as a reply to this question.
        number = int(command.args)
        body = groups.note_prompt(number, command.name, who.language)
        return await _answer(row, body, "ask_note", conn, keyboard="answer")
    parsed = groups.as_lead_text(command)
    if parsed is None:
        return await _answer(row, groups.usage(command.name, who.language), "group_usage", conn)
    vol = await context.find_volunteer(f"telegram:{post['user_id']}", conn)
    if vol is None:  # unlinked since `actor` read them: say so rather than act
        body = groups.render("group_not_linked", who.language, name=who.name)
        return await _answer(row, body, "group_refused", conn)
    needs = inbox.needs(parsed, None, False)
    ctx = await context.load(row, vol, None, parsed, needs, rules, conn)
    # The loop guards read an address's traffic; a group's is many people's commands.
    ctx = replace(ctx, history=SenderHistory())
    outcome = inbox.decide(ctx, parsed, rules)
    edited = await _edit_card(row, outcome, command, post, who, conn)
    reply = outcome.reply
    if reply is not None:
        # The card now says what happened; a reply would only repeat it.
        reply = None if edited else Reply(groups.mask_phones(reply.body), reply.kind)
    await effects.apply_outcome(row, vol, replace(outcome, reply=reply), row.received_at, conn)
    return outcome.intent


async def _edit_card(
    row: InboundMessage,
    outcome: Outcome,
    command: groups.Command,
    post: dict[str, Any],
    who: Actor,
    conn: Connection,
) -> bool:
    """After a report moved: edit its card in this group (the pressed one, or the one we sent
    when it was filed) to say who did what, with the buttons still of use."""
    moves = [e for e in outcome.effects if isinstance(e, MoveReport)]
    if not moves or command.name not in groups.CARD_ACTIONS:
        return False
    move = moves[0]
    card_id, card_text = post.get("message_id"), post.get("card_text")
    if card_id is None or card_text is None:
        found = await find_card(row.address, move.report_number, conn)
        if found is None:
            return False
        card_id, card_text = found
    note = f"：{move.note}" if command.name == "ack" and move.note else move.note
    body = groups.card_update(card_text, command.name, who.name, note, who.language)
    status = "acknowledged" if command.name == "ack" else "closed"
    msg = NewMessage(
        channel=row.channel,
        address=row.address,
        body=groups.mask_phones(body),
        kind="reply",
        priority=PRIORITY["reply"],
        in_reply_to_id=int(row.id),
        dedupe_key=f"card:{row.id}",
        keyboard=groups.card_keyboard(move.report_number, who.language, status),
        edit_message_id=int(card_id),
    )
    return await enqueue(msg, row.received_at, conn) is not None


async def _listing_or_office(
    row: InboundMessage,
    command: groups.Command,
    who: Actor,
    binding: Binding,
    rules: Settings,
    conn: Connection,
) -> str:
    language = who.language
    now = row.received_at
    name = command.name
    if name == "reports":
        lines = await chats_store.open_reports(binding, conn)
        body = groups.reports_list(binding.place, lines, language, rules.tz)
    elif name == "roster":
        body = groups.roster_list(binding.place, await chats_store.roster(binding, conn), language)
    elif name == "digest":
        day = local_date(now, rules.tz)
        data = await digest_store.load_digest(binding.street_id, day, rules, as_of=now)
        body = digest_text(data, language)
        chart = await digest_shell.chart_message(
            binding, day, rules, dedupe=f"chart:{row.id}", language=language
        )
        await enqueue(
            replace(chart, in_reply_to_id=int(row.id), priority=PRIORITY["reply"]), now, conn
        )
    elif name == "flags":
        body = await _flags(binding, language)
    elif name in ("keep", "remove"):
        body = await _review(command, name == "remove", binding, rules, now, conn)
    elif name in ("award", "redeem"):
        body = await _points(row, command, who, binding, rules, now)
    elif name in ("export", "assess"):
        return await _spreadsheet(row, command, who, binding, rules, conn)
    elif name in ("applicants", "approve", "decline"):
        body = await _recruitment(command, who, binding, rules, now)
    else:
        body = groups.render("group_unknown_command", language)
    return await _answer(row, body, f"group_{name}"[:32], conn)


async def _spreadsheet(
    row: InboundMessage,
    command: groups.Command,
    who: Actor,
    binding: Binding,
    rules: Settings,
    conn: Connection,
) -> str:
    """/export YYYY-MM (service hours) and /assess YYYY-MM (the month's scorecards): the same
    spreadsheets as `steward export hours` and `steward assess`, sent to the group as a file."""
    language = who.language
    try:
        period = points_rules.month(command.args.strip())
    except ValueError:
        return await _answer(row, groups.usage(command.name, language), "group_usage", conn)
    if command.name == "export":
        table, data = await points_shell.hours_record(
            period, street_id=binding.street_id, language=language
        )
        content = to_xlsx([table])
        hours = sum(line.minutes for line in data.lines) / 60
        caption = groups.render(
            "export_caption",
            language,
            place=binding.place,
            month=period.label,
            people=len(table.rows),
            hours=f"{hours:.1f}",
        )
    else:
        tables = await points_shell.assessment(
            period,
            rules=rules,
            now=row.received_at,
            street_id=binding.street_id,
            language=language,
        )
        content = to_xlsx(tables)
        caption = groups.render("assess_caption", language, place=binding.place, month=period.label)
    name = f"{command.name}-{binding.street_id}-{period.label}-{row.id}.xlsx"
    path = Path(rules.MEDIA_DIR) / "exports" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    msg = NewMessage(
        channel=row.channel,
        address=row.address,
        body=caption,
        kind="reply",
        priority=PRIORITY["reply"],
        in_reply_to_id=int(row.id),
        dedupe_key=f"reply:{row.id}",
        attachment=str(path.resolve()),
    )
    replied = await enqueue(msg, row.received_at, conn) is not None
    intent = f"group_{command.name}"
    await inbound.mark_processed(row, intent, replied, None, row.received_at, conn)
    return intent


async def _recruitment(
    command: groups.Command, who: Actor, binding: Binding, rules: Settings, now: datetime
) -> str:
    """/applicants, /approve N PAIR, /decline N reason: the street's applications only."""
    language = who.language
    listed = await recruitment_shell.list_applicants(status="all", street_id=binding.street_id)
    if command.name == "applicants":
        today = local_date(now, rules.tz)
        pending = [a for a in listed if a.status in ("pending", "approved")]
        if not pending:
            return groups.render("applicants_none", language, place=binding.place)
        head = groups.render("applicants_head", language, place=binding.place, count=len(pending))
        return "\n".join([head, *(a.line(today, mask=True) for a in pending[: groups.MAX_LINES])])
    number_text, _, rest = command.args.partition(" ")
    if not number_text.lstrip("#").isdigit() or not rest.strip():
        return groups.usage(command.name, language)
    number = int(number_text.lstrip("#"))
    if number not in {a.number for a in listed}:
        return groups.render("applicant_not_here", language, number=number, place=binding.place)
    actor = f"telegram:{who.name}"
    try:
        if command.name == "approve":
            approved = await recruitment_shell.approve(
                UnitOfWork(), number, rest.strip(), actor=actor, now=now
            )
            return groups.render(
                "applicant_approved",
                language,
                number=number,
                name=approved.applicant.name,
                pair=approved.pair_code,
            )
        declined = await recruitment_shell.decline(
            UnitOfWork(), number, rest.strip(), actor=actor, now=now
        )
        return groups.render(
            "applicant_declined", language, number=number, name=declined.applicant.name
        )
    except recruitment_shell.RecruitmentError as exc:
        return str(exc)


async def _flags(binding: Binding, language: str) -> str:
    people = await review_store.flagged(street_id=binding.street_id)
    if not people:
        return "目前没有待复核的人员。" if language == "zh" else "Nobody is awaiting review."
    lines = [
        f"{p.person.contact.name} {p.community} {p.person.pair_code}："
        f"{office_rules.review_reason(p.history, language)}"
        for p in people
    ]
    return "\n".join(lines)


async def _review(
    command: groups.Command,
    remove: bool,
    binding: Binding,
    rules: Settings,
    now: datetime,
    conn: Connection,
) -> str:
    if not command.args:
        return groups.usage(command.name, "zh")
    try:
        person = await review_store.find(command.args, rules.DEFAULT_REGION, conn)
        if person.street_id != binding.street_id:
            raise review_shell.NotFound(f"{command.args} is not in {binding.place}")
        done = await review_shell.decide(
            command.args, remove=remove, rules=rules, now=now, units=UnitOfWork()
        )
    except review_shell.NotFound as exc:
        return str(exc)
    verb = "已移除，所在组成为空缺" if remove else "已保留，缺勤计数重新开始"
    return f"{done.name}：{verb}"


async def _points(
    row: InboundMessage,
    command: groups.Command,
    who: Actor,
    binding: Binding,
    rules: Settings,
    now: datetime,
) -> str:
    match = _AMOUNT.match(command.args)
    if match is None:
        return groups.usage(command.name, who.language)
    person, amount, text = match.group(1), int(match.group(2)), match.group(3)
    act = points_shell.award if command.name == "award" else points_shell.redeem
    try:
        done = await act(
            person,
            amount,
            text,
            actor=f"telegram:{who.name}",
            rules=rules,
            now=now,
            units=UnitOfWork(),
            street_id=binding.street_id,
            key=f"telegram:{row.external_id}",
        )
    except points_shell.BeyondBalance as exc:
        return groups.render(
            "points_beyond_balance",
            who.language,
            name=exc.holder.contact.name,
            balance=exc.balance,
            asked=exc.asked,
        )
    except points_shell.AmbiguousName as exc:
        return exc.listing(mask=True)
    except points_shell.NoSuchVolunteer:
        return groups.render("points_no_such_person", who.language, name=person)
    except points_shell.PointsError as exc:
        return str(exc)
    return done.message(who.language, mask=True)


async def invite(
    street: str, community: str | None, role: str, now: datetime, units: UnitOfWork
) -> chats_store.Invite:
    """A one-time code for `/bind` (raises chats_store.UnknownPlace for a name not found)."""
    async with units.transaction() as conn:
        return await chats_store.create_invite(street, community, Role(role), now, conn)


async def bound(units: UnitOfWork) -> list[Binding]:
    async with units.transaction() as conn:
        return await chats_store.bound_groups(conn)
