"""Fast seeding for the job and digest figures: a city of pairs, a street with a year of history.

Rows are plain dicts written with one `executemany` per chunk through tortoise's connection.
Column names, defaults and value conversions come from the tortoise models themselves (each
field's `to_db_value`), so what lands in the table is what the ORM would have written; fields a
row leaves out get the model's default (`auto_now` ones get the seeding time). Primary keys are
given explicitly, so foreign keys are known without reading anything back.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

CHUNK = 50_000
JOINED_ON = date(2025, 1, 1)
PATROL_START = "08:00"


async def insert(model: Any, rows: Sequence[dict[str, Any]]) -> int:
    """INSERT every row (all rows give the same fields); return how many."""
    if not rows:
        return 0
    from tortoise import connections

    meta = model._meta
    given = list(rows[0])
    now = datetime.now(UTC)
    columns: list[tuple[str, Any, Any]] = []  # (field name, field, filler)
    missing = object()
    for name in meta.fields_db_projection:
        field = meta.fields_map[name]
        if name in given:
            columns.append((name, field, missing))
        elif field.pk and getattr(field, "generated", False):
            continue
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            columns.append((name, field, now))
        elif field.default is not None:
            default = field.default() if callable(field.default) else field.default
            columns.append((name, field, default))
        elif field.null:
            columns.append((name, field, None))
        else:
            raise ValueError(f"{model.__name__}.{name} is required and the seed gives no value")
    unknown = set(given) - set(meta.fields_db_projection)
    if unknown:
        raise ValueError(f"{model.__name__} has no column for {sorted(unknown)}")
    names = ", ".join(f'"{meta.fields_db_projection[name]}"' for name, _, _ in columns)
    marks = ", ".join("?" for _ in columns)
    sql = f'INSERT INTO "{meta.db_table}" ({names}) VALUES ({marks})'
    client = connections.get("default")
    for start in range(0, len(rows), CHUNK):
        values = [
            [
                field.to_db_value(row[name] if filler is missing else filler, model)
                for name, field, filler in columns
            ]
            for row in rows[start : start + CHUNK]
        ]
        await client.execute_many(sql, values)
    return len(rows)


def utc_at(day: date, clock: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)


# ---- a city for the jobs ------------------------------------------------------------------------

STREETS = 10
COMMUNITIES_PER_STREET = 30


async def seed_city(stewards: int, day: date, tz: ZoneInfo) -> dict[str, int]:
    """`stewards` stewards in pairs over 10 streets x 30 communities (the same places at every
    size: only the number of pairs per community grows), one lead per community, one office
    clerk per street, and the state of `day` (a Monday) and the six days before it:

    - pair p % 5 == 0 has not set out; p % 5 == 1: one member patrolled 60 minutes; the others
      both patrolled 125 minutes (checked in 08:05) and were paid the day's points;
    - the six days before are settled (done), except a few pairs climbing the absence ladder
      (p % 50 == 0: absent yesterday, so today makes 2; == 5: 3 days, == 10: 5 days);
    - 1 % of stewards are on leave, 0.5 % texted STOP.
    """
    from steward.storage import models as m

    communities = STREETS * COMMUNITIES_PER_STREET
    pairs = stewards // 2
    created = datetime(2025, 1, 1, tzinfo=UTC)
    await insert(m.Street, [{"id": s, "name": f"街道{s}"} for s in range(1, STREETS + 1)])
    await insert(
        m.Community,
        [
            {"id": c, "street_id": (c - 1) // COMMUNITIES_PER_STREET + 1, "name": f"社区{c}"}
            for c in range(1, communities + 1)
        ],
    )

    def community_of(p: int) -> int:
        return (p - 1) % communities + 1

    await insert(
        m.Zone,
        [{"id": p, "community_id": community_of(p), "name": f"巷{p}"} for p in range(1, pairs + 1)],
    )
    await insert(
        m.Pair,
        [
            {
                "id": p,
                "community_id": community_of(p),
                "code": f"P{p}",
                "zone_id": p,
                "patrol_start": PATROL_START,
                "patrol_days": "mon,tue,wed,thu,fri,sat,sun",
            }
            for p in range(1, pairs + 1)
        ],
    )
    people = []
    for v in range(1, 2 * pairs + 1):
        p = (v + 1) // 2
        c = community_of(p)
        on_leave = v % 100 == 7
        people.append(
            {
                "id": v,
                "name": f"管家{v}",
                "phone": f"+86139{v:08d}",
                "role": m.Role.STEWARD,
                "language": "en" if v % 10 == 9 else "zh",
                "status": m.VolunteerStatus.ON_LEAVE if on_leave else m.VolunteerStatus.ACTIVE,
                "on_leave_from": day - timedelta(days=1) if on_leave else None,
                "on_leave_until": day + timedelta(days=2) if on_leave else None,
                "street_id": (c - 1) // COMMUNITIES_PER_STREET + 1,
                "community_id": c,
                "pair_id": p,
                "joined_on": JOINED_ON,
            }
        )
    first_lead = 2 * pairs + 1
    for c in range(1, communities + 1):
        people.append(_staff(first_lead + c - 1, f"片长{c}", f"+86137{c:08d}", m.Role.LEAD, c))
    first_office = first_lead + communities
    for s in range(1, STREETS + 1):
        c = (s - 1) * COMMUNITIES_PER_STREET + 1
        people.append(_staff(first_office + s - 1, f"主任{s}", f"+86136{s:08d}", m.Role.OFFICE, c))
    await insert(m.Volunteer, people)
    await insert(
        m.OptOut,
        [
            {"address": f"+86139{v:08d}", "created_at": created}
            for v in range(1, 2 * pairs + 1)
            if v % 200 == 3
        ],
    )

    sessions: list[dict[str, Any]] = []
    points: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    start = utc_at(day, time(8, 5), tz)
    for v in range(1, 2 * pairs + 1):
        p = (v + 1) // 2
        kind = p % 5
        if v % 100 == 7 or kind == 0 or (kind == 1 and v % 2 == 0):
            pass  # on leave, or did not set out
        else:
            minutes = 60 if kind == 1 else 125
            sessions.append(
                {
                    "id": len(sessions) + 1,
                    "volunteer_id": v,
                    "pair_id": p,
                    "local_date": day,
                    "started_at": start,
                    "ended_at": start + timedelta(minutes=minutes),
                    "minutes": minutes,
                    "closed_by": "volunteer",
                    "confirmed": True,
                }
            )
            if minutes >= 120:
                points.append(
                    {
                        "volunteer_id": v,
                        "amount": 10,
                        "kind": "patrol_day",
                        "local_date": day,
                        "note": "",
                        "dedupe_key": f"patrol_day:{v}:{day.isoformat()}:0",
                        "created_at": start + timedelta(minutes=minutes),
                    }
                )
        absent_before = {0: 1, 5: 3, 10: 5}.get(p % 50, 0)
        for back in range(1, 7):
            past = day - timedelta(days=back)
            status = "absent" if back <= absent_before else "done"
            history.append(
                {
                    "volunteer_id": v,
                    "local_date": past,
                    "status": status,
                    "minutes": 0 if status == "absent" else 125,
                    "settled_at": utc_at(past, time(22, 0), tz),
                }
            )
    await insert(m.PatrolSession, sessions)
    await insert(m.PointsEntry, points)
    await insert(m.AttendanceDay, history)
    return {
        "volunteers": len(people),
        "pairs": pairs,
        "sessions": len(sessions),
        "attendance_days": len(history),
    }


def _staff(vid: int, name: str, phone: str, role: Any, community: int) -> dict[str, Any]:
    from steward.storage import models as m

    return {
        "id": vid,
        "name": name,
        "phone": phone,
        "role": role,
        "language": "zh",
        "status": m.VolunteerStatus.ACTIVE,
        "on_leave_from": None,
        "on_leave_until": None,
        "street_id": (community - 1) // COMMUNITIES_PER_STREET + 1,
        "community_id": community,
        "pair_id": None,
        "joined_on": JOINED_ON,
    }


# ---- a street with a year of history, for the digest ------------------------------------------

DIGEST_STREET = "鼓楼街道"


async def seed_street_year(stewards: int, day: date, tz: ZoneInfo) -> dict[str, int]:
    """One street: `stewards` stewards in pairs over 6 communities, a lead per community, two
    office clerks, and the 365 days up to `day`: on 85 % of days each steward patrols 90-150
    minutes (done days paid 10 points); about five reports a day (2 points each), the older
    ones closed or rejected, the last fortnight's still moving; each report with its events."""
    from steward.storage import models as m

    rng = random.Random(20261123)
    communities = 6
    pairs = stewards // 2
    await insert(m.Street, [{"id": 1, "name": DIGEST_STREET}])
    await insert(m.Community, [{"id": c, "street_id": 1, "name": f"社区{c}"} for c in range(1, 7)])
    await insert(
        m.Zone,
        [
            {"id": p, "community_id": (p - 1) % communities + 1, "name": f"巷{p}"}
            for p in range(1, pairs + 1)
        ],
    )
    await insert(
        m.Pair,
        [
            {
                "id": p,
                "community_id": (p - 1) % communities + 1,
                "code": f"P{p}",
                "zone_id": p,
                "patrol_start": PATROL_START,
                "patrol_days": "mon,tue,wed,thu,fri,sat,sun",
            }
            for p in range(1, pairs + 1)
        ],
    )
    people = []
    for v in range(1, 2 * pairs + 1):
        p = (v + 1) // 2
        people.append(
            {
                "id": v,
                "name": f"管家{v}",
                "phone": f"+86139{v:08d}",
                "role": m.Role.STEWARD,
                "language": "zh",
                "status": m.VolunteerStatus.FLAGGED if v % 150 == 0 else m.VolunteerStatus.ACTIVE,
                "street_id": 1,
                "community_id": (p - 1) % communities + 1,
                "pair_id": p,
                "joined_on": day - timedelta(days=400),
            }
        )
    staff = 2 * pairs
    for c in range(1, communities + 1):
        people.append(
            {
                "id": staff + c,
                "name": f"片长{c}",
                "phone": f"+86137{c:08d}",
                "role": m.Role.LEAD,
                "language": "zh",
                "status": m.VolunteerStatus.ACTIVE,
                "street_id": 1,
                "community_id": c,
                "pair_id": None,
                "joined_on": day - timedelta(days=400),
            }
        )
    for k in (1, 2):
        people.append(
            {
                "id": staff + communities + k,
                "name": f"主任{k}",
                "phone": f"+86136{k:08d}",
                "role": m.Role.OFFICE,
                "language": "zh" if k == 1 else "en",
                "status": m.VolunteerStatus.ACTIVE,
                "street_id": 1,
                "community_id": 1,
                "pair_id": None,
                "joined_on": day - timedelta(days=400),
            }
        )
    await insert(m.Volunteer, people)

    sessions: list[dict[str, Any]] = []
    points: list[dict[str, Any]] = []
    reports: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for back in range(364, -1, -1):
        d = day - timedelta(days=back)
        for v in range(1, 2 * pairs + 1):
            if rng.random() >= 0.85:
                continue
            begin = utc_at(d, time(8, rng.randrange(0, 30)), tz)
            minutes = rng.randrange(90, 151)
            sessions.append(
                {
                    "id": len(sessions) + 1,
                    "volunteer_id": v,
                    "pair_id": (v + 1) // 2,
                    "local_date": d,
                    "started_at": begin,
                    "ended_at": begin + timedelta(minutes=minutes),
                    "minutes": minutes,
                    "closed_by": "volunteer",
                    "confirmed": True,
                }
            )
            if minutes >= 120:
                points.append(_points(v, 10, "patrol_day", d, begin + timedelta(minutes=minutes)))
        for _ in range(rng.randrange(3, 8)):
            v = rng.randrange(1, 2 * pairs + 1)
            p = (v + 1) // 2
            at = utc_at(d, time(rng.randrange(8, 18), rng.randrange(0, 60)), tz)
            number = len(reports) + 1
            status = _report_status(back, rng)
            reports.append(
                {
                    "id": number,
                    "number": number,
                    "reporter_id": v,
                    "community_id": (p - 1) % communities + 1,
                    "zone_id": p,
                    "category": rng.randrange(1, 10),
                    "urgent": rng.random() < 0.05,
                    "description": "门口垃圾堆放",
                    "place": f"{p}号楼",
                    "status": status,
                    "created_at": at,
                    "updated_at": at + timedelta(hours=2),
                }
            )
            events.append(_event(number, None, "new", v, at))
            if status != "new":
                events.append(_event(number, "new", status, staff + 1, at + timedelta(hours=2)))
            points.append(_points(v, 2, "report_filed", d, at, report=number))
    await insert(m.PatrolSession, sessions)
    await insert(m.Report, reports)
    await insert(m.ReportEvent, events)
    await insert(m.PointsEntry, points)
    return {
        "volunteers": len(people),
        "sessions": len(sessions),
        "points_entries": len(points),
        "reports": len(reports),
        "report_events": len(events),
    }


def _report_status(days_ago: int, rng: random.Random) -> str:
    if days_ago > 14:
        return "rejected" if rng.random() < 0.1 else "closed"
    return rng.choice(("new", "acknowledged", "resolved", "closed"))


def _points(
    v: int, amount: int, kind: str, d: date, at: datetime, report: int | None = None
) -> dict[str, Any]:
    return {
        "volunteer_id": v,
        "amount": amount,
        "kind": kind,
        "local_date": d,
        "note": "",
        "report_id": report,
        "dedupe_key": None,
        "created_at": at,
    }


def _event(report: int, old: str | None, new: str, actor: int, at: datetime) -> dict[str, Any]:
    return {
        "report_id": report,
        "from_status": old,
        "to_status": new,
        "actor_id": actor,
        "channel": "sms",
        "note": "",
        "created_at": at,
    }
