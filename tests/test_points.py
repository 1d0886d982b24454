"""The office's points card (SPEC §4): awards, redemptions, corrections and the ranking.

Everything is seeded at explicit dates and every action is given its `now`: nothing here reads
the machine's clock, except the CLI run at the end, which is given explicit periods.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from steward.clock import utc
from steward.flows.points import month, year
from steward.flows.segments import segment_count
from steward.settings import Settings, load_settings
from steward.shells import points as shell
from steward.storage import points_store
from steward.storage.models import (
    AttendanceDay,
    Community,
    HoursEntry,
    OutboxMessage,
    PointsEntry,
    Report,
    ReportEvent,
    Role,
    Street,
    Volunteer,
    VolunteerStatus,
)
from steward.storage.unit import UnitOfWork
from tests.harness import SEEDED_ON, Street1, add_person, seed_street

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(month_: int, day: int, hour: int, minute: int = 0) -> datetime:
    return utc(datetime(2026, month_, day, hour, minute, tzinfo=SHANGHAI))


MORNING = at(3, 10, 10)


def rules(db: str) -> Settings:
    return load_settings(DATABASE_URL=db, TIMEZONE="Asia/Shanghai", QUIET_HOURS="21:00-07:00")


async def award(db: str, who: str, amount: int, reason: str, now: datetime = MORNING) -> shell.Done:
    return await shell.award(
        who, amount, reason, actor="test", rules=rules(db), now=now, units=UnitOfWork()
    )


async def redeem(db: str, who: str, amount: int, item: str, now: datetime = MORNING) -> shell.Done:
    return await shell.redeem(
        who, amount, item, actor="test", rules=rules(db), now=now, units=UnitOfWork()
    )


async def outbox_to(phone: str) -> list[OutboxMessage]:
    return await OutboxMessage.filter(address=phone).order_by("id")


# ---- award --------------------------------------------------------------------------------


async def test_award_adds_a_line_and_texts_the_volunteer_in_one_segment(db: str) -> None:
    street = await seed_street()
    done = await award(db, "王秀英", 20, "协助社区 疫苗接种宣传")

    assert (done.kind, done.amount, done.balance, done.sms_queued) == ("award", 20, 20, True)
    assert done.message() == (
        "awarded 20 points to 王秀英 +8613800138001: 协助社区 疫苗接种宣传; balance 20; SMS queued"
    )
    assert done.message("zh", mask=True) == (
        "已为王秀英 138****8001加20分：协助社区 疫苗接种宣传；现有20分；已短信通知"
    )
    [entry] = await PointsEntry.all()
    assert (entry.volunteer_id, entry.amount, entry.kind, entry.note, entry.actor) == (
        street.wang.id,
        20,
        "award",
        "协助社区 疫苗接种宣传",
        "test",
    )
    assert entry.local_date == date(2026, 3, 10)
    [sms] = await outbox_to(street.wang.phone)
    assert sms.body == "王秀英，街道奖励您20分：协助社区 疫苗接种宣传。现有积分20分。"
    assert segment_count(sms.body) == 1
    assert sms.dedupe_key == f"points_sms:{entry.dedupe_key}"
    assert sms.volunteer_id == street.wang.id


async def test_award_by_phone_in_any_format_texts_in_the_volunteers_language(db: str) -> None:
    street = await seed_street()
    done = await award(db, "138 0013 8002", 5, "helped at the lantern fair")
    assert done.holder.contact.name == "Li Wei"
    [sms] = await outbox_to(street.li.phone)
    assert sms.body == (
        "Li, the street office awarded you 5 points: helped at the lantern fair. Balance: 5 points."
    )


async def test_a_long_reason_is_clipped_to_keep_the_sms_in_one_segment(db: str) -> None:
    street = await seed_street()
    await award(db, "王秀英", 10, "连续三个月坚持每天巡查并主动清理楼道杂物，帮助独居老人" * 3)
    [sms] = await outbox_to(street.wang.phone)
    assert segment_count(sms.body) == 1
    assert sms.body.endswith("...。现有积分10分。")


async def test_an_award_at_night_waits_for_the_end_of_quiet_hours(db: str) -> None:
    street = await seed_street()
    await award(db, "王秀英", 10, "年度表彰", now=at(3, 10, 23))
    [sms] = await outbox_to(street.wang.phone)
    assert utc(sms.next_attempt_at) == at(3, 11, 7)


@pytest.mark.parametrize("amount", [0, -5, 10_001])
async def test_amounts_the_office_would_not_mean_are_refused(db: str, amount: int) -> None:
    await seed_street()
    with pytest.raises(shell.BadRequest, match="points must be a whole number"):
        await award(db, "王秀英", amount, "typo")
    assert await PointsEntry.all().count() == 0


async def test_a_blank_reason_is_refused(db: str) -> None:
    await seed_street()
    with pytest.raises(shell.BadRequest, match="please give a reason"):
        await award(db, "王秀英", 5, "   ")


async def test_a_repeated_request_key_records_once(db: str) -> None:
    street = await seed_street()

    async def once() -> shell.Done:
        return await shell.award(
            "王秀英",
            7,
            "义务劳动",
            actor="tg:1",
            rules=rules(db),
            now=MORNING,
            units=UnitOfWork(),
            key="telegram:update:42",
        )

    first, again = await once(), await once()
    assert (first.repeated, again.repeated, again.entry_id) == (False, True, first.entry_id)
    assert again.balance == 7
    assert await PointsEntry.all().count() == 1
    assert len(await outbox_to(street.wang.phone)) == 1


# ---- naming the volunteer -------------------------------------------------------------------


async def test_an_ambiguous_name_lists_the_candidates_and_changes_nothing(db: str) -> None:
    street = await seed_street()
    await add_person(street, "王秀英", "+8613900139001")
    with pytest.raises(shell.AmbiguousName) as caught:
        await award(db, "王秀英", 5, "x")
    assert [c.contact.phone for c in caught.value.candidates] == [
        "+8613800138001",
        "+8613900139001",
    ]
    assert str(caught.value) == (
        "2 people are called '王秀英': +8613800138001 (鼓楼街道 新开河社区 A1); "
        "+8613900139001 (鼓楼街道 新开河社区); use the phone number"
    )
    assert "139****9001" in caught.value.listing(mask=True)
    assert await PointsEntry.all().count() == 0
    # The phone settles it.
    assert (await award(db, "13900139001", 5, "x")).holder.contact.phone == "+8613900139001"


async def test_a_name_resolves_within_the_street(db: str) -> None:
    street = await seed_street()
    other = await Street.create(name="河西街道")
    place = await Community.create(street=other, name="友谊社区")
    await Volunteer.create(
        name="王秀英", phone="+8613700137001", street=other, community=place, joined_on=SEEDED_ON
    )
    done = await shell.award(
        "王秀英",
        3,
        "x",
        actor="t",
        rules=rules(db),
        now=MORNING,
        units=UnitOfWork(),
        street_id=street.wang.street_id,
    )
    assert done.holder.contact.volunteer_id == street.wang.id
    with pytest.raises(shell.AmbiguousName):
        await award(db, "王秀英", 3, "x")  # no street given: two people


async def test_unknown_and_removed_people_are_not_found(db: str) -> None:
    street = await seed_street()
    await Volunteer.filter(id=street.other.id).update(status=VolunteerStatus.REMOVED)
    for who in ("张无名", "孙丽", street.other.phone):
        with pytest.raises(shell.NoSuchVolunteer):
            await award(db, who, 5, "x")


# ---- redeem -------------------------------------------------------------------------------


async def test_redeem_spends_points_and_texts_what_is_left(db: str) -> None:
    street = await seed_street()
    await award(db, "王秀英", 30, "巡查满勤")
    done = await redeem(db, "王秀英", 25, "环保袋")
    assert (done.kind, done.amount, done.balance) == ("redeem", -25, 5)
    assert done.message() == (
        "王秀英 +8613800138001 redeemed 25 points for 环保袋; balance 5; SMS queued"
    )
    sms = (await outbox_to(street.wang.phone))[-1]
    assert sms.body == "王秀英，已用25分兑换：环保袋。剩余积分5分。"


async def test_redeem_beyond_the_balance_is_refused_with_the_balance(db: str) -> None:
    street = await seed_street()
    await award(db, "王秀英", 12, "巡查")
    with pytest.raises(shell.BeyondBalance) as caught:
        await redeem(db, "王秀英", 20, "雨伞")
    assert (caught.value.balance, caught.value.asked) == (12, 20)
    assert str(caught.value) == "王秀英 +8613800138001 has 12 points; cannot redeem 20"
    assert await PointsEntry.all().count() == 1
    assert len(await outbox_to(street.wang.phone)) == 1  # the award's SMS only


async def test_two_redemptions_at_once_cannot_both_spend_the_balance(db: str) -> None:
    await seed_street()
    await award(db, "王秀英", 10, "巡查")
    results = await asyncio.gather(
        redeem(db, "王秀英", 8, "雨伞", now=MORNING),
        redeem(db, "王秀英", 8, "水杯", now=MORNING + timedelta(seconds=1)),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["BeyondBalance", "Done"]
    assert sum(e.amount for e in await PointsEntry.all()) == 2


# ---- corrections --------------------------------------------------------------------------


async def test_a_correction_is_a_new_line_naming_the_one_it_corrects(db: str) -> None:
    street = await seed_street()
    wrong = await award(db, "王秀英", 50, "多打了一个零")
    fixed = await shell.correct(
        wrong.entry_id,
        "金额有误",
        actor="test",
        rules=rules(db),
        now=at(3, 11, 9),
        units=UnitOfWork(),
    )
    assert (fixed.kind, fixed.amount, fixed.balance) == ("correction", -50, 0)
    original = await PointsEntry.get(id=wrong.entry_id)
    assert (original.amount, original.note) == (50, "多打了一个零")  # never edited
    correction = await PointsEntry.get(id=fixed.entry_id)
    assert (correction.corrects_id, correction.local_date) == (wrong.entry_id, date(2026, 3, 11))
    sms = (await outbox_to(street.wang.phone))[-1]
    assert sms.body == "王秀英，积分更正-50分：金额有误。现有积分0分。"

    with pytest.raises(shell.AlreadyCorrected):
        await shell.correct(
            wrong.entry_id,
            "again",
            actor="test",
            rules=rules(db),
            now=at(3, 11, 10),
            units=UnitOfWork(),
        )
    with pytest.raises(shell.NoSuchEntry):
        await shell.correct(
            999, "x", actor="test", rules=rules(db), now=at(3, 11, 10), units=UnitOfWork()
        )
    lines = await points_store.recent_lines(street.wang.id, 10)
    assert [(line.kind, line.corrected, line.corrects_id) for line in lines] == [
        ("correction", False, wrong.entry_id),
        ("award", True, None),
    ]


async def test_show_gives_balance_month_rank_and_latest_entries(db: str) -> None:
    street = await seed_street()
    await points(street.wang, 40, date(2026, 2, 20))
    await points(street.li, 15, date(2026, 3, 2))
    await award(db, "王秀英", 8, "本月奖励")
    card = await shell.statement("王秀英", rules=rules(db), now=MORNING)
    assert (card.summary.balance, card.summary.this_month, card.summary.rank) == (48, 8, 1)
    assert [line.amount for line in card.lines] == [8, 40]


# ---- ranking ------------------------------------------------------------------------------


async def points(vol: Volunteer, amount: int, day: date, kind: str = "patrol_day") -> PointsEntry:
    return await PointsEntry.create(
        volunteer=vol,
        amount=amount,
        kind=kind,
        local_date=day,
        created_at=at(day.month, day.day, 22),
    )


async def served(vol: Volunteer, minutes: int, day: date, *, confirmed: bool = True) -> None:
    await HoursEntry.create(
        volunteer=vol,
        local_date=day,
        minutes=minutes,
        confirmed=confirmed,
        zone_name="东巷",
        created_at=at(day.month, day.day, 12),
    )


async def done_day(vol: Volunteer, day: date) -> None:
    await AttendanceDay.create(
        volunteer=vol,
        local_date=day,
        status="done",
        minutes=120,
        settled_at=at(day.month, day.day, 22),
    )


async def verified_report(vol: Volunteer, number: int, when: datetime) -> None:
    report = await Report.create(
        number=number,
        reporter=vol,
        community_id=vol.community_id,
        category=1,
        status="closed",
        created_at=when,
        updated_at=when,
    )
    for before, after in ((None, "new"), ("new", "acknowledged"), ("acknowledged", "resolved")):
        await ReportEvent.create(
            report=report, from_status=before, to_status=after, created_at=when
        )
    await ReportEvent.create(
        report=report, from_status="resolved", to_status="verified", actor=vol, created_at=when
    )


async def ranking_street() -> tuple[Street1, Volunteer]:
    """Wang and Li tie on March points (Li has more hours); Sun and Zhou tie on both."""
    street = await seed_street()
    zhou = await add_person(street, "周明", "+8613800138004")
    office = await add_person(street, "钱主任", "+8613800138010", role=Role.OFFICE)
    for vol, amount, minutes in ((street.wang, 30, 240), (street.li, 30, 300)):
        await points(vol, amount, date(2026, 3, 5))
        await served(vol, minutes, date(2026, 3, 5))
    for vol in (street.other, zhou):
        await points(vol, 12, date(2026, 3, 6))
        await served(vol, 120, date(2026, 3, 6))
    await points(office, 500, date(2026, 3, 6), kind="award")  # the office is not ranked
    # Spending points on a prize never costs a place; an unconfirmed session adds no hours.
    await points(street.li, -20, date(2026, 3, 7), kind="redeem")
    await served(street.other, 240, date(2026, 3, 7), confirmed=False)
    await done_day(street.wang, date(2026, 3, 5))
    await done_day(street.li, date(2026, 3, 5))
    await done_day(street.li, date(2026, 3, 4))
    await verified_report(street.wang, 1, at(3, 8, 10))
    await verified_report(street.wang, 2, at(2, 27, 10))  # February: not this month's
    return street, zhou


async def test_month_ranking_breaks_ties_by_confirmed_hours(db: str) -> None:
    await ranking_street()
    ranked = await points_store.ranking(month("2026-03"), SHANGHAI)
    assert [
        (r.place, r.name, r.points, r.done_days, r.verified_reports, r.confirmed_minutes)
        for r in ranked
    ] == [
        (1, "Li Wei", 30, 2, 0, 300),
        (2, "王秀英", 30, 1, 1, 240),
        (3, "周明", 12, 0, 0, 120),  # tied with 孙丽 on points and hours: one place
        (3, "孙丽", 12, 0, 0, 120),
        (5, "赵建国", 0, 0, 0, 0),
    ]
    # Top 3 keeps both who share third place.
    top = await points_store.ranking(month("2026-03"), SHANGHAI, top=3)
    assert [r.name for r in top] == ["Li Wei", "王秀英", "周明", "孙丽"]
    # A street with nobody ranked is empty, not an error.
    empty = await Street.create(name="空街道")
    assert await points_store.ranking(month("2026-03"), SHANGHAI, street_id=empty.id) == []


async def test_year_ranking_is_the_gold_steward_shortlist(db: str) -> None:
    street, zhou = await ranking_street()
    await points(zhou, 40, date(2026, 11, 2))  # later in the year
    await points(street.wang, 100, date(2025, 12, 31))  # the year before
    ranked = await points_store.ranking(year("2026"), SHANGHAI, top=2)
    assert [(r.place, r.name, r.points, r.verified_reports) for r in ranked] == [
        (1, "周明", 52, 0),
        (2, "Li Wei", 30, 0),
    ]
    everyone = await points_store.ranking(year("2026"), SHANGHAI)
    assert [(r.name, r.verified_reports) for r in everyone][:3] == [
        ("周明", 0),
        ("Li Wei", 0),
        ("王秀英", 2),
    ]


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


async def test_cli_award_redeem_show_and_ranking(db: str) -> None:
    street = await seed_street()
    await add_person(street, "王秀英", "+8613900139001")
    # The command dates entries by the real clock: the ranking looks at a year long past.
    await points(street.li, 9, date(2024, 6, 1))
    await points(street.other, 9, date(2024, 6, 2))
    await served(street.other, 60, date(2024, 6, 2))

    done = steward(db, "points", "award", "13800138001", "20", "协助", "社区活动")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(
        "awarded 20 points to 王秀英 +8613800138001: 协助 社区活动; balance 20; SMS queued"
    )

    beyond = steward(db, "points", "redeem", "+86 138 0013 8001", "25", "雨伞")
    assert beyond.returncode == 1
    assert "has 20 points; cannot redeem 25" in beyond.stderr

    ambiguous = steward(db, "points", "show", "王秀英")
    assert ambiguous.returncode == 1
    assert "+8613800138001" in ambiguous.stderr and "+8613900139001" in ambiguous.stderr

    shown = steward(db, "points", "show", "13800138001", "--street", "鼓楼街道")
    assert shown.returncode == 0, shown.stderr
    assert "balance 20, this month" in shown.stdout
    assert "award  协助 社区活动  (by cli:" in shown.stdout

    board = steward(db, "points", "ranking", "--year", "2024", "--top", "2", "--lang", "en")
    assert board.returncode == 0, board.stderr
    lines = board.stdout.splitlines()
    assert lines[0] == "Points ranking 2024"
    assert lines[1].split()[:2] == ["Place", "Name"]
    assert [line.split()[:2] for line in lines[2:]] == [["1", "孙丽"], ["2", "Li"]]

    unknown = steward(db, "points", "ranking", "--month", "2026-3", "--street", "无此街道")
    assert (unknown.returncode, "no street named '无此街道'" in unknown.stderr) == (1, True)
    both = steward(db, "points", "ranking", "--month", "2026-03", "--year", "2026")
    assert both.returncode == 2
