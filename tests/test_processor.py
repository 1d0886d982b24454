"""The processor's batches: on SQLite a batch gives the one connection back to waiting webhooks."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from steward.clock import utc
from steward.flows import inbox
from steward.gateway.messages import InboundMessage as Inbound
from steward.shells.inbound import Processor
from steward.storage import inbound
from steward.storage.models import InboundMessage, OutboxMessage
from steward.storage.unit import UnitOfWork
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import seed_street, service_settings

SHANGHAI = ZoneInfo("Asia/Shanghai")
AT = datetime(2026, 11, 23, 8, 0, tzinfo=SHANGHAI)


async def stored_texts(phones: list[str]) -> None:
    units = UnitOfWork()
    for n, phone in enumerate(phones):
        await inbound.store(Inbound("sms", phone, "签到", f"SMbatch{n:04d}", utc(AT)), units)


async def test_a_batch_stops_early_while_webhooks_wait(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    await stored_texts([street.wang.phone, street.li.phone, street.other.phone])
    settings = service_settings(db, twilio)
    waiting = [True]
    processor = Processor(
        settings, UnitOfWork(), poll_seconds=1, yield_to=lambda: waiting[0], yield_after=0.0
    )
    with time_machine.travel(AT, tick=False):
        first = await processor._batch()  # webhooks waiting: one decision, then commit
        waiting[0] = False
        rest = await processor._batch()  # nobody waiting: the rest in one batch
    assert (first, rest) == (1, 2)
    assert await InboundMessage.filter(processed_at__isnull=True).count() == 0


async def test_a_batch_that_lets_webhooks_in_first_keeps_pace_with_what_arrived(
    db: str, twilio: FakeTwilio
) -> None:
    street = await seed_street()
    await stored_texts([street.wang.phone, street.li.phone, street.other.phone])
    processor = Processor(
        service_settings(db, twilio),
        UnitOfWork(),
        poll_seconds=1,
        yield_to=lambda: True,  # webhooks always waiting
        yield_after=0.0,
        arrivals=lambda: 3,  # three rows stored since the processor last looked
    )
    with time_machine.travel(AT, tick=False):
        first = await processor._batch()  # owes the arrivals two decisions (KEEP_PACE_MOST)
        rest = await processor._batch()  # nothing new arrived: one decision, then commit
    assert (first, rest) == (2, 1)


async def test_without_waiting_webhooks_a_batch_takes_everything(
    db: str, twilio: FakeTwilio
) -> None:
    street = await seed_street()
    await stored_texts([street.wang.phone, street.li.phone, street.other.phone])
    processor = Processor(
        service_settings(db, twilio), UnitOfWork(), poll_seconds=1, yield_to=lambda: False
    )
    with time_machine.travel(AT, tick=False):
        assert await processor._batch() == 3


async def test_a_message_that_raises_is_marked_and_its_batch_goes_on(
    db: str, twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    street = await seed_street()
    await stored_texts([street.wang.phone, street.li.phone, street.other.phone])
    real_decide = inbox.decide

    def decide_failing_for_li(ctx: Any, parsed: Any, rules: Any) -> Any:
        if ctx.address == street.li.phone:
            raise RuntimeError("li's message breaks the rules engine")
        return real_decide(ctx, parsed, rules)

    monkeypatch.setattr(inbox, "decide", decide_failing_for_li)
    processor = Processor(service_settings(db, twilio), UnitOfWork(), poll_seconds=1)
    with time_machine.travel(AT, tick=False):
        assert await processor._batch() == 3
    rows = {row.address: row for row in await InboundMessage.all()}
    assert rows[street.wang.phone].intent == "check_in"
    assert rows[street.other.phone].processed_at is not None
    broken = rows[street.li.phone]
    assert broken.processed_at is None and broken.attempts == 1
    assert "breaks the rules engine" in (broken.last_error or "")
    assert broken.retry_at == utc(AT) + timedelta(seconds=5)
    # Only the two good messages changed anything: each has its reply queued.
    replies = await OutboxMessage.filter(kind="reply").values_list("address", flat=True)
    assert sorted(replies) == sorted([street.wang.phone, street.other.phone])


async def test_a_message_that_keeps_raising_is_closed_after_its_attempts(
    db: str, twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    street = await seed_street()
    await stored_texts([street.li.phone])

    def always_failing(ctx: Any, parsed: Any, rules: Any) -> Any:
        raise RuntimeError("still broken")

    monkeypatch.setattr(inbox, "decide", always_failing)
    processor = Processor(service_settings(db, twilio), UnitOfWork(), poll_seconds=1)
    at = AT
    for _ in range(inbound.MAX_ATTEMPTS):
        with time_machine.travel(at, tick=False):
            await processor._batch()
        row = await InboundMessage.get(address=street.li.phone)
        assert row.retry_at is not None
        at = row.retry_at  # the next attempt comes when its retry falls due
    row = await InboundMessage.get(address=street.li.phone)
    assert (row.intent, row.attempts) == ("failed", inbound.MAX_ATTEMPTS)
    assert row.processed_at is not None
