"""Reports over SMS: filing, photos, routing, the lifecycle, and what each person reads."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from steward.storage.models import Attachment, PointsEntry, Report, ReportEvent
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import (
    add_office,
    converse,
    running_service,
    say,
    seed_street,
    sent_to,
    service_settings,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
PHOTO = ("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", "image/jpeg")
MENU_ZH = "1环境卫生 2设施损坏 3秩序管理 4安全隐患 5私搭乱建 6矛盾纠纷 7治安 8信息变化 9其他"


def at(hour: int, minute: int, day: int = 23) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


def filed(number: int, category: str) -> str:
    return f"已收到上报#{number}（{category}），+2分。处理进展会短信告诉您。"


async def test_one_shot_reports_in_every_accepted_form(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await converse(
            svc,
            street.wang.phone,
            [
                (at(9, 0), "报 1 5号楼门口垃圾堆放", filed(1, "环境卫生")),
                (at(9, 10), "报2 路灯不亮", filed(2, "设施损坏")),
                (at(9, 20), "报 井盖 新开河街3号井盖松动", filed(3, "设施损坏")),
            ],
        )
        await converse(
            svc,
            street.li.phone,
            [
                (
                    at(9, 30),
                    "R 4 blocked fire exit at block 7",
                    "Report #4 (safety hazard) received, +2 points. We will text you as it moves on.",
                )
            ],
        )
        lead = sent_to(svc, street.lead.phone)
    assert (
        lead[0]
        == "新上报#1【环境卫生】东巷，王秀英138****8001：5号楼门口垃圾堆放（转环卫）回复“受理1”受理"
    )
    # Same zone, same category within a day: the lead hears it may be a duplicate.
    assert lead[2].startswith("新上报#3【设施损坏】东巷（疑似与#2重复），王秀英")
    assert lead[3].startswith(
        "【紧急】新上报#4【安全隐患】东巷，Li Wei138****8002：blocked fire exit at block 7"
    )
    assert len(lead) == 4
    reports = await Report.all().order_by("number")
    assert [(r.number, r.category, r.urgent, r.place) for r in reports] == [
        (1, 1, False, "东巷"),
        (2, 2, False, "东巷"),
        (3, 2, False, "东巷"),
        (4, 4, True, "东巷"),
    ]
    assert reports[2].duplicate_of_id == reports[1].id
    points = await PointsEntry.filter(volunteer_id=street.wang.id).values_list("amount", flat=True)
    assert points == [2, 2, 2]


async def test_guided_report_and_its_timeout(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await converse(
            svc,
            street.wang.phone,
            [
                (at(9, 0), "报", f"请回复类别数字：{MENU_ZH}"),
                (at(9, 1), "帮助", "回复: 1签到 2签退 3上报 4积分 0帮助"),  # help mid-step
                (at(9, 2), "２", "好的，设施损坏。请用一条短信说明情况和地点，可附照片。"),
                (at(9, 4), "3号楼路灯不亮了", filed(1, "设施损坏")),
                (at(10, 0), "3", f"请回复类别数字：{MENU_ZH}"),
                # Half an hour later the question has expired: "2" is the menu's check-out.
                (at(10, 31), "2", "您现在没有签到。开始巡查时回复1签到。"),
            ],
        )
    report = await Report.get(number=1)
    assert (report.category, report.description) == (2, "3号楼路灯不亮了")


async def test_stop_inside_a_guided_report_is_not_trapped(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        got = await say(svc, at(9, 0), street.li.phone, "report")
        assert got[0].startswith("Reply with a number: 1sanitation 2damaged facility")
        await converse(
            svc,
            street.li.phone,
            [
                (
                    at(9, 1),
                    "STOP",
                    "You are unsubscribed and will get no more texts from us. Reply START to resume.",
                ),
                (at(9, 2), "START", "Welcome back! Texts are on again. Reply HELP for the menu."),
                (
                    at(9, 3),
                    "1",
                    "Li, checked in at 9:03. Have a good patrol! Text OUT (or 2) when you finish.",
                ),
            ],
        )
    assert await Report.all().count() == 0


async def test_photos_join_a_recent_report_or_start_one(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        assert await say(svc, at(9, 0), street.wang.phone, "", media=(PHOTO,)) == [
            f"照片已收到。请回复类别数字：{MENU_ZH}"
        ]
        assert await say(svc, at(9, 1), street.wang.phone, "1") == [filed(1, "环境卫生")]
        assert await say(svc, at(9, 20), street.wang.phone, "", media=(PHOTO, PHOTO)) == [
            "照片已附到上报#1，谢谢！"
        ]
        # Forty minutes on, a photo starts a new report instead.
        assert (await say(svc, at(10, 0), street.wang.phone, "", media=(PHOTO,)))[0].startswith(
            "照片已收到"
        )
    photos = await Attachment.filter(report__number=1).values_list("url", "content_type")
    assert photos == [PHOTO, PHOTO, PHOTO]


async def test_urgent_reports_reach_the_office_at_once(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    office = await add_office(street)
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await say(svc, at(9, 0), street.wang.phone, "报 消防 楼道堆满杂物堵住消防通道")
        await say(svc, at(9, 5), street.wang.phone, "报 1 垃圾没人收")
        office_got = sent_to(svc, office.phone)
        lead_got = sent_to(svc, street.lead.phone)
    assert office_got == [
        "【紧急】新上报#1【安全隐患】东巷，王秀英138****8001：楼道堆满杂物堵住消防通道（转消防安全）回复“受理1”受理"
    ]
    assert len(lead_got) == 2  # the lead hears of both; the office only of the urgent one


async def test_a_report_from_filing_to_closing(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    wang, lead = street.wang.phone, street.lead.phone
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await converse(svc, wang, [(at(9, 0), "报 1 5号楼门口垃圾堆放", filed(1, "环境卫生"))])
        await converse(svc, lead, [(at(9, 30), "受理 1", "已受理#1，已告知上报人。")])
        await converse(svc, lead, [(at(11, 0), "办结1 已清理", "已办结#1，已请上报人现场核实。")])
        await converse(svc, wang, [(at(14, 0), "否 1", "谢谢反馈，上报#1已退回继续处理。")])
        await converse(
            svc,
            lead,
            [(at(15, 0), "办结 1 再次清理并加装垃圾桶", "已办结#1，已请上报人现场核实。")],
        )
        await converse(
            svc,
            wang,
            [
                (at(15, 30), "查 1", "上报#1（环境卫生）：已处理，待您核实，11月23日15:00更新。"),
                (at(16, 0), "是 1", "谢谢核实！上报#1已结案，+1分。"),
                # The same text again at once is answered kindly, and pays nothing twice.
                (at(16, 1), "是 1", "上报#1当前为“已结案”，无需这样办理。"),
                (at(16, 30), "否 1", "上报#1当前为“已结案”，无需这样办理。"),
            ],
        )
        to_wang = sent_to(svc, wang)
        to_lead = sent_to(svc, lead)
    assert to_wang == [
        filed(1, "环境卫生"),
        "您的上报#1已受理，正在处理，+3分。谢谢！",
        "上报#1已处理：已清理。请到现场看看，好了回复“是1”，没好回复“否1”。",
        "谢谢反馈，上报#1已退回继续处理。",
        "上报#1已处理：再次清理并加装垃圾桶。请到现场看看，好了回复“是1”，没好回复“否1”。",
        "上报#1（环境卫生）：已处理，待您核实，11月23日15:00更新。",
        "谢谢核实！上报#1已结案，+1分。",
        "上报#1当前为“已结案”，无需这样办理。",
        "上报#1当前为“已结案”，无需这样办理。",
    ]
    assert "上报#1【环境卫生】经上报人核实未解决，已退回受理状态。" in to_lead
    events = (
        await ReportEvent.filter(report__number=1)
        .order_by("id")
        .values_list("from_status", "to_status", "actor__name")
    )
    assert events == [
        (None, "new", "王秀英"),
        ("new", "acknowledged", "赵建国"),
        ("acknowledged", "resolved", "赵建国"),
        ("resolved", "acknowledged", "王秀英"),
        ("acknowledged", "resolved", "赵建国"),
        ("resolved", "verified", "王秀英"),
        ("verified", "closed", "王秀英"),
    ]
    points = (
        await PointsEntry.filter(volunteer_id=street.wang.id)
        .order_by("id")
        .values_list("amount", "kind")
    )
    assert points == [(2, "report_filed"), (3, "report_valid"), (1, "report_verified")]


async def test_rejection_and_who_may_ask_what(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await say(svc, at(9, 0), street.wang.phone, "报 3 门口乱停车")
        await converse(
            svc,
            street.other.phone,
            [
                (at(9, 10), "查 1", "没有找到您的上报#1，请核对编号。"),  # someone else's
                (at(9, 11), "查 99", "没有找到您的上报#99，请核对编号。"),  # missing
                (at(9, 12), "受理 1", "只有本社区片长可以这样办理。"),
                (at(9, 13), "查", "请在后面加上报编号，例如“查12”。"),
            ],
        )
        await converse(
            svc,
            street.lead.phone,
            [
                (at(9, 20), "驳回 1", "请写明驳回理由，例如“驳回1 重复上报”。"),
                (at(9, 21), "驳回 1 已由物业处理", "已驳回#1，已告知上报人。"),
                (at(9, 22), "受理 1", "上报#1当前为“未受理”，无需这样办理。"),
                (at(9, 23), "受理 7", "本社区没有上报#7，请核对编号。"),
            ],
        )
        to_wang = sent_to(svc, street.wang.phone)
    assert to_wang[-1] == "上报#1未被受理，原因：已由物业处理。如有疑问请联系片长。"
    points = await PointsEntry.filter(volunteer_id=street.wang.id).values_list("amount", flat=True)
    assert points == [2]  # filing points stay; a rejected report earns no more
