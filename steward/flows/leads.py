"""What a lead asks of their community by text: today's patrols (今日 / TODAY).

The same figures feed Telegram's /today later: pairs on patrol now, done, not out yet, short of
the goal, and not scheduled. A lead sees their community; office staff see their street.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from steward.clock import local_clock, local_date
from steward.flows import digest, texts
from steward.flows.segments import segment_count
from steward.flows.state import Outcome, Reply, VolunteerState
from steward.settings import Settings

# The order a lead reads them in: who is out, who is finished, who needs a call.
BUCKETS = ("out", "done", "missing", "partial")
MAX_SEGMENTS = 2


@dataclass(frozen=True)
class PairNow:
    """A pair as it stands at the moment of asking."""

    code: str
    patrol_days: str
    members: tuple[digest.MemberDay, ...]  # confirmed minutes of sessions closed today
    out_now: bool  # a member has a session open


@dataclass(frozen=True)
class TodayScope:
    """The place a lead's or office clerk's TODAY covers, and its pairs."""

    name: str
    pairs: tuple[PairNow, ...]


def bucket_of(pair: PairNow, now: datetime, rules: Settings) -> str:
    """Where a pair stands now: out, done, missing, partial, or off (not scheduled today)."""
    if pair.out_now:
        return "out"
    day = local_date(now, rules.tz)
    status = digest.pair_day(pair.patrol_days, pair.members, day, rules.PATROL_MINUTES)
    return {"done": "done", "absent": "missing", "partial": "partial"}.get(status or "", "off")


def today(
    actor: VolunteerState, scope: TodayScope | None, now: datetime, rules: Settings
) -> Outcome:
    """Answer a lead's TODAY with the pairs of their community, within two SMS segments."""
    language = actor.language
    if actor.role not in ("lead", "office") or scope is None:
        return Outcome("today", Reply(texts.render("lead_only", language), "reply"))
    grouped: dict[str, list[str]] = {}
    for pair in sorted(scope.pairs, key=lambda p: p.code):
        grouped.setdefault(bucket_of(pair, now, rules), []).append(pair.code)
    head = texts.render(
        "today_head",
        language,
        scope=scope.name,
        date=_date(now, language, rules),
        time=local_clock(now, rules.tz),
    )
    return Outcome("today", Reply(_fit(head, grouped, language), "reply"))


def _fit(head: str, grouped: dict[str, list[str]], language: str) -> str:
    """Name as many pair codes as two segments allow; the counts are always there."""
    longest = max((len(codes) for codes in grouped.values()), default=0)
    for shown in range(longest, -1, -1):
        body = head + _lines(grouped, shown, language)
        if segment_count(body) <= MAX_SEGMENTS:
            return body
    return body


def _lines(grouped: dict[str, list[str]], shown: int, language: str) -> str:
    parts = [
        texts.render(
            f"today_{bucket}",
            language,
            count=len(grouped[bucket]),
            codes=_codes(grouped[bucket], shown, language),
        )
        for bucket in BUCKETS
        if grouped.get(bucket)
    ]
    if grouped.get("off"):
        parts.append(texts.render("today_off", language, count=len(grouped["off"])))
    if not parts:
        return texts.render("today_no_pairs", language)
    return ("; " if language == "en" else "；").join(parts) + ("." if language == "en" else "。")


def _codes(codes: Sequence[str], shown: int, language: str) -> str:
    if shown == 0:
        return ""
    listed = " ".join(codes[:shown]) + ("..." if len(codes) > shown else "")
    return f" ({listed})" if language == "en" else f"（{listed}）"


def _date(now: datetime, language: str, rules: Settings) -> str:
    day = local_date(now, rules.tz)
    return f"{day.day} {day:%b}" if language == "en" else f"{day.month}月{day.day}日"
