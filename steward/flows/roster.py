"""Read and validate a roster CSV (SPEC §2) into a plan; pure: no clock, no database.

The whole file is always validated so an operator sees every problem in one go; a plan is only
returned when there is nothing to complain about.
"""

from __future__ import annotations

import calendar
import csv
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from steward.settings import parse_hhmm

ADULT_AGE = 18
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EVERY_DAY = ",".join(WEEKDAYS)

# Canonical column name -> accepted header spellings (compared after trimming and casefolding).
COLUMNS: dict[str, tuple[str, ...]] = {
    "street": ("street", "街道"),
    "community": ("community", "社区"),
    "zone": ("zone", "片区"),
    "pair": ("pair", "组"),
    "name": ("name", "姓名"),
    "phone": ("phone", "手机"),
    "role": ("role", "角色"),
    "language": ("language", "语言"),
    "patrol_start": ("patrol_start", "巡查时间"),
    "patrol_days": ("patrol_days", "巡查日"),
    "birth": ("birth", "出生年月"),
    "volunteer_no": ("volunteer_no", "志愿者编号"),
    "joined": ("joined", "加入日期"),
}
EXPORT_COLUMNS = tuple(COLUMNS)
REQUIRED_COLUMNS = ("street", "community", "name", "phone")
# Pair-level columns: they describe the pair's zone and schedule, so only stewards carry them.
PAIR_COLUMNS = ("zone", "pair", "patrol_start", "patrol_days")
# Column widths of the tables they end up in; PostgreSQL refuses longer text, SQLite would not.
MAX_LENGTH = {
    "street": 100,
    "community": 100,
    "zone": 200,
    "pair": 20,
    "name": 100,
    "volunteer_no": 40,
}

ROLES = {
    "steward": "steward",
    "管家": "steward",
    "小巷管家": "steward",
    "lead": "lead",
    "片长": "lead",
    "街片长": "lead",
    "网格员": "lead",
    "office": "office",
    "街道": "office",
    "街道办": "office",
}
LANGUAGES = {"zh": "zh", "中文": "zh", "chinese": "zh", "en": "en", "英文": "en", "english": "en"}

_DAY_NAMES: dict[str, int] = {}
for _i, _abbr in enumerate(WEEKDAYS):
    _full = calendar.day_name[_i].lower()
    _zh = "一二三四五六日"[_i]
    for _alias in (_abbr, _full, str(_i + 1), f"周{_zh}", f"星期{_zh}"):
        _DAY_NAMES[_alias] = _i
_DAY_NAMES.update({"周天": 6, "星期天": 6})
_DAY_SETS = {
    "daily": EVERY_DAY,
    "every day": EVERY_DAY,
    "每天": EVERY_DAY,
    "每日": EVERY_DAY,
    "weekdays": "mon,tue,wed,thu,fri",
    "工作日": "mon,tue,wed,thu,fri",
    "weekends": "sat,sun",
    "周末": "sat,sun",
}
_DAY_SPLIT = re.compile(r"[,;、\s]+")
_DAY_RANGE = re.compile(r"^(.+?)\s*[-~至到]\s*(.+)$")
# Excel on a Chinese desktop rewrites 1950-03 as 1950/3/1, so accept the usual separators.
_BIRTH = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*(?:[-/.月]\s*(\d{1,2})\s*日?|月)?$")
_DAY = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")


class RosterDecodeError(ValueError):
    """The file's bytes are neither UTF-8 nor GB18030."""


@dataclass(frozen=True)
class RosterError:
    """One problem in the file, at a physical line and a column named as the file names it."""

    line: int
    column: str
    message: str

    def __str__(self) -> str:
        if not self.column:
            return f"line {self.line}: {self.message}"
        return f"line {self.line}, column {self.column}: {self.message}"


@dataclass(frozen=True)
class RosterRow:
    """One volunteer as the file describes them, normalised."""

    line: int
    street: str
    community: str
    name: str
    phone: str  # E.164
    role: str  # steward | lead | office
    language: str  # zh | en
    pair: str | None  # pair code, stewards only
    birth: str | None  # YYYY-MM or YYYY-MM-DD
    volunteer_no: str | None
    joined: date | None  # the day their service began, when the file gives it

    @property
    def pair_key(self) -> tuple[str, str, str] | None:
        return None if self.pair is None else (self.street, self.community, self.pair)


@dataclass(frozen=True)
class RosterPair:
    """A pair as the file describes it: where, which zone, when, and the lines of its members."""

    street: str
    community: str
    code: str
    zone: str
    patrol_start: str  # HH:MM
    patrol_days: str  # canonical, e.g. "mon,tue,wed,thu,fri"
    lines: tuple[int, ...]

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.street, self.community, self.code)

    @property
    def label(self) -> str:
        return f"{self.street}/{self.community}/{self.code}"


@dataclass(frozen=True)
class RosterPlan:
    """A fully validated roster, ready to be applied."""

    rows: tuple[RosterRow, ...]
    pairs: tuple[RosterPair, ...]
    # The local day the file was read: people new to the roster without a `joined` date join today.
    read_on: date


@dataclass(frozen=True)
class RosterDefaults:
    region: str
    default_language: str
    default_patrol_start: str
    today: date


@dataclass
class _PairDraft:
    """Pair-level values collected across members; blank cells inherit from the pair mate."""

    zone: str | None = None
    patrol_start: str | None = None
    patrol_days: str | None = None
    lines: list[int] = field(default_factory=list)


class _Row:
    """One record's cells, addressed by canonical column, with errors named as the file does."""

    def __init__(self, line: int, cells: dict[str, str], headers: dict[str, str]) -> None:
        self.line = line
        self.cells = cells
        self.headers = headers
        self.errors: list[RosterError] = []

    def get(self, column: str) -> str:
        return self.cells.get(column, "")

    def error(self, column: str, message: str) -> None:
        self.errors.append(RosterError(self.line, self.headers.get(column, column), message))


def decode_roster(data: bytes) -> str:
    """Decode a roster file: UTF-8 with or without BOM, else GB18030."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise RosterDecodeError(
            "cannot read the file: it is neither UTF-8 nor GB18030 text"
        ) from None


def parse_roster(
    text: str, *, region: str, default_language: str, default_patrol_start: str, today: date
) -> RosterPlan | list[RosterError]:
    """Validate a whole roster; return the plan, or every error sorted by line."""
    defaults = RosterDefaults(region, default_language, default_patrol_start, today)
    records = _records(text)
    first = next(records, None)
    if first is None:
        return [RosterError(1, "", "the file is empty; a header row is required")]
    header = _read_header(first[1])
    errors = list(header.errors)
    rows: list[RosterRow] = []
    drafts: dict[tuple[str, str, str], _PairDraft] = {}
    phones: dict[str, int] = {}
    for line, cells in records:
        if not any(cell.strip() for cell in cells):
            continue  # Excel leaves blank lines at the end; they carry nothing
        row = _Row(line, header.pick(cells), header.names)
        header.check_unnamed(row, cells)
        parsed = _parse_row(row, defaults, phones, drafts)
        if parsed is not None:
            rows.append(parsed)
        errors.extend(row.errors)
    if errors:
        return sorted(errors, key=lambda e: e.line)
    pairs = tuple(_finish_pair(key, draft, defaults) for key, draft in drafts.items())
    return RosterPlan(rows=tuple(rows), pairs=pairs, read_on=today)


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """Yield each CSV record with the physical line it starts on (quoted cells may span lines)."""
    reader = csv.reader(text.splitlines(keepends=True))
    start = 1
    for cells in reader:
        yield start, cells
        start = reader.line_num + 1


@dataclass(frozen=True)
class _Header:
    names: dict[str, str]  # canonical column -> header as written
    positions: dict[int, str]  # cell index -> canonical column
    written: frozenset[int]  # indexes whose header cell is not blank
    errors: tuple[RosterError, ...]

    def pick(self, cells: Sequence[str]) -> dict[str, str]:
        """Return the known columns' trimmed values."""
        return {self.positions[i]: c.strip() for i, c in enumerate(cells) if i in self.positions}

    def check_unnamed(self, row: _Row, cells: Sequence[str]) -> None:
        """Refuse a value under a blank header (or past the last one) rather than drop it."""
        for index, cell in enumerate(cells):
            if cell.strip() and index not in self.written:
                row.error(f"#{index + 1}", "value in a column with no header")


def _read_header(cells: Sequence[str]) -> _Header:
    """Map header cells to canonical columns, reporting unknown, repeated and missing ones."""
    aliases = {alias.casefold(): name for name, spellings in COLUMNS.items() for alias in spellings}
    names: dict[str, str] = {}
    positions: dict[int, str] = {}
    errors: list[RosterError] = []
    for index, raw in enumerate(cells):
        written = raw.strip()
        name = aliases.get(written.casefold())
        if not written:
            continue  # Excel keeps empty trailing columns
        if name is None:
            errors.append(RosterError(1, written, "unknown column"))
        elif name in names:
            errors.append(RosterError(1, written, f"same column as {names[name]!r}"))
        else:
            names[name] = written
            positions[index] = name
    errors.extend(
        RosterError(1, name, "missing required column")
        for name in REQUIRED_COLUMNS
        if name not in names
    )
    written_at = frozenset(i for i, raw in enumerate(cells) if raw.strip())
    return _Header(names, positions, written_at, tuple(errors))


def _parse_row(
    row: _Row,
    defaults: RosterDefaults,
    phones: dict[str, int],
    drafts: dict[tuple[str, str, str], _PairDraft],
) -> RosterRow | None:
    """Validate one record, and its place in its pair; None when anything is wrong."""
    for column in REQUIRED_COLUMNS:
        if column in row.headers and not row.get(column):
            row.error(column, "missing required value")
    role = _parse_role(row)
    phone = _parse_phone(row, defaults.region)
    language = _parse_language(row, defaults.default_language)
    birth = _parse_birth(row, defaults.today)
    joined = _parse_joined(row, defaults.today)
    _check_lengths(row)
    pair = _parse_pair_code(row, role)
    if phone is not None:
        _check_duplicate(row, phone, phones)
    if pair is not None:
        _collect_pair(row, (row.get("street"), row.get("community"), pair), drafts)
    if row.errors or role is None or phone is None or language is None:
        return None
    return RosterRow(
        line=row.line,
        street=row.get("street"),
        community=row.get("community"),
        name=row.get("name"),
        phone=phone,
        role=role,
        language=language,
        pair=pair,
        birth=birth,
        volunteer_no=row.get("volunteer_no") or None,
        joined=joined,
    )


def _fold(value: str) -> str:
    """Fold full-width forms and case so ＬＥＡＤ, Lead and lead read the same."""
    return unicodedata.normalize("NFKC", value).strip().casefold()


def _parse_role(row: _Row) -> str | None:
    raw = row.get("role")
    if not raw:
        return "steward"
    role = ROLES.get(_fold(raw))
    if role is None:
        row.error("role", f"unknown role {raw!r} (expected steward, lead or office)")
    return role


def _parse_language(row: _Row, default: str) -> str | None:
    raw = row.get("language")
    if not raw:
        return default
    language = LANGUAGES.get(_fold(raw))
    if language is None:
        row.error("language", f"unknown language {raw!r} (expected zh or en)")
    return language


def _parse_phone(row: _Row, region: str) -> str | None:
    raw = row.get("phone")
    if not raw:
        return None
    try:
        number = phonenumbers.parse(raw, region)
    except NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        row.error("phone", f"not a valid phone number: {raw!r}")
        return None
    # SMS is the primary channel: a landline on the roster would never get a message.
    kind = phonenumbers.number_type(number)
    if kind not in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
        row.error("phone", f"not a mobile number (cannot receive SMS): {raw!r}")
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def export_phone(e164: str) -> str:
    """Write a phone for a CSV so Excel keeps it as text (a bare +86... turns into 8.6E+12)."""
    number = phonenumbers.parse(e164, None)
    return phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)


def _parse_birth(row: _Row, today: date) -> str | None:
    raw = row.get("birth")
    if not raw:
        return None
    match = _BIRTH.match(unicodedata.normalize("NFKC", raw))
    born = _birth_date(match) if match else None
    if match is None or born is None:
        row.error("birth", f"expected YYYY-MM or YYYY-MM-DD, got {raw!r}")
        return None
    if not is_adult(born, today):
        row.error("birth", f"under {ADULT_AGE} (born {raw}); volunteers must be adults")
    year, month, day = match.groups()
    text = f"{int(year):04d}-{int(month):02d}"
    return text if day is None else f"{text}-{int(day):02d}"


def _birth_date(match: re.Match[str]) -> date | None:
    """Return the birth date; a month alone means its last day, so no minor slips through."""
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        return None
    day = int(match.group(3)) if match.group(3) else calendar.monthrange(year, month)[1]
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _parse_joined(row: _Row, today: date) -> date | None:
    raw = row.get("joined")
    if not raw:
        return None
    match = _DAY.match(unicodedata.normalize("NFKC", raw))
    try:
        joined = date(*(int(part) for part in match.groups())) if match else None
    except ValueError:
        joined = None
    if joined is None:
        row.error("joined", f"expected a date as YYYY-MM-DD, got {raw!r}")
    elif joined > today:
        row.error("joined", f"{joined.isoformat()} is in the future")
        return None
    return joined


def is_adult(born: date, today: date) -> bool:
    """Tell whether someone born on `born` is 18 or older on `today`."""
    year = born.year + ADULT_AGE
    # Born on 29 February: the birthday in a common year is taken as 1 March (the later day).
    coming_of_age = (
        date(year, 3, 1)
        if (born.month, born.day) == (2, 29) and not calendar.isleap(year)
        else date(year, born.month, born.day)
    )
    return today >= coming_of_age


def _check_lengths(row: _Row) -> None:
    for column, limit in MAX_LENGTH.items():
        if len(row.get(column)) > limit:
            row.error(column, f"too long ({len(row.get(column))} characters, at most {limit})")


def _parse_pair_code(row: _Row, role: str | None) -> str | None:
    """Return the pair code (folded so Ａ1 and a1 mean A1); check stewards have zone and pair."""
    if role == "steward":
        for column in ("zone", "pair"):
            if not row.get(column):
                row.error(column, "missing required value (stewards need a zone and a pair)")
    elif role is not None:
        for column in PAIR_COLUMNS:
            if row.get(column):
                row.error(column, f"only stewards belong to a pair; leave it empty for {role}")
    code = row.get("pair")
    return unicodedata.normalize("NFKC", code).upper() if code and role == "steward" else None


def _check_duplicate(row: _Row, phone: str, phones: dict[str, int]) -> None:
    first = phones.setdefault(phone, row.line)
    if first != row.line:
        row.error("phone", f"duplicate phone {phone}, already on line {first}")


def _collect_pair(
    row: _Row, key: tuple[str, str, str], drafts: dict[tuple[str, str, str], _PairDraft]
) -> None:
    """Add a steward to their pair, checking its size and that members agree on pair values."""
    start = _parse_time(row)
    days = _parse_days(row)
    draft = drafts.setdefault(key, _PairDraft())
    if len(draft.lines) >= 2:
        lines = " and ".join(str(n) for n in draft.lines[:2])
        row.error("pair", f"pair {key[2]} already has two members (lines {lines})")
        return
    draft.lines.append(row.line)
    draft.zone = _agree(row, "zone", draft.zone, row.get("zone") or None)
    draft.patrol_start = _agree(row, "patrol_start", draft.patrol_start, start)
    draft.patrol_days = _agree(row, "patrol_days", draft.patrol_days, days)


def _agree(row: _Row, column: str, known: str | None, value: str | None) -> str | None:
    """Merge one pair-level value; a blank cell inherits, two different values are an error."""
    if value is None or known is None or value == known:
        return known if value is None else value
    row.error(column, f"pair members differ: {value!r} here, {known!r} for the pair mate")
    return known


def _parse_time(row: _Row) -> str | None:
    raw = row.get("patrol_start")
    if not raw:
        return None
    try:
        clock = parse_hhmm(unicodedata.normalize("NFKC", raw))
    except ValueError:
        row.error("patrol_start", f"expected a time as HH:MM, got {raw!r}")
        return None
    return f"{clock.hour:02d}:{clock.minute:02d}"


def _parse_days(row: _Row) -> str | None:
    raw = row.get("patrol_days")
    if not raw:
        return None
    days = parse_patrol_days(raw)
    if days is None:
        row.error(
            "patrol_days",
            f"cannot read days {raw!r} (e.g. daily, mon-fri, mon,wed,sat, 1-5 with 1 = Monday)",
        )
    return days


def parse_patrol_days(raw: str) -> str | None:
    """Read patrol days (daily, mon-fri, mon,wed,sat, 1-5, 每天, 周一至周五) as a canonical list."""
    text = _fold(raw)
    if text in _DAY_SETS:
        return _DAY_SETS[text]
    chosen: set[int] = set()
    for item in filter(None, _DAY_SPLIT.split(text)):
        days = _day_item(item)
        if days is None:
            return None
        chosen.update(days)
    return ",".join(WEEKDAYS[i] for i in sorted(chosen)) if chosen else None


def _day_item(item: str) -> range | None:
    """Read one day or a Monday-to-Sunday range; a backwards range is refused as ambiguous."""
    if item in _DAY_NAMES:
        day = _DAY_NAMES[item]
        return range(day, day + 1)
    match = _DAY_RANGE.match(item)
    if match is None:
        return None
    first, last = _DAY_NAMES.get(match.group(1)), _DAY_NAMES.get(match.group(2))
    if first is None or last is None or last < first:
        return None
    return range(first, last + 1)


def _finish_pair(
    key: tuple[str, str, str], draft: _PairDraft, defaults: RosterDefaults
) -> RosterPair:
    street, community, code = key
    return RosterPair(
        street=street,
        community=community,
        code=code,
        zone=draft.zone or "",
        patrol_start=draft.patrol_start or _default_start(defaults.default_patrol_start),
        patrol_days=draft.patrol_days or EVERY_DAY,
        lines=tuple(draft.lines),
    )


def pair_size_errors(
    plan: RosterPlan, stayers: dict[tuple[str, str, str], list[str]]
) -> list[RosterError]:
    """A pair that would reach three members with people already in it but not in the file.

    Those people are left alone by design (history matters), so the operator must remove them
    or name them in the file; `stayers` lists them per pair key as "name (phone)".
    """
    errors = []
    for pair in plan.pairs:
        already = stayers.get(pair.key, [])
        if len(pair.lines) + len(already) <= 2:
            continue
        message = (
            f"pair {pair.code} would have {len(pair.lines) + len(already)} members: "
            f"{', '.join(already)} already in it and not in this file"
        )
        errors.append(RosterError(pair.lines[-1], "pair", message))
    return errors


def _default_start(value: str) -> str:
    clock = parse_hhmm(value)
    return f"{clock.hour:02d}:{clock.minute:02d}"
