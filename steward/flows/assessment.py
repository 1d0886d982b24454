"""The monthly assessment (考核, SPEC §4): a scorecard per steward and per community.

Storage hands over facts counted from the stored ledgers and report events; the figures that
need judgement (shares, medians, what "overdue" means) are worked out here.

Reports are taken as a cohort: those received in the month (a report its reporter withdrew was
never work for anyone, so it is left out), with whatever became of them by the time of the
assessment. The community figures are then about the same reports throughout.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from steward.flows.hours_export import Cell, Column, Shown, Table, hours
from steward.flows.points import Period, Ranked


@dataclass(frozen=True)
class StewardMonth:
    """One steward's month, as counted by the database."""

    name: str
    street: str
    community: str
    pair_code: str
    scheduled_days: int  # settled done, partial or absent (leave and days off are not owed)
    done_days: int
    confirmed_minutes: int
    reports_filed: int
    reports_accepted: int  # acknowledged at some point and never rejected
    fixes_verified: int  # 是 N: fixes the steward checked on site


@dataclass(frozen=True)
class ReportTimeline:
    """When a report received in the month first reached each step (None: not yet)."""

    community_id: int
    urgent: bool
    received_at: datetime
    acknowledged_at: datetime | None
    handled_at: datetime | None  # first left `new`: acknowledged or rejected
    resolved_at: datetime | None
    confirmed_at: datetime | None  # the reporter's first 是
    reopened_at: datetime | None  # the reporter's first 否


@dataclass(frozen=True)
class CommunityRef:
    id: int
    street: str
    name: str


@dataclass(frozen=True)
class CommunityMonth:
    street: str
    name: str
    received: int
    median_ack_hours: float | None
    median_resolve_days: float | None
    overdue: int
    first_try_share: float | None  # of the fixes the reporter answered


def share(part: int, whole: int) -> float | None:
    """part/whole, or None when there is nothing to divide (shown empty, not as 0%)."""
    return part / whole if whole else None


def ack_deadline(report: ReportTimeline, ack_hours: int, urgent_hours: int) -> datetime:
    """When a report not yet handled becomes overdue (the reminder job's deadlines)."""
    return report.received_at + timedelta(hours=urgent_hours if report.urgent else ack_hours)


def is_overdue(report: ReportTimeline, now: datetime, ack_hours: int, urgent_hours: int) -> bool:
    """Not acknowledged (nor rejected: that is handling too) within its deadline."""
    deadline = ack_deadline(report, ack_hours, urgent_hours)
    return (report.handled_at or now) > deadline


def community_month(
    community: CommunityRef,
    reports: list[ReportTimeline],
    now: datetime,
    ack_hours: int,
    urgent_hours: int,
) -> CommunityMonth:
    """The leads' month in one community."""
    acked = [r.acknowledged_at - r.received_at for r in reports if r.acknowledged_at]
    resolved = [r.resolved_at - r.received_at for r in reports if r.resolved_at]
    answered = [r for r in reports if r.confirmed_at or r.reopened_at]
    # After 是 a report is closed, so a 否 can only come before it: first try = never a 否.
    first_try = [r for r in answered if r.confirmed_at and not r.reopened_at]
    return CommunityMonth(
        street=community.street,
        name=community.name,
        received=len(reports),
        median_ack_hours=_median(acked, timedelta(hours=1)),
        median_resolve_days=_median(resolved, timedelta(days=1)),
        overdue=sum(is_overdue(r, now, ack_hours, urgent_hours) for r in reports),
        first_try_share=share(len(first_try), len(answered)),
    )


def _median(spans: list[timedelta], unit: timedelta) -> float | None:
    if not spans:
        return None
    return round(statistics.median(span / unit for span in spans), 1)


def communities(
    refs: list[CommunityRef],
    reports: list[ReportTimeline],
    now: datetime,
    ack_hours: int,
    urgent_hours: int,
) -> list[CommunityMonth]:
    """Every community, busy or not, ordered by street and name."""
    by_community: dict[int, list[ReportTimeline]] = {ref.id: [] for ref in refs}
    for report in reports:
        by_community.setdefault(report.community_id, []).append(report)
    months = [
        community_month(ref, by_community[ref.id], now, ack_hours, urgent_hours) for ref in refs
    ]
    return sorted(months, key=lambda c: (c.street, c.name))


_TITLES = {
    "zh": ("管家考核 {month}", "社区考核 {month}"),
    "en": ("Stewards {month}", "Communities {month}"),
}
_STEWARD_COLUMNS = {
    "zh": (
        "街道",
        "社区",
        "组",
        "姓名",
        "应巡天数",
        "达标天数",
        "出勤率",
        "确认时长（小时）",
        "上报数",
        "受理数",
        "受理率",
        "核实整改数",
    ),
    "en": (
        "Street",
        "Community",
        "Pair",
        "Name",
        "Scheduled days",
        "Done days",
        "Attendance",
        "Confirmed hours",
        "Reports filed",
        "Accepted",
        "Accepted share",
        "Fixes verified",
    ),
}
_STEWARD_SHOWN = (
    (Shown.TEXT,) * 4
    + (Shown.INT, Shown.INT, Shown.PERCENT, Shown.ONE_DECIMAL, Shown.INT, Shown.INT)
    + (Shown.PERCENT, Shown.INT)
)
_COMMUNITY_COLUMNS = {
    "zh": (
        "街道",
        "社区",
        "收到上报",
        "受理用时中位数（小时）",
        "办结用时中位数（天）",
        "超时未受理",
        "一次核实满意率",
    ),
    "en": (
        "Street",
        "Community",
        "Reports received",
        "Median hours to acknowledge",
        "Median days to resolve",
        "Overdue",
        "Fixed first time",
    ),
}
_COMMUNITY_SHOWN = (
    Shown.TEXT,
    Shown.TEXT,
    Shown.INT,
    Shown.ONE_DECIMAL,
    Shown.ONE_DECIMAL,
    Shown.INT,
    Shown.PERCENT,
)


def steward_table(period: Period, stewards: list[StewardMonth], language: str) -> Table:
    """One row per steward, ordered by street, community, pair and name."""
    lang = language if language in _TITLES else "zh"
    ordered = sorted(stewards, key=lambda s: (s.street, s.community, s.pair_code, s.name))
    rows: tuple[tuple[Cell, ...], ...] = tuple(
        (
            s.street,
            s.community,
            s.pair_code,
            s.name,
            s.scheduled_days,
            s.done_days,
            share(s.done_days, s.scheduled_days),
            hours(s.confirmed_minutes),
            s.reports_filed,
            s.reports_accepted,
            share(s.reports_accepted, s.reports_filed),
            s.fixes_verified,
        )
        for s in ordered
    )
    return Table(
        _TITLES[lang][0].format(month=period.label),
        _columns(_STEWARD_COLUMNS[lang], _STEWARD_SHOWN),
        rows,
    )


def community_table(period: Period, months: list[CommunityMonth], language: str) -> Table:
    """One row per community."""
    lang = language if language in _TITLES else "zh"
    rows: tuple[tuple[Cell, ...], ...] = tuple(
        (
            c.street,
            c.name,
            c.received,
            c.median_ack_hours,
            c.median_resolve_days,
            c.overdue,
            c.first_try_share,
        )
        for c in months
    )
    return Table(
        _TITLES[lang][1].format(month=period.label),
        _columns(_COMMUNITY_COLUMNS[lang], _COMMUNITY_SHOWN),
        rows,
    )


def _columns(titles: tuple[str, ...], kinds: tuple[Shown, ...]) -> tuple[Column, ...]:
    return tuple(Column(title, kind) for title, kind in zip(titles, kinds, strict=True))


# ---- the ranking (the yearly one is the 金牌管家 shortlist) ---------------------------------

_RANKING_TITLES = {"zh": "积分排行 {period}", "en": "Points ranking {period}"}
_RANKING_COLUMNS = {
    "zh": ("名次", "姓名", "街道", "社区", "积分", "达标天数", "核实上报", "确认时长（小时）"),
    "en": (
        "Place",
        "Name",
        "Street",
        "Community",
        "Points",
        "Done days",
        "Verified reports",
        "Confirmed hours",
    ),
}
_RANKING_SHOWN = (Shown.INT,) + (Shown.TEXT,) * 3 + (Shown.INT,) * 3 + (Shown.ONE_DECIMAL,)


def ranking_table(period: Period, ranked: list[Ranked], language: str) -> Table:
    """The ranking as a table, best first (ties share a place)."""
    lang = language if language in _RANKING_TITLES else "zh"
    rows: tuple[tuple[Cell, ...], ...] = tuple(
        (
            r.place,
            r.name,
            r.street,
            r.community,
            r.points,
            r.done_days,
            r.verified_reports,
            hours(r.confirmed_minutes),
        )
        for r in ranked
    )
    return Table(
        _RANKING_TITLES[lang].format(period=period.label),
        _columns(_RANKING_COLUMNS[lang], _RANKING_SHOWN),
        rows,
    )
