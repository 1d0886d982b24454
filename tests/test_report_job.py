"""The hourly report job at chosen times: reminders, escalation, closing unchecked fixes."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import time_machine

from steward.clock import utc
from steward.shells import jobs as job_shells
from steward.storage.models import OutboxMessage, Report
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import (
    Service,
    add_office,
    running_service,
    say,
    seed_street,
    sent_to,
    service_settings,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


async def run_twice(svc: Service, moment: datetime) -> list[str]:
    """Run the job twice as of `moment`; return the bodies sent by the first run."""
    before = len(svc.fake.messages)
    with time_machine.travel(moment, tick=False):
        first = await job_shells.run_job("reports", svc.settings, utc(moment), dry_run=False)
        second = await job_shells.run_job("reports", svc.settings, utc(moment), dry_run=False)
        assert second == []  # a repeated run sends nothing new
        await svc.drain()
    assert len(svc.fake.messages) - before == len(first)
    return [n.body for n in first]


async def test_reminders_escalation_and_closing(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    office = await add_office(street)
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await say(svc, at(23, 9), street.wang.phone, "报 1 垃圾堆放")
        await say(svc, at(23, 9), street.li.phone, "报 消防 fire exit blocked")
        alerts_before = len(sent_to(svc, street.lead.phone))

        assert await run_twice(svc, at(23, 10, 59)) == []
        assert await run_twice(svc, at(23, 11, 0)) == [
            "提醒：上报#2【安全隐患】东巷已2小时未受理，请回复“受理2”。"
        ]
        assert await run_twice(svc, at(23, 13, 0)) == [
            "督办：新开河社区上报#2【安全隐患】东巷已4小时无人受理。"
        ]
        assert await run_twice(svc, at(23, 22, 0)) == []  # same day: already reminded
        assert await run_twice(svc, at(24, 9, 0)) == [
            "提醒：上报#1【环境卫生】东巷已24小时未受理，请回复“受理1”。",
            "提醒：上报#2【安全隐患】东巷已24小时未受理，请回复“受理2”。",
            "督办：新开河社区上报#2【安全隐患】东巷已24小时无人受理。",
        ]
        # The lead fixes #1; nobody checks it on site for 48 hours.
        await say(svc, at(24, 10), street.lead.phone, "办结 1 已清理")
        assert await run_twice(svc, at(26, 9, 59)) == [
            "提醒：上报#2【安全隐患】东巷已72小时未受理，请回复“受理2”。",
            "督办：新开河社区上报#2【安全隐患】东巷已72小时无人受理。",
        ]
        assert (await Report.get(number=1)).status == "resolved"
        await run_twice(svc, at(26, 10, 0))
        assert (await Report.get(number=1)).status == "closed_unverified"
        to_office = sent_to(svc, office.phone)
        to_lead = sent_to(svc, street.lead.phone)
    assert len(to_lead) - alerts_before == 5
    assert sum(body.startswith("督办") for body in to_office) == 3


async def test_dry_run_stores_and_sends_nothing(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        await say(svc, at(23, 9), street.wang.phone, "报 1 垃圾堆放")
        queued = await OutboxMessage.all().count()
        planned = await job_shells.run_job("reports", svc.settings, utc(at(24, 9)), dry_run=True)
        assert [n.to.phone for n in planned] == [street.lead.phone]
        assert await OutboxMessage.all().count() == queued

    env = {**os.environ, "DATABASE_URL": db, "TIMEZONE": "Asia/Shanghai"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "steward.cli",
            "jobs",
            "run",
            "reports",
            "--at",
            "2026-11-24T09:00",
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "reports at 2026-11-24T09:00:00+08:00: would send 1",
        "  to 赵建国 +8613800138009: 提醒：上报#1【环境卫生】东巷已24小时未受理，请回复“受理1”。",
    ]
    assert await OutboxMessage.all().count() == queued
