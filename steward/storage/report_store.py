"""Reports in the database: what report flows need to decide, and applying what they decided."""

from __future__ import annotations

from datetime import datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.functions import Max

from steward.flows.state import (
    AttachMedia,
    Contact,
    CreateReport,
    MoveReport,
    ReportsContext,
    ReportView,
)
from steward.storage.models import (
    GONE,
    Attachment,
    Report,
    ReportEvent,
    Role,
    Volunteer,
)

RECENT_OWN = timedelta(minutes=30)
RECENT_ZONE = timedelta(hours=24)
# Any constant will do: it names "allocating report numbers" among PostgreSQL advisory locks.
REPORT_NUMBER_LOCK = 0x5354_5701


class ReportConflict(Exception):
    """The report moved on while we decided (another lead acted first); decide again."""


def report_view(row: Report, street_id: int, duplicate_number: int | None = None) -> ReportView:
    return ReportView(
        id=int(row.id),
        number=int(row.number),
        reporter_id=row.reporter_id,
        community_id=row.community_id,
        street_id=street_id,
        zone_id=row.zone_id,
        category=int(row.category),
        urgent=bool(row.urgent),
        status=row.status,
        description=row.description,
        place=row.place,
        created_at=row.created_at,
        updated_at=row.updated_at,
        duplicate_of=duplicate_number,
    )


def contact(vol: Volunteer) -> Contact:
    return Contact(int(vol.id), vol.name, vol.phone, vol.language, vol.telegram_chat_id)


async def _views(rows: list[Report], conn: BaseDBAsyncClient) -> tuple[ReportView, ...]:
    views = []
    for row in rows:
        await row.fetch_related("community", "duplicate_of", using_db=conn)
        duplicate = row.duplicate_of.number if row.duplicate_of is not None else None
        views.append(report_view(row, row.community.street_id, duplicate))
    return tuple(views)


async def find_report(number: int, conn: BaseDBAsyncClient) -> ReportView | None:
    """A report by its short number."""
    row = await Report.filter(number=number).using_db(conn).first()
    if row is None:
        return None
    return (await _views([row], conn))[0]


async def reserve_number(conn: BaseDBAsyncClient) -> int:
    """The next report number; held for this transaction so two reports never share one."""
    if conn.capabilities.dialect == "postgres":
        await conn.execute_query("SELECT pg_advisory_xact_lock($1)", [REPORT_NUMBER_LOCK])
    # SQLite runs one write transaction at a time, so max+1 is already safe there.
    result = await Report.all().using_db(conn).annotate(top=Max("number")).values("top")
    top = result[0]["top"] if result else None
    return int(top or 0) + 1


async def people(
    role: Role, conn: BaseDBAsyncClient | None = None, **where: object
) -> tuple[Contact, ...]:
    """Everyone of a role (leads, office staff) matching `where`, except removed volunteers."""
    query = Volunteer.filter(role=role, **where).exclude(status__in=GONE)
    if conn is not None:
        query = query.using_db(conn)
    return tuple(contact(v) for v in await query.order_by("id"))


async def load_reports_context(
    vol: Volunteer,
    now: datetime,
    target_number: int | None,
    wants_number: bool,
    conn: BaseDBAsyncClient,
) -> ReportsContext:
    """Everything report flows may need for one message from `vol` (loaded with their pair)."""
    zone_id = vol.pair.zone_id if vol.pair_id is not None and vol.pair is not None else None
    own = await (
        Report.filter(reporter_id=vol.id, created_at__gte=now - RECENT_OWN)
        .using_db(conn)
        .order_by("-created_at")
        .limit(1)
    )
    zone_rows: list[Report] = []
    if zone_id is not None:
        zone_rows = (
            await Report.filter(zone_id=zone_id, created_at__gte=now - RECENT_ZONE)
            .using_db(conn)
            .order_by("created_at")
        )
    target = await find_report(target_number, conn) if target_number is not None else None
    reporter = None
    if target is not None:
        reporter_row = await Volunteer.filter(id=target.reporter_id).using_db(conn).first()
        reporter = contact(reporter_row) if reporter_row else None
    community_id = target.community_id if target is not None else vol.community_id
    return ReportsContext(
        next_number=await reserve_number(conn) if wants_number else 0,
        zone_id=zone_id,
        own_recent=(await _views(own, conn))[0] if own else None,
        zone_recent=await _views(zone_rows, conn),
        target=target,
        target_reporter=reporter,
        leads=await people(Role.LEAD, conn, community_id=community_id),
        office=await people(Role.OFFICE, conn, street_id=vol.street_id),
    )


async def create_report(
    effect: CreateReport,
    reporter: Volunteer,
    channel: str,
    inbound_id: int | None,
    now: datetime,
    conn: BaseDBAsyncClient,
) -> None:
    duplicate = (
        await Report.filter(number=effect.duplicate_of).using_db(conn).first()
        if effect.duplicate_of is not None
        else None
    )
    report = await Report.create(
        number=effect.number,
        reporter_id=reporter.id,
        community_id=reporter.community_id,
        zone_id=effect.zone_id,
        category=effect.category,
        urgent=effect.urgent,
        description=effect.description,
        place=effect.place,
        status="new",
        duplicate_of_id=duplicate.id if duplicate else None,
        created_at=now,
        updated_at=now,
        using_db=conn,
    )
    await ReportEvent.create(
        report_id=report.id,
        from_status=None,
        to_status="new",
        actor_id=reporter.id,
        channel=channel,
        note=f"duplicate of #{effect.duplicate_of}" if effect.duplicate_of else "",
        created_at=now,
        using_db=conn,
    )
    await _attach(report.id, effect.media, inbound_id, now, conn)


async def attach_media(
    effect: AttachMedia, inbound_id: int | None, now: datetime, conn: BaseDBAsyncClient
) -> None:
    report = await Report.filter(number=effect.report_number).using_db(conn).get()
    await _attach(report.id, effect.media, inbound_id, now, conn)
    if effect.location is not None:
        latitude, longitude = effect.location
        await Attachment.create(
            report_id=report.id,
            inbound_id=inbound_id,
            kind="location",
            latitude=latitude,
            longitude=longitude,
            created_at=now,
            using_db=conn,
        )


async def _attach(
    report_id: int,
    media: tuple[tuple[str, str], ...],
    inbound_id: int | None,
    now: datetime,
    conn: BaseDBAsyncClient,
) -> None:
    for url, content_type in media:
        await Attachment.create(
            report_id=report_id,
            inbound_id=inbound_id,
            kind="photo",
            url=url,
            content_type=content_type,
            created_at=now,
            using_db=conn,
        )


async def move_report(
    effect: MoveReport, actor_id: int | None, channel: str, now: datetime, conn: BaseDBAsyncClient
) -> None:
    """Apply one lifecycle step, refusing if someone else moved the report meanwhile."""
    updated = (
        await Report.filter(number=effect.report_number, status=effect.from_status)
        .using_db(conn)
        .update(status=effect.to_status, updated_at=now)
    )
    if not updated:
        raise ReportConflict(f"report #{effect.report_number} is no longer {effect.from_status}")
    report = await Report.filter(number=effect.report_number).using_db(conn).get()
    await ReportEvent.create(
        report_id=report.id,
        from_status=effect.from_status,
        to_status=effect.to_status,
        actor_id=actor_id,
        channel=channel,
        note=effect.note,
        created_at=now,
        using_db=conn,
    )


async def report_id_of(number: int, conn: BaseDBAsyncClient) -> int | None:
    row = await Report.filter(number=number).using_db(conn).first()
    return int(row.id) if row else None
