"""Access and privacy (issue 13, item 7): no full phone number and no secret in a day's logs or in
/metrics, /sim only with SIMULATOR=1, and nobody reads another volunteer's report or balance."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from steward.cli.service import configure_logging
from steward.clock import utc
from steward.shells import jobs as job_shells
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import (
    add_office,
    add_person,
    running_service,
    say,
    seed_street,
    service_settings,
    status_form,
)
from tests.reliability.numbers import Record, report
from tests.test_telegram import SECRET, linked, telegram_service

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Eleven digits of a Chinese mobile number, with or without +86: a full number.
FULL_NUMBER = re.compile(r"(?<!\d)(?:\+?86)?1[3-9]\d{9}(?!\d)")
STRANGER = "+8613912345678"
BROKEN = "+8613700000211"  # Twilio refuses it (21211), and says the number in its error


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 23, hour, minute, tzinfo=SHANGHAI)


@pytest.fixture
def production_logging() -> Iterator[None]:
    """Log as `steward serve` does at the default LOG_LEVEL (INFO), restored afterwards."""
    root = logging.getLogger()
    saved = root.level, {n: logging.getLogger(n).level for n in ("apscheduler", "httpx")}
    configure_logging("INFO")
    yield
    root.setLevel(saved[0])
    for name, level in saved[1].items():
        logging.getLogger(name).setLevel(level)


async def test_a_days_logs_and_metrics_show_no_full_number_and_no_secret(
    db: str,
    twilio: FakeTwilio,
    telegram_api: FakeTelegram,
    caplog: pytest.LogCaptureFixture,
    production_logging: None,
    record_property: Record,
) -> None:
    street = await seed_street()
    await add_office(street)
    await add_person(street, "赵错号", BROKEN)
    twilio.fail_number(BROKEN, 21211)
    li = telegram_api.user(5002, "Li")
    caplog.set_level(logging.INFO)
    async with telegram_service(db, twilio, telegram_api) as svc:
        with time_machine.travel(at(7, 50), tick=False):
            await linked(svc, telegram_api, li, street.li.phone)
            await svc.text(street.wang.phone, "签到")
            await telegram_api.private_text(li, "IN")
            await svc.text(street.wang.phone, "报 1 5号楼门口垃圾堆放")
            await svc.text(street.wang.phone, "积分")
            await svc.text(STRANGER, "你好")
            await svc.text(BROKEN, "签到")  # its reply fails for good at Twilio
            [first, *_] = await svc.settle()
            callback = status_form(first.sid, "undelivered", "30003", to=street.wang.phone)
            assert (await svc.post_signed("/twilio/status", callback)).status_code == 200
            await svc.drain()
        for job, moment in (("nudges", at(8, 31)), ("digest", at(18)), ("day_close", at(22))):
            with time_machine.travel(moment, tick=False):
                await job_shells.run_job(job, svc.settings, utc(moment), units=svc.app.state.units)
                await svc.drain()
        metrics = (await svc.http.get("/metrics")).text
    logs = "\n".join(f"{r.name}: {r.getMessage()}" for r in caplog.records)
    secrets = [svc.settings.TWILIO_AUTH_TOKEN, svc.settings.TELEGRAM_BOT_TOKEN, SECRET]
    assert FULL_NUMBER.findall(logs) == [], logs
    assert [s for s in secrets if s in logs] == []
    assert FULL_NUMBER.findall(metrics) == [] and [s for s in secrets if s in metrics] == []
    report(
        record_property,
        "day_of_logs",
        log_lines=len(caplog.records),
        messages=len(twilio.messages) + len(telegram_api.sent_messages()),
        full_numbers=0,
        secrets_seen=0,
    )


@pytest.mark.parametrize("enabled", [False, True])
async def test_the_simulator_is_404_unless_enabled(
    db: str, twilio: FakeTwilio, enabled: bool
) -> None:
    settings = service_settings(db, twilio, SIMULATOR=enabled)
    async with running_service(settings, twilio, background=False) as svc:
        statuses = [
            (await svc.http.get("/sim")).status_code,
            (await svc.http.get("/sim/api/people")).status_code,
            (
                await svc.http.post(
                    "/sim/api/messages", json={"from": "+8613800138001", "text": "1"}
                )
            ).status_code,
        ]
    if enabled:
        assert statuses[0] == 200 and 404 not in statuses
    else:
        assert statuses == [404, 404, 404]


async def test_a_volunteer_never_reads_anothers_report_or_balance(
    db: str, twilio: FakeTwilio, record_property: Record
) -> None:
    street = await seed_street()
    async with running_service(service_settings(db, twilio), twilio, background=False) as svc:
        [filed] = await say(svc, at(9), street.wang.phone, "报 1 5号楼门口垃圾堆放")
        assert "#1" in filed
        await say(svc, at(9, 1), street.wang.phone, "签到")
        asked = {
            "查 1": await say(svc, at(9, 2), street.li.phone, "查 1"),
            "S 1": await say(svc, at(9, 3), street.li.phone, "S 1"),
            "是 1": await say(svc, at(9, 4), street.li.phone, "YES 1"),
            "积分 王秀英": await say(svc, at(9, 5), street.li.phone, "POINTS 王秀英"),
            "积分 phone": await say(svc, at(9, 6), street.li.phone, f"P {street.wang.phone}"),
        }
    for text, [reply] in asked.items():
        assert "门口垃圾" not in reply and "王秀英" not in reply and "Wang" not in reply, (
            text,
            reply,
        )
        assert "138****8001" not in reply and street.wang.phone not in reply, (text, reply)
    # Li's own balance whatever she names: never Wang's 2 points for the report.
    assert all(r[0].startswith("Li: 0 points") for r in list(asked.values())[3:])
    report(record_property, "other_peoples_data", attempts=len(asked), leaks=0)
