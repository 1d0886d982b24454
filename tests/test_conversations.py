"""Conversations as transcripts through signed webhooks: what a volunteer texts and reads back."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import time_machine

from steward.clock import utc
from steward.gateway.messages import InboundMessage as Inbound
from steward.storage import digest_store, inbound
from steward.storage.models import (
    HoursEntry,
    PatrolSession,
    PointsEntry,
    Report,
    ReportEvent,
    VolunteerStatus,
)
from steward.storage.unit import UnitOfWork
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import converse, running_service, seed_street, sent_to, service_settings

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, 11, 23, hour, minute, second, tzinfo=SHANGHAI)


CHECKED_IN_8 = "王秀英，8:00签到成功，祝巡查顺利！结束时回复2签退。"


async def test_typo_is_confirmed_before_acting(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await converse(
            svc,
            street.wang.phone,
            [
                (at(7, 59), "CHEKIN", "您是想发“IN”吗？回复1确认。"),
                (at(8, 0), "1", CHECKED_IN_8),
            ],
        )
    assert await PatrolSession.filter(volunteer_id=street.wang.id).count() == 1


async def test_another_text_drops_the_typo_question(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await converse(
            svc,
            street.li.phone,
            [
                (at(7, 59), "CHECKOTU", "Did you mean OUT? Reply 1 to confirm."),
                (
                    at(8, 0),
                    "STOP",
                    "You are unsubscribed and will get no more texts from us. Reply START to resume.",
                ),
                (at(8, 1), "START", "Welcome back! Texts are on again. Reply HELP for the menu."),
                (
                    at(8, 2),
                    "1",
                    "Li, checked in at 8:02. Have a good patrol! Text OUT (or 2) when you finish.",
                ),
            ],
        )


async def test_repeats_and_mistakes_get_kind_answers(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await converse(
            svc,
            street.wang.phone,
            [
                (at(7, 50), "签退", "您现在没有签到。开始巡查时回复1签到。"),
                (at(8, 0), "签到东巷", CHECKED_IN_8),
                (at(9, 0), "签到", "您8:00已签到，正在巡查中。结束时回复2签退。"),
                # The same text again within two minutes is answered once more (no reply may
                # have reached the phone yet); a third time it is a loop, and gets silence.
                (at(9, 0, 30), "签到", "您8:00已签到，正在巡查中。结束时回复2签退。"),
                (at(9, 0, 50), "签到", None),
                (at(9, 1, 10), "签到", None),
                (at(9, 5), "2", "9:05签退成功，本次1小时5分，今日共1小时5分，还差55分钟达标。"),
                (at(9, 10), "到", "王秀英，9:10签到成功，祝巡查顺利！结束时回复2签退。"),
                (
                    at(10, 10),
                    "结束了！",
                    "10:10签退成功，本次1小时，今日共2小时5分，达标+10分，辛苦了！",
                ),
                (at(14, 0), "签到", "王秀英，14:00签到成功，祝巡查顺利！结束时回复2签退。"),
                (
                    at(14, 30),
                    "签退",
                    "14:30签退成功，本次30分钟，今日共2小时35分，今日已达标，辛苦了！",
                ),
            ],
        )
    points = await PointsEntry.filter(volunteer_id=street.wang.id).values_list("amount", flat=True)
    assert points == [10]  # the goal pays once a day
    hours = await HoursEntry.filter(volunteer_id=street.wang.id).values_list("minutes", flat=True)
    assert sorted(hours) == [30, 60, 65]


async def test_undo_takes_back_check_in_and_check_out(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await converse(
            svc,
            street.wang.phone,
            [
                (at(7, 50), "签到", "王秀英，7:50签到成功，祝巡查顺利！结束时回复2签退。"),
                (at(7, 55), "撤销", "已撤销7:50的签到。"),
                (at(8, 0), "签到", CHECKED_IN_8),
                (
                    at(10, 5),
                    "签退",
                    "10:05签退成功，本次2小时5分，今日共2小时5分，达标+10分，辛苦了！",
                ),
                (at(10, 8), "撤销", "已撤销10:05的签退，巡查继续计时。"),
                (
                    at(10, 30),
                    "签退",
                    "10:30签退成功，本次2小时30分，今日共2小时30分，达标+10分，辛苦了！",
                ),
                (at(10, 50), "UNDO", "最近10分钟内没有可撤销的签到、签退或上报。"),
            ],
        )
    points = (
        await PointsEntry.filter(volunteer_id=street.wang.id)
        .order_by("id")
        .values_list("amount", flat=True)
    )
    assert points == [10, -10, 10]
    hours = (
        await HoursEntry.filter(volunteer_id=street.wang.id)
        .order_by("id")
        .values_list("minutes", flat=True)
    )
    assert hours == [125, -125, 150]
    assert sum(hours) == 150


async def test_undo_withdraws_a_report_nobody_has_acted_on(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    wang, lead = street.wang.phone, street.lead.phone
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await converse(
            svc,
            wang,
            [
                (at(8, 0), "签到", CHECKED_IN_8),
                (
                    at(8, 20),
                    "报 1 5号楼门口垃圾堆放",
                    "已收到上报#1（环境卫生），+2分。处理进展会短信告诉您。",
                ),
                # The report came after the check-in, so it is what UNDO takes back.
                (at(8, 25), "撤销", "已撤回上报#1，扣回2分，已告知片长。"),
                (at(8, 26), "查1", "上报#1（环境卫生）：已撤回，11月23日8:25更新。"),
                (at(8, 27), "撤销", "最近10分钟内没有可撤销的签到、签退或上报。"),
                (
                    at(9, 0),
                    "报 2 路灯不亮",
                    "已收到上报#2（设施损坏），+2分。处理进展会短信告诉您。",
                ),
            ],
        )
        await converse(
            svc,
            lead,
            [
                (at(9, 1), "受理1", "上报#1当前为“已撤回”，无需这样办理。"),
                (at(9, 2), "受理2", "已受理#2，已告知上报人。"),
            ],
        )
        await converse(
            svc,
            wang,
            [(at(9, 5), "撤销", "上报#2已受理，处理中，不能撤回了。如有误请联系片长。")],
        )
        to_lead = sent_to(svc, lead)
    assert to_lead[1] == "上报#1【环境卫生】东巷已由王秀英撤回，无需处理。"
    assert len(to_lead) == 5  # alert 1, withdrawn 1, refusal, alert 2, ack confirmation
    points = (
        await PointsEntry.filter(volunteer_id=street.wang.id)
        .order_by("id")
        .values_list("kind", "amount")
    )
    assert points == [
        ("report_filed", 2),
        ("report_withdrawn", -2),
        ("report_filed", 2),
        ("report_valid", 3),
    ]
    events = (
        await ReportEvent.filter(report__number=1).order_by("id").values_list("to_status", "note")
    )
    assert events[-1] == ("withdrawn", "withdrawn by the reporter (UNDO)")
    assert (await Report.get(number=1)).status == "withdrawn"
    # The office's digest counts only the report that stands.
    digest = await digest_store.load_digest(
        street.wang.street_id, at(9, 0).date(), svc.settings, as_of=utc(at(18, 0))
    )
    assert (digest.new_by_category, digest.open_reports) == (((2, 1),), 1)


async def test_a_session_over_the_maximum_waits_for_a_lead(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await converse(
            svc,
            street.li.phone,
            [
                (
                    at(8, 0),
                    "in",
                    "Li, checked in at 8:00. Have a good patrol! Text OUT (or 2) when you finish.",
                ),
                (
                    at(12, 31),
                    "out",
                    "Checked out at 12:31. The patrol ran over 4 hours, so it counts once your lead confirms it.",
                ),
                (at(12, 40), "P", "Li: 0 points, +0 this month, rank 1 of 4 in your street."),
            ],
        )
    entry = await HoursEntry.get(volunteer_id=street.li.id)
    assert (entry.minutes, entry.confirmed) == (271, False)


async def test_removed_volunteer_hears_once_a_day(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    street.other.status = VolunteerStatus.REMOVED
    await street.other.save()
    polite = "您好，您已不再登记为小巷管家，感谢您的付出！如有疑问请联系社区。"
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await converse(
            svc,
            street.other.phone,
            [(at(8, 0), "签到", polite), (at(9, 0), "签到", None), (at(9, 30), "积分", None)],
        )
    assert await PatrolSession.filter(volunteer_id=street.other.id).count() == 0


async def test_an_auto_responder_does_not_start_a_loop(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        echo = "抱歉，没看懂您的短信。回复: 1签到 2签退 3上报 4积分 0帮助"
        await converse(
            svc,
            street.wang.phone,
            [
                (at(8, 0), "我在外地，稍后回复", echo),
                (at(8, 0, 5), echo, None),  # the phone echoes our reply back
                (at(8, 0, 10), "我在外地，稍后回复", None),  # its canned answer again
            ],
        )


async def test_recruitment_words_from_volunteers(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await converse(
            svc,
            street.wang.phone,
            [
                (at(8, 0), "退出", "确定要退出小巷管家服务吗？确定请回复1，回复其他内容取消。"),
                (
                    at(8, 1),
                    "我要报名",
                    "您已是小巷管家，无需报名。回复: 1签到 2签退 3上报 4积分 0帮助",
                ),
            ],
        )
        await converse(
            svc,
            street.li.phone,
            [
                (
                    at(8, 2),
                    "AGREE",
                    "You are already an alley steward. Reply 1 IN, 2 OUT, 3 REPORT, 4 POINTS, 0 HELP",
                )
            ],
        )


async def test_help_and_english_points(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await converse(
            svc,
            street.li.phone,
            [
                (at(8, 0), "？", "Reply 1 IN, 2 OUT, 3 REPORT, 4 POINTS, 0 HELP"),
                (
                    at(8, 1),
                    "blah",
                    "Sorry, we did not understand that. Reply 1 IN, 2 OUT, 3 REPORT, 4 POINTS, 0 HELP",
                ),
            ],
        )


async def test_a_message_stored_before_a_crash_is_answered_at_start(
    db: str, twilio: FakeTwilio
) -> None:
    street = await seed_street()
    with time_machine.travel(at(8, 0), tick=False):
        stored = Inbound("sms", street.wang.phone, "签到", "SMcrash0001", utc(at(8, 0)))
        await inbound.store(stored, UnitOfWork())
        async with running_service(service_settings(db, twilio), twilio) as svc:
            sent = await svc.settle()
        async with running_service(service_settings(db, twilio), twilio) as svc:
            sent = await svc.settle()  # a second start finds nothing left to do
    assert [m.body for m in sent] == [CHECKED_IN_8]
