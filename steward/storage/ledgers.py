"""The two append-only ledgers: service hours (the record) and points (the rewards).

A correction is never an edit: it is a new line (negative minutes or points) beside the one it
cancels. Balances and ranks are sums computed by the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from steward.flows.state import AwardPoints, PointsSummary
from steward.storage import report_store, sql
from steward.storage.db import create_once
from steward.storage.models import GONE_VALUES, HoursEntry, PointsEntry


async def add_points(
    volunteer_id: int, award: AwardPoints, now: datetime, conn: BaseDBAsyncClient
) -> bool:
    """Append a points entry once per dedupe key; False when it was already there."""
    if await PointsEntry.filter(dedupe_key=award.dedupe_key).using_db(conn).exists():
        return False
    report_id = None
    if award.report_number is not None:
        report_id = await report_store.report_id_of(award.report_number, conn)
    created = await create_once(
        conn,
        lambda db: PointsEntry.create(
            volunteer_id=volunteer_id,
            report_id=report_id,
            amount=award.amount,
            kind=award.kind,
            local_date=award.local_date,
            note=award.note,
            dedupe_key=award.dedupe_key,
            created_at=now,
            using_db=db,
        ),
    )
    return created is not None  # None: a concurrent run wrote the same key first


_POINTS_COLUMNS = (
    ("volunteer_id", "integer"),
    ("amount", "integer"),
    ("kind", "text"),
    ("local_date", "date"),
    ("note", "text"),
    ("dedupe_key", "text"),
)


async def add_points_many(
    awards: Sequence[AwardPoints], now: datetime, conn: BaseDBAsyncClient
) -> None:
    """`add_points` for many awards (each naming its volunteer) in one statement: a dedupe key
    already in the ledger, or written meanwhile by a concurrent run, is left out."""
    batch = [a for a in awards if a.report_number is None]
    for award in awards:
        if award.report_number is not None:  # needs its report's id: one at a time
            assert award.volunteer_id is not None
            await add_points(award.volunteer_id, award, now, conn)
    if not batch:
        return
    rows = []
    for award in batch:
        assert award.volunteer_id is not None
        rows.append(
            {
                "volunteer_id": award.volunteer_id,
                "amount": award.amount,
                "kind": award.kind,
                "local_date": award.local_date.isoformat(),
                "note": award.note,
                "dedupe_key": award.dedupe_key,
            }
        )
    await sql.execute(
        conn,
        f"""
        INSERT INTO points_ledger (volunteer_id, amount, kind, local_date, note, dedupe_key,
                                   actor, created_at)
        SELECT r.volunteer_id, r.amount, r.kind, r.local_date, r.note, r.dedupe_key, '', ?
        FROM {sql.json_table(conn, _POINTS_COLUMNS)}
        WHERE true
        ORDER BY r.ord
        ON CONFLICT (dedupe_key) DO NOTHING
        """,
        [now, sql.as_json(rows)],
    )


async def append_hours(
    volunteer_id: int,
    session_id: int,
    day: date,
    minutes: int,
    *,
    zone_name: str,
    confirmed: bool,
    note: str,
    now: datetime,
    conn: BaseDBAsyncClient,
) -> None:
    """Add a line to the service-hours ledger (negative minutes reverse an earlier line)."""
    await HoursEntry.create(
        volunteer_id=volunteer_id,
        session_id=session_id,
        local_date=day,
        minutes=minutes,
        zone_name=zone_name,
        confirmed=confirmed,
        note=note,
        created_at=now,
        using_db=conn,
    )


# Everyone still serving in the street, with their balance (zero without entries).
_STREET_TOTALS = """
    SELECT v.id AS volunteer_id, COALESCE(SUM(p.amount), 0) AS total
    FROM volunteers v LEFT JOIN points_ledger p ON p.volunteer_id = v.id
    WHERE v.street_id = ? AND v.status NOT IN (?, ?)
    GROUP BY v.id
"""
_SUMMARY = f"""
    SELECT
        (SELECT COALESCE(SUM(amount), 0) FROM points_ledger WHERE volunteer_id = ?) AS balance,
        (SELECT COALESCE(SUM(amount), 0) FROM points_ledger
            WHERE volunteer_id = ? AND local_date >= ?) AS month,
        (SELECT COUNT(*) FROM ({_STREET_TOTALS}) t
            WHERE t.total > (SELECT COALESCE(SUM(amount), 0) FROM points_ledger
                WHERE volunteer_id = ?)) AS above,
        (SELECT COUNT(*) FROM volunteers WHERE street_id = ? AND status NOT IN (?, ?)) AS ranked
"""


async def points_summary(
    volunteer_id: int, street_id: int, today: date, conn: BaseDBAsyncClient
) -> PointsSummary:
    """Balance, this month's gain and rank among the street's volunteers, in one statement."""
    [row] = await sql.rows(
        conn,
        _SUMMARY,
        [
            volunteer_id,
            volunteer_id,
            today.replace(day=1),
            street_id,
            *GONE_VALUES,
            volunteer_id,
            street_id,
            *GONE_VALUES,
        ],
    )
    return PointsSummary(
        int(row["balance"]), int(row["month"]), int(row["above"]) + 1, max(int(row["ranked"]), 1)
    )
