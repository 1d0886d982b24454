"""The scheduled jobs read and write in bulk: the same number of SQL statements for a city of
6 pairs as for one of 24 (no query per pair or person), on both databases."""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from tortoise.backends.base.client import BaseDBAsyncClient

from steward.clock import utc
from steward.shells import jobs as job_shells
from steward.storage.models import (
    AttendanceDay,
    Community,
    HoursEntry,
    OptOut,
    OutboxMessage,
    Pair,
    PatrolSession,
    PointsEntry,
    Role,
    Street,
    Volunteer,
    VolunteerStatus,
    Zone,
)
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import service_settings

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 23)  # a Monday
MOMENTS = {
    "nudges": datetime(2026, 11, 23, 9, 31, tzinfo=SHANGHAI),  # nudges and lead alerts are due
    "day_close": datetime(2026, 11, 23, 22, 0, tzinfo=SHANGHAI),
    # Sessions opened at 08:05: those from 08:05 are past SESSION_MAX_MINUTES (4 h) and closed,
    # those from 10:30 are reminded to check out.
    "sessions": datetime(2026, 11, 23, 12, 45, tzinfo=SHANGHAI),
}
_CALLS = ("execute_query", "execute_query_dict", "execute_insert", "execute_many")


def _client_classes() -> Iterator[type]:
    pending: list[type] = [BaseDBAsyncClient]
    while pending:
        cls = pending.pop()
        yield cls
        pending.extend(cls.__subclasses__())


@contextlib.contextmanager
def counting() -> Iterator[list[str]]:
    """Every statement sent through tortoise's clients (either database) while inside; a call
    made from inside another (a wrapper calling its parent) counts once."""
    seen: list[str] = []
    inside: contextvars.ContextVar[bool] = contextvars.ContextVar("inside", default=False)
    restore: list[tuple[type, str, Any]] = []

    def wrap(original: Any) -> Any:
        @functools.wraps(original)
        async def counted(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
            if inside.get():
                return await original(self, query, *args, **kwargs)
            seen.append(" ".join(str(query).split())[:80])
            token = inside.set(True)
            try:
                return await original(self, query, *args, **kwargs)
            finally:
                inside.reset(token)

        return counted

    for cls in set(_client_classes()):
        for name in _CALLS:
            if name in cls.__dict__:
                restore.append((cls, name, cls.__dict__[name]))
                setattr(cls, name, wrap(cls.__dict__[name]))
    try:
        yield seen
    finally:
        for cls, name, original in restore:
            setattr(cls, name, original)


async def seed_city(pairs: int, *, open_sessions: bool = False) -> None:
    """`pairs` pairs over two communities, in a pattern of three that every size repeats:
    pair p % 3 == 1 both patrolled today (one of them paid already), p % 3 == 2 one did,
    p % 3 == 0 nobody, and its first member has been absent five days (flagged tonight), its
    second since yesterday (reminded tonight). Six settled days before today; one steward in
    each pattern on leave, one said STOP. With `open_sessions`, the sessions of p % 3 == 2 are
    still open and those of p % 3 == 0 opened at 10:30."""
    street = await Street.create(name="街道")
    communities = [await Community.create(street=street, name=f"社区{i}") for i in (1, 2)]
    joined = DAY - timedelta(days=10)
    for c in communities:
        await Volunteer.create(
            name=f"片长{c.id}",
            phone=f"+861370000000{c.id}",
            role=Role.LEAD,
            street=street,
            community=c,
            joined_on=joined,
        )
    await Volunteer.create(
        name="办事员",
        phone="+8613600000001",
        role=Role.OFFICE,
        street=street,
        community=communities[0],
        joined_on=joined,
    )
    start = datetime(2026, 11, 23, 8, 5, tzinfo=SHANGHAI)
    for p in range(1, pairs + 1):
        community = communities[p % 2]
        zone = await Zone.create(community=community, name=f"巷{p}")
        pair = await Pair.create(community=community, code=f"P{p}", zone=zone, patrol_start="08:00")
        members = []
        for m in (1, 2):
            v = 2 * p + m
            members.append(
                await Volunteer.create(
                    name=f"管家{v}",
                    phone=f"+8613900{v:06d}",
                    language="en" if m == 2 else "zh",
                    street=street,
                    community=community,
                    pair=pair,
                    joined_on=joined,
                    on_leave_from=DAY if p == 4 and m == 2 else None,
                    on_leave_until=DAY if p == 4 and m == 2 else None,
                )
            )
        if p == 5:
            await OptOut.create(address=members[1].phone, created_at=utc(start))
        out = {1: members, 2: members[:1], 0: []}[p % 3]
        for vol in out:
            still_open = open_sessions and p % 3 == 2
            await PatrolSession.create(
                volunteer=vol,
                pair=pair,
                local_date=DAY,
                started_at=utc(start),
                ended_at=None if still_open else utc(start + timedelta(minutes=125)),
                minutes=None if still_open else 125,
                closed_by=None if still_open else "volunteer",
            )
        if open_sessions and p % 3 == 0:
            await PatrolSession.create(
                volunteer=members[0],
                pair=pair,
                local_date=DAY,
                started_at=utc(start.replace(hour=10, minute=30)),
            )
        if p % 3 == 1:
            await PointsEntry.create(
                volunteer=members[0],
                amount=10,
                kind="patrol_day",
                local_date=DAY,
                dedupe_key=f"patrol_day:{members[0].id}:{DAY.isoformat()}:0",
                created_at=utc(start),
            )
        for back in range(1, 7):
            for i, vol in enumerate(members):
                absent = p % 3 == 0 and (back == 1 or (i == 0 and back <= 5))
                await AttendanceDay.create(
                    volunteer=vol,
                    local_date=DAY - timedelta(days=back),
                    status="absent" if absent else "done",
                    minutes=0 if absent else 125,
                    settled_at=utc(start),
                )


async def run_counted(job: str, twilio: FakeTwilio, db: str) -> tuple[list[str], int]:
    settings = service_settings(db, twilio)
    moment = utc(MOMENTS[job])
    with counting() as statements:
        sent = await job_shells.run_job(job, settings, moment)
    return statements, len(sent)


@pytest.mark.parametrize("job", ["nudges", "day_close", "sessions"])
async def test_a_job_issues_the_same_statements_at_any_size(
    db: str, twilio: FakeTwilio, job: str
) -> None:
    from tests.conftest import wipe_tables

    counts = {}
    for pairs in (6, 24):
        await wipe_tables()
        await seed_city(pairs, open_sessions=job == "sessions")
        statements, sent = await run_counted(job, twilio, db)
        assert sent > 0, f"{job} had something to send for {pairs} pairs"
        counts[pairs] = statements
        _, resent = await run_counted(job, twilio, db)
        assert resent == 0  # a second run for the same day queues nothing new
    assert len(counts[6]) == len(counts[24]), (counts[6], counts[24])
    assert 3 <= len(counts[24]) <= 10, counts[24]


async def test_day_close_writes_each_day_and_award_once(db: str, twilio: FakeTwilio) -> None:
    await seed_city(6)
    await run_counted("day_close", twilio, db)
    await run_counted("day_close", twilio, db)
    # 12 stewards: each has today settled once; six done days, each paid once (two were already).
    assert await AttendanceDay.filter(local_date=DAY).count() == 12
    paid = await PointsEntry.filter(local_date=DAY).values_list("volunteer_id", flat=True)
    assert len(paid) == len(set(paid)) == 6
    flagged = await Volunteer.filter(status=VolunteerStatus.FLAGGED).count()
    assert flagged == 2
    keys = await OutboxMessage.all().values_list("dedupe_key", flat=True)
    assert len(keys) == len(set(keys)) > 0


async def test_the_sessions_job_closes_each_overdue_session_once(
    db: str, twilio: FakeTwilio
) -> None:
    await seed_city(6, open_sessions=True)
    await run_counted("sessions", twilio, db)
    await run_counted("sessions", twilio, db)
    # Pairs 2 and 5 each left one session open since 08:05; 3 and 6 opened theirs at 10:30.
    closed = await PatrolSession.filter(closed_by="auto").values_list("minutes", "confirmed")
    assert closed == [(240, False), (240, False)]
    hours = await HoursEntry.all().values_list("minutes", "confirmed", "zone_name", "note")
    assert sorted(hours) == [
        (240, False, "巷2", "closed automatically"),
        (240, False, "巷5", "closed automatically"),
    ]
    assert await PatrolSession.filter(ended_at__isnull=True).count() == 2
