"""Load one street's day for the digest from stored state (any time of day, any number of runs)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from tortoise.expressions import Q

from steward.clock import local_date, utc, utcnow
from steward.flows import digest
from steward.flows.digest import DigestData, MemberDay, ReportFacts
from steward.flows.state import Contact
from steward.settings import Settings
from steward.storage import report_store
from steward.storage.models import (
    GONE,
    Pair,
    PatrolSession,
    PointsEntry,
    Report,
    Role,
    Street,
    Volunteer,
    VolunteerStatus,
)


async def street_ids() -> list[int]:
    return [int(s.id) for s in await Street.all().order_by("id")]


async def street_named(name: str) -> int | None:
    street = await Street.get_or_none(name=name)
    return int(street.id) if street else None


async def load_digest(
    street_id: int, day: date, rules: Settings, *, as_of: datetime | None = None
) -> DigestData:
    """The street's day so far; `as_of` (default now, at most the day's end) dates "overdue"."""
    street = await Street.get(id=street_id)
    minutes = await _minutes_by_volunteer(street_id, day)
    facts = digest.DayFacts(
        street=street.name,
        day=day,
        pairs=await _pairs(street_id, minutes),
        patrol_minutes=sum(minutes.values()),
        reports=tuple(await _reports(street_id, day, rules)),
        flagged=await _flagged(street_id),
        month_points=tuple(await _month_points(street_id, day)),
    )
    return digest.summarise(facts, as_of or utcnow(), rules)


async def _minutes_by_volunteer(street_id: int, day: date) -> dict[int, int]:
    """Confirmed minutes of sessions closed so far that day (an undone check-in is no patrol)."""
    rows = (
        await PatrolSession.filter(
            local_date=day,
            volunteer__street_id=street_id,
            ended_at__isnull=False,
            confirmed=True,
        )
        .exclude(closed_by="undone")
        .values_list("volunteer_id", "minutes")
    )
    totals: dict[int, int] = {}
    for volunteer_id, spent in rows:
        totals[volunteer_id] = totals.get(volunteer_id, 0) + int(spent or 0)
    return totals


async def _pairs(street_id: int, minutes: dict[int, int]) -> tuple[digest.PairFacts, ...]:
    """Each pair's schedule and its members' minutes and leave that day."""
    members: dict[int, list[MemberDay]] = {}
    people = await Volunteer.filter(street_id=street_id, pair_id__isnull=False).exclude(
        status__in=GONE
    )
    for person in people:
        assert person.pair_id is not None  # filtered above; tells the type checker
        members.setdefault(person.pair_id, []).append(
            MemberDay(minutes.get(int(person.id), 0), person.on_leave_from, person.on_leave_until)
        )
    return tuple(
        digest.PairFacts(pair.patrol_days, tuple(members.get(int(pair.id), [])))
        for pair in await Pair.filter(community__street_id=street_id).order_by("id")
    )


async def _reports(street_id: int, day: date, rules: Settings) -> list[ReportFacts]:
    """Reports still open, and those filed that day whatever became of them (except those their
    reporter withdrew at once: taken back within minutes, they were never work for anyone)."""
    start = utc(datetime.combine(day, time(0), tzinfo=rules.tz))
    filed_that_day = Q(created_at__gte=start, created_at__lt=start + timedelta(days=1))
    rows = (
        await Report.filter(community__street_id=street_id)
        .filter(Q(status__in=list(digest.OPEN_STATUSES)) | filed_that_day)
        .exclude(status="withdrawn")
        .order_by("number")
    )
    return [
        ReportFacts(
            number=row.number,
            category=row.category,
            urgent=row.urgent,
            status=row.status,
            place=row.place,
            created_at=utc(row.created_at),
            created_on=local_date(row.created_at, rules.tz),
        )
        for row in rows
    ]


async def _flagged(street_id: int) -> tuple[str, ...]:
    rows = await Volunteer.filter(street_id=street_id, status=VolunteerStatus.FLAGGED).order_by(
        "id"
    )
    return tuple(v.name for v in rows)


async def _month_points(street_id: int, day: date) -> list[tuple[str, int]]:
    """Points gained from the 1st of the month to the day, per volunteer still on the roster.

    Office staff are left out: the ranking is for the people who patrol.
    """
    rows = await PointsEntry.filter(
        volunteer__street_id=street_id,
        local_date__gte=day.replace(day=1),
        local_date__lte=day,
    ).values_list("volunteer_id", "amount")
    by_id: dict[int, int] = {}
    for volunteer_id, amount in rows:
        by_id[volunteer_id] = by_id.get(volunteer_id, 0) + int(amount)
    people = (
        await Volunteer.filter(id__in=list(by_id))
        .exclude(status__in=GONE)
        .exclude(role=Role.OFFICE)
    )
    return [(v.name, by_id[int(v.id)]) for v in people]


async def office_contacts(street_id: int) -> tuple[Contact, ...]:
    """The street office staff who get the digest."""
    rows = (
        await Volunteer.filter(street_id=street_id, role=Role.OFFICE)
        .exclude(status__in=GONE)
        .order_by("id")
    )
    return tuple(report_store.contact(v) for v in rows)
