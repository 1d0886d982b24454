"""The service-hours export (谁组织谁记录) and the roster export's round trip through import."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl

from steward.clock import utc
from steward.flows.hours_export import hours
from steward.flows.points import month
from steward.flows.roster import RosterPlan, decode_roster, parse_roster
from steward.shells import points as shell
from steward.storage.models import HoursEntry, PatrolSession, Volunteer
from steward.storage.roster_store import apply_roster, export_roster, list_roster
from tests.harness import seed_street

SHANGHAI = ZoneInfo("Asia/Shanghai")
MARCH = month("2026-03")
HEADER_ZH = ["姓名", "志愿者编号", "手机", "服务时长", "服务次数", "服务内容", "组织单位"]
HEADER_EN = [
    "Name",
    "Volunteer no.",
    "Phone",
    "Service hours",
    "Services",
    "Service content",
    "Organising unit",
]


def at(month_: int, day: int, hour: int, minute: int = 0) -> datetime:
    return utc(datetime(2026, month_, day, hour, minute, tzinfo=SHANGHAI))


async def session(vol: Volunteer, day: date, minutes: int, *, auto: bool = False) -> int:
    """A closed session and its ledger line, as check-out (or the automatic close) writes them."""
    row = await PatrolSession.create(
        volunteer=vol,
        local_date=day,
        started_at=at(day.month, day.day, 8),
        minutes=minutes,
        ended_at=at(day.month, day.day, 10),
        closed_by="auto" if auto else "volunteer",
        confirmed=not auto,
    )
    await line(vol, int(row.id), day, minutes, confirmed=not auto)
    return int(row.id)


async def line(
    vol: Volunteer, session_id: int, day: date, minutes: int, *, confirmed: bool = True
) -> None:
    await HoursEntry.create(
        volunteer=vol,
        session_id=session_id,
        local_date=day,
        minutes=minutes,
        zone_name="东巷",
        confirmed=confirmed,
        created_at=at(day.month, day.day, 12),
    )


async def seed_month() -> None:
    """Wang: three confirmed sessions (one checked out, undone, checked out again), 5.75 h.
    Li: a session closed automatically and confirmed by a lead (4 h), one never confirmed.
    Sun: February only."""
    street = await seed_street()
    wang, li = street.wang, street.li
    await Volunteer.filter(id=wang.id).update(volunteer_no="12010420260001")
    await session(wang, date(2026, 3, 2), 125)
    await session(wang, date(2026, 3, 3), 130)
    undone = await session(wang, date(2026, 3, 4), 60)
    await line(wang, undone, date(2026, 3, 4), -60)  # UNDO of the check-out
    await line(wang, undone, date(2026, 3, 4), 90)  # the real check-out
    confirmed = await session(li, date(2026, 3, 5), 240, auto=True)
    await line(li, confirmed, date(2026, 3, 5), 240)  # a lead's 确认
    await session(li, date(2026, 3, 6), 240, auto=True)  # never confirmed: left out
    await session(street.other, date(2026, 2, 27), 120)


ROWS_ZH = [
    ["Li Wei", "", "+86 138 0013 8002", "4.0", "1", "小巷管家巡查（东巷）", "鼓楼街道/新开河社区"],
    [
        "王秀英",
        "12010420260001",
        "+86 138 0013 8001",
        "5.8",
        "3",
        "小巷管家巡查（东巷）",
        "鼓楼街道/新开河社区",
    ],
    ["合计（2人）", "", "", "9.8", "4", "", ""],
    [],
    ["未计入：1次巡查未经片长确认。"],
]


def test_hours_round_halves_up_to_one_decimal() -> None:
    assert [hours(m) for m in (0, 3, 345, 435, 59)] == [0.0, 0.1, 5.8, 7.3, 1.0]


async def test_the_month_record_counts_confirmed_sessions_only(db: str) -> None:
    await seed_month()
    table, data = await shell.hours_record(MARCH)
    assert data.unconfirmed_sessions == 1
    assert [c.title for c in table.columns] == HEADER_ZH
    assert [list(row) for row in table.rows] == [
        ["Li Wei", "", "+86 138 0013 8002", 4.0, 1, "小巷管家巡查（东巷）", "鼓楼街道/新开河社区"],
        [
            "王秀英",
            "12010420260001",
            "+86 138 0013 8001",
            5.8,
            3,
            "小巷管家巡查（东巷）",
            "鼓楼街道/新开河社区",
        ],
    ]
    assert table.totals == ("合计（2人）", None, None, 9.8, 4, None, None)
    assert table.notes == ("未计入：1次巡查未经片长确认。",)

    english, _ = await shell.hours_record(MARCH, language="en")
    assert [c.title for c in english.columns] == HEADER_EN
    assert english.rows[0][5] == "Alley steward patrol (东巷)"
    assert english.notes == ("Not counted: 1 patrol session(s) not confirmed by a lead.",)
    february, data = await shell.hours_record(month("2026-02"))
    assert ([row[0] for row in february.rows], data.unconfirmed_sessions) == (["孙丽"], 0)


def export(db: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    """The real `steward export hours`, in its own process, on this test's database."""
    return subprocess.run(
        [sys.executable, "-m", "steward.cli", "export", "hours", "--month", "2026-03", *args],
        capture_output=True,
        timeout=120,
        check=False,
        env={**os.environ, "DATABASE_URL": db, "TIMEZONE": "Asia/Shanghai"},
    )


async def test_cli_csv_reads_as_excel_reads_it(db: str, tmp_path: Path) -> None:
    await seed_month()
    done = export(db, "--street", "鼓楼街道")
    assert done.returncode == 0, done.stderr
    data = done.stdout
    assert data.startswith(b"\xef\xbb\xbf")  # the BOM that tells Excel it is UTF-8
    # Excel: strip the BOM, split on commas, the first row is the header.
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows[0] == HEADER_ZH
    assert rows[1:] == ROWS_ZH
    assert b"\r\n" in data  # Excel's own line ends
    assert done.stderr.decode().strip() == (
        "2 volunteer(s), 9.8 confirmed hours; 1 unconfirmed session(s) left out"
    )

    target = tmp_path / "hours.csv"
    assert export(db, "--lang", "en", "-o", str(target)).returncode == 0
    assert next(csv.reader(io.StringIO(target.read_text("utf-8-sig")))) == HEADER_EN


async def test_cli_xlsx_reads_back_with_openpyxl(db: str, tmp_path: Path) -> None:
    await seed_month()
    target = tmp_path / "服务时长.xlsx"
    done = export(db, "--format", "xlsx", "-o", str(target))
    assert done.returncode == 0, done.stderr
    sheet = openpyxl.load_workbook(target).active
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values[0] == HEADER_ZH
    assert values[1] == [
        "Li Wei",
        None,
        "+86 138 0013 8002",
        4.0,
        1,
        "小巷管家巡查（东巷）",
        "鼓楼街道/新开河社区",
    ]
    assert values[2][3:5] == [5.8, 3]  # numbers stay numbers
    assert isinstance(values[2][3], float) and isinstance(values[2][4], int)
    assert values[3][:5] == ["合计（2人）", None, None, 9.8, 4]
    assert values[5][0] == "未计入：1次巡查未经片长确认。"
    header = sheet["A1"]
    assert header.font.bold and header.fill.fill_type == "solid"
    assert sheet.freeze_panes == "A2"
    assert sheet["D2"].number_format == "0.0"
    assert sheet.column_dimensions["F"].width >= 22  # 服务内容 fits its longest value
    assert export(db, "--format", "xlsx").returncode == 2  # no file named: nothing written


async def test_an_unknown_street_is_named(db: str) -> None:
    await seed_month()
    done = export(db, "--street", "无此街道")
    assert done.returncode == 1
    assert "no street named '无此街道'" in done.stderr.decode()


# ---- roster export round trip (item 6) ------------------------------------------------------

ROSTER = """street,community,zone,pair,name,phone,role,language,patrol_start,patrol_days,birth,volunteer_no,joined
鼓楼街道,新开河社区,东巷,A1,王秀英,13800138001,steward,zh,07:30,mon-fri,1956-04,12010420260001,2025-03-01
鼓楼街道,新开河社区,东巷,A1,Li Wei,+86 138 0013 8002,管家,en,07:30,1-5,1961-11-02,,2025-04-15
鼓楼街道,新开河社区,,,赵建国,138-0013-8009,片长,,,,,,2024-12-31
鼓楼街道,新开河社区,西巷,A2,孙丽,13800138003,,,,,,NO-77,
"""


def plan_of(text: str, today: date) -> RosterPlan:
    plan = parse_roster(
        text, region="CN", default_language="zh", default_patrol_start="08:00", today=today
    )
    assert isinstance(plan, RosterPlan), [str(e) for e in plan]
    return plan


async def test_roster_export_reimports_with_no_changes(db: str) -> None:
    first = await apply_roster(plan_of(ROSTER, date(2026, 3, 1)), dry_run=False)
    assert first.added == 4
    before = await list_roster()

    exported = await export_roster()
    header = exported.splitlines()[0].split(",")
    assert header[-2:] == ["volunteer_no", "joined"]
    # Read back later, as an office would: nothing changes, join dates and numbers included.
    again = await apply_roster(
        plan_of(decode_roster(exported.encode("utf-8-sig")), date(2026, 6, 1)), dry_run=False
    )
    assert (again.added, again.updated, again.unchanged) == (0, 0, 4)
    assert (again.new_pairs, again.changed_pairs, again.new_streets) == ((), (), ())
    assert await list_roster() == before
    joined = {e.name: (e.joined, e.volunteer_no) for e in before}
    assert joined == {
        "王秀英": ("2025-03-01", "12010420260001"),
        "Li Wei": ("2025-04-15", ""),
        "赵建国": ("2024-12-31", ""),
        "孙丽": ("2026-03-01", "NO-77"),  # no date in the file: the day it was read
    }
    assert await export_roster() == exported
