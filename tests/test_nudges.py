"""The nudges job at chosen times: who is nudged, who is not, and when the leads hear."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import time_machine

from steward.clock import utc
from steward.shells import jobs as job_shells
from steward.storage.models import OptOut, Pair, Volunteer
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import Service, running_service, say, seed_street, service_settings

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)  # 23 Nov 2026 is a Monday


async def nudge_twice(svc: Service, moment: datetime) -> list[tuple[str, str]]:
    with time_machine.travel(moment, tick=False):
        first = await job_shells.run_job("nudges", svc.settings, utc(moment))
        assert await job_shells.run_job("nudges", svc.settings, utc(moment)) == []
        await svc.drain()
    return [(n.to.name, n.body) for n in first]


async def test_a_morning_of_nudges(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        assert await nudge_twice(svc, at(23, 8, 29)) == []
        await say(svc, at(23, 8, 10), street.li.phone, "IN")
        assert await nudge_twice(svc, at(23, 8, 30)) == [
            ("王秀英", "王秀英，您的搭档Li Wei已在巡查，您出发时请回复1签到。"),
            ("孙丽", "孙丽，今天8:00的巡查还没签到。出发时回复1签到；不方便可回复“请假1”。"),
        ]
        assert await nudge_twice(svc, at(23, 9, 0)) == []  # once a day each
        assert await nudge_twice(svc, at(23, 9, 30)) == [
            ("赵建国", "A2组（西巷）今天8:00的巡查，到现在还没有人签到。"),
        ]
        assert await nudge_twice(svc, at(23, 13, 0)) == []  # the patrol window is over


async def test_leave_stop_and_off_days(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    li = await Volunteer.get(id=street.li.id)
    li.on_leave_from, li.on_leave_until = date(2026, 11, 23), date(2026, 11, 24)
    await li.save()
    await OptOut.create(address=street.wang.phone, created_at=utc(at(22, 9)))
    await Pair.filter(code="A2").update(patrol_days="mon,wed,fri")
    async with running_service(service_settings(db, twilio), twilio) as svc:
        # Monday: Li is on leave; Wang said STOP, so the lead is asked to call instead.
        assert await nudge_twice(svc, at(23, 8, 30)) == [
            ("赵建国", "王秀英（A1组）已退订短信，今天还没签到，请电话联系。"),
            ("孙丽", "孙丽，今天8:00的巡查还没签到。出发时回复1签到；不方便可回复“请假1”。"),
        ]
        # Tuesday is not one of A2's days.
        assert [name for name, _ in await nudge_twice(svc, at(24, 8, 30))] == ["赵建国"]
        # Wednesday: Li is back and nudged in English.
        assert (
            "Li Wei",
            "Li, today's 8:00 patrol has no check-in yet. Text IN when you set out, or LEAVE 1 if you cannot come.",
        ) in await nudge_twice(svc, at(25, 8, 30))


async def test_patrol_start_on_daylight_saving_change_days(db: str, twilio: FakeTwilio) -> None:
    # New York moves its clocks on 8 March and 1 November 2026; 08:00 stays 08:00 local.
    new_york = ZoneInfo("America/New_York")
    await seed_street()
    settings = service_settings(db, twilio, TIMEZONE="America/New_York", QUIET_HOURS="")
    async with running_service(settings, twilio) as svc:
        for month, day in ((3, 8), (11, 1)):

            def local(hour: int, minute: int, month: int = month, day: int = day) -> datetime:
                return datetime(2026, month, day, hour, minute, tzinfo=new_york)

            assert await nudge_twice(svc, local(8, 29)) == []
            nudged = await nudge_twice(svc, local(8, 30))
            assert sorted(name for name, _ in nudged) == ["Li Wei", "孙丽", "王秀英"]
            assert "8:00" in nudged[0][1]
            assert await nudge_twice(svc, local(9, 15)) == []  # once that day
