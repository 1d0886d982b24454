"""The outbox and its dispatcher against the Twilio stand-in: retries, give-ups, order, pacing.

Time is a manual clock the test moves and the dispatcher is drained by hand, so a retry "30 s
later" takes no real time; nothing here sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from tortoise.transactions import in_transaction

from steward.clock import reading, utc
from steward.gateway.outbox import WINDOW_MARGIN_SECONDS, Pacer, recover_claims
from steward.storage import outbox_store
from steward.storage.models import (
    InboundMessage,
    OptOut,
    OutboxMessage,
    OutboxStatus,
    PatrolSession,
)
from steward.storage.outbox_store import NewMessage
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import ManualClock, Service, running_service, seed_street, service_settings

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 24, 8, 2, tzinfo=SHANGHAI)


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# Every test here runs on a clock that only the test moves (the dispatcher's loop too), so
# "not due yet" stays true between steps whatever the machine's date.
CLOCK = ManualClock(T0)


@pytest.fixture(autouse=True)
def _manual_clock() -> Iterator[None]:
    CLOCK.set(T0)
    with reading(CLOCK):
        yield


async def drain_at(svc: Service, moment: datetime) -> int:
    CLOCK.set(moment)
    attempted: int = await svc.drain()
    return attempted


async def text_at(svc: Service, moment: datetime, sender: str, body: str) -> None:
    """Deliver a text and let the dispatcher make its first attempt at the reply."""
    CLOCK.set(moment)
    await svc.text(sender, body)
    await svc.drain()


async def the_reply() -> OutboxMessage:
    [row] = await OutboxMessage.all()
    return row


async def test_a_server_error_is_retried_after_the_backoff(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    twilio.fail_next(1, 500)
    async with running_service(service_settings(db, twilio), twilio, background=False) as svc:
        await text_at(svc, T0, street.wang.phone, "签到")
        row = await the_reply()
        assert (row.status, row.attempts, row.error_code) == (OutboxStatus.QUEUED, 1, "20500")
        assert utc(row.next_attempt_at) == utc(later(2))  # 2 s after the first failure
        assert (len(twilio.requests), twilio.messages) == (1, [])

        await drain_at(svc, later(1))
        assert len(twilio.requests) == 1  # not before the backoff is over

        await drain_at(svc, later(2))
        await drain_at(svc, later(600))
    assert len(twilio.requests) == 2
    [message] = twilio.messages
    assert message.to == street.wang.phone
    assert message.body.startswith("王秀英，8:02签到成功")
    row = await the_reply()
    assert (row.status, row.attempts, row.provider_id) == (OutboxStatus.SENT, 2, message.sid)


async def test_a_rate_limit_is_honoured_to_the_second(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    twilio.fail_next(1, 429, retry_after=30)
    async with running_service(service_settings(db, twilio), twilio, background=False) as svc:
        await text_at(svc, T0, street.wang.phone, "签到")
        row = await the_reply()
        assert (row.status, row.error_code) == (OutboxStatus.QUEUED, "20429")
        assert utc(row.next_attempt_at) == utc(later(30))

        assert await drain_at(svc, later(29.9)) == 0
        assert (len(twilio.requests), twilio.messages) == (1, [])

        assert await drain_at(svc, later(30)) == 1
    assert [m.to for m in twilio.messages] == [street.wang.phone]
    assert (await the_reply()).status == OutboxStatus.SENT


async def test_an_invalid_number_fails_for_good(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    twilio.fail_number(street.wang.phone, 21211)
    async with running_service(service_settings(db, twilio), twilio, background=False) as svc:
        await text_at(svc, T0, street.wang.phone, "签到")
        assert await drain_at(svc, later(3600)) == 0
    row = await the_reply()
    assert (row.status, row.error_code, row.attempts) == (OutboxStatus.FAILED, "21211", 1)
    assert row.error_text is not None and "21211" in row.error_text
    assert len(twilio.requests) == 1
    assert twilio.messages == []
    assert not await OptOut.exists(address=street.wang.phone)


async def test_an_unsubscribed_number_is_recorded_as_opted_out(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    wang = street.wang.phone
    twilio.fail_number(wang, 21610)
    async with running_service(service_settings(db, twilio), twilio, background=False) as svc:
        await text_at(svc, T0, wang, "积分")
        row = await the_reply()
        assert (row.status, row.error_code) == (OutboxStatus.FAILED, "21610")
        assert await OptOut.exists(address=wang)

        await text_at(svc, later(300), wang, "签到")
        await drain_at(svc, later(3600))
    assert len(twilio.requests) == 1  # nothing more was even tried
    assert await OutboxMessage.all().count() == 1
    checked_in = await InboundMessage.get(address=wang, text="签到")
    assert checked_in.processed_at is not None
    assert (checked_in.intent, checked_in.replied) == ("check_in", False)
    assert await PatrolSession.filter(volunteer_id=street.wang.id).count() == 1


async def test_a_message_fails_when_attempts_run_out(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    twilio.fail_next(5, 503)
    settings = service_settings(db, twilio, OUTBOX_MAX_ATTEMPTS=2)
    async with running_service(settings, twilio, background=False) as svc:
        await text_at(svc, T0, street.wang.phone, "签到")
        assert (await the_reply()).status == OutboxStatus.QUEUED
        assert await drain_at(svc, later(2)) == 1
        assert await drain_at(svc, later(3600)) == 0
    row = await the_reply()
    assert (row.status, row.attempts, row.error_code) == (OutboxStatus.FAILED, 2, "20503")
    assert len(twilio.requests) == 2
    assert twilio.messages == []


async def test_replies_go_before_digests(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    settings = service_settings(db, twilio, OUTBOX_POLL_SECONDS=3600)
    async with running_service(settings, twilio, background=False) as svc:
        now = utc(T0)
        async with in_transaction() as conn:
            # The digest is older (lower id) but less urgent.
            digest = NewMessage(
                "sms",
                street.lead.phone,
                "今日巡查：2人",
                "digest",
                outbox_store.PRIORITY["digest"],
            )
            reply = NewMessage("sms", street.wang.phone, "收到", "reply", 0)
            digest_id = await outbox_store.enqueue(digest, now, conn)
            reply_id = await outbox_store.enqueue(reply, now, conn)
        assert digest_id is not None and reply_id is not None and digest_id < reply_id
        await svc.settle()
    assert [(m.to, m.body) for m in twilio.messages] == [
        (street.wang.phone, "收到"),
        (street.lead.phone, "今日巡查：2人"),
    ]


async def test_a_dedupe_key_queues_and_sends_once(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    message = NewMessage("sms", street.lead.phone, "A1 未签到", "alert", 1, dedupe_key="alert:A1")
    async with running_service(service_settings(db, twilio), twilio, background=False) as svc:
        now = utc(T0)
        async with in_transaction() as conn:
            first = await outbox_store.enqueue(message, now, conn)
        async with in_transaction() as conn:
            second = await outbox_store.enqueue(message, now, conn)
        await svc.settle()
    assert first is not None
    assert second is None
    assert await OutboxMessage.filter(dedupe_key="alert:A1").count() == 1
    assert [m.body for m in twilio.messages] == ["A1 未签到"]


async def test_concurrent_writers_with_one_dedupe_key_queue_once(
    db: str, twilio: FakeTwilio
) -> None:
    """Two transactions race past the existence check; the unique key decides, and the loser's
    transaction still commits its other work (on PostgreSQL that needs the savepoint)."""
    street = await seed_street()
    message = NewMessage("sms", street.lead.phone, "A1 未签到", "alert", 1, dedupe_key="alert:A1")
    other = [
        NewMessage("sms", street.wang.phone, "one", "nudge", 2),
        NewMessage("sms", street.li.phone, "two", "nudge", 2),
    ]

    async def writer(extra: NewMessage) -> int | None:
        async with in_transaction() as conn:
            queued = await outbox_store.enqueue(message, utc(T0), conn)
            await outbox_store.enqueue(extra, utc(T0), conn)
        return queued

    results = await asyncio.gather(*(writer(extra) for extra in other))
    assert sum(r is not None for r in results) == 1
    async with running_service(service_settings(db, twilio), twilio, background=False) as svc:
        await drain_at(svc, T0)
    assert sorted(m.body for m in twilio.messages) == sorted(["A1 未签到", "one", "two"])


def test_pacer_spaces_reservations() -> None:
    clock = [100.0]
    pacer = Pacer(2, clock=lambda: clock[0])
    assert [pacer.delay() for _ in range(3)] == pytest.approx([0.0, 0.5, 1.0])
    clock[0] = 101.5  # the third slot (101.0) has passed
    assert pacer.delay() == 0.0
    assert pacer.delay() == pytest.approx(0.5)


class VirtualTime:
    """A clock the pacer reads and a sleep that moves it: the pacer's waits take no real time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def paced(per_second: float) -> tuple[Pacer, VirtualTime]:
    time = VirtualTime()
    return Pacer(per_second, clock=time, sleep=time.sleep), time


async def test_pacer_counts_a_second_from_the_answer_to_the_send_a_rate_before() -> None:
    """At 2/s the third send starts a second (and the margin) after the first reached the
    provider: its answer less the quickest round trip seen, not its start. A slow request is
    never caught up on."""
    pacer, time = paced(2)
    first = await pacer.turn()
    time.now = 0.3
    pacer.done(first)  # a slow answer: 0.3 s
    second = await pacer.turn()
    assert second.started == pytest.approx(0.5)  # the interval after the first start
    time.now = 0.6
    pacer.done(second)  # a quick one: 0.1 s, so the first arrived by 0.3 - 0.1
    third = await pacer.turn()
    assert third.started == pytest.approx(0.3 - 0.1 + 1.0 + WINDOW_MARGIN_SECONDS)


async def test_pacer_waits_for_the_answer_of_the_send_a_rate_before() -> None:
    """Until the first send is answered, nobody knows when it reached the provider: the third
    waits for that answer, however long it takes."""
    pacer, time = paced(2)
    first = await pacer.turn()
    second = await pacer.turn()
    pacer.done(second)
    third = asyncio.create_task(pacer.turn())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not third.done()
    time.now = 5.0
    pacer.done(first)
    # Answered at 5.0; the quickest round trip seen is the second's (none), so it arrived then.
    assert (await third).started == pytest.approx(5.0 + 1.0 + WINDOW_MARGIN_SECONDS)


async def test_pacer_loses_no_rate_to_a_slow_but_steady_provider() -> None:
    """Every answer takes 0.3 s: the round trip is known, so the third send at 2/s goes a
    second (and the margin) after the first started, not a second after its answer."""
    pacer, time = paced(2)
    first = await pacer.turn()
    time.now = 0.3
    pacer.done(first)
    second = await pacer.turn()
    time.now = second.started + 0.3
    pacer.done(second)
    third = await pacer.turn()
    assert third.started == pytest.approx(1.0 + WINDOW_MARGIN_SECONDS)


async def _crashed_claim(address: str, claimed_at: datetime) -> int:
    """A message a dispatcher claimed and then died with (status sending)."""
    async with in_transaction() as conn:
        outbox_id = await outbox_store.enqueue(
            NewMessage("sms", address, "巡查提醒", "nudge", 2), claimed_at, conn
        )
    assert outbox_id is not None
    await OutboxMessage.filter(id=outbox_id).update(
        status=OutboxStatus.SENDING, claimed_at=claimed_at
    )
    return outbox_id


async def test_startup_takes_back_a_crashed_claim_and_sends_it_once(
    db: str, twilio: FakeTwilio, backend: str
) -> None:
    street = await seed_street()
    settings = service_settings(db, twilio, OUTBOX_LEASE_SECONDS=120, OUTBOX_POLL_SECONDS=3600)
    # SQLite means one process, so any claim left at start-up is dead; on PostgreSQL another
    # replica may be mid-send, so only a claim older than the lease is taken back.
    age = 10 if backend == "sqlite" else 121
    outbox_id = await _crashed_claim(street.wang.phone, utc(later(-age)))
    async with running_service(settings, twilio, background=False) as svc:
        await svc.settle()
        await svc.settle()
    assert [(m.to, m.body) for m in twilio.messages] == [(street.wang.phone, "巡查提醒")]
    row = await OutboxMessage.get(id=outbox_id)
    assert (row.status, row.provider_id) == (OutboxStatus.SENT, twilio.messages[0].sid)


async def test_recover_claims_respects_the_lease_unless_single_process(db: str) -> None:
    street = await seed_street()
    lease = timedelta(seconds=120)
    now = utc(T0)
    fresh = await _crashed_claim(street.wang.phone, now - timedelta(seconds=30))
    stale = await _crashed_claim(street.li.phone, now - timedelta(seconds=200))

    assert await recover_claims(lease, single_process=False, now=now) == 1
    statuses = {r.id: r.status for r in await OutboxMessage.all()}
    assert statuses == {fresh: OutboxStatus.SENDING, stale: OutboxStatus.QUEUED}

    assert await recover_claims(lease, single_process=True, now=now) == 1
    assert {r.status for r in await OutboxMessage.all()} == {OutboxStatus.QUEUED}
    # Each keeps its claim's time: the next attempt asks Twilio whether that one went.
    assert await OutboxMessage.filter(claimed_at__isnull=True).count() == 0


async def test_a_commit_wakes_the_dispatcher(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    # An hour between polls: only the commit's wake-up can explain a prompt send.
    settings = service_settings(db, twilio, OUTBOX_POLL_SECONDS=3600)
    async with running_service(settings, twilio) as svc:
        await svc.settle()  # the start-up pass is over; the loop now waits
        await svc.text(street.wang.phone, "签到")
        sent = await asyncio.to_thread(twilio.wait_for_messages, 1, 5.0)
        await svc.settle()  # waits for the woken pass to record the result
    assert [m.to for m in sent] == [street.wang.phone]
    assert (await the_reply()).status == OutboxStatus.SENT


async def test_stopping_at_any_moment_leaves_the_database_usable(
    db: str, twilio: FakeTwilio
) -> None:
    # Stopping used to cancel the dispatcher mid-query, which on SQLite left tortoise's
    # connection lock held: the next transaction then waited forever.
    from steward.storage.models import Street

    await seed_street()
    for yields in range(0, 40, 3):
        async with running_service(service_settings(db, twilio), twilio):
            for _ in range(yields):
                await asyncio.sleep(0)
        assert await asyncio.wait_for(Street.all().count(), 5) == 1


async def test_sends_overlap_across_people_but_never_for_one_person(
    db: str, twilio: FakeTwilio
) -> None:
    street = await seed_street()
    settings = service_settings(db, twilio, OUTBOX_SENDS_IN_FLIGHT=4)
    async with running_service(settings, twilio, background=False) as svc:
        async with in_transaction() as conn:
            for address, body in [
                (street.wang.phone, "第一条"),
                (street.wang.phone, "第二条"),
                (street.li.phone, "one"),
            ]:
                await outbox_store.enqueue(NewMessage("sms", address, body, "reply"), utc(T0), conn)
        twilio.hang()
        drain = asyncio.create_task(svc.drain())
        # Wang's first and Li's message are at Twilio together; Wang's second waits its turn.
        await asyncio.to_thread(twilio.wait_for_request, 5.0, 2)
        assert twilio.held_count == 2
        twilio.release()
        await drain
    assert [m.body for m in twilio.messages if m.to == street.wang.phone] == ["第一条", "第二条"]
    assert [m.body for m in twilio.messages if m.to == street.li.phone] == ["one"]
