"""A lead's TODAY by SMS: who is out, done, not out yet, short of the goal; two segments at most."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from steward.flows import leads
from steward.flows.digest import MemberDay
from steward.flows.segments import segment_count
from steward.flows.state import VolunteerState
from steward.settings import load_settings
from steward.storage.models import Pair, Role
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import add_person, converse, running_service, say, seed_street, service_settings

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 23, hour, minute, tzinfo=SHANGHAI)  # a Monday


async def test_a_lead_asks_how_the_community_stands(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    community = street.wang.community_id
    a3 = await Pair.create(community_id=community, code="A3", patrol_start="08:00")
    a4 = await Pair.create(
        community_id=community, code="A4", patrol_start="08:00", patrol_days="sat,sun"
    )
    a5 = await Pair.create(community_id=community, code="A5", patrol_start="08:00")
    await add_person(street, "周强", "+8613800138004", pair_id=a3.id)
    await add_person(street, "吴芳", "+8613800138005", pair_id=a4.id)
    short = await add_person(street, "郑明", "+8613800138006", pair_id=a5.id)
    english_lead = await add_person(
        street, "Anna Zhao", "+8613800138011", role=Role.LEAD, language="en"
    )
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await say(svc, at(7, 0), street.other.phone, "签到")
        await say(svc, at(8, 0), street.wang.phone, "签到")  # A1: out now
        await say(svc, at(8, 0), short.phone, "签到")
        await say(svc, at(8, 30), short.phone, "签退")  # A5: half an hour
        await say(svc, at(9, 5), street.other.phone, "签退")  # A2: 2 h 5 min, done
        await converse(
            svc,
            street.lead.phone,
            [
                (
                    at(9, 30),
                    "今日",
                    "新开河社区11月23日9:30：巡查中1组（A1）；已达标1组（A2）；"
                    "未出巡1组（A3）；未满时长1组（A5）；今日休息1组。",
                ),
            ],
        )
        await converse(
            svc,
            english_lead.phone,
            [
                (
                    at(9, 31),
                    "today",
                    "新开河社区 23 Nov 9:31: on patrol 1 (A1); done 1 (A2); not out 1 (A3); "
                    "short of goal 1 (A5); off today 1.",
                ),
            ],
        )
        await converse(
            svc,
            street.li.phone,
            [(at(9, 32), "TODAY", "Only a lead of this community can do that.")],
        )


def test_a_big_community_still_fits_two_segments() -> None:
    rules = load_settings(TIMEZONE="Asia/Shanghai")
    on_leave = date(2026, 11, 23)
    pairs = tuple(
        leads.PairNow(
            code=f"B{n:02d}",
            patrol_days="mon,tue,wed,thu,fri,sat,sun",
            members=(
                MemberDay(0 if n % 3 else 130, *((on_leave, on_leave) if n == 1 else (None, None))),
            ),
            out_now=n % 4 == 0,
        )
        for n in range(1, 41)
    )
    lead = VolunteerState(1, "赵建国", "+8613800138009", "lead", "zh", "active", 1, 1, None, "")
    outcome = leads.today(lead, leads.TodayScope("新开河社区", pairs), at(9, 30), rules)
    assert outcome.reply is not None
    body = outcome.reply.body
    assert segment_count(body) <= 2
    # Every bucket keeps its count even when not every pair code fits.
    assert "巡查中10组" in body and "已达标10组" in body and "未出巡19组" in body
    assert "今日休息1组" in body and "B04" in body
