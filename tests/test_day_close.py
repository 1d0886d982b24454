"""Day close over a scripted week: settled days, the day's points once, and the absence ladder."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import time_machine

from steward.clock import utc
from steward.shells import jobs as job_shells
from steward.storage.models import (
    AttendanceDay,
    OutboxMessage,
    PointsEntry,
    Volunteer,
    VolunteerStatus,
)
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import (
    Service,
    Street1,
    add_office,
    add_person,
    running_service,
    say,
    seed_street,
    service_settings,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
FIRST_DAY = date(2026, 11, 23)  # the street joined the programme that Monday


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)  # 23 Nov 2026 is a Monday


async def close_twice(svc: Service, moment: datetime) -> list[tuple[str, str]]:
    with time_machine.travel(moment, tick=False):
        first = await job_shells.run_job("day_close", svc.settings, utc(moment))
        assert await job_shells.run_job("day_close", svc.settings, utc(moment)) == []
    return [(n.to.name, n.body) for n in first]


async def statuses(volunteer: Volunteer) -> list[tuple[int, str]]:
    rows = await AttendanceDay.filter(volunteer_id=volunteer.id).order_by("local_date")
    return [(r.local_date.day, r.status) for r in rows]


async def seed(street: Street1) -> Volunteer:
    other = await Volunteer.get(id=street.other.id)
    other.on_leave_from, other.on_leave_until = date(2026, 11, 23), date(2026, 11, 25)
    await other.save()
    return await add_office(street)


async def test_a_week_of_day_closes(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street(joined_on=FIRST_DAY)
    await seed(street)
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await say(svc, at(23, 8), street.li.phone, "IN")
        await say(svc, at(23, 10, 5), street.li.phone, "OUT")  # done, +10 at check-out
        await say(svc, at(24, 8), street.li.phone, "IN")
        await say(svc, at(24, 9), street.li.phone, "OUT")  # partial
        assert await close_twice(svc, at(23, 22)) == []
        assert await close_twice(svc, at(24, 22)) == [
            (
                "王秀英",
                "王秀英，您已连续2次排班没有巡查。一切还好吗？有困难可回复“请假”或联系片长。",
            ),
        ]
        assert await close_twice(svc, at(25, 22)) == []
        assert await close_twice(svc, at(26, 22)) == [
            ("赵建国", "王秀英（A1组）已连续4次排班没有巡查，请找时间和他聊聊。"),
            (
                "Li Wei",
                "Li, you have missed 2 patrols in a row. Is everything all right? Text LEAVE if you need a break, or call your lead.",
            ),
        ]
        assert await close_twice(svc, at(27, 22)) == [
            ("孙丽", "孙丽，您已连续2次排班没有巡查。一切还好吗？有困难可回复“请假”或联系片长。"),
        ]
        assert await close_twice(svc, at(28, 22)) == [
            (
                "钱主任",
                "王秀英（新开河社区A1组）已连续6次排班没有巡查，已列入待审名单，请街道决定保留或解除。",
            ),
            ("赵建国", "Li Wei（A1组）已连续4次排班没有巡查，请找时间和他聊聊。"),
        ]
        # 22:00 is inside quiet hours: the ladder's texts wait for the morning.
        held = await OutboxMessage.filter(kind="nudge").first()
        assert held is not None and held.next_attempt_at.astimezone(SHANGHAI).hour == 7
    assert await statuses(street.wang) == [(d, "absent") for d in range(23, 29)]
    assert await statuses(street.li) == [
        (23, "done"),
        (24, "partial"),
        (25, "absent"),
        (26, "absent"),
        (27, "absent"),
        (28, "absent"),
    ]
    assert await statuses(street.other) == [
        (23, "excused"),
        (24, "excused"),
        (25, "excused"),
        (26, "absent"),
        (27, "absent"),
        (28, "absent"),
    ]
    assert (await Volunteer.get(id=street.wang.id)).status == VolunteerStatus.FLAGGED
    assert await PointsEntry.filter(volunteer_id=street.li.id).values_list("amount", flat=True) == [
        10
    ]


async def test_a_late_run_settles_the_right_days_in_order(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street(joined_on=FIRST_DAY)
    async with running_service(service_settings(db, twilio), twilio) as svc:
        # The service was down for three evenings; the morning run catches up, oldest first.
        sent = await close_twice(svc, at(26, 9))
    assert await statuses(street.wang) == [(23, "absent"), (24, "absent"), (25, "absent")]
    assert [name for name, _ in sent] == ["王秀英", "Li Wei", "孙丽"]  # each reminded once (day 24)


async def test_nobody_is_absent_before_joining(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street(joined_on=FIRST_DAY)
    # 周强 joins 孙丽's pair on Wednesday the 25th.
    newcomer = await add_person(
        street, "周强", "+8613800138004", pair_id=street.other.pair_id, joined_on=date(2026, 11, 25)
    )
    async with running_service(service_settings(db, twilio), twilio) as svc:
        sent = await close_twice(svc, at(26, 9))  # catching up Monday to Wednesday
    assert await statuses(street.other) == [(23, "absent"), (24, "absent"), (25, "absent")]
    assert await statuses(newcomer) == [(25, "absent")]
    assert "周强" not in [name for name, _ in sent]  # one absence is no reminder yet
