"""Screening applications by text (SPEC §9), free of any channel.

`steward applicants list|approve|decline` call these; the office group's `/applicants`,
`/approve N PAIR` and `/decline N reason` are meant to call the same functions:

    await list_applicants(units, street=None, community=None, status="pending",
                          street_id=None, community_id=None) -> list[Applicant]
    await approve(units, number, pair_code, actor="tg:<user id>", now=now) -> ApproveResult
    await decline(units, number, reason, actor="tg:<user id>", now=now) -> DeclineResult

`Applicant.line(today, mask=True)` is one line for a group chat (the phone masked). Every error
is a `RecruitmentError` whose message can be shown to the operator as it is:
`NoSuchApplication`, `NotOpen`, `NoSuchPair`, `PairFull`, `NoReason`, `UnknownPlace`, `BadStatus`.

An approval or a decline is one unit of work: the decision, who took it and when, and the
message to the applicant commit together or not at all. The pledge's week runs out in the
hourly follow-up job (`lapse_pledges`, run by `shells.jobs.run_reports_job`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from steward.clock import utc
from steward.flows import recruitment, texts
from steward.flows.state import Notice
from steward.storage import recruitment_store as store
from steward.storage.models import Application, ApplicationStatus
from steward.storage.outbox_store import PRIORITY, NewMessage, enqueue, enqueue_notices
from steward.storage.unit import Connection, Topic, UnitOfWork

LISTABLE = ("pending", "approved", "joined", "declined", "lapsed")
DECIDABLE = (ApplicationStatus.PENDING, ApplicationStatus.APPROVED)
REASON_MAX = 40  # the decline reason as the applicant reads it (the SMS stays two segments)


class RecruitmentError(Exception):
    """A screening request that cannot be done; the message says why."""


class NoSuchApplication(RecruitmentError, LookupError):
    pass


class NotOpen(RecruitmentError):
    """The application was decided already (joined, declined, lapsed)."""


class NoSuchPair(RecruitmentError, LookupError):
    pass


class PairFull(RecruitmentError):
    pass


class NoReason(RecruitmentError, ValueError):
    pass


class UnknownPlace(RecruitmentError, LookupError):
    """No street or community by that name."""


class BadStatus(RecruitmentError, ValueError):
    pass


@dataclass(frozen=True)
class Applicant:
    number: int
    name: str
    phone: str | None
    channel: str
    street: str
    community: str
    birth: str
    party_member: bool
    experience: str
    lane: str
    status: str
    received_at: datetime | None
    pair_code: str
    decided_by: str
    decline_reason: str

    def age(self, today: date) -> int | None:
        return recruitment.age_of(self.birth, today)

    def line(self, today: date, *, mask: bool = False) -> str:
        """One line for the operator: number, who, marks, where, status."""
        age = self.age(today)
        phone = self.phone or self.channel
        if mask and self.phone:
            phone = texts.mask_phone(self.phone)
        marks = " ".join(
            word
            for word, on in (("党员", self.party_member), ("有经验", bool(self.experience)))
            if on
        )
        parts = [
            f"#{self.number}",
            self.name,
            f"{age}岁" if age is not None else "?",
            marks or "-",
            f"{self.street}{self.community}",
            phone,
            self.status + (f" {self.pair_code}" if self.pair_code else ""),
            f"经历:{self.experience or '无'}",
            f"意向:{self.lane or '无'}",
        ]
        if self.decline_reason:
            parts.append(f"理由:{self.decline_reason}")
        return "\t".join(parts)


@dataclass(frozen=True)
class ApproveResult:
    applicant: Applicant
    pair_code: str
    zone: str
    pledge_queued: bool


@dataclass(frozen=True)
class DeclineResult:
    applicant: Applicant
    reason: str
    message_queued: bool


def _applicant(
    app: Application, street: str = "", community: str = "", pair: str = ""
) -> Applicant:
    return Applicant(
        number=int(app.id),
        name=app.name,
        phone=app.phone,
        channel=app.channel,
        street=street,
        community=community,
        birth=app.birth,
        party_member=bool(app.party_member),
        experience=app.experience,
        lane=app.lane,
        status=str(app.status),
        received_at=app.received_at,
        pair_code=pair,
        decided_by=app.decided_by,
        decline_reason=app.decline_reason,
    )


async def list_applicants(
    units: UnitOfWork | None = None,
    *,
    street: str | None = None,
    community: str | None = None,
    status: str = "pending",
    street_id: int | None = None,
    community_id: int | None = None,
) -> list[Applicant]:
    """Applications in a status ("all" for every one), oldest first, in a street or community
    given by name (the CLI) or by id (a bound group)."""
    del units  # a read: no transaction needed; kept so every function here reads alike
    if status == "all":
        statuses = tuple(ApplicationStatus(s) for s in LISTABLE)
    elif status in LISTABLE:
        statuses = (ApplicationStatus(status),)
    else:
        raise BadStatus(f"no status {status!r}; use one of {', '.join(LISTABLE)} or all")
    if street is not None:
        street_id = await store.street_id_named(street)
        if street_id is None:
            raise UnknownPlace(f"no street named {street!r}")
    community_ids: list[int | None] = [community_id]
    if community is not None:
        found = await store.community_ids_named(community, street_id)
        if not found:
            raise UnknownPlace(f"no community named {community!r}")
        community_ids = list(found)
    rows: list[Application] = []
    for cid in community_ids:
        rows += await store.listed(statuses, street_id, cid)
    return [
        _applicant(
            r,
            r.community.street.name if r.community else "",
            r.community.name if r.community else "",
            r.pair.code if r.pair else "",
        )
        for r in sorted(rows, key=lambda r: r.id)
    ]


async def _open(number: int, conn: Connection) -> Application:
    app = await store.locked(number, conn)
    if app is None:
        raise NoSuchApplication(f"no application #{number}")
    if app.status not in DECIDABLE:
        raise NotOpen(f"application #{number} ({app.name}) is {app.status} already")
    return app


async def approve(
    units: UnitOfWork, number: int, pair_code: str, *, actor: str, now: datetime
) -> ApproveResult:
    """Assign application N to pair CODE of the applicant's community, which must have room;
    the applicant gets the pledge to accept with 同意 / AGREE."""
    now = utc(now)
    async with units.transaction(Topic.OUTBOX) as conn:
        app = await _open(number, conn)
        community = await store.community_of(app, conn)
        if community is None:
            raise NoSuchPair(f"application #{number} names no community")
        pair = await store.pair_named(community.id, pair_code, conn)
        if pair is None:
            raise NoSuchPair(f"no pair {pair_code!r} in {community.name}")
        serving = await store.serving_members(pair.id, conn)
        held = await store.promised_places(pair.id, app.id, conn)
        if len(serving) + held >= 2:
            who = ", ".join(v.name for v in serving) or "approved applicants"
            raise PairFull(f"pair {pair.code} in {community.name} has no vacancy ({who})")
        await store.record_decision(
            app, ApplicationStatus.APPROVED, actor, now, conn, pair_id=pair.id
        )
        zone = await store.zone_name_of(pair, conn)
        body = recruitment.pledge_text(pair.code, zone, app.language)
        queued = await enqueue(
            _to_applicant(app, body, "pledge", f"pledge:{app.id}:{pair.id}:{now.isoformat()}"),
            now,
            conn,
        )
    applicant = _applicant(app, "", community.name, pair.code)
    return ApproveResult(applicant, pair.code, zone, queued is not None)


async def decline(
    units: UnitOfWork, number: int, reason: str, *, actor: str, now: datetime
) -> DeclineResult:
    """Close application N with a reason; the applicant is told kindly."""
    reason = " ".join(reason.split())
    if not reason:
        raise NoReason("give a reason: the applicant is told it")
    now = utc(now)
    async with units.transaction(Topic.OUTBOX) as conn:
        app = await _open(number, conn)
        community = await store.community_of(app, conn)
        await store.record_decision(
            app, ApplicationStatus.DECLINED, actor, now, conn, reason=reason
        )
        body = texts.render("apply_declined", app.language, reason=texts.clip(reason, REASON_MAX))
        queued = await enqueue(
            _to_applicant(app, body, "declined", f"declined:{app.id}"), now, conn
        )
    name = community.name if community else ""
    return DeclineResult(_applicant(app, "", name), reason, queued is not None)


def _to_applicant(app: Application, body: str, kind: str, key: str) -> NewMessage:
    return NewMessage(
        channel=app.channel,
        address=app.address,
        body=body,
        kind=kind,
        priority=PRIORITY["alert"],
        dedupe_key=key,
    )


async def lapse_pledges(
    units: UnitOfWork, now: datetime, *, not_before: datetime | None = None, dry_run: bool = False
) -> list[Notice]:
    """Approvals a week old without 同意 lapse; the leads are told, naming other candidates.

    Computed from stored state as of `now`; the dedupe keys make a second run send nothing.
    """
    now = utc(now)
    sent: list[Notice] = []
    async with units.transaction(Topic.OUTBOX) as conn:
        for app in await store.due_to_lapse(now - timedelta(days=recruitment.PLEDGE_DAYS), conn):
            if app.community_id is None:
                continue
            pair = await store.pair_of(app, conn)
            others = tuple(
                c for c in await store.candidates(app.community_id, conn) if c.number != app.id
            )
            notices = recruitment.lapsed_notices(
                int(app.id),
                app.name,
                pair.code if pair else "",
                await store.leads(app.community_id, conn),
                others,
            )
            sent += notices
            if dry_run:
                continue
            await store.mark_lapsed(app, now, conn)
            await enqueue_notices(notices, now, conn, not_before=not_before)
    return sent
