"""Lead and office groups on Telegram (SPEC §6): binding by one-time code, commands, report
cards with buttons, alerts routed to the group, phones masked. Real PTB client, Bot API
stand-in; SMS through the Twilio stand-in."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from steward.clock import utc
from steward.shells import groups as group_shell
from steward.shells.digest import run_digest_job
from steward.shells.jobs import run_job
from steward.storage.models import (
    ChatGroup,
    Community,
    OutboxMessage,
    PointsEntry,
    Report,
    Role,
    Volunteer,
)
from steward.storage.unit import UnitOfWork
from tests.fakes.telegram_api import FakeChat, FakeTelegram, FakeUser, SentMessage
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import Service, Street1, add_office, say, seed_street
from tests.test_telegram import linked, telegram_service

SHANGHAI = ZoneInfo("Asia/Shanghai")
LEAD_GROUP = -100_200
OFFICE_GROUP = -100_300


@pytest.fixture(autouse=True)
def no_chat_spacing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Telegram's per-chat spacing (3 s a group message) is real time the transcripts would
    only wait through; the dispatch benchmark measures it against the stand-in's limits."""
    from steward.gateway import outbox

    monkeypatch.setitem(outbox.SPACINGS, "telegram", outbox.no_spacing)


def at(hour: int, minute: int = 0, day: int = 23) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


async def code_for(role: str, community: str | None, now: datetime) -> str:
    made = await group_shell.invite("鼓楼街道", community, role, now, UnitOfWork())
    return made.code


def said(telegram: FakeTelegram, chat: FakeChat, since: int = 0) -> list[str]:
    return [m.text or "" for m in telegram.messages_to(chat.id)[since:]]


async def bound_lead_group(
    svc: Service, telegram: FakeTelegram, street: Street1, lead: FakeUser
) -> FakeChat:
    """The lead links their account in a private chat and binds the community's group."""
    group = telegram.add_group(LEAD_GROUP, "新开河片长群")
    await linked(svc, telegram, lead, street.lead.phone)
    code = await code_for("lead", "新开河社区", at(7, 0))
    await telegram.group_command(group, lead, f"/bind {code}")
    await svc.drain()
    return group


async def bound_office_group(
    svc: Service, telegram: FakeTelegram, office: Volunteer, clerk: FakeUser, group: FakeChat
) -> None:
    """The office clerk links their account in a private chat and binds the street's group."""
    await linked(svc, telegram, clerk, office.phone)
    code = await code_for("office", None, at(7, 0))
    await telegram.group_command(group, clerk, f"/bind {code}")
    await svc.drain()


async def test_a_group_is_bound_once_by_a_fresh_code(
    db: str, twilio: FakeTwilio, telegram_api: FakeTelegram
) -> None:
    await seed_street()
    lead = telegram_api.user(7001, "建国")
    group = telegram_api.add_group(LEAD_GROUP, "新开河片长群")
    other = telegram_api.add_group(-100_201, "闲聊群")
    async with telegram_service(db, twilio, telegram_api) as svc:
        with time_machine.travel(at(7, 0), tick=False):
            code = await code_for("lead", "新开河社区", at(7, 0))
            old = await code_for("lead", "新开河社区", at(7, 0) - timedelta(days=8))
            # Unbound: one line for the day, then silence.
            await telegram_api.group_command(group, lead, "/today")
            await telegram_api.group_command(group, lead, "/reports")
            await svc.drain()
            await telegram_api.group_command(group, lead, "/bind WRONG123")
            await telegram_api.group_command(group, lead, f"/bind {old}")
            await svc.drain()
            await telegram_api.group_command(
                group, lead, f"/bind@{telegram_api.bot_username} {code}"
            )
            await svc.drain()
            await telegram_api.group_command(other, lead, f"/bind {code}")
            await svc.drain()
    assert said(telegram_api, group) == [
        "本群尚未绑定。请街道办用 steward chats invite 生成邀请码，再在群里发送 /bind 邀请码。",
        "邀请码无效，请核对后重发 /bind 邀请码。",
        "该邀请码已过期（有效期7天），请向街道办申请新码。",
        "已绑定为新开河社区片长群。新上报、提醒将发到本群。命令：/today /reports /roster",
    ]
    assert said(telegram_api, other) == ["该邀请码已被使用，请向街道办申请新码。"]
    bound = await ChatGroup.all()
    assert [(g.chat_id, g.role) for g in bound] == [(LEAD_GROUP, "lead")]


async def test_a_lead_works_a_report_card_with_its_buttons(
    db: str, twilio: FakeTwilio, telegram_api: FakeTelegram
) -> None:
    street = await seed_street()
    lead = telegram_api.user(7001, "建国")
    stranger = telegram_api.user(7002, "路人")
    async with telegram_service(db, twilio, telegram_api) as svc:
        with time_machine.travel(at(7, 0), tick=False):
            group = await bound_lead_group(svc, telegram_api, street, lead)
        start = len(telegram_api.messages_to(group.id))
        with time_machine.travel(at(9, 0), tick=False):
            filed = await say(svc, at(9, 0), street.wang.phone, "报 1 5号楼门口垃圾堆放")
        assert filed[0].startswith("已收到上报#1")
        card = telegram_api.messages_to(group.id)[start]
        assert card.callback_data == ["ack:1", "resolve:1", "reject:1"]
        assert card.button_texts == ["受理", "办结", "驳回"]
        # The whole description, the reporter's phone masked, buttons instead of "reply 受理1".
        assert card.text == "新上报#1【环境卫生】东巷\n王秀英138****8001：5号楼门口垃圾堆放\n转环卫"
        # The lead's SMS alert went to the group instead.
        assert [m.to for m in twilio.messages if m.to == street.lead.phone] == []
        with time_machine.travel(at(9, 30), tick=False):
            await telegram_api.press_button(stranger, card, "ack:1")
            await svc.drain()
            assert (await Report.get(number=1)).status == "new"
            await telegram_api.press_button(lead, card, "ack:1")
            await svc.drain()
        card = current(telegram_api, card)
        assert card.text is not None and card.text.endswith("— 已受理（赵建国）")
        assert card.callback_data == ["resolve:1", "reject:1"]
        assert (await Report.get(number=1)).status == "acknowledged"
        with time_machine.travel(at(11, 0), tick=False):
            await telegram_api.press_button(lead, card, "resolve:1")
            await svc.drain()
            question = telegram_api.messages_to(group.id)[-1]
            assert question.text == "#1 办结：请回复本消息，写明处理结果。"
            await telegram_api.reply_in_group(group, lead, question, "已清理干净")
            await svc.drain()
        card = current(telegram_api, card)
        assert card.text is not None and card.text.endswith("— 已办结（赵建国）：已清理干净")
        assert card.callback_data == []
    assert (await Report.get(number=1)).status == "resolved"
    assert said(telegram_api, group, start)[1:] == [
        "路人，请先私聊本机器人并分享手机号完成绑定，再在群里使用命令。",
        "#1 办结：请回复本消息，写明处理结果。",
    ]
    to_wang = [m.body for m in twilio.messages if m.to == street.wang.phone]
    assert to_wang[1] == "您的上报#1已受理，正在处理，+3分。谢谢！"
    assert to_wang[2].startswith("上报#1已处理")
    # Every button press was answered, so no spinner is left turning.
    assert len(telegram_api.calls("answerCallbackQuery")) == 3


def current(telegram: FakeTelegram, message: SentMessage) -> SentMessage:
    return next(
        m for m in telegram.messages_to(message.chat_id) if m.message_id == message.message_id
    )


async def test_lead_commands_in_the_group(
    db: str, twilio: FakeTwilio, telegram_api: FakeTelegram
) -> None:
    street = await seed_street()
    lead = telegram_api.user(7001, "建国")
    steward = telegram_api.user(7003, "秀英")
    async with telegram_service(db, twilio, telegram_api) as svc:
        with time_machine.travel(at(7, 0), tick=False):
            group = await bound_lead_group(svc, telegram_api, street, lead)
            await linked(svc, telegram_api, steward, street.wang.phone)
        start = len(telegram_api.messages_to(group.id))
        with time_machine.travel(at(8, 5), tick=False):
            await say(svc, at(8, 5), street.wang.phone, "签到")
        with time_machine.travel(at(9, 0), tick=False):
            await say(svc, at(9, 0), street.other.phone, "报 1 路灯不亮")
        with time_machine.travel(at(9, 30), tick=False):
            for text in (
                "/today",
                "/reports",
                "/roster",
                "/ack 1",
                "/ack",
                "/digest",
                "/frobnicate",
            ):
                await telegram_api.group_command(group, lead, text)
                await svc.drain()
            await telegram_api.group_command(group, steward, "/reject 1 不是问题")
            await svc.drain()
            await telegram_api.group_command(group, lead, "/leave 孙丽 3")
            await svc.drain()
    lines = said(telegram_api, group, start)
    card = lines[0]
    assert card.startswith("新上报#1")
    # /ack 1 is answered by the card's edit alone (checked below), not by a message.
    today, reports, roster, usage, office_only, unknown, refused, leave = lines[1:]
    assert today == "新开河社区11月23日9:30：巡查中1组（A1）；未出巡1组（A2）。"
    assert reports.startswith("新开河社区待办上报1条：\n#1 ")
    assert (
        roster
        == "新开河社区名册（2组）：\nA1 08:00 王秀英 138****8001，Li Wei 138****8002\nA2 08:00 孙丽 138****8003，空缺"
    )
    assert usage == "用法：/ack 12"
    assert office_only == "此命令请在街道办群中使用。"
    assert unknown.startswith("未知命令。")
    assert refused == "王秀英，只有本社区片长和街道办工作人员可以使用此命令。"
    assert leave == "已为孙丽请假3天，到11月25日为止。"
    card_message = telegram_api.messages_to(group.id)[start]
    assert (card_message.text or "").endswith("— 已受理（赵建国）")
    assert (await Report.get(number=1)).status == "acknowledged"
    # No phone number in full anywhere in the group.
    assert not any("13800138" in m for m in said(telegram_api, group))


async def test_the_office_group(db: str, twilio: FakeTwilio, telegram_api: FakeTelegram) -> None:
    street = await seed_street()
    office = await add_office(street)
    clerk = telegram_api.user(7010, "主任")
    lead = telegram_api.user(7001, "建国")
    group = telegram_api.add_group(OFFICE_GROUP, "鼓楼街道办")
    async with telegram_service(db, twilio, telegram_api) as svc:
        with time_machine.travel(at(7, 0), tick=False):
            await bound_office_group(svc, telegram_api, office, clerk, group)
            await linked(svc, telegram_api, lead, street.lead.phone)
        with time_machine.travel(at(9, 0), tick=False):
            # An urgent report reaches the office group (not the clerk's SMS).
            await say(svc, at(9, 0), street.wang.phone, "报 消防 楼道堆满杂物堵住消防通道")
        with time_machine.travel(at(10, 0), tick=False):
            for who, text in (
                (clerk, "/award 王秀英 10 帮助邻居"),
                (clerk, "/redeem 王秀英 500 雨伞"),
                (clerk, "/digest"),
                (clerk, "/flags"),
                (lead, "/digest"),
            ):
                await telegram_api.group_command(group, who, text)
                await svc.drain()
    sent = telegram_api.messages_to(group.id)
    photos = [m for m in sent if m.photo_file_id is not None]
    lines = [m.text or "" for m in sent if m.photo_file_id is None]
    # /digest: the text, then the week's chart as a photo (a PNG drawn for it).
    assert [m.caption for m in photos] == ["鼓楼街道 2026-11-23"]
    assert telegram_api.file_content(photos[0].photo_file_id or "").startswith(b"\x89PNG")
    assert (
        lines[0]
        == "已绑定为鼓楼街道街道办群。日报、预警将发到本群。命令：/digest /flags /applicants"
    )
    assert "#1" in lines[1]
    award, redeem, digest, flags, refused = lines[2:7]
    assert "王秀英" in award and "10" in award and "13800138001" not in award
    assert redeem == "王秀英现有12分，不够兑换500分。"
    assert digest.startswith("鼓楼街道日报 11月23日\n")
    assert flags == "目前没有待复核的人员。"
    assert refused == "赵建国，只有本社区片长和街道办工作人员可以使用此命令。"
    assert await PointsEntry.filter(volunteer_id=street.wang.id, kind="award").count() == 1
    assert [m.to for m in twilio.messages if m.to == office.phone] == []
    assert any(m.to == street.wang.phone and "10" in m.body for m in twilio.messages)


async def test_a_redelivered_press_acts_once(
    db: str, twilio: FakeTwilio, telegram_api: FakeTelegram
) -> None:
    street = await seed_street()
    lead = telegram_api.user(7001, "建国")
    async with telegram_service(db, twilio, telegram_api) as svc:
        with time_machine.travel(at(7, 0), tick=False):
            group = await bound_lead_group(svc, telegram_api, street, lead)
        with time_machine.travel(at(9, 0), tick=False):
            await say(svc, at(9, 0), street.wang.phone, "报 1 垃圾")
        card = telegram_api.messages_to(group.id)[-1]
        with time_machine.travel(at(9, 30), tick=False):
            press = await telegram_api.press_button(lead, card, "ack:1")
            again = await telegram_api.redeliver(press)
            await svc.drain()
    assert again.status == 200
    assert current(telegram_api, card).edits == 1
    assert (
        await OutboxMessage.filter(
            address=f"telegram:{LEAD_GROUP}", edit_message_id__isnull=False
        ).count()
        == 1
    )
    to_wang = [m.body for m in twilio.messages if m.to == street.wang.phone]
    assert to_wang.count("您的上报#1已受理，正在处理，+3分。谢谢！") == 1


async def test_a_lead_of_another_community_may_not_act(
    db: str, twilio: FakeTwilio, telegram_api: FakeTelegram
) -> None:
    street = await seed_street()
    elsewhere = await Community.create(street_id=street.wang.street_id, name="鼓楼社区")
    outsider = await Volunteer.create(
        name="周明",
        phone="+8613800138020",
        role=Role.LEAD,
        street_id=street.wang.street_id,
        community_id=elsewhere.id,
        joined_on=street.wang.joined_on,
    )
    lead = telegram_api.user(7001, "建国")
    other_lead = telegram_api.user(7020, "周明")
    async with telegram_service(db, twilio, telegram_api) as svc:
        with time_machine.travel(at(7, 0), tick=False):
            group = await bound_lead_group(svc, telegram_api, street, lead)
            await linked(svc, telegram_api, other_lead, outsider.phone)
            await telegram_api.group_command(group, other_lead, "/roster")
            await svc.drain()
    assert said(telegram_api, group)[-1] == "周明，只有本社区片长和街道办工作人员可以使用此命令。"


async def test_the_daily_digest_goes_to_the_office_group_with_its_chart(
    db: str, twilio: FakeTwilio, telegram_api: FakeTelegram
) -> None:
    street = await seed_street()
    office = await add_office(street)
    clerk = telegram_api.user(7010, "主任")
    group = telegram_api.add_group(OFFICE_GROUP, "鼓楼街道办")
    async with telegram_service(db, twilio, telegram_api) as svc:
        with time_machine.travel(at(7, 0), tick=False):
            await bound_office_group(svc, telegram_api, office, clerk, group)
        with time_machine.travel(at(8, 5), tick=False):
            await say(svc, at(8, 5), street.wang.phone, "签到")
        with time_machine.travel(at(18, 0), tick=False):
            first = await run_digest_job(svc.settings, utc(at(18, 0)), dry_run=False)
            again = await run_digest_job(svc.settings, utc(at(18, 1)), dry_run=False)
            await svc.drain()
    sent = telegram_api.messages_to(group.id)[1:]
    assert [m.photo_file_id is not None for m in sent] == [False, True]
    assert (sent[0].text or "").startswith("鼓楼街道日报 11月23日\n巡查：应巡2对")
    assert sent[1].caption == "鼓楼街道 2026-11-23"
    assert len(first) == 1 and again == []
    assert [m for m in twilio.messages if m.to == office.phone] == []


async def test_the_office_screens_applicants_in_its_group(
    db: str, twilio: FakeTwilio, telegram_api: FakeTelegram
) -> None:
    from tests.test_recruitment import applied

    street = await seed_street()
    office = await add_office(street)
    first = await applied(street, "张桂兰", "+8613900139001", party=True)
    second = await applied(street, "刘强", "+8613900139002")
    clerk = telegram_api.user(7010, "主任")
    group = telegram_api.add_group(OFFICE_GROUP, "鼓楼街道办")
    async with telegram_service(db, twilio, telegram_api) as svc:
        with time_machine.travel(at(7, 0), tick=False):
            await bound_office_group(svc, telegram_api, office, clerk, group)
        with time_machine.travel(at(10, 0), tick=False):
            for text in (
                "/applicants",
                f"/approve {first.id} A1",
                f"/approve {first.id} A2",
                f"/decline {second.id} 本社区名额已满",
                "/approve 999 A2",
            ):
                await telegram_api.group_command(group, clerk, text)
                await svc.drain()
    listing, full, approved, declined, unknown = said(telegram_api, group)[1:]
    assert listing.startswith("鼓楼街道报名2份")
    assert "139****9001" in listing and "13900139001" not in listing
    assert full.startswith("pair A1 in 新开河社区 has no vacancy")
    assert approved == f"报名{first.id}（张桂兰）已同意，分入A2组，已发承诺书等其回复“同意”。"
    assert declined == f"报名{second.id}（刘强）已婉拒，已告知本人。"
    assert unknown == "鼓楼街道没有编号999的报名。"
    to_applicants = {m.to for m in twilio.messages}
    assert {"+8613900139001", "+8613900139002"} <= to_applicants


async def test_a_jobs_lead_alert_goes_to_the_group_once(
    db: str, twilio: FakeTwilio, telegram_api: FakeTelegram
) -> None:
    street = await seed_street()
    second_lead = await Volunteer.create(
        name="钱多多",
        phone="+8613800138019",
        role=Role.LEAD,
        street_id=street.wang.street_id,
        community_id=street.wang.community_id,
        joined_on=street.wang.joined_on,
    )
    lead = telegram_api.user(7001, "建国")
    async with telegram_service(db, twilio, telegram_api) as svc:
        with time_machine.travel(at(7, 0), tick=False):
            group = await bound_lead_group(svc, telegram_api, street, lead)
        start = len(telegram_api.messages_to(group.id))
        with time_machine.travel(at(9, 31), tick=False):
            first = await run_job("nudges", svc.settings, utc(at(9, 31)))
            again = await run_job("nudges", svc.settings, utc(at(9, 32)))
            await svc.drain()
    assert said(telegram_api, group, start) == [
        "A1组（东巷）今天8:00的巡查，到现在还没有人签到。",
        "A2组（西巷）今天8:00的巡查，到现在还没有人签到。",
    ]
    assert [m for m in twilio.messages if m.to in (street.lead.phone, second_lead.phone)] == []
    # Meant for both leads, each alert was queued once, for the group (the second lead's copy
    # is the same message).
    assert second_lead.id not in {n.to.volunteer_id for n in first}
    assert again == []


async def test_the_office_gets_the_months_files_in_its_group(
    db: str, twilio: FakeTwilio, telegram_api: FakeTelegram
) -> None:
    street = await seed_street()
    office = await add_office(street)
    clerk = telegram_api.user(7010, "主任")
    group = telegram_api.add_group(OFFICE_GROUP, "鼓楼街道办")
    async with telegram_service(db, twilio, telegram_api) as svc:
        with time_machine.travel(at(7, 0), tick=False):
            await bound_office_group(svc, telegram_api, office, clerk, group)
        with time_machine.travel(at(8, 0), tick=False):
            await say(svc, at(8, 0), street.wang.phone, "签到")
        with time_machine.travel(at(10, 5), tick=False):
            await say(svc, at(10, 5), street.wang.phone, "签退")
        with time_machine.travel(at(11, 0, day=30), tick=False):
            for text in ("/export 2026-11", "/assess 2026-11", "/export November"):
                await telegram_api.group_command(group, clerk, text)
                await svc.drain()
    hours_file, assessment, usage = telegram_api.messages_to(group.id)[1:]
    assert hours_file.caption == "鼓楼街道2026-11志愿服务时长：1人，共2.1小时（已确认）。"
    assert assessment.caption == "鼓楼街道2026-11考核表：管家与社区两页。"
    for sent in (hours_file, assessment):
        assert sent.document_file_id is not None
        assert telegram_api.file_content(sent.document_file_id).startswith(b"PK")  # an .xlsx
    assert usage.text == "用法：/export 2026-11"
