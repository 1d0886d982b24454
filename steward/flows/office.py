"""The street office's decisions on flagged volunteers: keep (the ladder starts over) or remove.

The service never removes anyone by itself (SPEC §5); these are what a person's decision does,
whichever channel it comes from (the CLI now, the office's Telegram group later).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from steward.flows import attendance, recruitment, texts
from steward.flows.state import Candidate, Contact, Notice, VacancyContext


@dataclass(frozen=True)
class Person:
    contact: Contact
    status: str
    pair_code: str
    zone: str
    on_leave_from: date | None
    on_leave_until: date | None


@dataclass(frozen=True)
class Decision:
    volunteer_id: int
    new_status: str
    reset_ladder_on: date | None = None
    leave_pair: bool = False
    notices: tuple[Notice, ...] = ()


def keep(person: Person, today: date) -> Decision:
    """Keep a flagged volunteer: back to active (or on leave), and the absence count starts over."""
    on_leave = attendance.on_leave(person.on_leave_from, person.on_leave_until, today)
    return Decision(
        person.contact.volunteer_id, "on_leave" if on_leave else "active", reset_ladder_on=today
    )


def remove(
    person: Person,
    leads: tuple[Contact, ...],
    today: date,
    candidates: tuple[Candidate, ...] = (),
) -> Decision:
    """Remove a volunteer: no more messages, and the pair's leads are asked to fill the place,
    with up to three of the community's applicants named (递补)."""
    vacancy = VacancyContext(person.pair_code, person.zone, leads, candidates)
    key = f"vacancy:{person.contact.volunteer_id}:{today.isoformat()}"
    notices = recruitment.vacancy_notices(person.contact.name, vacancy, key)
    return Decision(person.contact.volunteer_id, "removed", leave_pair=True, notices=notices)


def review_reason(history: list[str], language: str) -> str:
    """Why someone is on the review list, from their settled days."""
    run = attendance.absence_run(history)
    if run >= attendance.FLAG_AT:
        return texts.render("flag_reason_run", language, count=run)
    if attendance.too_few_done(history):
        return texts.render("flag_reason_ratio", language)
    return ""
