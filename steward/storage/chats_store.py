"""Telegram groups: invite codes, bindings, who may act in a group, where group alerts go.

A group is bound once, by a one-time code the street office prints (`steward chats invite`).
Storage returns facts; what to say about them is `flows.groups`.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from steward.flows.groups import OpenReportLine, RosterPair
from steward.storage.models import (
    ChatGroup,
    ChatInvite,
    Community,
    Pair,
    Report,
    Role,
    Street,
    Volunteer,
    VolunteerStatus,
)

INVITE_VALID = timedelta(days=7)
# No 0/O or 1/I/L: a code read aloud or copied by hand should not be misread.
_CODE_LETTERS = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_CODE_LENGTH = 8


class UnknownPlace(LookupError):
    """No street or community by the name given."""


@dataclass(frozen=True)
class Invite:
    code: str
    role: str
    street: str
    community: str | None
    expires_at: datetime


@dataclass(frozen=True)
class Binding:
    """What a bound group is for."""

    chat_id: int
    role: str  # "lead" (a community's leads) or "office" (a street office)
    street_id: int
    community_id: int | None
    place: str  # the community's or the street's name


@dataclass(frozen=True)
class Actor:
    """The roster person behind a Telegram user who writes in a group."""

    volunteer_id: int
    name: str
    role: str
    street_id: int
    community_id: int
    language: str


async def create_invite(
    street: str, community: str | None, role: Role, now: datetime, conn: BaseDBAsyncClient
) -> Invite:
    """A fresh one-time code for a lead group (a community) or an office group (a street)."""
    street_row = await Street.filter(name=street).using_db(conn).first()
    if street_row is None:
        raise UnknownPlace(f"no street named {street!r}")
    community_row = None
    if community is not None:
        community_row = (
            await Community.filter(street_id=street_row.id, name=community).using_db(conn).first()
        )
        if community_row is None:
            raise UnknownPlace(f"no community named {community!r} in {street}")
    code = "".join(secrets.choice(_CODE_LETTERS) for _ in range(_CODE_LENGTH))
    invite = await ChatInvite.create(
        code=code,
        role=role,
        street_id=street_row.id,
        community_id=community_row.id if community_row else None,
        created_at=now,
        expires_at=now + INVITE_VALID,
        using_db=conn,
    )
    return Invite(code, role.value, street, community, invite.expires_at)


@dataclass(frozen=True)
class BindResult:
    """`binding` when the code bound the group; otherwise why not ("unknown", "used",
    "expired")."""

    binding: Binding | None
    problem: str | None = None


def normalise_code(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isalnum())


async def bind(
    code: str, chat_id: int, title: str, now: datetime, conn: BaseDBAsyncClient
) -> BindResult:
    """Use a code for this group: a group bound before takes its new purpose."""
    invite = (
        await ChatInvite.filter(code=normalise_code(code))
        .select_for_update()
        .using_db(conn)
        .first()
    )
    if invite is None:
        return BindResult(None, "unknown")
    if invite.used_at is not None:
        # The same group sending the same /bind again (a redelivery, a double tap) is bound.
        if invite.used_by_chat_id == chat_id:
            return BindResult(await group_of(chat_id, conn))
        return BindResult(None, "used")
    if invite.expires_at <= now:
        return BindResult(None, "expired")
    invite.used_at = now
    invite.used_by_chat_id = chat_id
    await invite.save(using_db=conn, update_fields=["used_at", "used_by_chat_id"])
    await ChatGroup.filter(chat_id=chat_id).using_db(conn).delete()
    await ChatGroup.create(
        chat_id=chat_id,
        title=title[:200],
        role=invite.role,
        street_id=invite.street_id,
        community_id=invite.community_id,
        bound_at=now,
        using_db=conn,
    )
    return BindResult(await group_of(chat_id, conn))


async def group_of(chat_id: int, conn: BaseDBAsyncClient) -> Binding | None:
    group = (
        await ChatGroup.filter(chat_id=chat_id)
        .select_related("street", "community")
        .using_db(conn)
        .first()
    )
    if group is None:
        return None
    place = group.community.name if group.community is not None else group.street.name
    return Binding(int(group.chat_id), group.role.value, group.street_id, group.community_id, place)


async def actor(telegram_user_id: int, conn: BaseDBAsyncClient) -> Actor | None:
    """The roster person who linked this Telegram account (their private chat with the bot)."""
    vol = (
        await Volunteer.filter(telegram_chat_id=telegram_user_id)
        .exclude(status=VolunteerStatus.REMOVED)
        .using_db(conn)
        .first()
    )
    if vol is None:
        return None
    return Actor(
        int(vol.id),
        vol.name,
        vol.role.value,
        vol.street_id,
        vol.community_id,
        vol.language,
    )


async def groups_for(volunteer_ids: Iterable[int], conn: BaseDBAsyncClient) -> dict[int, int]:
    """For leads and office staff among `volunteer_ids`: the group their alerts go to now
    (a lead's community group, an office clerk's street group). One statement."""
    ids = sorted(set(volunteer_ids))
    if not ids:
        return {}
    groups = await (
        ChatGroup.all().using_db(conn).values("chat_id", "role", "street_id", "community_id")
    )
    if not groups:
        return {}
    people = await (
        Volunteer.filter(id__in=ids, role__in=[Role.LEAD, Role.OFFICE])
        .using_db(conn)
        .values("id", "role", "street_id", "community_id")
    )
    lead_groups = {g["community_id"]: g["chat_id"] for g in groups if g["role"] == Role.LEAD}
    office_groups = {
        g["street_id"]: g["chat_id"]
        for g in groups
        if g["role"] == Role.OFFICE and g["community_id"] is None
    }
    routes: dict[int, int] = {}
    for person in people:
        chat = (
            lead_groups.get(person["community_id"])
            if person["role"] == Role.LEAD
            else office_groups.get(person["street_id"])
        )
        if chat is not None:
            routes[int(person["id"])] = int(chat)
    return routes


async def office_groups(conn: BaseDBAsyncClient) -> list[Binding]:
    rows = await ChatGroup.filter(role=Role.OFFICE).using_db(conn).order_by("id")
    return [b for row in rows if (b := await group_of(int(row.chat_id), conn)) is not None]


async def group_people() -> list[tuple[Binding, list[tuple[int, str, str]]]]:
    """Each bound group with the linked people who may act in it: (user id, name, role)."""
    result = []
    conn = connections.get("default")
    for row in await ChatGroup.all().using_db(conn).order_by("role", "id"):
        binding = await group_of(int(row.chat_id), conn)
        if binding is None:
            continue
        query = Volunteer.filter(telegram_chat_id__isnull=False, street_id=binding.street_id)
        query = query.exclude(status=VolunteerStatus.REMOVED)
        people = [
            (int(v.telegram_chat_id), v.name, v.role.value)
            for v in await query.using_db(conn).order_by("role", "id")
            if v.telegram_chat_id is not None
            and (
                v.role == Role.OFFICE
                or (
                    v.role == Role.LEAD
                    and binding.role == "lead"
                    and v.community_id == binding.community_id
                )
            )
        ]
        result.append((binding, people))
    return result


async def bound_groups(conn: BaseDBAsyncClient) -> list[Binding]:
    rows = await ChatGroup.all().using_db(conn).order_by("id")
    return [b for row in rows if (b := await group_of(int(row.chat_id), conn)) is not None]


OPEN_STATUSES = ("new", "acknowledged", "resolved")


async def open_reports(binding: Binding, conn: BaseDBAsyncClient) -> list[OpenReportLine]:
    """The group's open reports (a community's, or the whole street's), oldest first."""
    query = Report.filter(status__in=OPEN_STATUSES)
    if binding.community_id is not None:
        query = query.filter(community_id=binding.community_id)
    else:
        query = query.filter(community__street_id=binding.street_id)
    rows = await query.using_db(conn).order_by("created_at", "number")
    return [
        OpenReportLine(r.number, r.category, r.urgent, r.place, r.status, r.created_at)
        for r in rows
    ]


async def roster(binding: Binding, conn: BaseDBAsyncClient) -> list[RosterPair]:
    """The group's pairs with their stewards (still serving) in code order."""
    pairs = Pair.filter(community_id=binding.community_id)
    if binding.community_id is None:
        pairs = Pair.filter(community__street_id=binding.street_id)
    rows = await pairs.using_db(conn).order_by("code")
    people = (
        await Volunteer.filter(pair_id__in=[p.id for p in rows], role=Role.STEWARD)
        .exclude(status=VolunteerStatus.REMOVED)
        .using_db(conn)
        .order_by("id")
    )
    members: dict[int, list[tuple[str, str, str]]] = {}
    for person in people:
        assert person.pair_id is not None
        members.setdefault(person.pair_id, []).append(
            (person.name, person.phone, person.status.value)
        )
    return [RosterPair(p.code, p.patrol_start, tuple(members.get(p.id, ()))) for p in rows]
