"""The processor's batches: on SQLite a batch gives the one connection back to waiting webhooks."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import time_machine

from steward.clock import utc
from steward.gateway.messages import InboundMessage as Inbound
from steward.shells.inbound import Processor
from steward.storage import inbound
from steward.storage.models import InboundMessage
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
