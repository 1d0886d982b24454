"""The points ledger for the office: who is named, balances, new lines, and the ranking.

Sums and ranks are computed by the database in one statement each, whatever the number of
volunteers; the ledger is only ever appended to.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from steward.clock import utc
from steward.flows.points import (
    REDEEM,
    AmbiguousName,
    Holder,
    LedgerLine,
    NewEntry,
    NoSuchEntry,
    NoSuchVolunteer,
    Period,
    Ranked,
)
from steward.storage import report_store, sql
from steward.storage.db import create_once
from steward.storage.models import (
    GONE,
    GONE_VALUES,
    PointsEntry,
    Role,
    Street,
    Volunteer,
)


def client(conn: BaseDBAsyncClient | None) -> BaseDBAsyncClient:
    """The caller's transaction, or the default connection for a read on its own."""
    return conn if conn is not None else connections.get("default")


def day_bounds(period: Period, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The period's first and last instants in UTC, for columns that hold instants."""
    start = utc(datetime.combine(period.start, time(0), tzinfo=tz))
    return start, utc(datetime.combine(period.end, time(0), tzinfo=tz))


async def street_id_named(name: str) -> int | None:
    street = await Street.get_or_none(name=name.strip())
    return int(street.id) if street else None


async def find_holder(
    name_or_phone: str, region: str, street_id: int | None, conn: BaseDBAsyncClient | None = None
) -> Holder:
    """The one serving volunteer with this phone, or with this exact name (in the street)."""
    query = Volunteer.exclude(status__in=GONE).select_related("street", "community", "pair")
    if street_id is not None:
        query = query.filter(street_id=street_id)
    phone = _e164(name_or_phone, region)
    if phone is not None:
        found = await query.filter(phone=phone).using_db(conn)
        if found:
            return _holder(found[0])
    name = " ".join(name_or_phone.split())
    matches = await query.filter(name=name).order_by("id").using_db(conn)
    if not matches:
        raise NoSuchVolunteer(f"nobody on the roster is called or reachable at {name_or_phone!r}")
    if len(matches) > 1:
        raise AmbiguousName(name, tuple(_holder(v) for v in matches))
    return _holder(matches[0])


def _e164(text: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None  # not a number: it is a name
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _holder(vol: Volunteer) -> Holder:
    return Holder(
        report_store.contact(vol),
        vol.street_id,
        vol.street.name,
        vol.community.name,
        vol.pair.code if vol.pair else "",
        vol.status not in GONE,
    )


async def holder_of(volunteer_id: int, conn: BaseDBAsyncClient | None = None) -> Holder:
    vol = (
        await Volunteer.filter(id=volunteer_id)
        .select_related("street", "community", "pair")
        .using_db(conn)
        .get()
    )
    return _holder(vol)


_BALANCE = "SELECT COALESCE(SUM(amount), 0) AS balance FROM points_ledger WHERE volunteer_id = ?"


async def locked_balance(volunteer_id: int, conn: BaseDBAsyncClient) -> int:
    """The balance, with the volunteer's row locked so two redemptions cannot both spend it.

    PostgreSQL takes the row lock for the rest of the transaction; SQLite runs one write
    transaction at a time and tortoise leaves the clause out there.
    """
    # A whole-row query: tortoise drops FOR UPDATE from values_list() queries.
    await Volunteer.filter(id=volunteer_id).select_for_update().using_db(conn).first()
    [row] = await sql.rows(conn, _BALANCE, [volunteer_id])
    return int(row["balance"])


async def append(
    volunteer_id: int, entry: NewEntry, actor: str, now: datetime, conn: BaseDBAsyncClient
) -> int | None:
    """Append a line; None when its dedupe key is in the ledger already."""
    created = await create_once(
        conn,
        lambda db: PointsEntry.create(
            volunteer_id=volunteer_id,
            amount=entry.amount,
            kind=entry.kind,
            local_date=entry.local_date,
            note=entry.note,
            dedupe_key=entry.dedupe_key,
            corrects_id=entry.corrects_id,
            actor=actor[:100],
            created_at=now,
            using_db=db,
        ),
    )
    return int(created.id) if created is not None else None


_LINES = """
    SELECT p.id, p.volunteer_id, p.local_date, p.amount, p.kind, p.note, p.actor, p.corrects_id,
        EXISTS (SELECT 1 FROM points_ledger c WHERE c.corrects_id = p.id) AS corrected
    FROM points_ledger p
"""


async def line(entry_id: int, conn: BaseDBAsyncClient | None = None) -> LedgerLine:
    rows = await sql.rows(client(conn), _LINES + " WHERE p.id = ?", [entry_id])
    if not rows:
        raise NoSuchEntry(f"there is no points entry {entry_id}")
    return _line(rows[0])


async def line_by_key(key: str, conn: BaseDBAsyncClient | None = None) -> LedgerLine | None:
    rows = await sql.rows(client(conn), _LINES + " WHERE p.dedupe_key = ?", [key])
    return _line(rows[0]) if rows else None


async def recent_lines(
    volunteer_id: int, limit: int, conn: BaseDBAsyncClient | None = None
) -> list[LedgerLine]:
    """The volunteer's latest entries, newest first."""
    query = _LINES + " WHERE p.volunteer_id = ? ORDER BY p.id DESC LIMIT ?"
    return [_line(row) for row in await sql.rows(client(conn), query, [volunteer_id, limit])]


def _line(row: Any) -> LedgerLine:
    return LedgerLine(
        id=int(row["id"]),
        volunteer_id=int(row["volunteer_id"]),
        local_date=sql_date(row["local_date"]),
        amount=int(row["amount"]),
        kind=str(row["kind"]),
        note=str(row["note"]),
        actor=str(row["actor"]),
        corrects_id=int(row["corrects_id"]) if row["corrects_id"] is not None else None,
        corrected=bool(row["corrected"]),
    )


def sql_date(value: Any) -> date:
    """A DATE column read by raw SQL: text on SQLite, a date on PostgreSQL."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))


# Points earned in the period: spending points on a prize (and undoing a redemption) never
# costs or wins anyone a place. Verified reports are the volunteer's reports whose fix they
# confirmed on site in the period. Place is shared when points and confirmed hours both tie.
_RANKING = """
    WITH earned AS (
        SELECT p.volunteer_id, SUM(p.amount) AS points
        FROM points_ledger p LEFT JOIN points_ledger o ON o.id = p.corrects_id
        WHERE p.local_date >= ? AND p.local_date < ? AND p.kind <> ?
            AND (o.id IS NULL OR o.kind <> ?)
        GROUP BY p.volunteer_id
    ), done AS (
        SELECT volunteer_id, COUNT(*) AS days FROM attendance_days
        WHERE status = 'done' AND local_date >= ? AND local_date < ?
        GROUP BY volunteer_id
    ), served AS (
        SELECT volunteer_id, SUM(minutes) AS minutes FROM hours_ledger
        WHERE confirmed = ? AND local_date >= ? AND local_date < ?
        GROUP BY volunteer_id
    ), verified AS (
        SELECT r.reporter_id AS volunteer_id, COUNT(DISTINCT r.id) AS reports
        FROM report_events e JOIN reports r ON r.id = e.report_id
        WHERE e.to_status = 'verified' AND e.created_at >= ? AND e.created_at < ?
        GROUP BY r.reporter_id
    ), scored AS (
        SELECT v.id, v.name, v.phone, s.name AS street, c.name AS community,
            COALESCE(earned.points, 0) AS points, COALESCE(done.days, 0) AS done_days,
            COALESCE(verified.reports, 0) AS verified_reports,
            COALESCE(served.minutes, 0) AS minutes
        FROM volunteers v
            JOIN streets s ON s.id = v.street_id
            JOIN communities c ON c.id = v.community_id
            LEFT JOIN earned ON earned.volunteer_id = v.id
            LEFT JOIN done ON done.volunteer_id = v.id
            LEFT JOIN served ON served.volunteer_id = v.id
            LEFT JOIN verified ON verified.volunteer_id = v.id
        WHERE v.status NOT IN (?, ?) AND v.role <> ? {street}
    ), ranked AS (
        SELECT scored.*, RANK() OVER (ORDER BY points DESC, minutes DESC) AS place FROM scored
    )
    SELECT * FROM ranked WHERE place <= ?
"""


async def ranking(
    period: Period,
    tz: ZoneInfo,
    *,
    street_id: int | None = None,
    top: int = 10,
    conn: BaseDBAsyncClient | None = None,
) -> list[Ranked]:
    """The period's ranking of volunteers still serving (office staff left out), best first.

    Everyone tied at the last place shown is shown: a shortlist never drops one of two equals.
    """
    first, last = period.start, period.end
    since, until = day_bounds(period, tz)
    values: list[Any] = [first, last, REDEEM, REDEEM, first, last, True, first, last, since, until]
    values += [*GONE_VALUES, Role.OFFICE.value]
    street = ""
    if street_id is not None:
        street, values = "AND v.street_id = ?", [*values, street_id]
    rows = await sql.rows(client(conn), _RANKING.format(street=street), [*values, top])
    ranked = [_ranked(row) for row in rows]
    return sorted(ranked, key=lambda r: (r.place, r.name, r.volunteer_id))


def _ranked(row: Any) -> Ranked:
    return Ranked(
        place=int(row["place"]),
        volunteer_id=int(row["id"]),
        name=str(row["name"]),
        phone=str(row["phone"]),
        street=str(row["street"]),
        community=str(row["community"]),
        points=int(row["points"]),
        done_days=int(row["done_days"]),
        verified_reports=int(row["verified_reports"]),
        confirmed_minutes=int(row["minutes"]),
    )
