"""Recruitment by text (SPEC §9) as transcripts over signed webhooks: applying, screening, the
pledge, resigning and the candidates a vacancy message names; and `steward applicants`."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from steward.clock import utc
from steward.flows import recruitment as rules_of_recruitment
from steward.shells import jobs as job_shells
from steward.shells import recruitment
from steward.shells import review as review_shell
from steward.storage.models import (
    Application,
    ApplicationStatus,
    Pair,
    Volunteer,
    VolunteerStatus,
)
from steward.storage.unit import UnitOfWork
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import (
    Street1,
    converse,
    running_service,
    say,
    seed_street,
    sent_to,
    service_settings,
)
from tests.test_telegram import telegram_service

SHANGHAI = ZoneInfo("Asia/Shanghai")
APPLICANT = "+8613900139000"
ASK_NAME = "欢迎报名小巷管家！请回复您的姓名。"
ASK_COMMUNITY = "您住在或工作在哪个社区？请回复序号：1新开河社区"
ASK_BIRTH = "请回复您的出生年月，例如1965年3月。"
ASK_PARTY = "您是党员吗？请回复“是”或“否”。"
ASK_EXPERIENCE = "做过志愿服务吗？请用一句话说说，没有请回复“无”。"
ASK_LANE = "您想认领哪条街巷？请回复街巷名，不确定请回复“无”。"
RECEIVED = "报名已收到，谢谢！将转街道办审核，结果会短信告诉您。"
PLEDGE_A2 = (
    "恭喜通过审核，请加入A2组（西巷）！承诺书要点：义务服务不取报酬，"
    "遵守法律和管家制度，巡查注意安全，同意活动照片用于宣传。同意请回复“同意”。"
)


def at(hour: int, minute: int = 0, day: int = 23) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


async def applied(
    street: Street1,
    name: str,
    phone: str,
    *,
    party: bool = False,
    experience: str = "",
    status: ApplicationStatus = ApplicationStatus.PENDING,
) -> Application:
    """An application as the conversation leaves it (seeded at an explicit time)."""
    return await Application.create(
        channel="sms",
        address=phone,
        phone=phone,
        name=name,
        community_id=street.wang.community_id,
        birth="1960-05",
        party_member=party,
        experience=experience,
        status=status,
        started_at=utc(at(8, 0, day=20)),
        received_at=utc(at(8, 10, day=20)),
    )


# ---- reading what applicants write ---------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "1965年3月",
        "1965.3",
        "196503",
        "1965-03",
        "1965/3",
        "1965年03月5日",
        "一九六五年三月",
        "65年3月",
    ],
)
def test_birth_is_read_as_elderly_people_write_it(text: str) -> None:
    assert rules_of_recruitment.parse_birth(text, date(2026, 11, 23)) == (1965, 3)


@pytest.mark.parametrize("text", ["张三", "1965", "1965年13月", "2030-01", "3月"])
def test_what_is_not_a_birth_month_is_asked_again(text: str) -> None:
    assert rules_of_recruitment.parse_birth(text, date(2026, 11, 23)) is None


# ---- applying -------------------------------------------------------------------------------


async def test_a_full_application_reaches_the_leads(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await converse(
            svc,
            APPLICANT,
            [
                (at(9, 0), "你好", "您好，本号码未登记为小巷管家。如想加入，请回复“报名”。"),
                (at(9, 1), "报名", ASK_NAME),
                (at(9, 1), "报名", ASK_NAME),  # sent again: not a name, the question again
                (at(9, 2), "张桂兰", ASK_COMMUNITY),
                (at(9, 3), "1", ASK_BIRTH),
                (at(9, 4), "去年", "没看懂，" + ASK_BIRTH),
                (at(9, 5), "1965年3月", ASK_PARTY),
                (at(9, 6), "帮助", "您正在报名，回复“退订”可停止。" + ASK_PARTY),
                (at(9, 7), "是", ASK_EXPERIENCE),
                (at(9, 8), "在社区做过垃圾分类督导", ASK_LANE),
                (at(9, 9), "东巷", RECEIVED),
                (at(9, 30), "在吗", "您的报名正在审核中，结果会短信告诉您，请耐心等候。"),
            ],
        )
        assert sent_to(svc, street.lead.phone) == [
            "新报名#1：张桂兰，61岁，党员，新开河社区，139****9000。"
            "经历：在社区做过垃圾分类督导；意向街巷：东巷。待街道审核。"
        ]
    app = await Application.get(address=APPLICANT)
    assert (app.status, app.name, app.birth, app.party_member, app.phone) == (
        ApplicationStatus.PENDING,
        "张桂兰",
        "1965-03",
        True,
        APPLICANT,
    )
    assert (app.experience, app.lane, app.community_id) == (
        "在社区做过垃圾分类督导",
        "东巷",
        street.wang.community_id,
    )
    assert app.received_at == utc(at(9, 9))
    assert app.step is None


async def test_an_english_applicant_types_the_community_name(db: str, twilio: FakeTwilio) -> None:
    await seed_street()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await converse(
            svc,
            APPLICANT,
            [
                (
                    at(9, 0),
                    "APPLY",
                    "Welcome! To apply as an alley steward, please reply with your name.",
                ),
                (
                    at(9, 1),
                    "Anna Chen",
                    "Which community do you live or work in? Reply with its number: 1新开河社区",
                ),
                (
                    at(9, 2),
                    "新开河",
                    "Please reply with your year and month of birth, for example 1965-03.",
                ),
                (at(9, 3), "1980-07", "Are you a Party member? Please reply YES or NO."),
                (
                    at(9, 4),
                    "no",
                    "Any volunteering experience? Tell us in one line, or reply NONE.",
                ),
                (
                    at(9, 5),
                    "none",
                    "Which lane would you like to look after? Reply with its name, or NONE if unsure.",
                ),
                (
                    at(9, 6),
                    "NONE",
                    "Thank you, your application is in. It goes to the street office, and we will text you the result.",
                ),
            ],
        )
    app = await Application.get(address=APPLICANT)
    assert (app.language, app.party_member, app.experience, app.lane) == ("en", False, "", "")


async def test_a_seventeen_year_old_is_declined_kindly_and_nothing_is_kept(
    db: str, twilio: FakeTwilio
) -> None:
    street = await seed_street()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await converse(
            svc,
            APPLICANT,
            [
                (at(9, 0), "我要报名", ASK_NAME),
                (at(9, 1), "小明", ASK_COMMUNITY),
                (at(9, 2), "新开河社区", ASK_BIRTH),
                (
                    at(9, 3),
                    "2009.1",
                    "谢谢您的热心！小巷管家需年满18周岁，欢迎成年后再来报名。本次信息未保存。",
                ),
            ],
        )
        assert sent_to(svc, street.lead.phone) == []
    assert await Application.all().count() == 0


async def test_a_timeout_mid_application_then_going_on_where_it_stopped(
    db: str, twilio: FakeTwilio
) -> None:
    await seed_street()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await converse(
            svc,
            APPLICANT,
            [
                (at(9, 0), "报名", ASK_NAME),
                (at(9, 1), "张桂兰", ASK_COMMUNITY),
                # 30 minutes later the question has expired: the answer is not taken.
                (at(9, 40), "1", "您的报名已暂停，回复“报名”可从中断处继续。"),
                (at(9, 41), "报名", "欢迎回来，接着上次报名。" + ASK_COMMUNITY),
                (at(9, 42), "1", ASK_BIRTH),
            ],
        )
    app = await Application.get(address=APPLICANT)
    assert (app.status, app.name, app.step) == (ApplicationStatus.DRAFT, "张桂兰", "apply_birth")


async def test_stop_mid_application_ends_it_and_keeps_nothing(db: str, twilio: FakeTwilio) -> None:
    await seed_street()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await converse(
            svc,
            APPLICANT,
            [
                (at(9, 0), "报名", ASK_NAME),
                (at(9, 1), "张桂兰", ASK_COMMUNITY),
                (at(9, 2), "退订", "已退订，今后不再给您发短信。回复“订阅”可恢复。"),
                (at(9, 3), "1", None),  # opted out: nothing is sent, and no step waits
                (at(9, 4), "订阅", "已恢复短信，欢迎回来！回复0查看菜单。"),
                (at(9, 5), "报名", ASK_NAME),  # a new application, from the start
            ],
        )
    assert await Application.filter(status=ApplicationStatus.DRAFT).count() == 1
    assert (await Application.get(address=APPLICANT)).name == ""


# ---- screening and the pledge ---------------------------------------------------------------


async def test_approve_into_a_vacancy_then_the_pledge_is_accepted(
    db: str, twilio: FakeTwilio
) -> None:
    street = await seed_street()
    app = await applied(street, "张桂兰", APPLICANT, party=True)
    units = UnitOfWork()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        with pytest.raises(recruitment.PairFull, match="pair A1 in 新开河社区 has no vacancy"):
            await recruitment.approve(units, app.id, "A1", actor="cli:test", now=utc(at(10, 0)))
        with pytest.raises(recruitment.NoSuchPair, match="no pair 'B9' in 新开河社区"):
            await recruitment.approve(units, app.id, "B9", actor="cli:test", now=utc(at(10, 0)))
        with pytest.raises(recruitment.NoSuchApplication, match="no application #99"):
            await recruitment.approve(units, 99, "A2", actor="cli:test", now=utc(at(10, 0)))
        with time_machine.travel(at(10, 0), tick=False):
            done = await recruitment.approve(
                svc.app.state.units, app.id, "a2", actor="cli:test", now=utc(at(10, 0))
            )
            await svc.drain()
        assert (done.pair_code, done.zone, done.pledge_queued) == ("A2", "西巷", True)
        assert sent_to(svc, APPLICANT) == [PLEDGE_A2]
        await converse(
            svc,
            APPLICANT,
            [
                (at(11, 0), "好的", "您的报名已通过。同意承诺书请回复“同意”，有疑问请联系社区。"),
                (at(11, 1), "同意", "欢迎加入小巷管家，张桂兰！您在A2组（西巷）。回复0查看菜单。"),
                (at(11, 2), "签到", "张桂兰，11:02签到成功，祝巡查顺利！结束时回复2签退。"),
            ],
        )
        assert sent_to(svc, street.other.phone) == [
            "新搭档张桂兰（+8613900139000）已加入您的A2组，请约好一起巡查。"
        ]
        assert sent_to(svc, street.lead.phone) == ["张桂兰已签署承诺书，加入A2组（西巷）。"]
    joined = await Volunteer.get(phone=APPLICANT)
    pair = await Pair.get(code="A2")
    assert (joined.status, joined.pair_id, joined.joined_on, joined.birth) == (
        VolunteerStatus.ACTIVE,
        pair.id,
        date(2026, 11, 23),
        "1960-05",
    )
    stored = await Application.get(id=app.id)
    assert (stored.status, stored.decided_by, stored.volunteer_id) == (
        ApplicationStatus.JOINED,
        "cli:test",
        joined.id,
    )
    assert (stored.decided_at, stored.pledge_accepted_at) == (utc(at(10, 0)), utc(at(11, 1)))
    # The pair is full now: nobody else may be approved into it.
    other = await applied(street, "李四", "+8613900139111")
    with pytest.raises(recruitment.PairFull):
        await recruitment.approve(units, other.id, "A2", actor="cli:test", now=utc(at(12, 0)))


async def test_an_unanswered_pledge_lapses_after_a_week(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    app = await applied(street, "张桂兰", APPLICANT)
    await applied(street, "王芳", "+8613900139222", experience="社区志愿者")
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await recruitment.approve(
            svc.app.state.units, app.id, "A2", actor="cli:test", now=utc(at(10, 0))
        )
        six_days = utc(at(11, 0, day=29))
        assert await job_shells.run_job("reports", svc.settings, six_days) == []
        a_week = utc(at(11, 0, day=30))
        with time_machine.travel(a_week, tick=False):
            sent = await job_shells.run_job("reports", svc.settings, a_week)
            again = await job_shells.run_job("reports", svc.settings, a_week + timedelta(hours=1))
            await svc.drain()
        assert [n.to.name for n in sent] == ["赵建国"]
        assert again == []
        assert sent_to(svc, street.lead.phone) == [
            "报名#1张桂兰批准7天未回复承诺书，已失效，A2组仍缺一人。候选：#2王芳（有经验）"
        ]
        await converse(
            svc,
            APPLICANT,
            [(at(12, 0, day=30), "同意", "您好，本号码未登记为小巷管家。如想加入，请回复“报名”。")],
        )
    stored = await Application.get(id=app.id)
    assert (stored.status, stored.lapsed_at) == (ApplicationStatus.LAPSED, a_week)
    assert not await Volunteer.filter(phone=APPLICANT).exists()


async def test_decline_tells_the_applicant_kindly(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    app = await applied(street, "张桂兰", APPLICANT)
    async with running_service(service_settings(db, twilio), twilio) as svc:
        with pytest.raises(recruitment.NoReason):
            await recruitment.decline(svc.app.state.units, app.id, "  ", actor="x", now=utc(at(9)))
        with time_machine.travel(at(10, 0), tick=False):
            await recruitment.decline(
                svc.app.state.units, app.id, "本社区名额已满", actor="cli:test", now=utc(at(10))
            )
            await svc.drain()
        assert sent_to(svc, APPLICANT) == [
            "谢谢您报名小巷管家！这次未能安排：本社区名额已满。欢迎继续关心社区事务。"
        ]
        with pytest.raises(recruitment.NotOpen, match="is declined already"):
            await recruitment.approve(svc.app.state.units, app.id, "A2", actor="x", now=utc(at(11)))
    stored = await Application.get(id=app.id)
    assert (stored.status, stored.decline_reason, stored.decided_at) == (
        ApplicationStatus.DECLINED,
        "本社区名额已满",
        utc(at(10)),
    )


# ---- resigning and replacement --------------------------------------------------------------


async def test_quit_confirmed_leaves_a_vacancy_with_candidates_named(
    db: str, twilio: FakeTwilio
) -> None:
    street = await seed_street()
    await applied(street, "陈一", "+8613900139001")
    await applied(street, "陈二", "+8613900139002", experience="楼长三年")
    await applied(street, "陈三", "+8613900139003", party=True)
    await applied(street, "陈四", "+8613900139004", party=True, experience="志愿者")
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await converse(
            svc,
            street.wang.phone,
            [
                (at(9, 0), "退出", "确定要退出小巷管家服务吗？确定请回复1，回复其他内容取消。"),
                (at(9, 1), "1", "已为您办理退出，感谢您的付出！今后不再给您发短信。"),
                (
                    at(9, 5),
                    "签到",
                    "您好，您已不再登记为小巷管家，感谢您的付出！如有疑问请联系社区。",
                ),
            ],
        )
        assert sent_to(svc, street.lead.phone) == [
            "王秀英已不再担任小巷管家，A1组（东巷）缺一人，请安排递补。"
            "候选：#4陈四（党员、有经验）、#3陈三（党员）、#2陈二（有经验）"
        ]
        assert sent_to(svc, street.li.phone) == [
            "Your partner 王秀英 has left the programme; the community will find a new partner."
        ]
    wang = await Volunteer.get(id=street.wang.id)
    assert (wang.status, wang.pair_id) == (VolunteerStatus.RESIGNED, None)
    # The pair has room again.
    newcomer = await applied(street, "陈五", "+8613900139005")
    done = await recruitment.approve(
        UnitOfWork(), newcomer.id, "A1", actor="cli:test", now=utc(at(10))
    )
    assert done.pair_code == "A1"


async def test_quit_not_confirmed_changes_nothing(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await converse(
            svc,
            street.wang.phone,
            [
                (at(9, 0), "退出", "确定要退出小巷管家服务吗？确定请回复1，回复其他内容取消。"),
                (at(9, 1), "2", "好的，已取消退出，您仍是小巷管家，谢谢！"),
                (at(9, 2), "退出", "确定要退出小巷管家服务吗？确定请回复1，回复其他内容取消。"),
                # A real command is read as itself, and the question is dropped.
                (at(9, 3), "签到", "王秀英，9:03签到成功，祝巡查顺利！结束时回复2签退。"),
                (at(9, 4), "1", "您9:03已签到，正在巡查中。结束时回复2签退。"),
            ],
        )
        assert sent_to(svc, street.lead.phone) == []
    wang = await Volunteer.get(id=street.wang.id)
    assert (wang.status, wang.pair_id) == (VolunteerStatus.ACTIVE, street.wang.pair_id)


async def test_a_removal_by_review_names_the_candidates(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    await applied(street, "陈一", "+8613900139001")
    await applied(street, "陈二", "+8613900139002", status=ApplicationStatus.APPROVED)
    await applied(street, "陈三", "+8613900139003", status=ApplicationStatus.DECLINED)
    async with running_service(service_settings(db, twilio), twilio) as svc:
        with time_machine.travel(at(9, 0), tick=False):
            await review_shell.decide(
                "Li Wei",
                remove=True,
                rules=svc.settings,
                now=utc(at(9, 0)),
                units=svc.app.state.units,
            )
            await svc.drain()
        assert sent_to(svc, street.lead.phone) == [
            "Li Wei已不再担任小巷管家，A1组（东巷）缺一人，请安排递补。候选：#1陈一、#2陈二"
        ]


async def test_a_volunteer_who_texts_apply_is_already_one(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        got = await say(svc, at(9, 0), street.wang.phone, "报名")
    assert got == ["您已是小巷管家，无需报名。回复: 1签到 2签退 3上报 4积分 0帮助"]


# ---- the CLI (the real command, in its own process, on this test's database) ---------------


def steward(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "steward.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "DATABASE_URL": db, "TIMEZONE": "Asia/Shanghai"},
    )


async def test_cli_list_approve_and_decline(db: str) -> None:
    street = await seed_street()
    first = await applied(street, "张桂兰", APPLICANT, party=True, experience="楼长")
    second = await applied(street, "李四", "+8613900139111")

    listed = steward(db, "applicants", "list", "--street", "鼓楼街道")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split("\t")[:2] for line in lines] == [["#1", "张桂兰"], ["#2", "李四"]]
    assert "党员 有经验" in lines[0] and "+8613900139000" in lines[0]

    full = steward(db, "applicants", "approve", str(first.id), "--pair", "A1")
    assert full.returncode == 1
    assert "pair A1 in 新开河社区 has no vacancy" in full.stderr
    assert "Traceback" not in full.stderr
    missing = steward(db, "applicants", "approve", "42", "--pair", "A2")
    assert (missing.returncode, "no application #42" in missing.stderr) == (1, True)

    done = steward(db, "applicants", "approve", str(first.id), "--pair", "A2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "#1 张桂兰: approved into 新开河社区 A2; pledge sent"

    no_reason = steward(db, "applicants", "decline", str(second.id))
    assert no_reason.returncode == 2  # click: REASON is required
    declined = steward(db, "applicants", "decline", str(second.id), "年龄", "材料不全")
    assert declined.returncode == 0, declined.stderr
    assert declined.stdout.strip() == "#2 李四: declined (年龄 材料不全); told by text"
    twice = steward(db, "applicants", "decline", str(second.id), "again")
    assert (twice.returncode, "is declined already" in twice.stderr) == (1, True)

    pending = steward(db, "applicants", "list")
    assert pending.stdout.strip() == "no pending applications"
    everyone = steward(db, "applicants", "list", "--status", "all", "--community", "新开河社区")
    assert [line.split("\t")[0] for line in everyone.stdout.splitlines()] == ["#1", "#2"]
    assert "approved A2" in everyone.stdout and "理由:年龄 材料不全" in everyone.stdout
    nowhere = steward(db, "applicants", "list", "--community", "无此社区")
    assert (nowhere.returncode, "no community named '无此社区'" in nowhere.stderr) == (1, True)
    bad = steward(db, "applicants", "list", "--status", "maybe")
    assert bad.returncode == 2

    stored = await Application.get(id=first.id)
    assert stored.decided_by.startswith("cli")


# ---- Telegram: a private chat not linked to anyone may apply too ----------------------------


async def test_applying_in_a_telegram_private_chat(
    db: str, twilio: FakeTwilio, telegram_api: FakeTelegram
) -> None:
    street = await seed_street()
    user = telegram_api.user(7001, "桂兰")
    answers = ["报名", "张桂兰", "1", "1965.3", "否", "无", "无"]
    async with telegram_service(db, twilio, telegram_api) as svc:
        for minute, text in enumerate(answers):
            with time_machine.travel(at(9, minute), tick=False):
                await telegram_api.private_text(user, text)
                await svc.drain()
        with time_machine.travel(at(10, 0), tick=False):
            app = await Application.get(address=f"telegram:{user.id}")
            await recruitment.approve(
                svc.app.state.units, app.id, "A2", actor="tg:1", now=utc(at(10, 0))
            )
            await svc.drain()
        with time_machine.travel(at(10, 5), tick=False):
            await telegram_api.private_text(user, "同意")
            await svc.drain()
        got = [m.text for m in telegram_api.messages_to(user.id)]
        lead_sms = sent_to(svc, street.lead.phone)
    assert got == [
        ASK_NAME,
        ASK_COMMUNITY,
        ASK_BIRTH,
        ASK_PARTY,
        ASK_EXPERIENCE,
        ASK_LANE,
        RECEIVED,
        PLEDGE_A2,
        "欢迎加入小巷管家，张桂兰！您在A2组（西巷）。回复0查看菜单。",
    ]
    assert (
        lead_sms[0]
        == "新报名#1：张桂兰，61岁，新开河社区，Telegram。经历：无；意向街巷：无。待街道审核。"
    )
    joined = await Volunteer.get(telegram_chat_id=user.id)
    assert (joined.name, joined.status, joined.phone) == (
        "张桂兰",
        VolunteerStatus.ACTIVE,
        "tg:7001",
    )
