"""The street office's daily digest (SPEC §5): what a day looked like, as plain data and text.

Two renderings of the same `DigestData`: the full text (several lines, for a Telegram group or
the CLI) and an SMS that must fit two segments. The SMS is shaped by dropping detail in a fixed
order of importance until it fits, so the office always gets coverage and report counts first.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from steward.clock import utc
from steward.flows import grammar, texts
from steward.flows.attendance import on_leave, scheduled_on
from steward.flows.jobs import URGENT_ACK_HOURS
from steward.flows.segments import segment_count
from steward.settings import Settings

SMS_SEGMENTS = 2
OPEN_STATUSES = frozenset({"new", "acknowledged"})


@dataclass(frozen=True)
class UrgentReport:
    number: int
    category: int
    place: str


@dataclass(frozen=True)
class DigestData:
    """One street's day, as the office reads it."""

    street: str
    day: date
    pairs_scheduled: int
    pairs_done: int
    pairs_partial: int
    pairs_absent: int
    patrol_minutes: int
    new_by_category: tuple[tuple[int, int], ...]  # (category code, reports filed that day)
    open_reports: int
    overdue_reports: int
    urgent_open: tuple[UrgentReport, ...]
    flagged: tuple[str, ...]  # names awaiting the office's review
    top_stewards: tuple[tuple[str, int], ...]  # (name, points this month), best first

    @property
    def coverage(self) -> int | None:
        """Done pairs as a whole percentage (rounded down: 100 only when every pair is done)."""
        if not self.pairs_scheduled:
            return None
        return self.pairs_done * 100 // self.pairs_scheduled

    @property
    def new_reports(self) -> int:
        return sum(count for _, count in self.new_by_category)


# ---- computing the day from loaded state ---------------------------------------------------


@dataclass(frozen=True)
class PairFacts:
    patrol_days: str
    members: tuple[MemberDay, ...]


@dataclass(frozen=True)
class DayFacts:
    """What storage read for one street's day; `summarise` turns it into the digest's figures."""

    street: str
    day: date
    pairs: tuple[PairFacts, ...]
    patrol_minutes: int
    reports: tuple[ReportFacts, ...]
    flagged: tuple[str, ...]
    month_points: tuple[tuple[str, int], ...]


def summarise(facts: DayFacts, as_of: datetime, rules: Settings) -> DigestData:
    """The digest's figures for the day as it stood at `as_of` (at most the day's end)."""
    as_of = _capped(as_of, facts.day, rules)
    statuses = [
        status
        for pair in facts.pairs
        if (status := pair_day(pair.patrol_days, pair.members, facts.day, rules.PATROL_MINUTES))
    ]
    reports = facts.reports
    return DigestData(
        street=facts.street,
        day=facts.day,
        pairs_scheduled=len(statuses),
        pairs_done=statuses.count("done"),
        pairs_partial=statuses.count("partial"),
        pairs_absent=statuses.count("absent"),
        patrol_minutes=facts.patrol_minutes,
        new_by_category=new_by_category(reports, facts.day),
        open_reports=sum(r.status in OPEN_STATUSES for r in reports),
        overdue_reports=sum(overdue(r, as_of, _ack_hours(r, rules)) for r in reports),
        urgent_open=urgent_open(reports),
        flagged=facts.flagged,
        top_stewards=top_three(list(facts.month_points)),
    )


def _capped(as_of: datetime, day: date, rules: Settings) -> datetime:
    # A past day reads as it stood at its end, so a digest printed later says what it said then.
    end = utc(datetime.combine(day + timedelta(days=1), time(0), tzinfo=rules.tz))
    return min(utc(as_of), end)


def _ack_hours(report: ReportFacts, rules: Settings) -> int:
    # Same deadlines as the hourly reminder job, so "overdue" means what the leads were told.
    return URGENT_ACK_HOURS if report.urgent else rules.REPORT_ACK_HOURS


@dataclass(frozen=True)
class MemberDay:
    """A pair member on the day: leave dates and confirmed minutes patrolled."""

    minutes: int
    leave_from: date | None
    leave_until: date | None


def pair_day(patrol_days: str, members: Sequence[MemberDay], day: date, target: int) -> str | None:
    """Settle a pair's day: done, partial, absent, or None when it does not count as scheduled.

    Members on leave are left out; a pair with nobody left to patrol is not scheduled.
    """
    present = [m for m in members if not on_leave(m.leave_from, m.leave_until, day)]
    if not present or not scheduled_on(patrol_days, day):
        return None
    if all(m.minutes >= target for m in present):
        return "done"
    if all(m.minutes <= 0 for m in present):
        return "absent"
    return "partial"


@dataclass(frozen=True)
class ReportFacts:
    number: int
    category: int
    urgent: bool
    status: str
    place: str
    created_at: datetime
    created_on: date  # local day of filing


def overdue(report: ReportFacts, as_of: datetime, ack_hours: int) -> bool:
    """Still waiting for a lead past its acknowledgement deadline (as the hourly job counts)."""
    return report.status == "new" and as_of - report.created_at >= timedelta(hours=ack_hours)


def new_by_category(reports: Sequence[ReportFacts], day: date) -> tuple[tuple[int, int], ...]:
    counts: dict[int, int] = {}
    for report in reports:
        if report.created_on == day:
            counts[report.category] = counts.get(report.category, 0) + 1
    return tuple(sorted(counts.items()))


def urgent_open(reports: Sequence[ReportFacts]) -> tuple[UrgentReport, ...]:
    return tuple(
        UrgentReport(r.number, r.category, r.place)
        for r in sorted(reports, key=lambda r: r.number)
        if r.urgent and r.status in OPEN_STATUSES
    )


def top_three(points: Sequence[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    """Best three by this month's points; ties by name so the digest reads the same every run."""
    ranked = sorted((item for item in points if item[1] > 0), key=lambda i: (-i[1], i[0]))
    return tuple(ranked[:3])


# ---- full text ------------------------------------------------------------------------------


def digest_text(data: DigestData, language: str) -> str:
    """Render the full digest, one fact per line; empty sections are left out."""
    en = language == "en"
    lines = [_head_full(data, en), _pairs_full(data, en), _minutes_full(data, en)]
    lines += [_reports_full(data, en), _open_full(data, en)]
    if data.urgent_open:
        items = [_urgent_item(r, language, place_limit=40) for r in data.urgent_open]
        lines.append(("Urgent: " if en else "紧急：") + ("; " if en else "；").join(items))
    if data.flagged:
        sep = ", " if en else "、"
        lines.append(("Flagged for review: " if en else "待审核：") + sep.join(data.flagged))
    if data.top_stewards:
        ranked = [f"{name} {points}" for name, points in data.top_stewards]
        lines.append(("Top stewards this month: " if en else "本月积分前三：") + _join(ranked, en))
    return "\n".join(lines)


def _head_full(data: DigestData, en: bool) -> str:
    if en:
        return f"{data.street} daily digest, {data.day.isoformat()}"
    return f"{data.street}日报 {data.day.month}月{data.day.day}日"


def _pairs_full(data: DigestData, en: bool) -> str:
    pct = "-" if data.coverage is None else f"{data.coverage}%"
    if en:
        return (
            f"Pairs: {data.pairs_scheduled} scheduled, {data.pairs_done} done, "
            f"{data.pairs_partial} partial, {data.pairs_absent} absent; coverage {pct}"
        )
    return (
        f"巡查：应巡{data.pairs_scheduled}对，完成{data.pairs_done}，"
        f"部分{data.pairs_partial}，缺勤{data.pairs_absent}，覆盖率{pct}"
    )


def _minutes_full(data: DigestData, en: bool) -> str:
    spent = texts.duration(data.patrol_minutes, "en" if en else "zh")
    return f"Patrol time: {spent}" if en else f"巡查时长：{spent}"


def _reports_full(data: DigestData, en: bool) -> str:
    head = f"New reports: {data.new_reports}" if en else f"新上报{data.new_reports}件"
    if not data.new_by_category:
        return head
    items = _category_counts(data, en)
    return f"{head} ({', '.join(items)})" if en else f"{head}（{'，'.join(items)}）"


def _open_full(data: DigestData, en: bool) -> str:
    if en:
        return f"Open reports: {data.open_reports}, overdue {data.overdue_reports}"
    return f"未结上报{data.open_reports}件，超时未受理{data.overdue_reports}件"


def _urgent_item(report: UrgentReport, language: str, *, place_limit: int) -> str:
    category = grammar.category_name(report.category, language)
    place = texts.clip(report.place, place_limit)
    if language == "en":
        return f"#{report.number} {category}" + (f", {place}" if place else "")
    return f"#{report.number}{category}" + (f" {place}" if place else "")


def _category_counts(data: DigestData, en: bool) -> list[str]:
    if en:
        return [f"{grammar.category_name(code, 'en')} {n}" for code, n in data.new_by_category]
    return [f"{grammar.category_name(code, 'zh')}{n}" for code, n in data.new_by_category]


def _join(items: Sequence[str], en: bool) -> str:
    return (", " if en else "，").join(items)


# ---- SMS ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Shape:
    """How much detail an SMS candidate carries (None: the whole list)."""

    categories: bool = True
    top: bool = True
    minutes: bool = True
    flagged_names: int | None = None
    urgent_detail: bool = True
    urgent_items: int | None = None
    street_limit: int | None = None


def digest_sms(data: DigestData, language: str) -> str:
    """Render the digest as an SMS of at most two segments, the richest that fits."""
    last = ""
    for shape in _shapes(data):
        last = _sms(data, language, shape)
        if segment_count(last) <= SMS_SEGMENTS:
            return last
    return last  # unreachable in practice: the last shape is a few counts and a short name


def _shapes(data: DigestData) -> Iterator[_Shape]:
    """Candidates from richest to barest, dropping detail in a fixed order of importance."""
    shape = _Shape()
    yield shape
    shape = replace(shape, categories=False)
    yield shape
    shape = replace(shape, top=False)
    yield shape
    shape = replace(shape, minutes=False)
    yield shape
    for n in range(len(data.flagged) - 1, -1, -1):
        shape = replace(shape, flagged_names=n)
        yield shape
    shape = replace(shape, urgent_detail=False)
    yield shape
    for n in range(len(data.urgent_open) - 1, -1, -1):
        shape = replace(shape, urgent_items=n)
        yield shape
    yield replace(shape, street_limit=8)  # a street name too long for any budget


def _sms(data: DigestData, language: str, shape: _Shape) -> str:
    en = language == "en"
    parts = [_sms_head(data, en, shape), _sms_pairs(data, en), _sms_reports(data, en, shape)]
    if data.urgent_open:
        parts.append(_sms_urgent(data, language, shape))
    if data.flagged:
        parts.append(_sms_flagged(data, en, shape))
    if shape.minutes:
        spent = texts.duration(data.patrol_minutes, language)
        parts.append(f"Patrol {spent}" if en else f"时长{spent}")
    if shape.top and data.top_stewards:
        ranked = [
            f"{name} {points}" if en else f"{name}{points}" for name, points in data.top_stewards
        ]
        parts.append(("Top: " if en else "月榜：") + _join(ranked, en))
    return "\n".join(parts)


def _sms_head(data: DigestData, en: bool, shape: _Shape) -> str:
    street = (
        data.street if shape.street_limit is None else texts.clip(data.street, shape.street_limit)
    )
    return f"{street} {data.day.month}/{data.day.day}" + ("" if en else "日报")


def _sms_pairs(data: DigestData, en: bool) -> str:
    pct = "-" if data.coverage is None else f"{data.coverage}%"
    if en:
        return (
            f"Pairs {data.pairs_scheduled}: done {data.pairs_done}, partial {data.pairs_partial}, "
            f"absent {data.pairs_absent}, {pct}"
        )
    return (
        f"应巡{data.pairs_scheduled}对 完成{data.pairs_done} 部分{data.pairs_partial} "
        f"缺勤{data.pairs_absent} 覆盖{pct}"
    )


def _sms_reports(data: DigestData, en: bool, shape: _Shape) -> str:
    new = f"New {data.new_reports}" if en else f"新报{data.new_reports}"
    if shape.categories and data.new_by_category:
        items = _category_counts(data, en)
        new += f" ({', '.join(items)})" if en else f"（{'，'.join(items)}）"
    if en:
        return f"{new}, open {data.open_reports}, overdue {data.overdue_reports}"
    return f"{new} 未结{data.open_reports} 超时{data.overdue_reports}"


def _sms_urgent(data: DigestData, language: str, shape: _Shape) -> str:
    en = language == "en"
    head = f"URGENT {len(data.urgent_open)}" if en else f"紧急{len(data.urgent_open)}件"
    shown = data.urgent_open[: shape.urgent_items]
    if not shown:
        return head
    if shape.urgent_detail:
        listed = ("; " if en else "；").join(
            _urgent_item(r, language, place_limit=10) for r in shown
        )
    else:
        listed = " ".join(f"#{r.number}" for r in shown)
    more = len(shown) < len(data.urgent_open)
    return head + _colon(en) + listed + _more(more, en)


def _sms_flagged(data: DigestData, en: bool, shape: _Shape) -> str:
    head = f"Review {len(data.flagged)}" if en else f"待审{len(data.flagged)}人"
    shown = data.flagged[: shape.flagged_names]
    if not shown:
        return head
    more = len(shown) < len(data.flagged)
    return head + _colon(en) + (", " if en else "、").join(shown) + _more(more, en)


def _colon(en: bool) -> str:
    return ": " if en else "："


def _more(clipped: bool, en: bool) -> str:
    # Three dots, not "…": one non-GSM character would double an English SMS.
    return ("..." if en else "等") if clipped else ""
