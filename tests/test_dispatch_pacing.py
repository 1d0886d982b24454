"""The dispatcher's loop with chats that must wait for their turn: a group's next message goes
back to the queue until its spacing allows it, so it holds up no one, and no later message to
that group overtakes it.

The dispatcher waits in real time here (a group spacing of 1.2 s, shorter than Telegram's 3 s
so the test stays short but still longer than a round would wait for a chat).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from tortoise.transactions import in_transaction

from steward.clock import utcnow
from steward.gateway.messages import OutboundMessage, SendResult
from steward.gateway.outbox import LATE_TURN_SECONDS, Dispatcher
from steward.storage import outbox_store
from steward.storage.models import OutboxMessage, OutboxStatus
from steward.storage.outbox_store import NewMessage
from tests.harness import record_outcomes

GROUP = "telegram:-100400"
GAP = 1.2
assert GAP > LATE_TURN_SECONDS  # a group's next message is one the round does not wait for


def spacing(address: str) -> float:
    return GAP if address.startswith("telegram:-") else 0.0


class Recording:
    channel = "telegram"

    def __init__(self) -> None:
        self.sent: list[tuple[int, float]] = []  # (outbox id, time.perf_counter())
        self.changed = asyncio.Event()

    async def send(self, message: OutboundMessage) -> SendResult:
        self.sent.append((message.outbox_id, time.perf_counter()))
        self.changed.set()
        return SendResult(provider_id=f"tg:{message.outbox_id}", status="sent")

    async def close(self) -> None:
        pass

    async def until(self, count: int) -> None:
        async def reached() -> None:
            while len(self.sent) < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(reached(), 20)


async def queue(*addresses: str) -> list[int]:
    ids = []
    async with in_transaction() as conn:
        for address in addresses:
            msg = NewMessage("telegram", address, "好", "reply")
            row = await outbox_store.enqueue(msg, utcnow(), conn)
            assert row is not None
            ids.append(row)
    return ids


async def test_a_group_waiting_for_its_turn_holds_up_no_one_and_keeps_its_order(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = record_outcomes(monkeypatch)
    sender = Recording()
    dispatcher = Dispatcher(
        {"telegram": sender},
        rates={"telegram": 30.0},
        max_attempts=8,
        poll_seconds=0.05,
        in_flight=4,
        spacings={"telegram": spacing},
    )
    first, second = await queue(GROUP, GROUP)
    people = await queue(*(f"telegram:{7_000 + n}" for n in range(26)))
    began = time.perf_counter()
    dispatcher.start()
    try:
        await sender.until(len(people) + 1)
        third = (await queue(GROUP))[0]  # while the second waits for its turn
        dispatcher.wake()
        await sender.until(len(people) + 3)
    finally:
        await dispatcher.stop()
    at = dict(sender.sent)
    # The first round had both group messages: the second went back to the queue, untried.
    assert any(o.outbox_id == second and o.retry_at and o.attempts == 0 for o in recorded)
    assert max(at[p] for p in people) - began < GAP  # none waited for the group
    assert at[first] < at[second] < at[third]
    assert at[second] - at[first] >= GAP and at[third] - at[second] >= GAP
    rows = {r.id: r for r in await OutboxMessage.filter(id__in=[first, second, third])}
    # Going back to the queue to wait is no attempt.
    assert all((r.status, r.attempts) == (OutboxStatus.SENT, 1) for r in rows.values())
