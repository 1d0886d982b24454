"""Every job run by two tasks at once (two replicas racing) sends each message once."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from steward.clock import utc
from steward.shells import jobs as job_shells
from steward.storage.models import AttendanceDay, OutboxMessage, PointsEntry
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import add_office, running_service, say, seed_street, service_settings

SHANGHAI = ZoneInfo("Asia/Shanghai")
FIRST_DAY = date(2026, 11, 23)  # the street joined the programme that Monday


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("job", "moment"),
    [
        ("nudges", at(24, 9, 30)),
        ("sessions", at(24, 12, 30)),
        ("reports", at(25, 9, 0)),
        ("day_close", at(24, 22, 0)),
        ("digest", at(24, 18, 0)),
    ],
)
async def test_two_runs_at_once_send_each_message_once(
    db: str, twilio: FakeTwilio, job: str, moment: datetime
) -> None:
    street = await seed_street(joined_on=FIRST_DAY)
    await add_office(street)
    await AttendanceDay.create(
        volunteer_id=street.wang.id,
        local_date=date(2026, 11, 23),
        status="absent",
        settled_at=utc(at(23, 22)),
    )
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await say(svc, at(24, 8, 0), street.li.phone, "IN")  # open past the maximum by 12:30
        await say(svc, at(24, 8, 5), street.wang.phone, "报 消防 楼道堵塞")  # an urgent report
        await say(svc, at(24, 10, 0), street.other.phone, "签到")
        await say(svc, at(24, 12, 10), street.other.phone, "签退")  # a done day: points once
        before = await OutboxMessage.all().count()
        with time_machine.travel(moment, tick=False):
            first, second = await asyncio.gather(
                job_shells.run_job(job, svc.settings, utc(moment)),
                job_shells.run_job(job, svc.settings, utc(moment)),
            )
            again = await job_shells.run_job(job, svc.settings, utc(moment))
    queued = await OutboxMessage.filter(id__gt=0).count() - before
    assert first or second, f"{job} had something to send in this scene"
    assert len(first) + len(second) == queued  # each message was queued by exactly one run
    assert again == []
    keys = await OutboxMessage.filter(dedupe_key__isnull=False).values_list("dedupe_key", flat=True)
    assert len(keys) == len(set(keys))
    points = await PointsEntry.filter(volunteer_id=street.other.id).values_list("amount", flat=True)
    assert points == [10]
