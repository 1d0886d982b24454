"""Provider faults (issue 13, item 5): Twilio answers 500s, 429s and slow answers for a while,
then recovers; Telegram floods, blocks and fails. Every message goes once, in priority order;
permanent errors fail at once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from tortoise.transactions import in_transaction

from steward.clock import reading, utcnow
from steward.gateway.outbox import Dispatcher
from steward.gateway.twilio_sms import TwilioSmsSender
from steward.storage import outbox_store
from steward.storage.models import OptOut, OutboxMessage, OutboxStatus, Volunteer
from steward.storage.outbox_store import PRIORITY, NewMessage
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import ManualClock, seed_street, service_settings
from tests.reliability.numbers import Record, report
from tests.test_telegram import linked, telegram_service, texts_to

KINDS = ["digest", "nudge", "alert", "reply"]  # queued lowest priority first, to be reordered
PER_KIND = 3
INVALID = "+8613800000211"  # Twilio 21211: not a valid number
STOPPED = "+8613800002161"  # Twilio 21610: the person replied STOP to Twilio itself


@pytest.fixture
def clock() -> Iterator[ManualClock]:
    # Real time as the start: the stand-in stamps messages with it, and lookups match on it.
    manual = ManualClock(utcnow())
    with reading(manual):
        yield manual


async def test_twilio_faults_then_recovery_send_each_once_in_priority_order(
    db: str, twilio: FakeTwilio, clock: ManualClock, record_property: Record
) -> None:
    async with in_transaction() as conn:
        for kind in KINDS:
            for i in range(PER_KIND):
                to = f"+86138{PRIORITY[kind]}{i:06d}"
                msg = NewMessage("sms", to, f"{kind} {i}", kind, PRIORITY[kind])
                await outbox_store.enqueue(msg, clock(), conn)
        for to in (INVALID, STOPPED):
            await outbox_store.enqueue(NewMessage("sms", to, "回复", "reply"), clock(), conn)
    total = len(KINDS) * PER_KIND + 2
    twilio.fail_number(INVALID, 21211)
    twilio.fail_number(STOPPED, 21610)
    sender = TwilioSmsSender(service_settings(db, twilio), timeout=0.3)
    dispatcher = Dispatcher({"sms": sender}, rates={"sms": 1000}, max_attempts=8, poll_seconds=60)

    async def at(seconds: float) -> int:
        clock.set(clock() + timedelta(seconds=seconds))
        return await dispatcher.drain()

    try:
        twilio.fail_next(total, 500)  # down
        assert await at(0) == total
        twilio.fail_next(total, 429, retry_after=5)  # throttling, with Retry-After
        assert await at(3) == total
        assert await at(3) == 0  # Retry-After honoured: nothing before 5 s
        twilio.delay(1.0)  # slow: Twilio takes each message, we time out waiting
        assert await at(3) == total
        timed_out = len(twilio.messages)
        twilio.delay(0)  # recovered
        assert await at(9) == total
        assert await at(60) == 0  # nothing left to try
    finally:
        await sender.close()

    rows = await OutboxMessage.all()
    sent = [r for r in rows if r.status == OutboxStatus.SENT]
    failed = {r.address: r for r in rows if r.status == OutboxStatus.FAILED}
    assert len(sent) == len(KINDS) * PER_KIND and set(failed) == {INVALID, STOPPED}
    assert (failed[INVALID].error_code, failed[STOPPED].error_code) == ("21211", "21610")
    assert await OptOut.filter(address=STOPPED).exists()
    bodies = Counter(m.body for m in twilio.messages)
    assert max(bodies.values()) == 1 and len(bodies) == len(sent)  # each once, none twice
    assert {r.provider_id for r in sent} == {m.sid for m in twilio.messages}
    order = [PRIORITY[m.body.split()[0]] for m in twilio.messages]
    assert order == sorted(order)  # replies, then lead alerts, then nudges, then digests
    # Permanent refusals: no retry once Twilio said so (four rounds before it could).
    to_invalid = [r for r in twilio.requests if r.form.get("To") == INVALID]
    assert len(to_invalid) == 4 and failed[INVALID].attempts == 4
    report(
        record_property,
        "twilio_faults",
        messages=total,
        server_errors=total,
        throttled=total,
        timeouts=total,
        accepted_while_timing_out=timed_out,
        duplicates=sum(n - 1 for n in bodies.values()),
        permanent_failures=len(failed),
    )


SHANGHAI = ZoneInfo("Asia/Shanghai")


def at8(minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 11, 23, 8, minute, second, tzinfo=SHANGHAI)


async def test_telegram_flood_server_errors_and_a_block(
    db: str, twilio: FakeTwilio, telegram_api: FakeTelegram, record_property: Record
) -> None:
    street = await seed_street()
    wang = telegram_api.user(5001, "秀英")
    li = telegram_api.user(5002, "Li")
    async with telegram_service(db, twilio, telegram_api) as svc:
        with time_machine.travel(at8(), tick=False):
            await linked(svc, telegram_api, wang, street.wang.phone)
            await linked(svc, telegram_api, li, street.li.phone)
            telegram_api.flood("sendMessage", retry_after=7)
            await telegram_api.private_text(wang, "签到")
            assert await svc.drain() == 1  # 429: retry_after 7 s
        with time_machine.travel(at8(0, 5), tick=False):
            assert await svc.drain() == 0  # not before 7 s
        with time_machine.travel(at8(0, 8), tick=False):
            telegram_api.fail_next("sendMessage", 502, "Bad Gateway")
            assert await svc.drain() == 1  # 5xx: retried after the backoff
        with time_machine.travel(at8(0, 20), tick=False):
            assert await svc.drain() == 1
            telegram_api.block(li.id)
            await telegram_api.private_text(li, "IN")
            await svc.drain()  # 403: Li blocked the bot, so the reply goes by SMS
    to_wang = texts_to(telegram_api, wang)[1:]
    assert len(to_wang) == 1 and "签到成功" in to_wang[0]
    assert [m.to for m in twilio.messages] == [street.li.phone]
    assert "checked in" in twilio.messages[0].body
    assert (await Volunteer.get(id=street.li.id)).telegram_chat_id is None
    # Two link confirmations and Wang's reply sent; Li's reply failed there (then went by SMS).
    tg_rows = await OutboxMessage.filter(channel="telegram")
    assert sorted(str(r.status) for r in tg_rows) == ["failed", "sent", "sent", "sent"]
    report(
        record_property,
        "telegram_faults",
        messages=2,
        floods=1,
        server_errors=1,
        blocked=1,
        sms_fallbacks=1,
        duplicates=0,
    )


def test_priorities_are_the_documented_order() -> None:
    assert sorted(PRIORITY, key=PRIORITY.__getitem__) == ["reply", "alert", "nudge", "digest"]
