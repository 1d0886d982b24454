"""What the flows decide from (state loaded by storage) and what they decide (an Outcome).

Plain frozen dataclasses: no ORM objects cross into `flows`, so every rule is testable
without a database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # leads.py builds on this module; the annotation alone needs the name
    from steward.flows.leads import TodayScope


@dataclass(frozen=True)
class VolunteerState:
    id: int
    name: str
    phone: str
    role: str
    language: str
    status: str
    street_id: int
    community_id: int
    pair_id: int | None
    zone_name: str
    on_leave_until: date | None = None
    on_leave_from: date | None = None
    telegram_chat_id: int | None = None  # linked private chat: messages go there, SMS is fallback


@dataclass(frozen=True)
class SessionState:
    id: int
    local_date: date
    started_at: datetime
    ended_at: datetime | None
    minutes: int | None
    closed_by: str | None
    confirmed: bool


@dataclass(frozen=True)
class PointsSummary:
    balance: int
    this_month: int
    rank: int
    ranked: int


@dataclass(frozen=True)
class ConversationStep:
    step: str
    data: dict[str, Any]
    expires_at: datetime


@dataclass(frozen=True)
class SenderHistory:
    """What we know of this sender's recent traffic (for the loop and flood guards)."""

    # Earlier copies of this same text, in the last two minutes, that got an answer.
    same_text_answers: int = 0
    messages_last_two_minutes: int = 0
    echoes_our_reply: bool = False
    # An earlier text of the last two minutes was one of our own replies sent back (a machine).
    echoed_recently: bool = False
    courtesy_reply_within_day: bool = False


@dataclass(frozen=True)
class PatrolDay:
    """The volunteer's patrol state for one local day."""

    open_session: SessionState | None
    last_closed: SessionState | None
    closed_minutes_today: int
    day_award_given: bool
    day_awards_so_far: int


@dataclass(frozen=True)
class Contact:
    """Someone we may text: a lead, office staff, or a report's reporter."""

    volunteer_id: int
    name: str
    phone: str
    language: str
    telegram_chat_id: int | None = None  # set once they linked Telegram: reach them there


def contact_of(vol: VolunteerState) -> Contact:
    """How to reach the sender of a message."""
    return Contact(vol.id, vol.name, vol.phone, vol.language, vol.telegram_chat_id)


@dataclass(frozen=True)
class ReportView:
    id: int
    number: int
    reporter_id: int
    community_id: int
    street_id: int
    zone_id: int | None
    category: int
    urgent: bool
    status: str
    description: str
    place: str
    created_at: datetime
    updated_at: datetime
    duplicate_of: int | None = None  # the other report's number


@dataclass(frozen=True)
class ReportsContext:
    """What report flows need about the sender's world."""

    next_number: int
    zone_id: int | None
    own_recent: ReportView | None  # the sender's latest report of the last 30 minutes
    zone_recent: tuple[ReportView, ...]  # reports in the sender's zone, last 24 hours
    target: ReportView | None  # the report the text names ("查 12")
    target_reporter: Contact | None
    leads: tuple[Contact, ...]  # the sender's (or the target's) community leads
    office: tuple[Contact, ...]  # the street's office staff


@dataclass(frozen=True)
class ConfirmTarget:
    """An automatically closed session a lead may confirm, with that volunteer's day so far."""

    volunteer: Contact
    session: SessionState
    day: PatrolDay


@dataclass(frozen=True)
class LeaveTarget:
    """Someone a lead puts on leave, with their partner."""

    volunteer: Contact
    partner: Contact | None


@dataclass(frozen=True)
class SharedContact:
    """A contact card sent in a Telegram private chat (the request_contact button sends one)."""

    phone: str  # E.164 when it could be read, else as sent
    user_id: int | None  # the Telegram user the card belongs to, if Telegram knows it


@dataclass(frozen=True)
class LinkTelegram:
    """Link a volunteer to the Telegram private chat that proved to be theirs."""

    volunteer_id: int
    chat_id: int


@dataclass(frozen=True)
class CommunityChoice:
    """A community an applicant may choose (SPEC §9: by name, or a menu when there are few)."""

    id: int
    street_id: int
    name: str


@dataclass(frozen=True)
class ApplicationState:
    """An application by text: a draft still being answered, or one awaiting a decision."""

    id: int
    status: str  # draft | pending | approved (the open ones; the others are history)
    language: str
    step: str | None = None
    step_expires_at: datetime | None = None
    name: str = ""
    community_id: int | None = None
    community_name: str = ""
    birth: str = ""  # YYYY-MM
    party_member: bool | None = None
    experience: str = ""
    lane: str = ""
    phone: str | None = None
    pair_id: int | None = None  # the pair an approved applicant is to join
    pair_code: str = ""
    zone_name: str = ""


@dataclass(frozen=True)
class ApplicantContext:
    """What recruitment needs about a sender who is not on the roster."""

    application: ApplicationState | None
    communities: tuple[CommunityChoice, ...] = ()
    leads: tuple[Contact, ...] = ()  # the leads of the application's community
    partner: Contact | None = None  # who serves in the pair an approved applicant joins
    pair_members: int = 0  # how many serve in that pair now


@dataclass(frozen=True)
class Candidate:
    """An applicant the leads may ask to fill a vacancy (递补)."""

    number: int
    name: str
    party_member: bool
    experienced: bool


@dataclass(frozen=True)
class VacancyContext:
    """What telling the leads of a vacancy needs: the pair, the leads, who could fill it."""

    pair_code: str
    zone_name: str
    leads: tuple[Contact, ...]
    candidates: tuple[Candidate, ...]


@dataclass(frozen=True)
class InboxContext:
    channel: str
    address: str
    text: str
    received_at: datetime
    volunteer: VolunteerState | None
    history: SenderHistory
    conversation: ConversationStep | None = None
    patrol: PatrolDay | None = None
    points: PointsSummary | None = None
    media: tuple[tuple[str, str], ...] = ()  # (url, content type) of photos that came along
    reports: ReportsContext | None = None
    confirm_target: ConfirmTarget | None = None
    partner: Contact | None = None
    leave_target: LeaveTarget | None = None
    today: TodayScope | None = None  # a lead's TODAY: their community's pairs
    shared_contact: SharedContact | None = None  # Telegram: a contact the sender shared
    contact_match: Contact | None = None  # the roster volunteer with that contact's phone
    location: tuple[float, float] | None = None  # Telegram: a location pin (latitude, longitude)
    sender_language: str | None = None  # Telegram: the language the sender's app is set to
    applicant: ApplicantContext | None = None  # someone not on the roster: their application
    vacancy: VacancyContext | None = None  # a steward about to resign: who to tell, who could fill


# ---- effects: what storage must apply, in the same transaction as the reply ----


@dataclass(frozen=True)
class OpenSession:
    started_at: datetime
    local_date: date


@dataclass(frozen=True)
class CloseSession:
    session_id: int
    ended_at: datetime
    minutes: int
    closed_by: str
    confirmed: bool
    local_date: date


@dataclass(frozen=True)
class UndoCheckIn:
    session_id: int
    at: datetime


@dataclass(frozen=True)
class UndoCheckOut:
    session_id: int
    minutes: int
    local_date: date


@dataclass(frozen=True)
class SetLeave:
    """Put a volunteer on leave from one day to another (inclusive), or end it (None)."""

    volunteer_id: int
    until: date | None
    start: date | None = None
    in_force: bool = True  # False when leave ends (status back to active)


@dataclass(frozen=True)
class ConfirmSession:
    session_id: int
    volunteer_id: int
    minutes: int
    local_date: date


@dataclass(frozen=True)
class AwardPoints:
    amount: int
    kind: str
    local_date: date
    dedupe_key: str
    note: str = ""
    volunteer_id: int | None = None  # None: the sender
    report_number: int | None = None


@dataclass(frozen=True)
class CreateReport:
    number: int
    category: int
    urgent: bool
    description: str
    place: str
    zone_id: int | None
    duplicate_of: int | None  # the earlier report's number
    media: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class AttachMedia:
    report_number: int
    media: tuple[tuple[str, str], ...]
    location: tuple[float, float] | None = None  # a Telegram location pin


@dataclass(frozen=True)
class MoveReport:
    """One lifecycle step, stored as a report event (who, when, channel, note)."""

    report_number: int
    from_status: str
    to_status: str
    note: str = ""


@dataclass(frozen=True)
class SetOptOut:
    opted_out: bool


@dataclass(frozen=True)
class SetConversation:
    step: str
    data: dict[str, Any]
    expires_at: datetime


@dataclass(frozen=True)
class ClearConversation:
    pass


@dataclass(frozen=True)
class SaveApplication:
    """Create the sender's application (`application_id` None) or change it: answers, step,
    status. `changes` names columns of the applications table."""

    application_id: int | None
    changes: dict[str, Any]


@dataclass(frozen=True)
class DiscardApplication:
    """Forget a draft application entirely (under 18, or the applicant texted STOP)."""

    application_id: int


@dataclass(frozen=True)
class JoinFromApplication:
    """The pledge is accepted: the applicant becomes an active steward of the approved pair."""

    application_id: int
    joined_on: date


@dataclass(frozen=True)
class Resign:
    """A steward ends their service (退出): resigned, and their pair has a vacancy."""

    volunteer_id: int


Effect = (
    LinkTelegram
    | SetLeave
    | ConfirmSession
    | CreateReport
    | AttachMedia
    | MoveReport
    | OpenSession
    | CloseSession
    | UndoCheckIn
    | UndoCheckOut
    | AwardPoints
    | SetOptOut
    | SetConversation
    | ClearConversation
    | SaveApplication
    | DiscardApplication
    | JoinFromApplication
    | Resign
)


@dataclass(frozen=True)
class Reply:
    body: str
    kind: str
    # Sent even to an opted-out address (only the STOP confirmation needs this).
    despite_opt_out: bool = False
    # A Telegram reply keyboard to show with it: "contact" (share your number) or "main".
    keyboard: str | None = None


@dataclass(frozen=True)
class Notice:
    """A message to someone other than the sender (a lead, the office, a reporter)."""

    to: Contact
    body: str
    kind: str
    dedupe_key: str | None = None
    # A new report's alert: in a bound lead group it becomes a card with buttons for it.
    card: int | None = None
    # What a bound group reads instead of `body` (the full digest rather than its SMS form).
    group_body: str | None = None


@dataclass(frozen=True)
class Outcome:
    intent: str
    reply: Reply | None
    effects: tuple[Effect, ...] = field(default_factory=tuple)
    notices: tuple[Notice, ...] = field(default_factory=tuple)
