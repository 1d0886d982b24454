"""The office's review list in the database: who is flagged, and applying a keep/remove decision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import phonenumbers
from tortoise.backends.base.client import BaseDBAsyncClient

from steward.flows.office import Decision, Person
from steward.flows.state import Contact
from steward.storage import report_store
from steward.storage.models import (
    AttendanceDay,
    Community,
    Pair,
    Role,
    Volunteer,
    VolunteerStatus,
    Zone,
)
from steward.storage.outbox_store import enqueue_notices
from steward.storage.unit import Topic, UnitOfWork


class NotFound(LookupError):
    """No one (or more than one person) answers to that name or phone."""


@dataclass(frozen=True)
class Flagged:
    person: Person
    community: str
    history: list[str]


async def find(name_or_phone: str, region: str, conn: BaseDBAsyncClient | None = None) -> Volunteer:
    """The one volunteer with this phone number or exact name."""
    try:
        number = phonenumbers.parse(name_or_phone, region)
        if phonenumbers.is_valid_number(number):
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            found = await Volunteer.filter(phone=e164).using_db(conn).first()
            if found is not None:
                return found
    except phonenumbers.NumberParseException:
        pass  # not a number: try it as a name
    matches = await Volunteer.filter(name=name_or_phone.strip()).using_db(conn)
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFound(f"nobody is called or reachable at {name_or_phone!r}")
    phones = ", ".join(v.phone for v in matches)
    raise NotFound(
        f"{len(matches)} people are called {name_or_phone!r} ({phones}); use the phone number"
    )


async def person(vol: Volunteer, conn: BaseDBAsyncClient | None = None) -> Person:
    pair = await Pair.filter(id=vol.pair_id).using_db(conn).first() if vol.pair_id else None
    zone = (
        await Zone.filter(id=pair.zone_id).using_db(conn).first() if pair and pair.zone_id else None
    )
    return Person(
        report_store.contact(vol),
        str(vol.status),
        pair.code if pair else "",
        zone.name if zone else "",
        vol.on_leave_from,
        vol.on_leave_until,
    )


async def flagged(street_id: int | None = None) -> list[Flagged]:
    """Everyone awaiting the office's decision (of one street, or all), with their recent
    settled days."""
    result = []
    query = Volunteer.filter(status=VolunteerStatus.FLAGGED)
    if street_id is not None:
        query = query.filter(street_id=street_id)
    for vol in await query.order_by("community_id", "name"):
        days = AttendanceDay.filter(volunteer_id=vol.id)
        if vol.ladder_reset_on is not None:
            days = days.filter(local_date__gt=vol.ladder_reset_on)
        history = await days.order_by("local_date").values_list("status", flat=True)
        community = await Community.get(id=vol.community_id)
        result.append(Flagged(await person(vol), community.name, [str(s) for s in history]))
    return result


async def leads_of(vol: Volunteer, conn: BaseDBAsyncClient | None = None) -> tuple[Contact, ...]:
    return await report_store.people(Role.LEAD, conn, community_id=vol.community_id)


async def apply(decision: Decision, now: datetime, units: UnitOfWork | None = None) -> int:
    """Store a decision and its messages in one transaction; return how many were queued."""
    async with (units or UnitOfWork()).transaction(Topic.OUTBOX) as conn:
        return await store_decision(decision, now, conn)


async def store_decision(decision: Decision, now: datetime, conn: BaseDBAsyncClient) -> int:
    """Store a decision and its messages in the caller's transaction; return how many queued."""
    vol = await Volunteer.filter(id=decision.volunteer_id).using_db(conn).get()
    vol.status = VolunteerStatus(decision.new_status)
    if decision.reset_ladder_on is not None:
        vol.ladder_reset_on = decision.reset_ladder_on
    if decision.leave_pair:
        vol.pair_id = None  # the pair keeps its code and zone: a vacancy to fill (递补)
    await vol.save(using_db=conn)
    return await enqueue_notices(decision.notices, now, conn)
