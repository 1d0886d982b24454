"""Roster import (SPEC §2): pure parsing, the store's upsert, and the `roster` CLI."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from steward.flows.roster import (
    RosterError,
    RosterPlan,
    decode_roster,
    is_adult,
    parse_patrol_days,
    parse_roster,
)
from steward.storage.models import Community, Pair, Street, Volunteer, VolunteerStatus, Zone
from steward.storage.roster_store import (
    RosterRejected,
    apply_roster,
    export_roster,
    list_roster,
)

TODAY = date(2026, 5, 15)
HEADER = "street,community,zone,pair,name,phone,role,language,patrol_start,patrol_days,birth"
ZH_HEADER = "街道,社区,片区,组,姓名,手机,角色,语言,巡查时间,巡查日,出生年月"


def parse(text: str, today: date = TODAY) -> RosterPlan | list[RosterError]:
    return parse_roster(
        text, region="CN", default_language="zh", default_patrol_start="8:00", today=today
    )


def plan_of(text: str) -> RosterPlan:
    result = parse(text)
    assert isinstance(result, RosterPlan), [str(e) for e in result]
    return result


def errors_of(text: str, today: date = TODAY) -> list[str]:
    result = parse(text, today)
    assert isinstance(result, list), "expected errors"
    return [str(e) for e in result]


def csv_text(header: str, *rows: str) -> str:
    return "\n".join((header, *rows)) + "\n"


def phone(i: int) -> str:
    return f"139{i:08d}"


def big_rows(pairs: int = 300) -> list[dict[str, str]]:
    """Two stewards per pair, spread over two streets and several communities."""
    rows = []
    for i in range(pairs * 2):
        p = i // 2
        rows.append(
            {
                "street": f"街道{p % 2}",
                "community": f"社区{p % 7}",
                "zone": f"巷{p}",
                "pair": f"P{p:03d}",
                "name": f"管家{i}",
                "phone": phone(i),
                "role": "steward",
                "language": "zh",
                "patrol_start": "08:00",
                "patrol_days": "daily",
                "birth": "1955-04",
            }
        )
    return rows


def to_csv(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def seventeen_on(today: date) -> str:
    """The birth month of someone who is 17 on `today`, as a roster writes it."""
    return f"{today.year - 17:04d}-{today.month:02d}"


def with_three_mistakes(rows: list[dict[str, str]], today: date) -> list[dict[str, str]]:
    """Row 10 gets a bad phone, row 200 joins pair P099 as a third, row 400 is 17 on `today`."""
    rows = [dict(r) for r in rows]
    rows[10]["phone"] = "12345"
    rows[200].update({k: rows[198][k] for k in ("street", "community", "zone", "pair")})
    rows[400]["birth"] = seventeen_on(today)
    return rows


def three_errors(today: date) -> list[str]:
    # The row with index i sits on line i + 2 (the header is line 1).
    return [
        "line 12, column phone: not a valid phone number: '12345'",
        "line 202, column pair: pair P099 already has two members (lines 200 and 201)",
        f"line 402, column birth: under 18 (born {seventeen_on(today)}); volunteers must be adults",
    ]


# --- decoding -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        ZH_HEADER.encode("utf-8"),
        b"\xef\xbb\xbf" + ZH_HEADER.encode("utf-8"),
        ZH_HEADER.encode("gb18030"),
    ],
    ids=["utf8", "utf8-bom", "gb18030"],
)
def test_decode_accepts_utf8_bom_and_gb18030(data: bytes) -> None:
    assert decode_roster(data) == ZH_HEADER


def test_gb18030_file_parses_like_utf8() -> None:
    text = csv_text(
        ZH_HEADER, "鼓楼街道,东社区,东巷,A1,张三,13800138000,管家,中文,7:30,每天,1950-03"
    )
    plan = plan_of(decode_roster(text.encode("gb18030")))
    assert plan.rows[0].name == "张三"
    assert plan.pairs[0].patrol_start == "07:30"


# --- header ---------------------------------------------------------------------------------


def test_chinese_and_english_headers_give_the_same_plan() -> None:
    row = "鼓楼街道,东社区,东巷,A1,张三,13800138000,steward,zh,08:00,mon-fri,1950-03"
    assert plan_of(csv_text(ZH_HEADER, row)) == plan_of(csv_text(HEADER, row))


def test_header_names_are_trimmed_and_case_insensitive() -> None:
    plan = plan_of(csv_text(" Street ,COMMUNITY,Zone , Pair,NAME,Phone", "s,c,z,A1,n,13800138000"))
    assert plan.rows[0].phone == "+8613800138000"


def test_unknown_and_missing_headers_are_named() -> None:
    assert errors_of(csv_text("street,community,name,mobile,role", "s,c,n,13800138000,lead")) == [
        "line 1, column mobile: unknown column",
        "line 1, column phone: missing required column",
    ]


def test_empty_file_is_an_error() -> None:
    assert errors_of("") == ["line 1: the file is empty; a header row is required"]


def test_blank_lines_are_skipped_but_line_numbers_stay_physical() -> None:
    text = csv_text(HEADER, "", "s,c,z,A1,n,12345,,,,,", "")
    assert errors_of(text) == ["line 3, column phone: not a valid phone number: '12345'"]


def test_quoted_cell_spanning_lines_keeps_later_line_numbers_physical() -> None:
    text = csv_text(HEADER, 's,c,"east\nlane",A1,n,13800138000,,,,,', "s,c,z,A2,m,1,,,,,")
    assert errors_of(text) == ["line 4, column phone: not a valid phone number: '1'"]


def test_value_under_no_header_is_refused() -> None:
    text = csv_text("street,community,name,phone,role,", "s,c,n,13800138000,lead,oops")
    assert errors_of(text) == [
        "line 2, column #6: value in a column with no header",
    ]


# --- values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "13800138000",
        "138 0013 8000",
        "138-0013-8000",
        "+86 138 0013 8000",
        "008613800138000",
        "１３８００１３８０００",
    ],
)
def test_phone_formats_normalise_to_e164(raw: str) -> None:
    plan = plan_of(csv_text("street,community,name,phone,role", f"s,c,n,{raw},lead"))
    assert plan.rows[0].phone == "+8613800138000"


@pytest.mark.parametrize("raw", ["12345", "1380013800", "abc", "010 6552 9988"])
def test_bad_phones_are_errors(raw: str) -> None:
    [error] = errors_of(csv_text("street,community,name,phone,role", f"s,c,n,{raw},lead"))
    assert error.startswith("line 2, column phone: not a")


@pytest.mark.parametrize(
    ("raw", "role"),
    [
        ("", "steward"),
        ("管家", "steward"),
        ("Steward", "steward"),
        ("片长", "lead"),
        ("LEAD", "lead"),
        ("街道", "office"),
        ("office", "office"),
    ],
)
def test_role_aliases(raw: str, role: str) -> None:
    pair = ",z,A1" if role == "steward" else ",,"
    text = csv_text("street,community,name,phone,role,zone,pair", f"s,c,n,13800138000,{raw}{pair}")
    assert plan_of(text).rows[0].role == role


@pytest.mark.parametrize(
    ("raw", "days"),
    [
        ("daily", "mon,tue,wed,thu,fri,sat,sun"),
        ("每天", "mon,tue,wed,thu,fri,sat,sun"),
        ("mon-fri", "mon,tue,wed,thu,fri"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("sat, mon ,wed", "mon,wed,sat"),
        ("周一至周五", "mon,tue,wed,thu,fri"),
        ("6,7", "sat,sun"),
        ("Monday", "mon"),
    ],
)
def test_patrol_days_forms(raw: str, days: str) -> None:
    assert parse_patrol_days(raw) == days


@pytest.mark.parametrize("raw", ["fri-mon", "8", "someday", "mon-", ","])
def test_unreadable_patrol_days(raw: str) -> None:
    assert parse_patrol_days(raw) is None


def test_defaults_fill_language_time_and_days() -> None:
    plan = plan_of(csv_text("street,community,zone,pair,name,phone", "s,c,z,a1,n,13800138000"))
    assert plan.rows[0].language == "zh"
    assert plan.rows[0].pair == "A1"
    assert (plan.pairs[0].patrol_start, plan.pairs[0].patrol_days) == (
        "08:00",
        "mon,tue,wed,thu,fri,sat,sun",
    )


def test_blank_schedule_cell_inherits_from_the_pair_mate() -> None:
    text = csv_text(
        HEADER,
        "s,c,z,A1,n,13800138000,,,07:00,mon-fri,",
        "s,c,z,A1,m,13900139000,,,,,",
    )
    [pair] = plan_of(text).pairs
    assert (pair.patrol_start, pair.patrol_days, pair.lines) == (
        "07:00",
        "mon,tue,wed,thu,fri",
        (2, 3),
    )


def test_pair_members_with_different_days_are_an_error() -> None:
    text = csv_text(HEADER, "s,c,z,A1,a,13800138000,,,,1-5,", "s,c,z,A1,b,13900139000,,,,daily,")
    assert errors_of(text) == [
        "line 3, column patrol_days: pair members differ: "
        "'mon,tue,wed,thu,fri,sat,sun' here, 'mon,tue,wed,thu,fri' for the pair mate"
    ]


def test_age_boundaries() -> None:
    assert is_adult(date(2008, 5, 15), TODAY)
    assert not is_adult(date(2008, 5, 16), TODAY)
    assert not is_adult(date(2008, 2, 29), date(2026, 2, 28))
    assert is_adult(date(2008, 2, 29), date(2026, 3, 1))


@pytest.mark.parametrize(
    ("birth", "ok"),
    [("2008-05-15", True), ("2008-05-16", False), ("2008-04", True), ("2008-05", False)],
)
def test_birth_month_alone_counts_as_its_last_day(birth: str, ok: bool) -> None:
    result = parse(
        csv_text("street,community,name,phone,role,birth", f"s,c,n,13800138000,lead,{birth}")
    )
    assert isinstance(result, RosterPlan) is ok


def test_birth_forms_excel_writes_are_normalised() -> None:
    text = csv_text(
        "street,community,name,phone,role,birth",
        "s,c,a,13800138000,lead,1950/3/1",
        "s,c,b,13900139000,lead,1950年3月",
    )
    assert [r.birth for r in plan_of(text).rows] == ["1950-03-01", "1950-03"]


def test_each_error_kind_names_line_and_column() -> None:
    text = csv_text(
        HEADER + ",volunteer_no",
        "s,c,z,A1,a,13800138000,,,08:00,daily,,",  # line 2
        "s,c,z,A1,b,13800138000,,,,,,",  # 3: duplicate phone
        "s,c,z,A2,c,13700137000,boss,,,,,",  # 4: unknown role
        "s,c,z,A3,d,13600136000,,fr,,,,",  # 5: bad language
        "s,c,z,A4,e,13500135000,,,25:00,,,",  # 6: bad time
        "s,c,z,A5,f,13400134000,,,,someday,,",  # 7: bad days
        "s,,z,A6,g,13300133000,,,,,,",  # 8: missing community
        "s,c,,,h,13200132000,,,,,,",  # 9: steward without zone and pair
        "s,c,z,A1,i,13100131000,,,09:00,,,",  # 10: third member of A1
        "s,c,z,A7,j,15800158000,,,09:00,,,",  # 11
        "s,c,z,A7,k,15900159000,,,10:00,mon,,",  # 12: start disagrees; blank days inherit
        "s,c,z,A8,l,15700157000,,,,,19xx,",  # 13: bad birth
        "s,c,z,A9,m,15600156000,,,,,2010-01,",  # 14: under 18
    )
    assert errors_of(text) == [
        "line 3, column phone: duplicate phone +8613800138000, already on line 2",
        "line 4, column role: unknown role 'boss' (expected steward, lead or office)",
        "line 5, column language: unknown language 'fr' (expected zh or en)",
        "line 6, column patrol_start: expected a time as HH:MM, got '25:00'",
        "line 7, column patrol_days: cannot read days 'someday' "
        "(e.g. daily, mon-fri, mon,wed,sat, 1-5 with 1 = Monday)",
        "line 8, column community: missing required value",
        "line 9, column zone: missing required value (stewards need a zone and a pair)",
        "line 9, column pair: missing required value (stewards need a zone and a pair)",
        "line 10, column pair: pair A1 already has two members (lines 2 and 3)",
        "line 12, column patrol_start: pair members differ: '10:00' here, "
        "'09:00' for the pair mate",
        "line 13, column birth: expected YYYY-MM or YYYY-MM-DD, got '19xx'",
        "line 14, column birth: under 18 (born 2010-01); volunteers must be adults",
    ]


def test_error_columns_use_the_header_as_written() -> None:
    text = csv_text(ZH_HEADER, "s,c,z,A1,n,12345,,,,,")
    assert errors_of(text) == ["line 2, column 手机: not a valid phone number: '12345'"]


def test_leads_carry_no_pair() -> None:
    text = csv_text("street,community,zone,pair,name,phone,role", "s,c,z,A1,n,13800138000,lead")
    assert errors_of(text) == [
        "line 2, column zone: only stewards belong to a pair; leave it empty for lead",
        "line 2, column pair: only stewards belong to a pair; leave it empty for lead",
    ]


def test_single_member_pair_is_a_vacancy_not_an_error() -> None:
    plan = plan_of(csv_text(HEADER, "s,c,z,A1,n,13800138000,,,,,"))
    assert plan.pairs[0].lines == (2,)


def test_same_code_in_another_community_is_another_pair() -> None:
    text = csv_text(
        HEADER,
        "s,c1,z,A1,a,13800138000,,,,,",
        "s,c1,z,A1,b,13900139000,,,,,",
        "s,c2,z,A1,c,13700137000,,,,,",
    )
    assert len(plan_of(text).pairs) == 2


def test_acceptance_file_lists_exactly_its_three_errors() -> None:
    assert errors_of(to_csv(with_three_mistakes(big_rows(), TODAY))) == three_errors(TODAY)


# --- store (runs on SQLite and PostgreSQL) --------------------------------------------------


async def test_acceptance_import_reimport_and_update(db: str) -> None:
    assert isinstance(parse(to_csv(with_three_mistakes(big_rows(), TODAY))), list)
    assert await Volunteer.all().count() == 0

    rows = big_rows()
    plan = plan_of(to_csv(rows))
    summary = await apply_roster(plan, dry_run=False)
    assert (summary.added, summary.updated, summary.unchanged) == (600, 0, 0)
    assert len(summary.new_pairs) == 300
    assert await Volunteer.all().count() == 600
    assert await Pair.all().count() == 300
    assert await Zone.all().count() == 300
    assert await Street.all().count() == 2

    again = await apply_roster(plan, dry_run=False)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 600)
    assert (again.new_pairs, again.changed_pairs, again.new_streets) == ((), (), ())
    assert await Volunteer.all().count() == 600

    rows[5]["name"] = "新名字"
    changed = await apply_roster(plan_of(to_csv(rows)), dry_run=False)
    assert (changed.added, changed.updated, changed.unchanged) == (0, 1, 599)
    assert (await Volunteer.get(phone="+86" + phone(5))).name == "新名字"


async def test_dry_run_writes_nothing(db: str) -> None:
    summary = await apply_roster(plan_of(to_csv(big_rows(3))), dry_run=True)
    assert (summary.dry_run, summary.added, len(summary.new_pairs)) == (True, 6, 3)
    assert await Volunteer.all().count() == 0
    assert await Street.all().count() == 0


async def test_pair_moves_and_schedule_changes_update(db: str) -> None:
    before = csv_text(
        HEADER,
        "s,c,z0,A1,a,13800138000,,,,,",
        "s,c,z0,A1,b,13900139000,,,,,",
        "s,c,z1,A2,c,13700137000,,,,,",
        "s,c,z1,A2,d,13600136000,,,,,",
    )
    await apply_roster(plan_of(before), dry_run=False)
    after = csv_text(
        HEADER,
        "s,c,z1,A2,a,13800138000,,,,,",  # a and c swap pairs
        "s,c,z0,A1,b,13900139000,,,07:00,,",  # and A1 now starts at seven
        "s,c,z0,A1,c,13700137000,,,,,",
        "s,c,z1,A2,d,13600136000,,,,,",
    )
    summary = await apply_roster(plan_of(after), dry_run=False)
    assert (summary.added, summary.updated, summary.unchanged) == (0, 2, 2)
    assert summary.changed_pairs == ("s/c/A1",)
    moved = await Volunteer.get(phone="+8613800138000").prefetch_related("pair")
    assert moved.pair is not None and moved.pair.code == "A2"
    assert (await Pair.get(code="A1")).patrol_start == "07:00"


async def test_removed_stays_removed_and_absent_volunteers_are_left_alone(db: str) -> None:
    rows = big_rows(2)
    await apply_roster(plan_of(to_csv(rows)), dry_run=False)
    await Volunteer.filter(phone="+86" + phone(0)).update(status=VolunteerStatus.REMOVED)
    rows[0]["name"] = "改名"
    summary = await apply_roster(plan_of(to_csv(rows[:3])), dry_run=False)  # row 3 left out
    assert (summary.updated, summary.unchanged, summary.still_removed) == (1, 2, 1)
    removed = await Volunteer.get(phone="+86" + phone(0))
    assert (removed.name, removed.status) == ("改名", VolunteerStatus.REMOVED)
    assert await Volunteer.filter(phone="+86" + phone(3)).exists()


async def test_pair_that_would_reach_three_with_stored_members_is_refused(db: str) -> None:
    rows = big_rows(1)
    await apply_roster(plan_of(to_csv(rows)), dry_run=False)
    newcomer = dict(rows[1], name="新人", phone=phone(99))
    with pytest.raises(RosterRejected) as caught:
        await apply_roster(plan_of(to_csv([rows[0], newcomer])), dry_run=False)
    assert [str(e) for e in caught.value.errors] == [
        "line 3, column pair: pair P000 would have 3 members: "
        "管家1 (+8613900000001) already in it and not in this file"
    ]
    assert await Volunteer.all().count() == 2


async def test_export_round_trips_unchanged(db: str) -> None:
    rows = big_rows(3)
    rows[0]["language"], rows[0]["patrol_days"] = "en", "1-5"
    rows[1]["patrol_days"] = ""
    lead = dict(rows[0], zone="", pair="", role="片长", phone=phone(50), patrol_start="")
    lead["patrol_days"] = ""
    await apply_roster(plan_of(to_csv([*rows, lead])), dry_run=False)
    await Street.create(name="空街道")  # a place with nobody in it does not disturb the export

    exported = await export_roster()
    assert exported.splitlines()[0] == (
        "street,community,zone,pair,name,phone,role,language,"
        "patrol_start,patrol_days,birth,volunteer_no,joined"
    )
    summary = await apply_roster(
        plan_of(decode_roster(exported.encode("utf-8-sig"))), dry_run=False
    )
    assert (summary.added, summary.updated, summary.unchanged) == (0, 0, 7)
    assert summary.changed_pairs == ()

    entries = await list_roster()
    assert [e.role for e in entries if e.community == "社区0"] == ["lead", "steward", "steward"]
    assert entries[1].patrol_days == "mon,tue,wed,thu,fri"


def test_join_dates_are_read_and_checked() -> None:
    header = HEADER + ",加入日期"
    plan = plan_of(
        csv_text(header, "s,c,z,A1,a,13800138000,,,,,,2026/3/1", "s,c,z,A1,b,13900139000,,,,,,")
    )
    assert [row.joined for row in plan.rows] == [date(2026, 3, 1), None]
    assert plan.read_on == TODAY
    assert errors_of(csv_text(header, "s,c,z,A1,a,13800138000,,,,,,2026-05-16")) == [
        "line 2, column 加入日期: 2026-05-16 is in the future"
    ]
    assert errors_of(csv_text(header, "s,c,z,A1,a,13800138000,,,,,,March")) == [
        "line 2, column 加入日期: expected a date as YYYY-MM-DD, got 'March'"
    ]


async def test_newcomers_join_the_day_the_file_is_read_and_keep_that_day(db: str) -> None:
    text = csv_text(HEADER, "s,c,z,A1,a,13800138000,,,,,")
    await apply_roster(plan_of(text), dry_run=False)
    later = parse(text, today=date(2026, 6, 1))
    assert isinstance(later, RosterPlan)
    summary = await apply_roster(later, dry_run=False)
    assert summary.unchanged == 1
    assert (await Volunteer.get(phone="+8613800138000")).joined_on == TODAY

    # A date in the file is the record, and corrects what was stored.
    corrected = csv_text(HEADER + ",joined", "s,c,z,A1,a,13800138000,,,,,,2026-04-01")
    summary = await apply_roster(plan_of(corrected), dry_run=False)
    assert summary.updated == 1
    assert (await Volunteer.get(phone="+8613800138000")).joined_on == date(2026, 4, 1)


async def test_community_names_repeat_across_streets(db: str) -> None:
    text = csv_text(
        HEADER, "东街,和平社区,z,A1,a,13800138000,,,,,", "西街,和平社区,z,A1,b,13900139000,,,,,"
    )
    await apply_roster(plan_of(text), dry_run=False)
    assert await Community.filter(name="和平社区").count() == 2
    assert await Pair.all().count() == 2


# --- CLI (synchronous: the commands run their own event loop) ------------------------------


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder whose fresh SQLite file the `steward` command will use."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite://{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("TIMEZONE", "Asia/Shanghai")
    yield tmp_path


def run(*args: str) -> tuple[int, str, str]:
    """Run the real `steward roster ...` command as an operator would, in its own process."""
    done = subprocess.run(
        [sys.executable, "-m", "steward.cli", "roster", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def volunteer_count() -> int:
    code, out, _ = run("list")
    assert code == 0
    return 0 if out.startswith("the roster is empty") else len(out.splitlines()) - 1


def test_cli_import_with_errors_exits_1_and_lists_them(cli_db: Path) -> None:
    bad = cli_db / "bad.csv"
    # The command checks ages against the local day where the volunteers live.
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    bad.write_bytes(to_csv(with_three_mistakes(big_rows(), today)).encode("gb18030"))
    code, _, err = run("import", str(bad))
    assert code == 1
    assert err.splitlines() == [*three_errors(today), "3 error(s); nothing was imported"]
    assert volunteer_count() == 0


def test_cli_dry_run_then_import_then_export_round_trip(cli_db: Path) -> None:
    good = cli_db / "good.csv"
    good.write_text(to_csv(big_rows(20)), encoding="utf-8-sig")

    code, out, _ = run("import", "--dry-run", str(good))
    assert code == 0
    assert out.startswith("would add 40 volunteers, update 0, unchanged 0; new streets: ")
    assert "new pairs: 街道0/社区0/P000" in out and "and 10 more" in out
    assert volunteer_count() == 0

    code, out, _ = run("import", str(good))
    assert (code, out.split(";")[0]) == (0, "added 40 volunteers, updated 0, unchanged 0")
    assert volunteer_count() == 40

    exported = cli_db / "export.csv"
    assert run("export", str(exported))[0] == 0
    assert exported.read_bytes().startswith(b"\xef\xbb\xbfstreet,community,")
    code, out, _ = run("import", str(exported))
    assert (code, out.strip()) == (0, "added 0 volunteers, updated 0, unchanged 40")

    code, out, _ = run("export")
    assert out.lstrip("\ufeff").replace("\r\n", "\n") == exported.read_text("utf-8-sig").replace(
        "\r\n", "\n"
    )


def test_cli_list_shows_a_table(cli_db: Path) -> None:
    good = cli_db / "one.csv"
    good.write_text(csv_text(HEADER, "鼓楼街道,东社区,东巷,A1,张三,13800138000,,en,,,"), "utf-8")
    assert run("import", str(good))[0] == 0
    _, out, _ = run("list")
    header, line = out.splitlines()
    assert header.split() == [
        "street", "community", "pair", "zone", "name", "phone", "role", "language", "status"
    ]  # fmt: skip
    assert line.split() == [
        "鼓楼街道",
        "东社区",
        "A1",
        "东巷",
        "张三",
        "+8613800138000",
        "steward",
        "en",
        "active",
    ]


def test_cli_unreadable_file_is_one_clear_error(cli_db: Path) -> None:
    odd = cli_db / "odd.csv"
    odd.write_bytes(b"\xff\xfe\x00\xd8street")
    code, _, err = run("import", str(odd))
    assert code == 1
    assert "neither UTF-8 nor GB18030" in err
