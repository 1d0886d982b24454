"""Attendance rules (SPEC §4-5): what a day counts as, and where someone stands on the ladder.

    done     closed, confirmed sessions that day reach PATROL_MINUTES
    partial  some minutes, not enough
    excused  on leave that day (and nothing patrolled)
    absent   scheduled, not on leave, nothing patrolled
    off      not scheduled (and nothing patrolled)

The absence ladder counts consecutive scheduled days `absent`; leave and off days neither count
nor break the run: 2 -> a kind reminder, 4 -> the leads are asked to talk, 6 -> flagged for the
office's review. Fewer than half the scheduled days done over the last 30 also flags.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
REMIND_AT, TALK_AT, FLAG_AT = 2, 4, 6
LOW_DONE_WINDOW = 30


def scheduled_on(patrol_days: str, day: date) -> bool:
    """Whether a pair patrols on this weekday ("mon,tue,..." as the roster stores it)."""
    return WEEKDAYS[day.weekday()] in {d.strip() for d in patrol_days.split(",")}


def on_leave(start: date | None, until: date | None, day: date) -> bool:
    return start is not None and until is not None and start <= day <= until


def day_status(*, minutes: int, scheduled: bool, excused: bool, target: int) -> str:
    """Settle one volunteer's day."""
    if minutes >= target:
        return "done"
    if minutes > 0:
        return "partial"
    if excused:
        return "excused"
    return "absent" if scheduled else "off"


@dataclass(frozen=True)
class LadderStep:
    absences: int  # consecutive absences that count
    step: str | None  # "remind", "talk", "flag" when this day reaches a rung, else None


def absence_run(statuses: Sequence[str]) -> int:
    """Consecutive absences at the end of a history (oldest first); leave and off are skipped."""
    run = 0
    for status in reversed(statuses):
        if status in ("excused", "off"):
            continue
        if status != "absent":
            break
        run += 1
    return run


def ladder_step(statuses: Sequence[str]) -> LadderStep:
    """Where the latest settled day puts someone on the ladder (a rung is reached once)."""
    run = absence_run(statuses)
    rungs = {REMIND_AT: "remind", TALK_AT: "talk", FLAG_AT: "flag"}
    last_counts = bool(statuses) and statuses[-1] == "absent"
    return LadderStep(run, rungs.get(run) if last_counts else None)


def too_few_done(statuses: Sequence[str]) -> bool:
    """Fewer than half of the scheduled days done, over the last 30 settled days."""
    window = list(statuses)[-LOW_DONE_WINDOW:]
    scheduled = [s for s in window if s in ("done", "partial", "absent")]
    if len(window) < LOW_DONE_WINDOW or not scheduled:
        return False  # judge only a full month, never a newcomer's first week
    return sum(s == "done" for s in scheduled) * 2 < len(scheduled)
