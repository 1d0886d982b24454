"""Storage shells for scheduled jobs: load the state a job decides from, store what it decided."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from steward.clock import utc
from steward.flows import attendance
from steward.flows.jobs import (
    DayClosePlan,
    JobPlan,
    OpenReport,
    OpenSessionItem,
    PairMember,
    PairToday,
    SessionPlan,
    Settled,
    StewardDay,
)
from steward.flows.state import Contact, Notice, SessionState
from steward.settings import parse_hhmm
from steward.storage import report_store, sql
from steward.storage.db import savepoint
from steward.storage.ledgers import add_points_many
from steward.storage.models import (
    GONE,
    GONE_VALUES,
    Community,
    PatrolSession,
    Report,
    ReportEvent,
    Role,
    Volunteer,
    VolunteerStatus,
)
from steward.storage.outbox_store import enqueue, enqueue_many, routed
from steward.storage.unit import Topic, UnitOfWork

# Every loader here reads in a fixed number of statements, whatever the size of the city: the
# rows for everyone at once, joined or grouped in Python, never a query per pair or person.

HISTORY_DAYS = 60  # settled days the ladder looks back over (since the last reset)


def _db() -> BaseDBAsyncClient:
    conn: BaseDBAsyncClient = connections.get("default")
    return conn


def _contact(row: Sequence[Any]) -> Contact:
    """A Contact from a row starting id, name, phone, language, telegram_chat_id (by position:
    by name is a linear search on SQLite's rows, and these loaders read tens of thousands)."""
    vol_id, name, phone, language, chat = row[:5]
    return Contact(vol_id, name, phone, language, chat)


def _scheduled(patrol_days: str, day: date, cache: dict[str, bool]) -> bool:
    if patrol_days not in cache:
        cache[patrol_days] = attendance.scheduled_on(patrol_days, day)
    return cache[patrol_days]


def _on_leave(start: Any, until: Any, day: date) -> bool:
    if start is None or until is None:
        return False
    return attendance.on_leave(sql.as_date(start), sql.as_date(until), day)


@dataclass(frozen=True)
class Staff:
    """Leads by community and office staff by street (still serving, by id), loaded once."""

    leads: dict[int, tuple[Contact, ...]]
    office: dict[int, tuple[Contact, ...]]

    def leads_of(self, community_id: int) -> tuple[Contact, ...]:
        return self.leads.get(community_id, ())

    def office_of(self, street_id: int) -> tuple[Contact, ...]:
        return self.office.get(street_id, ())


_STAFF = """
    SELECT id, name, phone, language, telegram_chat_id, role, community_id, street_id
    FROM volunteers WHERE role IN (?, ?) AND status NOT IN (?, ?) ORDER BY id
"""


async def load_staff(conn: BaseDBAsyncClient | None = None) -> Staff:
    """Every lead and office clerk in one statement (what `report_store.people` gives, for all)."""
    leads: dict[int, list[Contact]] = defaultdict(list)
    office: dict[int, list[Contact]] = defaultdict(list)
    for row in await sql.rows(
        conn or _db(), _STAFF, [Role.LEAD.value, Role.OFFICE.value, *GONE_VALUES]
    ):
        role, community_id, street_id = row[5:8]
        if role == Role.LEAD.value:
            leads[community_id].append(_contact(row))
        else:
            office[street_id].append(_contact(row))
    return Staff({k: tuple(v) for k, v in leads.items()}, {k: tuple(v) for k, v in office.items()})


async def open_reports() -> list[OpenReport]:
    """Reports waiting for a lead (new) or for the reporter's check (resolved)."""
    rows = await Report.filter(status__in=["new", "resolved"]).order_by("number")
    if not rows:
        return []
    communities = {
        int(c.id): c for c in await Community.filter(id__in={r.community_id for r in rows})
    }
    resolved_ids = [int(r.id) for r in rows if r.status == "resolved"]
    resolved_at: dict[int, datetime] = {}
    if resolved_ids:
        events = await ReportEvent.filter(
            report_id__in=resolved_ids, to_status="resolved"
        ).order_by("created_at", "id")
        for event in events:  # the latest wins
            resolved_at[int(event.report_id)] = event.created_at  # type: ignore[attr-defined]
    staff = await load_staff()
    result = []
    for row in rows:
        community = communities[row.community_id]
        when = None
        if row.status == "resolved":
            when = resolved_at.get(int(row.id), row.updated_at)
        result.append(
            OpenReport(
                report=report_store.report_view(row, community.street_id),
                community_name=community.name,
                leads=staff.leads_of(int(community.id)),
                office=staff.office_of(community.street_id),
                resolved_at=when,
            )
        )
    return result


async def pending_notices(notices: tuple[Notice, ...]) -> list[Notice]:
    """Messages not queued before (what a run would really send), in two statements."""
    if not notices:
        return []
    conn = _db()
    keys = [n.dedupe_key for n in notices if n.dedupe_key]
    phones = sorted({n.to.phone for n in notices})
    table = sql.json_table(conn, [("v", "text")])
    queued = {
        str(row["v"])
        for row in await sql.rows(
            conn,
            f"SELECT r.v FROM {table} WHERE EXISTS "
            "(SELECT 1 FROM outbox o WHERE o.dedupe_key = r.v)",
            [sql.as_json([{"v": k} for k in keys])],
        )
    }
    stopped = {
        str(row["v"])
        for row in await sql.rows(
            conn,
            f"SELECT r.v FROM {table} WHERE EXISTS "
            "(SELECT 1 FROM opt_outs o WHERE o.address = r.v)",
            [sql.as_json([{"v": p} for p in phones])],
        )
    }
    return [
        n
        for n in notices
        if not (n.dedupe_key and n.dedupe_key in queued) and n.to.phone not in stopped
    ]


async def apply_plan(
    plan: JobPlan, now: datetime, not_before: datetime, units: UnitOfWork
) -> list[Notice]:
    """Store the plan in one transaction; return the messages actually queued."""
    queued = []
    async with units.transaction(Topic.OUTBOX) as conn:
        for move in plan.moves:
            try:
                async with savepoint(conn) as inner:
                    await report_store.move_report(move, None, "job", now, inner)
            except report_store.ReportConflict:
                continue  # someone acted on it meanwhile: nothing to close
        queued = await _enqueue_all(plan.notices, now, not_before, conn)
    return queued


async def _enqueue_all(
    notices: tuple[Notice, ...], now: datetime, not_before: datetime, conn: BaseDBAsyncClient
) -> list[Notice]:
    """Queue notices in one statement (those with a dedupe key, as every job's are); return
    the ones written, in order."""
    # Each to its person, or once to the group that takes leads' or the office's alerts now.
    messages = await routed(list(notices), conn, not_before=not_before)
    keyed = [(notice, msg) for notice, msg in messages if msg.dedupe_key]
    ids = await enqueue_many([msg for _, msg in keyed], now, conn)
    written = [notice for (notice, _), outbox_id in zip(keyed, ids, strict=True) if outbox_id]
    for notice, msg in messages:  # no job's notice lacks a key, but one by one if it does
        if not msg.dedupe_key and await enqueue(msg, now, conn) is not None:
            written.append(notice)
    return written


async def open_sessions() -> list[OpenSessionItem]:
    """Patrol sessions still open, with the volunteer's leads."""
    rows = (
        await PatrolSession.filter(ended_at__isnull=True)
        .exclude(volunteer__status__in=GONE)
        .order_by("id")
    )
    if not rows:
        return []
    people = {int(v.id): v for v in await Volunteer.filter(id__in={r.volunteer_id for r in rows})}
    staff = await load_staff()
    items = []
    for row in rows:
        vol = people[row.volunteer_id]
        session = SessionState(
            int(row.id), row.local_date, row.started_at, None, None, None, row.confirmed
        )
        leads = staff.leads_of(vol.community_id)
        items.append(OpenSessionItem(report_store.contact(vol), session, leads))
    return items


_CLOSE_COLUMNS = (
    ("id", "bigint"),
    ("ended_at", "timestamptz"),
    ("minutes", "integer"),
    ("closed_by", "text"),
    ("confirmed", "boolean"),
)

# The hours of the sessions just closed, each with its volunteer's zone at the time.
_CLOSED_HOURS = """
    INSERT INTO hours_ledger (volunteer_id, session_id, local_date, minutes, zone_name,
                              confirmed, note, created_at)
    SELECT s.volunteer_id, s.id, s.local_date, s.minutes, COALESCE(z.name, ''), false,
           'closed automatically', ?
    FROM patrol_sessions s
    JOIN volunteers v ON v.id = s.volunteer_id
    LEFT JOIN pairs p ON p.id = v.pair_id
    LEFT JOIN zones z ON z.id = p.zone_id
    WHERE s.id IN (SELECT r.id FROM {ids})
    ORDER BY s.id
"""


async def apply_session_plan(
    plan: SessionPlan, now: datetime, not_before: datetime, units: UnitOfWork
) -> list[Notice]:
    """Close overdue sessions (once: one still open) and queue the messages, in one
    transaction of three statements."""
    async with units.transaction(Topic.OUTBOX) as conn:
        if plan.closes:
            rows = [
                {
                    "id": c.session_id,
                    "ended_at": utc(c.ended_at),
                    "minutes": c.minutes,
                    "closed_by": c.closed_by,
                    "confirmed": c.confirmed,
                }
                for c in plan.closes
            ]
            closed = await sql.returning(
                conn,
                f"""
                UPDATE patrol_sessions SET ended_at = r.ended_at, minutes = r.minutes,
                    closed_by = r.closed_by, confirmed = r.confirmed
                FROM {sql.json_table(conn, _CLOSE_COLUMNS)}
                WHERE patrol_sessions.id = r.id AND patrol_sessions.ended_at IS NULL
                RETURNING patrol_sessions.id
                """,
                [sql.as_json(rows)],
            )
            if closed:
                ids = sql.json_table(conn, [("id", "bigint")])
                await sql.execute(
                    conn,
                    _CLOSED_HOURS.format(ids=ids),
                    [now, sql.as_json([{"id": int(row["id"])} for row in closed])],
                )
        queued = await _enqueue_all(plan.notices, now, not_before, conn)
    return queued


# Every steward in a pair with the pair, its zone, and today's facts, in one statement (ordered as
# the pairs and then their members). closed_by is NULL while a session is open: NOT (closed_by =
# 'undone') would drop it.
_MEMBERS_TODAY = """
    SELECT v.id, v.name, v.phone, v.language, v.telegram_chat_id, v.on_leave_from,
           v.on_leave_until, p.id AS pair_id, p.code, p.community_id, p.patrol_start,
           p.patrol_days, z.name AS zone,
           EXISTS (SELECT 1 FROM patrol_sessions s
                   WHERE s.volunteer_id = v.id AND s.local_date = ?
                     AND (s.closed_by IS NULL OR s.closed_by <> 'undone')) AS checked_in,
           EXISTS (SELECT 1 FROM opt_outs o WHERE o.address = v.phone) AS opted_out
    FROM volunteers v
    JOIN pairs p ON p.id = v.pair_id
    LEFT JOIN zones z ON z.id = p.zone_id
    WHERE v.role = ? AND v.status NOT IN (?, ?)
    ORDER BY p.id, v.id
"""


async def pairs_today(today: date, tz: ZoneInfo) -> list[PairToday]:
    """Every pair with its members' state for the local day `today` (two statements)."""
    conn = _db()
    rows = await sql.rows(conn, _MEMBERS_TODAY, [today, Role.STEWARD.value, *GONE_VALUES])
    staff = await load_staff(conn)
    by_pair: dict[int, list[Any]] = {}
    for row in rows:
        by_pair.setdefault(row[7], []).append(row)
    starts: dict[str, datetime] = {}
    scheduled: dict[str, bool] = {}
    result = []
    for pair_id, members in by_pair.items():
        _, code, community_id, clock, patrol_days, zone = members[0][7:13]
        if clock not in starts:
            starts[clock] = utc(datetime.combine(today, parse_hhmm(clock), tzinfo=tz))
        result.append(
            PairToday(
                pair_id=pair_id,
                code=code,
                zone=zone or "",
                start=starts[clock],
                scheduled=_scheduled(patrol_days, today, scheduled),
                members=tuple(
                    PairMember(
                        contact=_contact(m),
                        checked_in=bool(m[13]),
                        on_leave=_on_leave(m[5], m[6], today),
                        opted_out=bool(m[14]),
                    )
                    for m in members
                ),
                leads=staff.leads_of(community_id),
            )
        )
    return result


async def queue_notices(
    notices: tuple[Notice, ...], now: datetime, not_before: datetime, units: UnitOfWork
) -> list[Notice]:
    """Queue a job's messages in one transaction; return those that were new."""
    if not notices:
        return []
    async with units.transaction(Topic.OUTBOX) as conn:
        queued = await _enqueue_all(notices, now, not_before, conn)
    return queued


# Stewards serving on a day (joined by then) whose day is not settled yet. Nobody is settled
# absent for a day before they joined.
_UNSETTLED = """
    v.role = ? AND v.status NOT IN (?, ?) AND v.pair_id IS NOT NULL AND v.joined_on <= ?
    AND NOT EXISTS (SELECT 1 FROM attendance_days a
                    WHERE a.volunteer_id = v.id AND a.local_date = ?)
"""


# Everything settling a day needs, one row per steward: the pair, the community, the day's
# confirmed minutes, the day's points already paid, and the last HISTORY_DAYS settled days before
# it (after any ladder reset) as one text of "<date><status>" items. Each item
# carries its date so the order never rests on the aggregate's (SQLite's group_concat promises
# none); PostgreSQL calls group_concat string_agg.
def _steward_days_sql(conn: BaseDBAsyncClient) -> str:
    postgres = conn.capabilities.dialect == "postgres"
    concat = "string_agg" if postgres else "group_concat"
    # SQLite keeps a date as its ISO text; PostgreSQL's own text for one follows DateStyle.
    day_text = "to_char(b.local_date, 'YYYY-MM-DD')" if postgres else "b.local_date"
    return f"""
    SELECT v.id, v.name, v.phone, v.language, v.telegram_chat_id, v.status, v.on_leave_from,
           v.on_leave_until, v.community_id, v.street_id, p.code AS pair_code, p.patrol_days,
           c.name AS community,
           (SELECT COALESCE(SUM(s.minutes), 0) FROM patrol_sessions s
             WHERE s.volunteer_id = v.id AND s.local_date = ? AND s.ended_at IS NOT NULL
               AND s.confirmed AND s.closed_by IN ('volunteer', 'auto')) AS minutes,
           (SELECT COUNT(*) FROM points_ledger e
             WHERE e.volunteer_id = v.id AND e.local_date = ? AND e.kind = 'patrol_day')
             AS awards,
           (SELECT COALESCE(SUM(e.amount), 0) FROM points_ledger e
             WHERE e.volunteer_id = v.id AND e.local_date = ? AND e.kind = 'patrol_day')
             AS awarded,
           (SELECT {concat}(h.item, ',') FROM (
                SELECT {day_text} || b.status AS item FROM attendance_days b
                WHERE b.volunteer_id = v.id AND b.local_date < ?
                  AND (v.ladder_reset_on IS NULL OR b.local_date > v.ladder_reset_on)
                ORDER BY b.local_date DESC LIMIT {HISTORY_DAYS}) h) AS history
    FROM volunteers v
    JOIN pairs p ON p.id = v.pair_id
    JOIN communities c ON c.id = v.community_id
    WHERE {_UNSETTLED}
    ORDER BY v.id
"""


def _history(text: str | None, seen: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """'<date><status>,...' (any order) -> the statuses, oldest first (many stewards share one
    history: each text is parsed once)."""
    if not text:
        return ()
    if text not in seen:
        seen[text] = tuple(item[10:] for item in sorted(text.split(",")))
    return seen[text]


def _unsettled_args(day: date) -> list[Any]:
    return [Role.STEWARD.value, *GONE_VALUES, day, day]


async def days_to_settle(days: Sequence[date]) -> list[date]:
    """Which of `days` still have a steward to settle (one statement), in order."""
    if not days:
        return []
    conn = _db()
    # The days are materialised first: SQLite would otherwise re-read the JSON for every probe.
    statement = f"""
        WITH d AS MATERIALIZED (SELECT r.day, r.ord FROM {sql.json_table(conn, [("day", "date")])})
        SELECT d.day FROM d
        WHERE EXISTS (SELECT 1 FROM volunteers v
            WHERE {
        _UNSETTLED.replace("v.joined_on <= ?", "v.joined_on <= d.day").replace(
            "a.local_date = ?", "a.local_date = d.day"
        )
    })
        ORDER BY d.ord
    """
    found = await sql.rows(
        conn,
        statement,
        [sql.as_json([{"day": d.isoformat()} for d in days]), Role.STEWARD.value, *GONE_VALUES],
    )
    return [d for d in (sql.as_date(row["day"]) for row in found) if d is not None]


async def steward_days(day: date) -> list[StewardDay]:
    """Stewards serving on `day` (joined by then) whose day is not settled yet, with what
    settling it needs, in two statements. Nobody is settled absent for a day before they
    joined."""
    conn = _db()
    rows = await sql.rows(
        conn, _steward_days_sql(conn), [day, day, day, day, *_unsettled_args(day)]
    )
    if not rows:
        return []
    staff = await load_staff(conn)
    scheduled: dict[str, bool] = {}
    histories: dict[str, tuple[str, ...]] = {}
    items = []
    for row in rows:
        (status, leave_from, leave_until, community_id, street_id, pair_code, patrol_days,
         community, minutes, awards, awarded, history) = row[5:]  # fmt: skip
        items.append(
            StewardDay(
                contact=_contact(row),
                status=status,
                pair_code=pair_code,
                community=community,
                minutes=int(minutes or 0),
                scheduled=_scheduled(patrol_days, day, scheduled),
                excused=_on_leave(leave_from, leave_until, day),
                history=_history(history, histories),
                day_award_given=int(awarded or 0) > 0,
                day_awards_so_far=int(awards or 0),
                leads=staff.leads_of(community_id),
                office=staff.office_of(street_id),
            )
        )
    return items


_SETTLE_COLUMNS = (("volunteer_id", "integer"), ("status", "text"), ("minutes", "integer"))


async def _settle(
    rows: Iterable[Settled], day: date, now: datetime, conn: BaseDBAsyncClient
) -> None:
    """Write the settled days in one statement; the unique (volunteer, day) key decides
    between two runs at once (the other run's rows win, ours step aside)."""
    items = [
        {"volunteer_id": r.volunteer_id, "status": r.status, "minutes": r.minutes} for r in rows
    ]
    if not items:
        return
    await sql.execute(
        conn,
        f"""
        INSERT INTO attendance_days (volunteer_id, local_date, status, minutes, settled_at)
        SELECT r.volunteer_id, ?, r.status, r.minutes, ?
        FROM {sql.json_table(conn, _SETTLE_COLUMNS)}
        WHERE true
        ORDER BY r.ord
        ON CONFLICT (volunteer_id, local_date) DO NOTHING
        """,
        [day, now, sql.as_json(items)],
    )


async def apply_day_close(
    plan: DayClosePlan, now: datetime, not_before: datetime, units: UnitOfWork
) -> list[Notice]:
    """Store a settled day in one transaction; a concurrent run's rows win and ours step aside."""
    if not (plan.settled or plan.awards or plan.flagged or plan.notices):
        return []
    async with units.transaction(Topic.OUTBOX) as conn:
        await _settle(plan.settled, plan.day, now, conn)
        await add_points_many(plan.awards, now, conn)
        if plan.flagged:
            await (
                Volunteer.filter(id__in=list(plan.flagged), status__in=["active", "on_leave"])
                .using_db(conn)
                .update(status=VolunteerStatus.FLAGGED)
            )
        queued = await _enqueue_all(plan.notices, now, not_before, conn)
    return queued
