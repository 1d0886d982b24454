"""The sessions job at chosen times: one check-out reminder, then an unconfirmed close; quiet hours."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from steward.clock import utc
from steward.flows.jobs import quiet_until
from steward.settings import load_settings
from steward.shells import jobs as job_shells
from steward.storage.models import HoursEntry, OutboxMessage, PatrolSession, PointsEntry
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import Service, running_service, say, seed_street, sent_to, service_settings

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


async def run_twice(svc: Service, moment: datetime) -> list[str]:
    with time_machine.travel(moment, tick=False):
        first = await job_shells.run_job("sessions", svc.settings, utc(moment))
        assert await job_shells.run_job("sessions", svc.settings, utc(moment)) == []
        await svc.drain()
    return [n.body for n in first]


async def test_reminder_once_then_an_unconfirmed_close(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await say(svc, at(23, 8), street.wang.phone, "签到")
        assert await run_twice(svc, at(23, 10, 4)) == []
        assert await run_twice(svc, at(23, 10, 5)) == [
            "王秀英，您8:00签到已超过2小时，结束巡查时请回复2签退。"
        ]
        assert await run_twice(svc, at(23, 11, 0)) == []  # reminded once only
        assert await run_twice(svc, at(23, 12, 0)) == [
            "您8:00开始的巡查超过4小时未签退，已自动结束，需片长确认后计入时长。",
            "王秀英8:00开始的巡查超过4小时未签退，已自动结束。如属实请回复“确认王秀英”。",
        ]
        assert await say(svc, at(23, 12, 5), street.wang.phone, "签退") == [
            "您现在没有签到。开始巡查时回复1签到。"
        ]
        assert sent_to(svc, street.lead.phone) == [
            "王秀英8:00开始的巡查超过4小时未签退，已自动结束。如属实请回复“确认王秀英”。"
        ]
    session = await PatrolSession.get(volunteer_id=street.wang.id)
    assert (session.minutes, session.closed_by, session.confirmed) == (240, "auto", False)
    entry = await HoursEntry.get(volunteer_id=street.wang.id)
    assert (entry.minutes, entry.confirmed) == (240, False)
    assert await PointsEntry.filter(volunteer_id=street.wang.id).count() == 0


async def test_scheduled_texts_wait_for_the_end_of_quiet_hours(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        assert await say(svc, at(23, 19), street.li.phone, "IN")  # a reply: never held
        assert await run_twice(svc, at(23, 21, 5)) == [
            "Li, you checked in at 19:00, over 2 h ago. Text OUT (or 2) when you finish."
        ]
        assert len(sent_to(svc, street.li.phone)) == 1  # queued, not sent at night
        held = await OutboxMessage.get(kind="nudge")
        assert utc(held.next_attempt_at) == utc(at(24, 7))
        with time_machine.travel(at(24, 7), tick=False):
            await svc.drain()
        assert sent_to(svc, street.li.phone)[-1].startswith("Li, you checked in at 19:00")


@pytest.mark.parametrize(
    ("now", "quiet", "expected"),
    [
        (at(23, 20, 59), "21:00-07:00", at(23, 20, 59)),
        (at(23, 21, 0), "21:00-07:00", at(24, 7, 0)),
        (at(24, 3, 0), "21:00-07:00", at(24, 7, 0)),
        (at(24, 7, 0), "21:00-07:00", at(24, 7, 0)),
        (at(23, 12, 30), "12:00-14:00", at(23, 14, 0)),
        (at(23, 23, 0), "", at(23, 23, 0)),
    ],
)
def test_quiet_hours_end_where_expected(now: datetime, quiet: str, expected: datetime) -> None:
    rules = load_settings(_env_file=None, QUIET_HOURS=quiet, TIMEZONE="Asia/Shanghai")
    assert quiet_until(utc(now), rules) == utc(expected)


async def test_a_lead_confirms_an_automatic_close(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    wang, lead = street.wang.phone, street.lead.phone
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await say(svc, at(23, 8), wang, "签到")
        await run_twice(svc, at(23, 12, 0))  # closed automatically, unconfirmed
        assert await say(svc, at(23, 12, 30), street.li.phone, "CONFIRM 王秀英") == [
            "Only a lead of this community can do that."
        ]
        assert await say(svc, at(23, 13, 0), lead, "确认 孙丽") == [
            "没有找到孙丽待确认的巡查，请核对姓名。"
        ]
        assert await say(svc, at(23, 13, 1), lead, "确认") == [
            "请在后面写上管家姓名，例如“确认王秀英”。"
        ]
        assert await say(svc, at(23, 13, 2), lead, "确认王秀英") == [
            "已确认王秀英8:00开始的巡查，计入4小时。"
        ]
        assert sent_to(svc, wang)[-1] == "片长已确认您8:00开始的巡查，计入4小时，今日达标+10分。"
        # Confirming twice changes nothing more.
        assert await say(svc, at(23, 13, 30), lead, "确认 王秀英") == [
            "没有找到王秀英待确认的巡查，请核对姓名。"
        ]
    hours = (
        await HoursEntry.filter(volunteer_id=street.wang.id)
        .order_by("id")
        .values_list("minutes", "confirmed")
    )
    assert hours == [(240, False), (240, True)]
    points = await PointsEntry.filter(volunteer_id=street.wang.id).values_list("amount", flat=True)
    assert points == [10]
