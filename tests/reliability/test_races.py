"""Duplicates and races (issue 13, item 3): one MessageSid delivered 50 times at once, a pair
checking in at the same instant as the nudge job runs, two replicas under the same load."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import time_machine
from tortoise.transactions import in_transaction

from steward.app import create_app
from steward.clock import utc, utcnow
from steward.shells import jobs as job_shells
from steward.storage import inbound
from steward.storage.db import is_postgres
from steward.storage.models import (
    InboundMessage,
    OutboxMessage,
    OutboxStatus,
    PatrolSession,
    PointsEntry,
    Report,
)
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import (
    Service,
    add_person,
    new_sid,
    running_service,
    seed_street,
    service_settings,
    sign,
    sms_form,
)
from tests.reliability.numbers import Record, report

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY0 = datetime(2026, 3, 2, 8, 30, tzinfo=SHANGHAI)  # a Monday, the nudge's minute


async def test_fifty_deliveries_of_one_message_sid_have_one_effect(
    db: str, twilio: FakeTwilio, record_property: Record
) -> None:
    street = await seed_street()
    deliveries = 50
    async with running_service(service_settings(db, twilio), twilio) as svc:
        sid = new_sid()
        answers = await asyncio.gather(
            *(svc.text(street.wang.phone, "签到", sid=sid) for _ in range(deliveries))
        )
        await svc.settle()
    assert {a.status_code for a in answers} == {200}
    assert await InboundMessage.all().count() == 1
    assert await PatrolSession.all().count() == 1
    replies = [m for m in twilio.messages if m.to == street.wang.phone]
    assert len(replies) == 1 and "签到成功" in replies[0].body
    report(
        record_property,
        "one_sid_fifty_times",
        concurrent_tasks=deliveries,
        effects=1,
        replies=len(replies),
        duplicates=len(replies) - 1,
    )


async def test_a_pair_checking_in_at_the_same_instant_as_the_nudge_job(
    db: str, twilio: FakeTwilio, record_property: Record
) -> None:
    """Both partners text at once while the nudge job runs, on 100 days: one session each, one
    reply each, at most one nudge each (the job may have read the day before either text)."""
    street = await seed_street()
    # PostgreSQL, where the three transactions truly run at once, gets the full 100 days;
    # SQLite (one writer: they take turns) a quarter of them, to keep CI short.
    rounds = 100 if db.startswith("postgres") else 25
    pair = (street.wang, street.li)
    nudged = partner_nudges = 0
    async with running_service(service_settings(db, twilio), twilio) as svc:
        for day in range(rounds):
            start = DAY0 + timedelta(days=day)
            with time_machine.travel(start, tick=False):
                await asyncio.gather(
                    svc.text(street.wang.phone, "签到"),
                    svc.text(street.li.phone, "IN"),
                    job_shells.run_job(
                        "nudges", svc.settings, utc(start), units=svc.app.state.units
                    ),
                )
                await svc.settle()
            with time_machine.travel(start + timedelta(hours=2, minutes=1), tick=False):
                await asyncio.gather(
                    svc.text(street.wang.phone, "签退"), svc.text(street.li.phone, "OUT")
                )
                await svc.settle()
    for person in pair:
        sessions = await PatrolSession.filter(volunteer_id=person.id).order_by("started_at")
        assert len(sessions) == rounds
        assert len({s.local_date for s in sessions}) == rounds  # one a day
        assert all(s.ended_at is not None and s.minutes == 121 for s in sessions)
        nudges = Counter(
            r.dedupe_key for r in await OutboxMessage.filter(volunteer_id=person.id, kind="nudge")
        )
        assert all(n == 1 for n in nudges.values())
        nudged += len(nudges)
        to_them = [m.body for m in twilio.messages if m.to == person.phone]
        checked_in = [b for b in to_them if "签到成功" in b or "checked in" in b]
        assert len(checked_in) == rounds
    # "Your partner is out already": to one of the two on a day at most (one snapshot decides).
    partner_days = Counter(
        r.dedupe_key.rsplit(":", 1)[1]
        for r in await OutboxMessage.filter(kind="nudge", volunteer_id__in=[p.id for p in pair])
        if r.dedupe_key and ("搭档" in r.body or "partner" in r.body)
    )
    assert all(n == 1 for n in partner_days.values())
    partner_nudges = sum(partner_days.values())
    report(
        record_property,
        "pair_same_instant",
        rounds=rounds,
        concurrent_tasks=3,
        messages=len(twilio.messages),
        nudges=nudged,
        partner_nudges=partner_nudges,
        violations=0,
    )


@asynccontextmanager
async def replicas(db: str, twilio: FakeTwilio, n: int) -> AsyncIterator[list[Service]]:
    """`n` apps on one database, each with its own processor and dispatcher (as replicas are)."""
    settings = service_settings(db, twilio, OUTBOX_POLL_SECONDS=0.1, OUTBOX_SENDS_IN_FLIGHT=4)
    async with AsyncExitStack() as stack:
        services = []
        for _ in range(n):
            app = create_app(settings, own_database=False)
            await stack.enter_async_context(app.router.lifespan_context(app))
            http = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r")
            )
            services.append(Service(app, http, settings, twilio))
        yield services


async def quiet(services: list[Service], expected_inbound: int, timeout: float = 60.0) -> None:
    """Wait until every text is processed and every message sent, then drain each replica."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        done = await InboundMessage.filter(processed_at__isnull=False).count()
        open_rows = await OutboxMessage.filter(
            status__in=[OutboxStatus.QUEUED, OutboxStatus.SENDING]
        ).count()
        if done == expected_inbound and open_rows == 0:
            break
        assert loop.time() < deadline, f"{done}/{expected_inbound} processed, {open_rows} open"
        # The replicas' own loops do the work meanwhile: poll, with a deadline.
        await asyncio.sleep(0.05)  # noqa: sleep-ok
    for svc in services:
        await svc.drain()


async def test_two_replicas_under_the_same_load_send_nothing_twice(
    db: str, twilio: FakeTwilio, record_property: Record
) -> None:
    """Every text reaches both replicas at once (Twilio retrying on the other one): one effect,
    one reply, one report and its points each."""
    if not is_postgres(db):
        pytest.skip("SQLite runs as one process: replicas need PostgreSQL")
    street = await seed_street()
    people = [street.wang, street.li, street.other]
    for i in range(17):
        people.append(await add_person(street, f"志愿者{i}", f"+86139000{i:05d}"))
    script = ["签到", "报 1 门口垃圾堆放", "积分", "签退"]

    async with replicas(db, twilio, 2) as (a, b):

        async def one_person(phone: str) -> None:
            for body in script:
                form = sms_form(phone, body, new_sid())
                headers = {"X-Twilio-Signature": sign(a.settings, "/twilio/sms", form)}
                answers = await asyncio.gather(
                    a.http.post("/twilio/sms", data=form, headers=headers),
                    b.http.post("/twilio/sms", data=form, headers=headers),
                )
                assert [r.status_code for r in answers] == [200, 200]

        await asyncio.gather(*(one_person(p.phone) for p in people))
        await quiet([a, b], len(people) * len(script))

    texts = len(people) * len(script)
    sids = Counter(m.sid for m in twilio.messages)
    per_person = Counter(m.to for m in twilio.messages)
    assert await InboundMessage.all().count() == texts
    replies = Counter(r.in_reply_to_id for r in await OutboxMessage.filter(kind="reply"))
    assert len(replies) == texts and set(replies.values()) == {1}
    assert all(per_person[p.phone] == len(script) for p in people), per_person
    assert max(sids.values()) == 1
    assert await Report.all().count() == len(people)
    filed = Counter(e.volunteer_id for e in await PointsEntry.filter(kind="report_filed"))
    assert len(filed) == len(people) and set(filed.values()) == {1}
    assert await PatrolSession.all().count() == len(people)
    report(
        record_property,
        "two_replicas",
        replicas=2,
        messages=texts,
        deliveries=2 * texts,
        sent=len(twilio.messages),
        duplicates=sum(n - 1 for n in sids.values()),
        points_twice=sum(n - 1 for n in filed.values()),
    )


class _MeanwhileAfterFirstRead:
    """A connection that runs `meanwhile` right after its first query: another replica
    committing between our read of the pending rows and our lock of them."""

    def __init__(self, conn: Any, meanwhile: Callable[[], Awaitable[None]]) -> None:
        self._conn = conn
        self._meanwhile: Callable[[], Awaitable[None]] | None = meanwhile

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def execute_query(self, sql: str, values: Any = None) -> Any:
        result = await self._conn.execute_query(sql, values)
        if self._meanwhile is not None:
            meanwhile, self._meanwhile = self._meanwhile, None
            await meanwhile()
        return result


async def test_a_text_another_replica_processed_meanwhile_is_not_claimed_again(
    db: str, record_property: Record
) -> None:
    """Found: the claim locked the rows it had read as pending without asking again whether
    they still were; a row another replica committed in between was processed twice."""
    if not is_postgres(db):
        pytest.skip("SQLite has one writer: no replica can commit between our two statements")
    street = await seed_street()
    now = utcnow()
    row = await InboundMessage.create(
        channel="sms",
        external_id=new_sid(),
        address=street.wang.phone,
        text="签到",
        received_at=now,
    )

    async def other_replica_processes_it() -> None:
        async with in_transaction() as other:
            await inbound.mark_processed(row, "checkin", True, street.wang.id, now, other)

    async with in_transaction() as conn:
        claimed = await inbound.due(
            now, 10, _MeanwhileAfterFirstRead(conn, other_replica_processes_it)
        )
    assert claimed == []
    report(record_property, "claim_after_commit", messages=1, concurrent_tasks=2, claimed_twice=0)
