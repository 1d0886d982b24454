"""In-flight sends after a crash (issue 13, item 1).

A send can reach the provider and the process die before it records the answer. Twilio can be
asked what it took (the Messages list): the message is then recorded, not sent again. Telegram
cannot be asked: there the choice is at-least-once (a second copy, never none).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, timedelta

import httpx
import pytest
from tortoise.transactions import in_transaction

from steward.clock import utcnow
from steward.gateway.messages import OutboundMessage
from steward.gateway.outbox import LOOKUP_SKEW, Dispatcher, recover_claims
from steward.gateway.twilio_sms import TwilioSmsSender
from steward.storage import outbox_store
from steward.storage.models import OutboxMessage, OutboxStatus
from steward.storage.outbox_store import NewMessage
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import (
    SERVICE_NUMBER,
    ManualClock,
    new_sid,
    seed_street,
    service_settings,
    sign,
    sms_form,
)
from tests.reliability.numbers import Record, report
from tests.test_process import free_port, serve, serve_env


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Poll the database (it cannot notify us) until `check` holds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        # Another process does the work: poll its database, with a deadline.
        await asyncio.sleep(0.05)  # noqa: sleep-ok


async def all_sent() -> bool:
    rows = await OutboxMessage.all()
    return bool(rows) and all(r.status == OutboxStatus.SENT for r in rows)


def lookups(twilio: FakeTwilio) -> list[dict[str, str]]:
    return [r.query for r in twilio.requests if r.method == "GET"]


@pytest.mark.process
async def test_a_twilio_send_whose_answer_died_with_us_is_found_not_sent_again(
    db: str, twilio: FakeTwilio, record_property: Record
) -> None:
    street = await seed_street()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = service_settings(db, twilio, PUBLIC_BASE_URL=base)
    env = serve_env(db, twilio, base)
    form = sms_form(street.wang.phone, "签到", new_sid())
    headers = {"X-Twilio-Signature": sign(settings, "/twilio/sms", form)}

    twilio.delay(60)  # Twilio takes the reply at once; its answer comes far too late
    async with serve(env, port) as first:
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.post("/twilio/sms", data=form, headers=headers)).status_code == 200
        [accepted] = await asyncio.to_thread(twilio.wait_for_messages, 1, 10.0)
        first.kill()  # between Twilio's acceptance and our record of it
        await first.wait()
    assert (await OutboxMessage.get()).status == OutboxStatus.SENDING
    twilio.delay(0)

    async with serve(env, port):
        await eventually(all_sent, 20.0, "the reply recorded as sent")
    row = await OutboxMessage.get()
    assert (row.provider_id, len(twilio.messages)) == (accepted.sid, 1)
    [query] = lookups(twilio)
    assert (query["To"], query["From"]) == (street.wang.phone, SERVICE_NUMBER)
    since = row.created_at - LOOKUP_SKEW  # the reply cannot have gone before its row existed
    assert query["DateSent>"] == since.astimezone(UTC).strftime("%Y-%m-%d")
    report(
        record_property,
        "twilio_answer_lost",
        messages=len(twilio.messages),
        kills=1,
        lookups=1,
        duplicates=len(twilio.messages) - 1,
    )


@pytest.mark.process
async def test_a_twilio_send_that_never_arrived_is_sent_after_asking(
    db: str, twilio: FakeTwilio, record_property: Record
) -> None:
    street = await seed_street()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = service_settings(db, twilio, PUBLIC_BASE_URL=base)
    env = serve_env(db, twilio, base)
    form = sms_form(street.wang.phone, "签到", new_sid())
    headers = {"X-Twilio-Signature": sign(settings, "/twilio/sms", form)}

    twilio.hang()  # the send is held open and never reaches "Twilio"
    async with serve(env, port) as first:
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.post("/twilio/sms", data=form, headers=headers)).status_code == 200
        await asyncio.to_thread(twilio.wait_for_request, 10.0)
        first.kill()
        await first.wait()
    await asyncio.to_thread(twilio.wait_for_dropped, 1, 10.0)
    twilio.release()

    async with serve(env, port):
        await eventually(all_sent, 20.0, "the reply sent")
    [sent] = twilio.messages
    assert (await OutboxMessage.get()).provider_id == sent.sid
    methods = [r.method for r in twilio.requests]
    assert methods == ["POST", "GET", "POST"]  # the lost send, the question, the send
    report(record_property, "twilio_request_lost", messages=1, kills=1, lookups=1, duplicates=0)


@pytest.mark.process
async def test_a_telegram_send_whose_answer_died_with_us_goes_at_least_once(
    db: str, twilio: FakeTwilio, telegram_api: FakeTelegram, record_property: Record
) -> None:
    """Telegram cannot say what it took: the reply is sent again, once (documented choice)."""
    street = await seed_street()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **serve_env(db, twilio, base),
        "TELEGRAM_BOT_TOKEN": telegram_api.token,
        "TELEGRAM_API_BASE": telegram_api.base_url,
        "TELEGRAM_WEBHOOK_SECRET": "in-flight-secret",
    }
    wang = telegram_api.user(5001, "秀英")

    def to_wang(n: int) -> None:
        telegram_api.wait_until(lambda: len(telegram_api.messages_to(wang.id)) >= n, 20.0, "")

    async with serve(env, port) as first:
        await telegram_api.share_contact(wang, street.wang.phone)
        await asyncio.to_thread(to_wang, 1)  # linked
        await eventually(all_sent, 10.0, "the link confirmation recorded")
        telegram_api.answer_late("sendMessage", 60)
        await telegram_api.private_text(wang, "签到")
        await asyncio.to_thread(to_wang, 2)  # Telegram has the reply...
        first.kill()  # ... and we die before hearing so
        await first.wait()
    telegram_api.answer_late("sendMessage", 0)

    async with serve(env, port):
        await eventually(all_sent, 20.0, "the reply recorded as sent")
    replies = [m.text for m in telegram_api.messages_to(wang.id)][1:]
    assert len(replies) == 2 and replies[0] == replies[1] and "签到成功" in (replies[0] or "")
    report(record_property, "telegram_answer_lost", messages=2, kills=1, duplicates=1)


async def test_a_timed_out_send_that_twilio_took_is_not_sent_twice(
    db: str, twilio: FakeTwilio, record_property: Record
) -> None:
    street = await seed_street()
    clock = ManualClock(utcnow())
    settings = service_settings(db, twilio)
    sender = TwilioSmsSender(settings, timeout=0.3)
    dispatcher = Dispatcher({"sms": sender}, rates={"sms": 100}, max_attempts=8, poll_seconds=60)
    dispatcher._clock = clock
    async with in_transaction() as conn:
        await outbox_store.enqueue(
            NewMessage("sms", street.wang.phone, "签到成功", "reply"), clock(), conn
        )
    twilio.delay(1.0)  # accepted, answered after our timeout
    try:
        assert await dispatcher.drain() == 1
        row = await OutboxMessage.get()
        assert (row.status, row.claimed_at is not None) == (OutboxStatus.QUEUED, True)
        twilio.delay(0)
        clock.set(clock() + timedelta(seconds=5))  # past the backoff
        assert await dispatcher.drain() == 1
    finally:
        await sender.close()
    [accepted] = twilio.messages
    row = await OutboxMessage.get()
    assert (row.status, row.provider_id, row.claimed_at) == (OutboxStatus.SENT, accepted.sid, None)
    report(record_property, "twilio_timeout", messages=1, timeouts=1, lookups=1, duplicates=0)


async def test_of_two_identical_texts_in_doubt_only_the_missing_one_is_sent(
    db: str, twilio: FakeTwilio, record_property: Record
) -> None:
    """The same words twice to one person (\"already checked in\"): one reached Twilio before the
    crash, one did not. The one found takes Twilio's SID; the other is sent, not matched to it."""
    street = await seed_street()
    settings = service_settings(db, twilio)
    sender = TwilioSmsSender(settings)
    now = utcnow()
    ids = []
    async with in_transaction() as conn:
        for _ in range(2):
            msg = NewMessage("sms", street.wang.phone, "您已签到", "reply")
            ids.append(await outbox_store.enqueue(msg, now - timedelta(seconds=5), conn))
    await OutboxMessage.all().update(status=OutboxStatus.SENDING, claimed_at=now)
    try:
        first = await sender.send(OutboundMessage("sms", street.wang.phone, "您已签到", 0))
        assert await recover_claims(timedelta(seconds=1), single_process=True, now=utcnow()) == 2
        dispatcher = Dispatcher(
            {"sms": sender}, rates={"sms": 100}, max_attempts=8, poll_seconds=60
        )
        assert await dispatcher.drain() == 2
    finally:
        await sender.close()
    rows = await OutboxMessage.all().order_by("id")
    assert [r.status for r in rows] == [OutboxStatus.SENT, OutboxStatus.SENT]
    assert rows[0].provider_id == first.provider_id
    assert len(twilio.messages) == 2 and rows[1].provider_id == twilio.messages[1].sid
    report(record_property, "identical_in_doubt", messages=2, in_doubt=2, found=1, sent=1)
