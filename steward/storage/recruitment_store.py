"""Applications in the database: what recruitment flows decide from, and applying what they
decided (the draft's answers, joining a pair, resigning)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from steward.flows.state import (
    ApplicantContext,
    ApplicationState,
    Candidate,
    CommunityChoice,
    Contact,
    VacancyContext,
)
from steward.storage import report_store
from steward.storage.models import (
    GONE,
    Application,
    ApplicationStatus,
    Community,
    Pair,
    Role,
    Street,
    Volunteer,
    VolunteerStatus,
    Zone,
)

OPEN = (ApplicationStatus.DRAFT, ApplicationStatus.PENDING, ApplicationStatus.APPROVED)
CANDIDATE_STATUSES = (ApplicationStatus.PENDING, ApplicationStatus.APPROVED)
# The columns a SaveApplication may set (the flows name them; nothing else is written).
SAVABLE = frozenset(
    {
        "language",
        "started_at",
        "step",
        "step_expires_at",
        "name",
        "community_id",
        "birth",
        "party_member",
        "experience",
        "lane",
        "status",
        "received_at",
    }
)


async def open_application(address: str, conn: BaseDBAsyncClient) -> Application | None:
    """The address's application still in play (draft, pending or approved), row-locked so one
    person's texts apply one at a time."""
    return (
        await Application.filter(address=address, status__in=OPEN)
        .select_for_update()
        .using_db(conn)
        .order_by("-id")
        .first()
    )


async def application_state(app: Application, conn: BaseDBAsyncClient) -> ApplicationState:
    community = (
        await Community.filter(id=app.community_id).using_db(conn).first()
        if app.community_id
        else None
    )
    pair = await Pair.filter(id=app.pair_id).using_db(conn).first() if app.pair_id else None
    zone = (
        await Zone.filter(id=pair.zone_id).using_db(conn).first() if pair and pair.zone_id else None
    )
    return ApplicationState(
        id=int(app.id),
        status=str(app.status),
        language=app.language,
        step=app.step,
        step_expires_at=app.step_expires_at,
        name=app.name,
        community_id=app.community_id,
        community_name=community.name if community else "",
        birth=app.birth,
        party_member=app.party_member,
        experience=app.experience,
        lane=app.lane,
        phone=app.phone,
        pair_id=app.pair_id,
        pair_code=pair.code if pair else "",
        zone_name=zone.name if zone else "",
    )


async def communities(conn: BaseDBAsyncClient) -> tuple[CommunityChoice, ...]:
    rows = await Community.all().using_db(conn).order_by("street_id", "id")
    return tuple(CommunityChoice(int(c.id), c.street_id, c.name) for c in rows)


async def serving_members(
    pair_id: int, conn: BaseDBAsyncClient, *, besides: int | None = None
) -> list[Volunteer]:
    """Who serves in a pair now (removed and resigned people have left it)."""
    query = Volunteer.filter(pair_id=pair_id).exclude(status__in=GONE)
    if besides is not None:
        query = query.exclude(id=besides)
    return list(await query.using_db(conn).order_by("id"))


async def leads(community_id: int, conn: BaseDBAsyncClient) -> tuple[Contact, ...]:
    return await report_store.people(Role.LEAD, conn, community_id=community_id)


async def applicant_context(
    address: str, starting: bool, conn: BaseDBAsyncClient
) -> ApplicantContext:
    """What recruitment needs for a sender not on the roster (`starting`: the text is 报名)."""
    row = await open_application(address, conn)
    if row is None:
        return ApplicantContext(None, await communities(conn) if starting else ())
    app = await application_state(row, conn)
    choices = await communities(conn) if app.status == ApplicationStatus.DRAFT else ()
    community_leads = await leads(app.community_id, conn) if app.community_id else ()
    partner, members = None, 0
    if app.status == ApplicationStatus.APPROVED and app.pair_id is not None:
        serving = await serving_members(app.pair_id, conn)
        members = len(serving)
        partner = report_store.contact(serving[0]) if serving else None
    return ApplicantContext(app, choices, community_leads, partner, members)


async def candidates(community_id: int, conn: BaseDBAsyncClient) -> tuple[Candidate, ...]:
    """The community's pending or approved applicants (the flows choose whom to name)."""
    rows = (
        await Application.filter(community_id=community_id, status__in=CANDIDATE_STATUSES)
        .using_db(conn)
        .order_by("id")
    )
    return tuple(
        Candidate(int(r.id), r.name, bool(r.party_member), bool(r.experience)) for r in rows
    )


async def vacancy_context(vol: Volunteer, conn: BaseDBAsyncClient) -> VacancyContext:
    """The pair a leaving volunteer leaves open, its leads, and who could fill it."""
    pair = await Pair.filter(id=vol.pair_id).using_db(conn).first() if vol.pair_id else None
    zone = (
        await Zone.filter(id=pair.zone_id).using_db(conn).first() if pair and pair.zone_id else None
    )
    return VacancyContext(
        pair.code if pair else "",
        zone.name if zone else "",
        await leads(vol.community_id, conn),
        await candidates(vol.community_id, conn),
    )


# ---- applying what the flows decided ---------------------------------------------------


async def save(
    application_id: int | None,
    changes: dict[str, Any],
    channel: str,
    address: str,
    conn: BaseDBAsyncClient,
) -> None:
    unknown = set(changes) - SAVABLE
    if unknown:
        raise ValueError(f"not an application column: {sorted(unknown)}")
    if application_id is None:
        phone = address if channel == "sms" else None
        await Application.create(
            channel=channel, address=address, phone=phone, using_db=conn, **changes
        )
        return
    await Application.filter(id=application_id).using_db(conn).update(**changes)


async def discard(application_id: int, conn: BaseDBAsyncClient) -> None:
    await (
        Application.filter(id=application_id, status=ApplicationStatus.DRAFT)
        .using_db(conn)
        .delete()
    )


async def join(
    application_id: int, joined_on: date, now: datetime, conn: BaseDBAsyncClient
) -> Volunteer | None:
    """Make an approved applicant an active steward of their pair; record the pledge."""
    app = (
        await Application.filter(id=application_id, status=ApplicationStatus.APPROVED)
        .using_db(conn)
        .first()
    )
    if app is None or app.pair_id is None or app.community_id is None:
        return None
    community = await Community.filter(id=app.community_id).using_db(conn).get()
    chat = int(app.address.split(":", 1)[1]) if app.channel == "telegram" else None
    vol = await Volunteer.create(
        name=app.name,
        # A Telegram applicant gave no number: the chat stands in until the roster has one.
        phone=app.phone or f"tg:{chat}",
        language=app.language,
        role=Role.STEWARD,
        status=VolunteerStatus.ACTIVE,
        street_id=community.street_id,
        community_id=app.community_id,
        pair_id=app.pair_id,
        birth=app.birth or None,
        joined_on=joined_on,
        telegram_chat_id=chat,
        using_db=conn,
    )
    app.status = ApplicationStatus.JOINED
    app.pledge_accepted_at = now
    app.volunteer_id = vol.id
    await app.save(using_db=conn, update_fields=["status", "pledge_accepted_at", "volunteer_id"])
    return vol


async def resign(volunteer_id: int, conn: BaseDBAsyncClient) -> None:
    """The volunteer leaves at their own request; the pair keeps its code and zone (a vacancy)."""
    await (
        Volunteer.filter(id=volunteer_id)
        .using_db(conn)
        .update(status=VolunteerStatus.RESIGNED, pair_id=None)
    )


# ---- screening (the shell in steward/shells/recruitment.py decides; this reads and writes) --


async def locked(number: int, conn: BaseDBAsyncClient) -> Application | None:
    """A submitted application by number, row-locked for a decision (drafts are not ones)."""
    return (
        await Application.filter(id=number)
        .exclude(status=ApplicationStatus.DRAFT)
        .select_for_update()
        .using_db(conn)
        .first()
    )


async def community_of(app: Application, conn: BaseDBAsyncClient) -> Community | None:
    if app.community_id is None:
        return None
    return await Community.filter(id=app.community_id).using_db(conn).first()


async def pair_named(community_id: int, code: str, conn: BaseDBAsyncClient) -> Pair | None:
    """The community's pair with this code (any case), row-locked while it is filled."""
    return (
        await Pair.filter(community_id=community_id, code__iexact=code.strip())
        .select_for_update()
        .using_db(conn)
        .first()
    )


async def pair_of(app: Application, conn: BaseDBAsyncClient) -> Pair | None:
    return await Pair.filter(id=app.pair_id).using_db(conn).first() if app.pair_id else None


async def zone_name_of(pair: Pair, conn: BaseDBAsyncClient) -> str:
    zone = await Zone.filter(id=pair.zone_id).using_db(conn).first() if pair.zone_id else None
    return zone.name if zone else ""


async def promised_places(pair_id: int, besides: int, conn: BaseDBAsyncClient) -> int:
    """Approved applicants still to answer the pledge for this pair (their place is held)."""
    return (
        await Application.filter(pair_id=pair_id, status=ApplicationStatus.APPROVED)
        .exclude(id=besides)
        .using_db(conn)
        .count()
    )


async def record_decision(
    app: Application,
    status: ApplicationStatus,
    actor: str,
    now: datetime,
    conn: BaseDBAsyncClient,
    *,
    pair_id: int | None = None,
    reason: str = "",
) -> None:
    app.status = status
    app.decided_by = actor
    app.decided_at = now
    app.decline_reason = reason
    if pair_id is not None:
        app.pair_id = pair_id
    fields = ["status", "decided_by", "decided_at", "decline_reason", "pair_id"]
    await app.save(using_db=conn, update_fields=fields)


async def listed(
    statuses: tuple[ApplicationStatus, ...],
    street_id: int | None,
    community_id: int | None,
    conn: BaseDBAsyncClient | None = None,
) -> list[Application]:
    """Applications in these statuses, oldest first, within a street or a community."""
    query = Application.filter(status__in=statuses).select_related("community__street", "pair")
    if community_id is not None:
        query = query.filter(community_id=community_id)
    if street_id is not None:
        query = query.filter(community__street_id=street_id)
    if conn is not None:
        query = query.using_db(conn)
    return list(await query.order_by("id"))


async def street_id_named(name: str) -> int | None:
    street = await Street.filter(name=name.strip()).first()
    return int(street.id) if street else None


async def community_ids_named(name: str, street_id: int | None) -> list[int]:
    query = Community.filter(name=name.strip())
    if street_id is not None:
        query = query.filter(street_id=street_id)
    return [int(c.id) for c in await query]


async def due_to_lapse(before: datetime, conn: BaseDBAsyncClient) -> list[Application]:
    """Approved applications decided before `before` and never answered, locked."""
    return list(
        await Application.filter(status=ApplicationStatus.APPROVED, decided_at__lte=before)
        .select_for_update()
        .using_db(conn)
        .order_by("id")
    )


async def mark_lapsed(app: Application, now: datetime, conn: BaseDBAsyncClient) -> None:
    app.status = ApplicationStatus.LAPSED
    app.lapsed_at = now
    await app.save(using_db=conn, update_fields=["status", "lapsed_at"])
