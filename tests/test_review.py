"""The office's review: flagged by the ladder, then kept (count starts over) or removed (vacancy)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from steward.clock import utc
from steward.flows import office
from steward.shells import jobs as job_shells
from steward.storage import review_store
from steward.storage.models import Volunteer, VolunteerStatus
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import (
    add_person,
    converse,
    running_service,
    seed_street,
    sent_to,
    service_settings,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
FIRST_DAY = date(2026, 11, 23)  # the street joined the programme that Monday


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


async def test_flag_keep_and_remove(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street(joined_on=FIRST_DAY)
    async with running_service(service_settings(db, twilio), twilio) as svc:
        for day in range(23, 29):  # six scheduled days, nobody patrols
            with time_machine.travel(at(day, 22), tick=False):
                await job_shells.run_job("day_close", svc.settings, utc(at(day, 22)))
        flagged = await review_store.flagged()
        assert [
            (f.person.contact.name, office.review_reason(f.history, "zh")) for f in flagged
        ] == [
            ("Li Wei", "已连续6次排班没有巡查"),
            ("孙丽", "已连续6次排班没有巡查"),
            ("王秀英", "已连续6次排班没有巡查"),
        ]

        wang = await review_store.find("王秀英", "CN")
        await review_store.apply(
            office.keep(await review_store.person(wang), date(2026, 11, 29)), utc(at(29, 9))
        )
        kept = await Volunteer.get(id=wang.id)
        assert (kept.status, kept.ladder_reset_on) == (VolunteerStatus.ACTIVE, date(2026, 11, 29))

        li = await review_store.find("138 0013 8002", "CN")  # any common phone format
        decision = office.remove(
            await review_store.person(li), await review_store.leads_of(li), date(2026, 11, 29)
        )
        with time_machine.travel(at(29, 9), tick=False):
            assert await review_store.apply(decision, utc(at(29, 9))) == 1
            await svc.drain()
        assert (
            sent_to(svc, street.lead.phone)[-1]
            == "Li Wei已不再担任小巷管家，A1组（东巷）缺一人，请安排递补。"
        )
        await converse(
            svc,
            street.li.phone,
            [
                (
                    at(29, 10),
                    "IN",
                    "Hello, you are no longer registered as an alley steward. Thank you for your service! Questions: please contact your community.",
                )
            ],
        )
        # Kept: Wang's count starts over, so one more absence reminds nobody; removed Li is not settled.
        with time_machine.travel(at(29, 22), tick=False):
            sent = await job_shells.run_job("day_close", svc.settings, utc(at(29, 22)))
        assert [n.to.name for n in sent] == []
    removed = await Volunteer.get(id=street.li.id)
    assert (removed.status, removed.pair_id) == (VolunteerStatus.REMOVED, None)
    assert [f.person.contact.name for f in await review_store.flagged()] == ["孙丽"]


async def test_names_must_be_unambiguous(db: str) -> None:
    street = await seed_street()
    await add_person(street, "王秀英", "+8613800138077")
    with pytest.raises(review_store.NotFound, match="2 people are called"):
        await review_store.find("王秀英", "CN")
    with pytest.raises(review_store.NotFound, match="nobody"):
        await review_store.find("张三", "CN")
    assert (await review_store.find("+86 138-0013-8077", "CN")).phone == "+8613800138077"
