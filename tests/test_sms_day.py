"""The scripted day of the foundation issue, over signed webhooks, as the Twilio stand-in saw it."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import time_machine

from steward.flows.segments import segment_count
from steward.storage.models import HoursEntry, InboundMessage, PatrolSession, PointsEntry
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import (
    PUBLIC_BASE,
    SERVICE_NUMBER,
    new_sid,
    running_service,
    seed_street,
    service_settings,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
STRANGER = "+8613900139000"


def at(hour: int, minute: int, day: int = 23) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


async def test_a_patrol_day_sends_exactly_the_expected_replies(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    wang, li = street.wang.phone, street.li.phone
    settings = service_settings(db, twilio)
    async with running_service(settings, twilio) as svc:
        with time_machine.travel(at(8, 2), tick=False):
            check_in_sid = new_sid()
            await svc.text(wang, "签到", sid=check_in_sid)
            await svc.wait_sent(1)  # the reply leaves on commit, not on a polling tick
            await svc.text(wang, "签到", sid=check_in_sid)  # Twilio delivers the same SMS again
        with time_machine.travel(at(10, 7), tick=False):
            await svc.text(wang, "签退")
        with time_machine.travel(at(10, 9), tick=False):
            await svc.text(wang, "积分")
            await svc.text(wang, "今天天气真好")
        with time_machine.travel(at(11, 0), tick=False):
            await svc.text(STRANGER, "你好")
        with time_machine.travel(at(11, 30), tick=False):
            await svc.text(STRANGER, "你好？在吗")
        with time_machine.travel(at(12, 0), tick=False):
            await svc.text(li, "STOP")
        with time_machine.travel(at(12, 5), tick=False):
            await svc.text(li, "IN")  # recorded, but no SMS after STOP
        with time_machine.travel(at(12, 10), tick=False):
            await svc.text(li, "START")
            sent = await svc.settle()

    assert [(m.to, m.body) for m in sent] == [
        (wang, "王秀英，8:02签到成功，祝巡查顺利！结束时回复2签退。"),
        (wang, "10:07签退成功，本次2小时5分，今日共2小时5分，达标+10分，辛苦了！"),
        (wang, "王秀英：积分10分，本月+10，街道第1名（共4人）。"),
        (wang, "抱歉，没看懂您的短信。回复: 1签到 2签退 3上报 4积分 0帮助"),
        (STRANGER, "您好，本号码未登记为小巷管家。如想加入，请回复“报名”。"),
        (li, "You are unsubscribed and will get no more texts from us. Reply START to resume."),
        (li, "Welcome back! Texts are on again. Reply HELP for the menu."),
    ]
    for message in sent:
        assert message.from_ == SERVICE_NUMBER
        assert message.status_callback == f"{PUBLIC_BASE}/twilio/status"
    one_segment = sent[:3]
    assert all(segment_count(m.body) == 1 for m in one_segment)
    assert all(segment_count(m.body) <= 2 for m in sent)

    # The redelivered check-in had no second effect; the day is on record once.
    assert await InboundMessage.filter(address=wang).count() == 4
    sessions = await PatrolSession.filter(volunteer_id=street.wang.id)
    assert [(s.minutes, s.closed_by) for s in sessions] == [(125, "volunteer")]
    assert await HoursEntry.filter(volunteer_id=street.wang.id).values_list(
        "minutes", flat=True
    ) == [125]
    assert await PointsEntry.filter(volunteer_id=street.wang.id).values_list(
        "amount", flat=True
    ) == [10]
    # Li's check-in while unsubscribed still counts as a patrol.
    assert await PatrolSession.filter(volunteer_id=street.li.id, ended_at__isnull=True).count() == 1
