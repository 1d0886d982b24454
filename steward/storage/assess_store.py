"""Facts for the office's monthly records: the assessment (考核) and the service-hours export.

Each loader is a fixed number of statements whatever the number of volunteers or reports: the
database counts and sums, and the rules in `steward.flows.assessment` and
`steward.flows.hours_export` judge what the counts mean.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient

from steward.clock import utc
from steward.flows.assessment import CommunityRef, ReportTimeline, StewardMonth
from steward.flows.hours_export import HoursMonth, ServiceLine
from steward.flows.points import Period
from steward.flows.roster import export_phone
from steward.storage import sql
from steward.storage.models import GONE_VALUES
from steward.storage.points_store import client, day_bounds

# Report events that leave no doubt about a report: the reporter took it back.
_WITHDRAWN = """EXISTS (SELECT 1 FROM report_events w
    WHERE w.report_id = r.id AND w.to_status = 'withdrawn')"""

# Scheduled days are those the day close settled as owed (done, partial or absent); leave
# (excused) and days off are not owed. Removed stewards appear only for months they served in.
_STEWARDS = f"""
    WITH days AS (
        SELECT volunteer_id,
            SUM(CASE WHEN status IN ('done', 'partial', 'absent') THEN 1 ELSE 0 END) AS scheduled,
            SUM(CASE WHEN status = 'done' THEN 1 ELSE 0 END) AS done
        FROM attendance_days WHERE local_date >= ? AND local_date < ?
        GROUP BY volunteer_id
    ), served AS (
        SELECT volunteer_id, SUM(minutes) AS minutes FROM hours_ledger
        WHERE confirmed = ? AND local_date >= ? AND local_date < ?
        GROUP BY volunteer_id
    ), filed AS (
        SELECT r.reporter_id AS volunteer_id, COUNT(*) AS filed,
            SUM(CASE WHEN EXISTS (SELECT 1 FROM report_events a
                        WHERE a.report_id = r.id AND a.to_status = 'acknowledged')
                    AND NOT EXISTS (SELECT 1 FROM report_events j
                        WHERE j.report_id = r.id AND j.to_status = 'rejected')
                THEN 1 ELSE 0 END) AS accepted
        FROM reports r
        WHERE r.created_at >= ? AND r.created_at < ? AND NOT {_WITHDRAWN}
        GROUP BY r.reporter_id
    ), checked AS (
        SELECT actor_id AS volunteer_id, COUNT(*) AS fixes FROM report_events
        WHERE from_status = 'resolved' AND to_status = 'verified'
            AND created_at >= ? AND created_at < ?
        GROUP BY actor_id
    )
    SELECT v.name, s.name AS street, c.name AS community, COALESCE(p.code, '') AS pair_code,
        COALESCE(days.scheduled, 0) AS scheduled, COALESCE(days.done, 0) AS done,
        COALESCE(served.minutes, 0) AS minutes, COALESCE(filed.filed, 0) AS filed,
        COALESCE(filed.accepted, 0) AS accepted, COALESCE(checked.fixes, 0) AS fixes
    FROM volunteers v
        JOIN streets s ON s.id = v.street_id
        JOIN communities c ON c.id = v.community_id
        LEFT JOIN pairs p ON p.id = v.pair_id
        LEFT JOIN days ON days.volunteer_id = v.id
        LEFT JOIN served ON served.volunteer_id = v.id
        LEFT JOIN filed ON filed.volunteer_id = v.id
        LEFT JOIN checked ON checked.volunteer_id = v.id
    WHERE v.role = ? AND v.joined_on < ?
        AND (v.status NOT IN (?, ?) OR days.volunteer_id IS NOT NULL)
        {{street}}
"""


async def steward_months(
    period: Period,
    tz: ZoneInfo,
    *,
    street_id: int | None = None,
    conn: BaseDBAsyncClient | None = None,
) -> list[StewardMonth]:
    """Every steward's month in one statement."""
    since, until = day_bounds(period, tz)
    first, last = period.start, period.end
    values: list[Any] = [first, last, True, first, last, since, until, since, until]
    values += ["steward", last, *GONE_VALUES]
    query, values = _in_street(_STEWARDS, "v", street_id, values)
    return [
        StewardMonth(
            name=str(row["name"]),
            street=str(row["street"]),
            community=str(row["community"]),
            pair_code=str(row["pair_code"]),
            scheduled_days=int(row["scheduled"]),
            done_days=int(row["done"]),
            confirmed_minutes=int(row["minutes"]),
            reports_filed=int(row["filed"]),
            reports_accepted=int(row["accepted"]),
            fixes_verified=int(row["fixes"]),
        )
        for row in await sql.rows(client(conn), query, values)
    ]


def _first(condition: str) -> str:
    return f"""(SELECT MIN(e.created_at) FROM report_events e
        WHERE e.report_id = r.id AND {condition})"""


_TIMELINES = f"""
    SELECT r.community_id, r.urgent, r.created_at,
        {_first("e.from_status = 'new' AND e.to_status = 'acknowledged'")} AS acknowledged_at,
        {_first("e.from_status = 'new'")} AS handled_at,
        {_first("e.to_status = 'resolved'")} AS resolved_at,
        {_first("e.from_status = 'resolved' AND e.to_status = 'verified'")} AS confirmed_at,
        {_first("e.from_status = 'resolved' AND e.to_status = 'acknowledged'")} AS reopened_at
    FROM reports r JOIN communities c ON c.id = r.community_id
    WHERE r.created_at >= ? AND r.created_at < ? AND NOT {_WITHDRAWN} {{street}}
"""


async def report_timelines(
    period: Period,
    tz: ZoneInfo,
    *,
    street_id: int | None = None,
    conn: BaseDBAsyncClient | None = None,
) -> list[ReportTimeline]:
    """Each report received in the period, with when it first reached each step."""
    since, until = day_bounds(period, tz)
    query, values = _in_street(_TIMELINES, "c", street_id, [since, until])
    return [
        ReportTimeline(
            community_id=int(row["community_id"]),
            urgent=bool(row["urgent"]),
            received_at=_instant(row["created_at"]),
            acknowledged_at=_maybe(row["acknowledged_at"]),
            handled_at=_maybe(row["handled_at"]),
            resolved_at=_maybe(row["resolved_at"]),
            confirmed_at=_maybe(row["confirmed_at"]),
            reopened_at=_maybe(row["reopened_at"]),
        )
        for row in await sql.rows(client(conn), query, values)
    ]


_COMMUNITIES = """
    SELECT c.id, c.name, s.name AS street FROM communities c JOIN streets s ON s.id = c.street_id
    WHERE 1 = 1 {street}
"""


async def communities(
    *, street_id: int | None = None, conn: BaseDBAsyncClient | None = None
) -> list[CommunityRef]:
    query, values = _in_street(_COMMUNITIES, "c", street_id, [])
    return [
        CommunityRef(int(row["id"]), str(row["street"]), str(row["name"]))
        for row in await sql.rows(client(conn), query, values)
    ]


# Net confirmed minutes per session first (an undone check-out cancels its own line), then per
# volunteer and zone: one row each, so a volunteer who moved lanes lists both.
_SERVICE = """
    WITH sessions AS (
        SELECT volunteer_id, session_id, MAX(zone_name) AS zone, SUM(minutes) AS minutes
        FROM hours_ledger WHERE confirmed = ? AND local_date >= ? AND local_date < ?
        GROUP BY volunteer_id, session_id
    )
    SELECT v.id, v.name, COALESCE(v.volunteer_no, '') AS volunteer_no, v.phone,
        s.name AS street, c.name AS community, x.zone,
        SUM(x.minutes) AS minutes,
        SUM(CASE WHEN x.minutes > 0 AND x.session_id IS NOT NULL THEN 1 ELSE 0 END) AS sessions
    FROM sessions x
        JOIN volunteers v ON v.id = x.volunteer_id
        JOIN streets s ON s.id = v.street_id
        JOIN communities c ON c.id = v.community_id
    WHERE 1 = 1 {street}
    GROUP BY v.id, v.name, v.volunteer_no, v.phone, s.name, c.name, x.zone
"""
# Sessions closed automatically whose hours no lead has confirmed: left out, but counted.
_UNCONFIRMED = """
    SELECT COUNT(DISTINCT h.session_id) AS sessions
    FROM hours_ledger h JOIN volunteers v ON v.id = h.volunteer_id
    WHERE h.confirmed = ? AND h.local_date >= ? AND h.local_date < ? AND h.minutes > 0
        AND NOT EXISTS (SELECT 1 FROM hours_ledger k
            WHERE k.session_id = h.session_id AND k.confirmed = ?)
        {street}
"""


async def hours_month(
    period: Period, *, street_id: int | None = None, conn: BaseDBAsyncClient | None = None
) -> HoursMonth:
    """The month's confirmed service per volunteer and zone, and the sessions left out."""
    db = client(conn)
    first, last = period.start, period.end
    query, values = _in_street(_SERVICE, "v", street_id, [True, first, last])
    lines = tuple(
        ServiceLine(
            volunteer_id=int(row["id"]),
            name=str(row["name"]),
            volunteer_no=str(row["volunteer_no"]),
            phone=export_phone(str(row["phone"])),
            street=str(row["street"]),
            community=str(row["community"]),
            zone=str(row["zone"] or ""),
            minutes=int(row["minutes"]),
            sessions=int(row["sessions"]),
        )
        for row in await sql.rows(db, query, values)
    )
    query, values = _in_street(_UNCONFIRMED, "v", street_id, [False, first, last, True])
    [left_out] = await sql.rows(db, query, values)
    return HoursMonth(lines, int(left_out["sessions"]))


def _in_street(
    query: str, alias: str, street_id: int | None, values: list[Any]
) -> tuple[str, list[Any]]:
    # Two statements rather than "? IS NULL OR ...": PostgreSQL cannot type a bare NULL.
    if street_id is None:
        return query.format(street=""), values
    return query.format(street=f"AND {alias}.street_id = ?"), [*values, street_id]


def _instant(value: Any) -> datetime:
    """A timestamp read by raw SQL: text on SQLite, a datetime on PostgreSQL; always UTC."""
    return utc(value if isinstance(value, datetime) else datetime.fromisoformat(str(value)))


def _maybe(value: Any) -> datetime | None:
    return None if value is None else _instant(value)
