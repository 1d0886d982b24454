"""Leave by SMS: one's own, coming back early, and a lead's for someone who cannot text."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from steward.storage.models import Volunteer, VolunteerStatus
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import converse, running_service, seed_street, sent_to, service_settings

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 23, hour, minute, tzinfo=SHANGHAI)


async def test_leave_and_back_tell_the_partner_and_lead(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await converse(
            svc,
            street.wang.phone,
            [
                (at(9), "请假", "请写明请假天数（1到30天），例如“请假3”。"),
                (at(9, 1), "请假 45", "请写明请假天数（1到30天），例如“请假3”。"),
                (at(9, 2), "请假三天", "已请假3天，到11月25日为止，好好休息！回来后可回复“销假”。"),
            ],
        )
        on_leave = await Volunteer.get(id=street.wang.id)
        assert (on_leave.status, on_leave.on_leave_until) == (
            VolunteerStatus.ON_LEAVE,
            date(2026, 11, 25),
        )
        await converse(
            svc,
            street.wang.phone,
            [
                (at(18), "销假", "欢迎回来！已销假，恢复巡查安排。"),
                (at(18, 5), "销假", "您目前没有请假。"),
            ],
        )
        to_li = sent_to(svc, street.li.phone)
        to_lead = sent_to(svc, street.lead.phone)
    assert to_li == [
        "Your partner 王秀英 is on leave for 3 days (until 25 Nov).",
        "Your partner 王秀英 is back from leave.",
    ]
    assert to_lead == ["王秀英请假3天，到11月25日为止。"]
    back = await Volunteer.get(id=street.wang.id)
    assert (back.status, back.on_leave_until) == (VolunteerStatus.ACTIVE, None)


async def test_a_lead_puts_someone_on_leave(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await converse(
            svc,
            street.lead.phone,
            [
                (at(9), "请假 孙丽 2", "已为孙丽请假2天，到11月24日为止。"),
                (at(9, 1), "请假 钱多多 2", "本社区没有找到钱多多，请核对姓名。"),
            ],
        )
        await converse(
            svc, street.wang.phone, [(at(9, 2), "请假 孙丽 2", "只有本社区片长可以这样办理。")]
        )
        assert sent_to(svc, street.other.phone) == ["片长已为您请假2天，到11月24日为止，好好休息！"]
    person = await Volunteer.get(id=street.other.id)
    assert person.on_leave_until == date(2026, 11, 24)
