"""What a lead's TODAY reads: the pairs of their community (office: street) as they stand."""

from __future__ import annotations

from datetime import date

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q

from steward.flows.digest import MemberDay
from steward.flows.leads import PairNow, TodayScope
from steward.flows.state import VolunteerState
from steward.storage.models import (
    GONE,
    Community,
    Pair,
    PatrolSession,
    Role,
    Street,
    Volunteer,
)


async def today_scope(
    actor: VolunteerState, day: date, conn: BaseDBAsyncClient
) -> TodayScope | None:
    """The actor's community (a lead) or street (office staff) with its pairs on `day`."""
    if actor.role == Role.LEAD:
        community = await Community.get(id=actor.community_id, using_db=conn)
        name, pairs = community.name, Pair.filter(community_id=actor.community_id)
    elif actor.role == Role.OFFICE:
        street = await Street.get(id=actor.street_id, using_db=conn)
        name, pairs = street.name, Pair.filter(community__street_id=actor.street_id)
    else:
        return None
    rows = await pairs.using_db(conn).order_by("code")
    people = (
        await Volunteer.filter(pair_id__in=[p.id for p in rows], role=Role.STEWARD)
        .exclude(status__in=GONE)
        .using_db(conn)
    )
    sessions = await PatrolSession.filter(
        # closed_by is NULL while a session is open: NOT (closed_by = 'undone') would drop it.
        Q(closed_by__isnull=True) | ~Q(closed_by="undone"),
        volunteer_id__in=[v.id for v in people],
        local_date=day,
    ).using_db(conn)
    minutes: dict[int, int] = {}
    out: set[int] = set()
    for s in sessions:
        if s.ended_at is None:
            out.add(s.volunteer_id)
        elif s.confirmed:
            minutes[s.volunteer_id] = minutes.get(s.volunteer_id, 0) + (s.minutes or 0)
    members: dict[int, list[Volunteer]] = {}
    for person in people:
        assert person.pair_id is not None  # filtered by pair above
        members.setdefault(person.pair_id, []).append(person)
    return TodayScope(
        name,
        tuple(
            PairNow(
                code=pair.code,
                patrol_days=pair.patrol_days,
                members=tuple(
                    MemberDay(minutes.get(v.id, 0), v.on_leave_from, v.on_leave_until)
                    for v in members[pair.id]
                ),
                out_now=any(v.id in out for v in members[pair.id]),
            )
            for pair in rows
            if pair.id in members
        ),
    )
