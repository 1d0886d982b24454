"""The daily digest: a seeded day read back in full and as SMS, the job's once-only queueing."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from steward.clock import utc
from steward.flows.digest import (
    DigestData,
    MemberDay,
    UrgentReport,
    digest_sms,
    digest_text,
    pair_day,
)
from steward.flows.segments import segment_count
from steward.settings import Settings, load_settings
from steward.shells.digest import digest_for, run_digest_job
from steward.storage.digest_store import load_digest
from steward.storage.models import (
    OutboxMessage,
    Pair,
    PatrolSession,
    PointsEntry,
    Report,
    Role,
    Volunteer,
    VolunteerStatus,
)
from tests.harness import SEEDED_ON, Street1, seed_street

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 23)  # a Monday


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


def rules(database_url: str) -> Settings:
    return load_settings(DATABASE_URL=database_url, TIMEZONE="Asia/Shanghai", SCHEDULER=False)


@dataclass(frozen=True)
class Office:
    zh: Volunteer
    en: Volunteer


# ---- a small seeded day ---------------------------------------------------------------------


async def session(who: Volunteer, start: datetime, minutes: int | None, **extra: Any) -> None:
    ended = None if minutes is None else utc(start + timedelta(minutes=minutes))
    await PatrolSession.create(
        volunteer=who,
        pair_id=who.pair_id,
        local_date=start.date(),
        started_at=utc(start),
        ended_at=ended,
        minutes=minutes,
        closed_by=None if minutes is None else "volunteer",
        **extra,
    )


async def report(
    who: Volunteer,
    number: int,
    category: int,
    filed: datetime,
    status: str = "new",
    **extra: Any,
) -> None:
    await Report.create(
        number=number,
        reporter=who,
        community_id=who.community_id,
        category=category,
        status=status,
        created_at=utc(filed),
        updated_at=utc(filed),
        **extra,
    )


async def points(who: Volunteer, amount: int, day: date) -> None:
    await PointsEntry.create(
        volunteer=who, amount=amount, kind="award", local_date=day, created_at=utc(at(23, 8))
    )


async def seed_day() -> tuple[Street1, Office]:
    """Pair A1 done (王秀英; Li Wei on leave), A2 partial, A3 absent and flagged, A4 off."""
    s = await seed_street()
    where: dict[str, Any] = {
        "street_id": s.wang.street_id,
        "community_id": s.wang.community_id,
        "joined_on": SEEDED_ON,
    }
    office = Office(
        zh=await Volunteer.create(name="钱主任", phone="+8613800138010", role=Role.OFFICE, **where),
        en=await Volunteer.create(
            name="Anna Qian", phone="+8613800138011", role=Role.OFFICE, language="en", **where
        ),
    )
    a3 = await Pair.create(community_id=s.wang.community_id, code="A3", patrol_start="08:00")
    a4 = await Pair.create(
        community_id=s.wang.community_id, code="A4", patrol_start="08:00", patrol_days="sat,sun"
    )
    zhou = await Volunteer.create(
        name="周强", phone="+8613800138004", pair=a3, status=VolunteerStatus.FLAGGED, **where
    )
    await Volunteer.create(name="吴芳", phone="+8613800138005", pair=a4, **where)
    s.li.on_leave_from, s.li.on_leave_until = date(2026, 11, 22), date(2026, 11, 25)
    await s.li.save()

    await session(s.wang, at(23, 8), 60)
    await session(s.wang, at(23, 14), 60)
    await session(s.other, at(23, 8), 45)
    await session(s.other, at(23, 13), 240, confirmed=False)  # closed automatically: no credit
    await session(s.other, at(23, 17, 30), None)  # still out: not counted yet
    await session(s.wang, at(22, 8), 120)  # another day

    await report(s.wang, 1, 1, at(23, 8), place="东巷")
    await report(s.wang, 2, 4, at(23, 9), urgent=True, place="东巷")  # 2 h limit: overdue
    await report(s.other, 3, 1, at(22, 9), place="西巷")  # yesterday's, unacknowledged
    await report(s.other, 4, 7, at(23, 10), "acknowledged", urgent=True, place="西巷")
    await report(s.wang, 5, 2, at(23, 7), "resolved", place="东巷")
    await report(s.wang, 6, 4, at(20, 9), "closed", urgent=True, place="东巷")

    await points(s.wang, 10, DAY)
    await points(s.wang, 2, date(2026, 11, 5))
    await points(s.li, 13, date(2026, 11, 10))
    await points(s.other, 2, DAY)
    await points(s.other, 100, date(2026, 10, 31))  # last month
    await points(s.lead, 4, DAY)
    await points(zhou, 5, DAY)
    await points(zhou, -5, DAY)  # redeemed: nothing gained this month
    await points(office.zh, 50, DAY)  # office staff are not ranked
    return s, office


FULL_ZH = """鼓楼街道日报 11月23日
巡查：应巡3对，完成1，部分1，缺勤1，覆盖率33%
巡查时长：2小时45分
新上报4件（环境卫生1，设施损坏1，安全隐患1，治安1）
未结上报4件，超时未受理2件
紧急：#2安全隐患 东巷；#4治安 西巷
待审核：周强
本月积分前三：Li Wei 13，王秀英 12，赵建国 4"""

FULL_EN = """鼓楼街道 daily digest, 2026-11-23
Pairs: 3 scheduled, 1 done, 1 partial, 1 absent; coverage 33%
Patrol time: 2 h 45 min
New reports: 4 (sanitation 1, damaged facility 1, safety hazard 1, public security 1)
Open reports: 4, overdue 2
Urgent: #2 safety hazard, 东巷; #4 public security, 西巷
Flagged for review: 周强
Top stewards this month: Li Wei 13, 王秀英 12, 赵建国 4"""

SMS_ZH = """鼓楼街道 11/23日报
应巡3对 完成1 部分1 缺勤1 覆盖33%
新报4（环境卫生1，设施损坏1，安全隐患1，治安1） 未结4 超时2
紧急2件：#2安全隐患 东巷；#4治安 西巷
待审1人：周强
时长2小时45分
月榜：Li Wei13，王秀英12，赵建国4"""

SMS_EN = """鼓楼街道 11/23
Pairs 3: done 1, partial 1, absent 1, 33%
New 4, open 4, overdue 2
URGENT 2: #2 #4
Review 1"""


async def test_seeded_day_reads_in_full(db: str) -> None:
    await seed_day()
    with time_machine.travel(at(23, 18), tick=False):
        zh = await digest_for("鼓楼街道", DAY, "zh", rules(db))
        en = await digest_for(None, DAY, "en", rules(db))
    assert zh == [("鼓楼街道", FULL_ZH)]
    assert en == [("鼓楼街道", FULL_EN)]


async def test_seeded_day_as_sms(db: str) -> None:
    s, _ = await seed_day()
    data = await load_digest(s.wang.street_id, DAY, rules(db), as_of=utc(at(23, 18)))
    assert digest_sms(data, "zh") == SMS_ZH
    # Chinese names make the English SMS UCS-2 too, so it sheds the least important lines.
    assert digest_sms(data, "en") == SMS_EN
    assert [segment_count(digest_sms(data, lang)) for lang in ("zh", "en")] == [2, 2]


async def test_overdue_is_counted_as_of_the_time_asked(db: str) -> None:
    s, _ = await seed_day()
    morning = await load_digest(s.wang.street_id, DAY, rules(db), as_of=utc(at(23, 10)))
    later = await load_digest(s.wang.street_id, DAY, rules(db), as_of=utc(at(25, 9)))
    assert morning.overdue_reports == 1  # only yesterday's #3; #2 has waited 1 h of its 2
    # Asked two days later, the day still reads as at its end: #1 was then 16 h old, not 49.
    assert later.overdue_reports == 2


# ---- the job -------------------------------------------------------------------------------


async def test_job_queues_each_office_digest_once(db: str) -> None:
    s, office = await seed_day()
    settings = rules(db)
    first = await run_digest_job(settings, utc(at(23, 18)), dry_run=False)
    again = await run_digest_job(settings, utc(at(23, 18)), dry_run=False)
    later = await run_digest_job(settings, utc(at(23, 20)), dry_run=False)
    assert [(n.to.phone, n.body) for n in first] == [
        (office.zh.phone, SMS_ZH),
        (office.en.phone, SMS_EN),
    ]
    assert again == [] and later == []
    rows = await OutboxMessage.all().order_by("id")
    assert [(r.address, r.kind, r.priority, r.dedupe_key, r.body) for r in rows] == [
        (
            office.zh.phone,
            "digest",
            3,
            f"digest:{s.wang.street_id}:{office.zh.id}:2026-11-23",
            SMS_ZH,
        ),
        (
            office.en.phone,
            "digest",
            3,
            f"digest:{s.wang.street_id}:{office.en.id}:2026-11-23",
            SMS_EN,
        ),
    ]
    assert all(r.next_attempt_at == utc(at(23, 18)) for r in rows)
    tomorrow = await run_digest_job(settings, utc(at(24, 18)), dry_run=False)
    assert len(tomorrow) == 2  # a new local day is a new digest


async def test_dry_run_stores_nothing_and_quiet_hours_hold(db: str) -> None:
    await seed_day()
    settings = rules(db)
    planned = await run_digest_job(settings, utc(at(23, 22)), dry_run=True)
    assert len(planned) == 2
    assert await OutboxMessage.all().count() == 0
    queued = await run_digest_job(settings, utc(at(23, 22)), dry_run=False)
    assert [n.body for n in queued] == [n.body for n in planned]
    held = {r.next_attempt_at for r in await OutboxMessage.all()}
    assert held == {utc(at(24, 7))}  # QUIET_HOURS 21:00-07:00


async def test_cli_prints_and_sends_once(db: str) -> None:
    await seed_day()
    env = {**os.environ, "DATABASE_URL": db, "TIMEZONE": "Asia/Shanghai"}
    command = [
        sys.executable,
        "-m",
        "steward.cli",
        "digest",
        "--street",
        "鼓楼街道",
        "--lang",
        "en",
    ]
    command += ["--date", "2026-11-23", "--send"]
    outputs = [
        subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)
        for _ in range(2)
    ]
    assert [done.returncode for done in outputs] == [0, 0], outputs[0].stderr
    lines = outputs[0].stdout.splitlines()
    assert lines[:2] == FULL_EN.splitlines()[:2]
    assert lines[-3:] == [
        "queued 2 digest SMS",
        "  to 钱主任 +8613800138010",
        "  to Anna Qian +8613800138011",
    ]
    assert outputs[1].stdout.splitlines()[-1] == "queued 0 digest SMS"
    assert await OutboxMessage.all().count() == 2

    command[command.index("--street") + 1] = "No Such Street"
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 1 and "no street named No Such Street" in done.stderr


# ---- pure rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minutes", "leave", "days", "expected"),
    [
        ((120, 130), (False, False), "mon", "done"),
        ((120, 0), (False, True), "mon", "done"),  # the partner on leave does not hold it back
        ((120, 30), (False, False), "mon", "partial"),
        ((0, 30), (False, False), "mon", "partial"),
        ((0, 0), (False, False), "mon", "absent"),
        ((0, 0), (True, True), "mon", None),  # everyone on leave: not scheduled
        ((120, 120), (False, False), "sat,sun", None),  # not a patrol day
    ],
)
def test_pair_day(
    minutes: tuple[int, int], leave: tuple[bool, bool], days: str, expected: str | None
) -> None:
    members = [
        MemberDay(m, DAY if away else None, DAY if away else None)
        for m, away in zip(minutes, leave, strict=True)
    ]
    assert pair_day(days, members, DAY, 120) == expected
    assert pair_day(days, [], DAY, 120) is None  # a vacant pair has nobody to patrol


def big_street() -> DigestData:
    return DigestData(
        street="和平区小白楼街道南京路社区联合",
        day=DAY,
        pairs_scheduled=40,
        pairs_done=23,
        pairs_partial=9,
        pairs_absent=8,
        patrol_minutes=40 * 2 * 117,
        new_by_category=tuple((code, code + 2) for code in range(1, 10)),
        open_reports=57,
        overdue_reports=21,
        urgent_open=tuple(
            UrgentReport(100 + i, 4 if i % 2 else 7, f"南京路{i}号院后门东侧") for i in range(9)
        ),
        flagged=tuple(f"欧阳志{i}" for i in range(12)),
        top_stewards=(("王秀英", 212), ("Li Wei", 198), ("司马光明", 187)),
    )


@pytest.mark.parametrize("language", ["zh", "en"])
def test_big_street_sms_fits_two_segments(language: str) -> None:
    data = big_street()
    sms = digest_sms(data, language)
    assert segment_count(sms) <= 2, sms
    # The most important facts survive: coverage, report counts, every urgent report counted.
    key_facts = {
        "zh": ["应巡40对", "完成23", "覆盖57%", "未结57", "超时21", "紧急9件"],
        "en": ["Pairs 40", "done 23", "57%", "open 57", "overdue 21", "URGENT 9"],
    }
    assert all(fact in sms for fact in key_facts[language]), sms
    assert len(digest_text(data, language).splitlines()) == 8  # the full text keeps it all


def test_english_sms_with_latin_names_uses_gsm7_budget() -> None:
    data = DigestData(
        street="Drum Tower",
        day=DAY,
        pairs_scheduled=2,
        pairs_done=1,
        pairs_partial=0,
        pairs_absent=1,
        patrol_minutes=150,
        new_by_category=((1, 2),),
        open_reports=3,
        overdue_reports=1,
        urgent_open=(UrgentReport(7, 4, "North Lane"),),
        flagged=("Zhou Qiang",),
        top_stewards=(("Li Wei", 13), ("Anna Qian", 4)),
    )
    assert digest_sms(data, "en") == (
        "Drum Tower 11/23\n"
        "Pairs 2: done 1, partial 0, absent 1, 50%\n"
        "New 2 (sanitation 2), open 3, overdue 1\n"
        "URGENT 1: #7 safety hazard, North Lane\n"
        "Review 1: Zhou Qiang\n"
        "Patrol 2 h 30 min\n"
        "Top: Li Wei 13, Anna Qian 4"
    )
    assert segment_count(digest_sms(data, "en")) == 2  # 160+ GSM-7 characters, still two parts


@pytest.mark.parametrize("language", ["zh", "en"])
def test_a_street_name_too_long_for_any_budget_is_clipped(language: str) -> None:
    data = replace(
        big_street(),
        street="南开区" * 30,
        pairs_scheduled=0,
        pairs_done=0,
        pairs_partial=0,
        pairs_absent=0,
    )
    sms = digest_sms(data, language)
    assert segment_count(sms) <= 2, sms
    assert sms.startswith("南开区南开... 11/23")
    assert ("覆盖-" if language == "zh" else "absent 0, -") in sms  # nothing scheduled: no %
