"""Scheduled jobs as decisions: plain functions of (stored state, now) -> what to send and change.

Nothing here remembers "what happened since the last run": every run recomputes from state, and
every message carries a dedupe key (kind, subject, local date), so a late, repeated or concurrent
run sends nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from steward.clock import local_date
from steward.flows import grammar, texts
from steward.flows.state import Contact, MoveReport, Notice, ReportView
from steward.settings import Settings

URGENT_ACK_HOURS = 2
UNVERIFIED_CLOSE_AFTER = timedelta(hours=48)


@dataclass(frozen=True)
class OpenReport:
    """A report the hourly job looks at, with who answers for it."""

    report: ReportView
    community_name: str
    leads: tuple[Contact, ...]
    office: tuple[Contact, ...]
    resolved_at: datetime | None = None


@dataclass(frozen=True)
class JobPlan:
    notices: tuple[Notice, ...]
    moves: tuple[MoveReport, ...]


def ack_hours(report: ReportView, rules: Settings) -> int:
    """How long a report may wait for a lead before someone is reminded."""
    return URGENT_ACK_HOURS if report.urgent else rules.REPORT_ACK_HOURS


def report_followups(reports: list[OpenReport], now: datetime, rules: Settings) -> JobPlan:
    """Remind leads of waiting reports, escalate to the office, close what nobody checked."""
    notices: list[Notice] = []
    moves: list[MoveReport] = []
    today = local_date(now, rules.tz).isoformat()
    for item in reports:
        report = item.report
        if report.status == "new":
            notices.extend(_chase(item, now, today, rules))
        elif report.status == "resolved" and _unchecked_too_long(item, now):
            moves.append(
                MoveReport(report.number, "resolved", "closed_unverified", "not checked in 48 h")
            )
    return JobPlan(tuple(notices), tuple(moves))


def _unchecked_too_long(item: OpenReport, now: datetime) -> bool:
    return item.resolved_at is not None and now - item.resolved_at >= UNVERIFIED_CLOSE_AFTER


def _chase(item: OpenReport, now: datetime, today: str, rules: Settings) -> list[Notice]:
    report = item.report
    limit = timedelta(hours=ack_hours(report, rules))
    waited = now - report.created_at
    if waited < limit:
        return []
    hours = int(waited.total_seconds() // 3600)
    notices = [
        Notice(
            lead,
            _render("report_reminder", lead.language, item, hours),
            "alert",
            f"report_reminder:{report.number}:{lead.volunteer_id}:{today}",
        )
        for lead in item.leads
    ]
    if waited >= 2 * limit:
        notices.extend(
            Notice(
                person,
                _render("report_escalation", person.language, item, hours),
                "alert",
                f"report_escalation:{report.number}:{person.volunteer_id}:{today}",
            )
            for person in item.office
        )
    return notices


def _render(key: str, language: str, item: OpenReport, hours: int) -> str:
    report = item.report
    return texts.render(
        key,
        language,
        number=report.number,
        category=grammar.category_name(report.category, language),
        place=report.place,
        hours=hours,
        community=item.community_name,
    )
