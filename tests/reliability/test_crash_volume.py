"""Crash safety at volume (issue 13, item 2).

A real `steward serve` takes 2,000 signed Twilio webhooks from a concurrent client and is
SIGKILLed five times at seeded random moments (counted in 200s plus replies sent, so some land
while texts arrive and some while replies go out), then restarted. Senders resend whatever got
no 200, as Twilio does, and now and then deliver again one that had its 200. At the end every
MessageSid has exactly one effect and one reply at the stand-in, the ledgers hold no duplicate
line, and nothing is left queued, sending or unprocessed.

Each volunteer starts with a session opened a few minutes ago (PATROL_MINUTES=1, so closing it
reaches the day's goal): they text 签退 (closes it: one hours line, one points line) and then
签到 (opens one new session). Both replies say which state they saw, so a text handled twice or
out of order shows in the replies as well as in the tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from datetime import timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from steward.clock import utcnow
from steward.storage.models import (
    HoursEntry,
    InboundMessage,
    OutboxMessage,
    OutboxStatus,
    PatrolSession,
    PointsEntry,
    Volunteer,
)
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import new_sid, seed_pairs, service_settings, sign, sms_form
from tests.reliability.numbers import Record, report
from tests.reliability.test_in_flight import eventually
from tests.test_process import free_port, serve, serve_env

VOLUNTEERS = 1_000
TEXTS = ("签退", "签到")  # in this order, each once: 2,000 webhooks
KILLS = 5
CONNECTIONS = 24
REDELIVER = 0.05  # of the texts answered 200, this share is delivered once more anyway
SEED = 42


async def seed_volunteers(n: int) -> list[Volunteer]:
    """`n` stewards in pairs, each with a session opened three minutes ago."""
    people = await seed_pairs(n)
    started = utcnow() - timedelta(minutes=3)
    await PatrolSession.bulk_create(
        [
            PatrolSession(
                volunteer_id=v.id,
                pair_id=v.pair_id,
                local_date=started.astimezone(ZoneInfo("Asia/Shanghai")).date(),
                started_at=started,
            )
            for v in people
        ]
    )
    return people


@pytest.mark.process
async def test_two_thousand_webhooks_across_five_kills(
    db: str, twilio: FakeTwilio, record_property: Record
) -> None:
    began = time.monotonic()
    rng = random.Random(SEED)
    people = await seed_volunteers(VOLUNTEERS)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = service_settings(db, twilio, PUBLIC_BASE_URL=base)
    env = {
        **serve_env(db, twilio, base),
        "PATROL_MINUTES": "1",
        "TWILIO_MPS": "1000",
        "OUTBOX_SENDS_IN_FLIGHT": "8",
    }
    # Per volunteer, their texts in order: (sid, text, form, headers).
    plans: list[list[tuple[str, str, dict[str, str], dict[str, str]]]] = []
    for v in people:
        plan = []
        for text in TEXTS:
            sid = new_sid()
            form = sms_form(v.phone, text, sid)
            plan.append(
                (sid, text, form, {"X-Twilio-Signature": sign(settings, "/twilio/sms", form)})
            )
        plans.append(plan)
    total = len(plans) * len(TEXTS)
    # Kill when 200s plus replies sent reach these: seeded, spread over receiving and sending.
    kill_at = sorted(rng.sample(range(total // 10, 2 * total - total // 10), KILLS))
    jitter = [random.Random(SEED + i) for i in range(CONNECTIONS)]

    acked: set[str] = set()
    attempts = Counter[str]()
    statuses = Counter[int]()
    redelivered = Counter[str]()
    work: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(plans)):
        work.put_nowait(i)

    async def deliver(http: httpx.AsyncClient, mine: random.Random, item: tuple[str, ...]) -> None:
        sid, _text, form, headers = item
        deadline = time.monotonic() + 120
        while True:
            attempts[sid] += 1
            try:
                response = await http.post("/twilio/sms", data=form, headers=headers)
                statuses[response.status_code] += 1
                if response.status_code == 200:
                    break
            except httpx.TransportError:
                pass  # the server died under us or is not up yet: Twilio would try again
            assert time.monotonic() < deadline, f"{sid} never got a 200"
            await asyncio.sleep(mine.uniform(0.02, 0.1))
        acked.add(sid)
        if mine.random() < REDELIVER:  # Twilio sometimes delivers a message it had a 200 for
            redelivered[sid] += 1
            with contextlib.suppress(httpx.TransportError):
                await http.post("/twilio/sms", data=form, headers=headers)

    async def sender(http: httpx.AsyncClient, mine: random.Random) -> None:
        while True:
            try:
                i = work.get_nowait()
            except asyncio.QueueEmpty:
                return
            for item in plans[i]:
                await deliver(http, mine, item)

    def progress_made() -> int:
        """Webhooks answered 200 plus replies at the stand-in: it grows while either goes on."""
        return len(acked) + len(twilio.messages)

    async def reached(count: int) -> None:
        deadline = time.monotonic() + 120
        while progress_made() < count:
            assert time.monotonic() < deadline, f"progress stalled at {progress_made()}"
            # The server and the senders make the progress: look again shortly, with a deadline.
            await asyncio.sleep(0.01)  # noqa: sleep-ok

    async def drained() -> bool:
        unprocessed = await InboundMessage.filter(processed_at=None).count()
        pending = await OutboxMessage.filter(
            status__in=(OutboxStatus.QUEUED, OutboxStatus.SENDING)
        ).count()
        return unprocessed == 0 and pending == 0

    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=15.0) as http:
        senders: list[asyncio.Task[None]] = []
        left_unprocessed = left_sending = 0
        try:
            for threshold in kill_at:
                async with serve(env, port) as server:
                    if not senders:
                        senders = [asyncio.create_task(sender(http, j)) for j in jitter]
                    await reached(threshold)
                    server.kill()  # SIGKILL: nothing of the shutdown runs
                    await server.wait()
                # What this kill left for the next server: texts stored but not handled, and
                # replies claimed mid-send (the in-flight lookup at Twilio decides those).
                left_unprocessed += await InboundMessage.filter(processed_at=None).count()
                left_sending += await OutboxMessage.filter(status=OutboxStatus.SENDING).count()
            async with serve(env, port):
                await asyncio.wait_for(asyncio.gather(*senders), 120)
                await eventually(drained, 90.0, "the last server to process and send everything")
        finally:
            for task in senders:
                task.cancel()
        # The last server stopped cleanly: whatever it sent is at the stand-in now.

    retries = sum(attempts.values()) - total
    inbound = {row.external_id: row for row in await InboundMessage.all()}
    outbox = await OutboxMessage.all()
    sent = {m.sid: m for m in twilio.messages}
    replies_to = Counter(r.in_reply_to_id for r in outbox)
    per_phone = Counter(m.to for m in twilio.messages)
    hours = Counter(h.session_id for h in await HoursEntry.all())
    points = Counter((p.volunteer_id, p.kind, p.local_date) for p in await PointsEntry.all())
    sessions = Counter(s.volunteer_id for s in await PatrolSession.all())
    duplicates = (
        sum(n - 1 for n in per_phone.values() if n > len(TEXTS))
        + sum(n - 1 for n in replies_to.values() if n > 1)
        + sum(n - 1 for n in hours.values() if n > 1)
        + sum(n - 1 for n in points.values() if n > 1)
    )
    report(
        record_property,
        "crash_volume",
        messages=total,
        volunteers=len(people),
        connections=CONNECTIONS,
        kills=KILLS,
        kill_at="/".join(map(str, kill_at)),
        retries=retries,
        redelivered=sum(redelivered.values()),
        non_200=sum(n for code, n in statuses.items() if code != 200),
        left_unprocessed=left_unprocessed,
        left_sending=left_sending,
        lookups=sum(1 for r in twilio.requests if r.method == "GET"),
        replies=len(twilio.messages),
        duplicates=duplicates,
        seconds=round(time.monotonic() - began, 1),
    )

    assert len(acked) == total and set(inbound) == acked
    assert duplicates == 0
    assert len(twilio.messages) == total == len(outbox)
    assert all(r.status == OutboxStatus.SENT and r.provider_id in sent for r in outbox)
    assert {r.in_reply_to_id for r in outbox} == {m.id for m in inbound.values()}
    by_inbound = {r.in_reply_to_id: r for r in outbox}
    for plan in plans:
        for sid, text, _form, _headers in plan:
            row = inbound[sid]
            assert row.processed_at is not None and row.replied
            body = sent[by_inbound[row.id].provider_id].body
            assert sent[by_inbound[row.id].provider_id].to == row.address
            assert (
                ("签退成功" in body and "达标+" in body) if text == "签退" else "签到成功" in body
            )
    assert set(per_phone.values()) == {len(TEXTS)} and len(per_phone) == len(people)
    # Each volunteer: the seeded session closed (one hours line, one day award), a new one open.
    assert set(sessions.values()) == {2} and len(sessions) == len(people)
    assert len(hours) == len(people) and len(points) == len(people)
    open_now = await PatrolSession.filter(ended_at=None).count()
    assert open_now == len(people)
