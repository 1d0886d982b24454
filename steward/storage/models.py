"""Database tables. Timestamps are UTC; a `local_date` column is kept wherever a local day matters.

SQLite compares datetimes as text, so every datetime written here must be UTC (see
`steward.clock.utc`). Ledgers (hours, points) are append-only: corrections are new rows.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.models import Model


class Role(StrEnum):
    STEWARD = "steward"
    LEAD = "lead"
    OFFICE = "office"


class VolunteerStatus(StrEnum):
    ACTIVE = "active"
    ON_LEAVE = "on_leave"
    FLAGGED = "flagged"
    REMOVED = "removed"  # by the office's decision
    RESIGNED = "resigned"  # at their own request (退出): a removal too, never messaged again


# Volunteers who no longer serve: they get no messages and count nowhere.
GONE: tuple[VolunteerStatus, ...] = (VolunteerStatus.REMOVED, VolunteerStatus.RESIGNED)
GONE_VALUES: tuple[str, ...] = tuple(s.value for s in GONE)


class OutboxStatus(StrEnum):
    """Lifecycle of an outbound message.

    queued -> sending -> sent -> delivered
    queued <- sending            (transient error: back to queued with a later next_attempt_at)
    sending -> failed            (permanent error, or attempts exhausted: final)
    sent -> delivered | undelivered | failed   (provider status callbacks; never backwards)
    """

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"


# A later status never moves a message backwards: provider callbacks may arrive out of order.
STATUS_RANK: dict[str, int] = {
    OutboxStatus.QUEUED: 0,
    OutboxStatus.SENDING: 1,
    OutboxStatus.SENT: 2,
    OutboxStatus.DELIVERED: 3,
    OutboxStatus.UNDELIVERED: 3,
    OutboxStatus.FAILED: 3,
}


def is_forward(current: str, new: str) -> bool:
    """Tell whether moving from `current` to `new` is progress (a final status is final)."""
    if new not in STATUS_RANK:
        return False
    # A status we do not rank is behind every known one.
    return STATUS_RANK[new] > STATUS_RANK.get(current, -1)


class Street(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "streets"


class Community(Model):
    id = fields.IntField(primary_key=True)
    street: fields.ForeignKeyRelation[Street] = fields.ForeignKeyField(
        "models.Street", related_name="communities", on_delete=fields.RESTRICT
    )
    name = fields.CharField(max_length=100)
    created_at = fields.DatetimeField(auto_now_add=True)

    street_id: int

    class Meta:
        table = "communities"
        unique_together = (("street", "name"),)


class Zone(Model):
    """A lane or set of lanes a pair adopts (free text from the roster)."""

    id = fields.IntField(primary_key=True)
    community: fields.ForeignKeyRelation[Community] = fields.ForeignKeyField(
        "models.Community", related_name="zones", on_delete=fields.RESTRICT
    )
    name = fields.CharField(max_length=200)

    class Meta:
        table = "zones"
        unique_together = (("community", "name"),)


class Pair(Model):
    """Two stewards sharing a zone and a patrol schedule (code unique within the community)."""

    id = fields.IntField(primary_key=True)
    community: fields.ForeignKeyRelation[Community] = fields.ForeignKeyField(
        "models.Community", related_name="pairs", on_delete=fields.RESTRICT
    )
    code = fields.CharField(max_length=20)
    zone: fields.ForeignKeyNullableRelation[Zone] = fields.ForeignKeyField(
        "models.Zone", related_name="pairs", null=True, on_delete=fields.SET_NULL
    )
    patrol_start = fields.CharField(max_length=5)  # HH:MM local
    # Canonical weekday list, Monday first, e.g. "mon,tue,wed,thu,fri".
    patrol_days = fields.CharField(max_length=40, default="mon,tue,wed,thu,fri,sat,sun")

    community_id: int
    zone_id: int | None

    class Meta:
        table = "pairs"
        unique_together = (("community", "code"),)


class Volunteer(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100)
    phone = fields.CharField(max_length=20, unique=True)  # E.164
    role = fields.CharEnumField(Role, max_length=10, default=Role.STEWARD)
    language = fields.CharField(max_length=2, default="zh")
    status = fields.CharEnumField(VolunteerStatus, max_length=10, default=VolunteerStatus.ACTIVE)
    on_leave_from = fields.DateField(null=True)
    on_leave_until = fields.DateField(null=True)
    # The absence ladder counts only days after this (the office's "keep" resets it).
    ladder_reset_on = fields.DateField(null=True)
    street: fields.ForeignKeyRelation[Street] = fields.ForeignKeyField(
        "models.Street", related_name="volunteers", on_delete=fields.RESTRICT
    )
    community: fields.ForeignKeyRelation[Community] = fields.ForeignKeyField(
        "models.Community", related_name="volunteers", on_delete=fields.RESTRICT
    )
    pair: fields.ForeignKeyNullableRelation[Pair] = fields.ForeignKeyField(
        "models.Pair", related_name="members", null=True, on_delete=fields.SET_NULL
    )
    birth = fields.CharField(max_length=10, null=True)  # YYYY-MM or YYYY-MM-DD as given
    volunteer_no = fields.CharField(max_length=40, null=True)
    # The local day their service began: nobody is settled absent for days before it. A stored
    # fact (from the roster) rather than `created_at`, so history and tests never depend on the
    # day a row happened to be written.
    joined_on = fields.DateField()
    telegram_chat_id = fields.BigIntField(null=True, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    # Foreign-key columns tortoise adds, declared so the type checker knows them.
    street_id: int
    community_id: int
    pair_id: int | None
    conversation: fields.BackwardOneToOneRelation[ConversationState]

    class Meta:
        table = "volunteers"


class AttendanceDay(Model):
    """One volunteer's settled day (day close): done, partial, absent, excused or off."""

    id = fields.BigIntField(primary_key=True)
    volunteer: fields.ForeignKeyRelation[Volunteer] = fields.ForeignKeyField(
        "models.Volunteer", related_name="attendance", on_delete=fields.CASCADE
    )
    local_date = fields.DateField()
    status = fields.CharField(max_length=10)
    minutes = fields.IntField(default=0)
    settled_at = fields.DatetimeField()

    volunteer_id: int

    class Meta:
        table = "attendance_days"
        unique_together = (("volunteer", "local_date"),)


class OptOut(Model):
    """An address that texted STOP. Only the STOP confirmation may be sent to it."""

    address = fields.CharField(max_length=64, primary_key=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "opt_outs"


class InboundMessage(Model):
    """Every message received, stored before the provider is answered."""

    id = fields.BigIntField(primary_key=True)
    channel = fields.CharField(max_length=16)
    external_id = fields.CharField(max_length=64)
    address = fields.CharField(max_length=64)
    text = fields.TextField()
    media: fields.JSONField[list[dict[str, str]]] = fields.JSONField(default=list)
    received_at = fields.DatetimeField()
    processed_at = fields.DatetimeField(null=True)
    volunteer: fields.ForeignKeyNullableRelation[Volunteer] = fields.ForeignKeyField(
        "models.Volunteer", related_name="inbound", null=True, on_delete=fields.SET_NULL
    )
    intent = fields.CharField(max_length=32, null=True)
    replied = fields.BooleanField(default=False)
    # What else came with it (Telegram: a shared contact, a location, the sender in a group).
    details: fields.JSONField[dict[str, Any]] = fields.JSONField(null=True)
    # Processing that raised: how often, the last error, and when to try again.
    attempts = fields.SmallIntField(default=0, db_default=0)
    last_error = fields.TextField(null=True)
    retry_at = fields.DatetimeField(null=True)

    class Meta:
        table = "inbound_messages"
        unique_together = (("channel", "external_id"),)
        indexes = (("address", "received_at"), ("processed_at", "id"))


class OutboxMessage(Model):
    id = fields.BigIntField(primary_key=True)
    channel = fields.CharField(max_length=16)
    address = fields.CharField(max_length=64)
    body = fields.TextField()
    kind = fields.CharField(max_length=32)
    keyboard = fields.CharField(max_length=20, null=True)  # a Telegram reply keyboard to show
    # Telegram: the message of ours this one replaces (a report card after a button press).
    edit_message_id = fields.BigIntField(null=True)
    # Telegram: a picture sent with the body as its caption (the digest chart), a file path.
    attachment = fields.CharField(max_length=255, null=True)
    # Lower goes first: replies 0, lead alerts 1, nudges 2, digests 3.
    priority = fields.SmallIntField(default=0)
    dedupe_key = fields.CharField(max_length=200, null=True, unique=True)
    status = fields.CharEnumField(OutboxStatus, max_length=12, default=OutboxStatus.QUEUED)
    attempts = fields.SmallIntField(default=0)
    next_attempt_at = fields.DatetimeField()
    # When a dispatcher last claimed the row. On a `sending` row: the claim in progress (or a
    # dead one, after the lease). On a `queued` row: an attempt whose outcome we never learned
    # (a crash mid-send, a timed-out answer): the next claim asks the provider before sending.
    claimed_at = fields.DatetimeField(null=True)
    provider_id = fields.CharField(max_length=64, null=True, unique=True)
    error_code = fields.CharField(max_length=32, null=True)
    error_text = fields.TextField(null=True)
    in_reply_to: fields.ForeignKeyNullableRelation[InboundMessage] = fields.ForeignKeyField(
        "models.InboundMessage", related_name="replies", null=True, on_delete=fields.SET_NULL
    )
    volunteer: fields.ForeignKeyNullableRelation[Volunteer] = fields.ForeignKeyField(
        "models.Volunteer", related_name="outbox", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField(null=True)

    volunteer_id: int | None

    class Meta:
        table = "outbox"
        indexes = (("status", "next_attempt_at"), ("address", "created_at"))


class ConversationState(Model):
    """A guided step waiting for a volunteer's answer, kept in the DB rather than in memory."""

    id = fields.IntField(primary_key=True)
    volunteer: fields.OneToOneRelation[Volunteer] = fields.OneToOneField(
        "models.Volunteer", related_name="conversation", on_delete=fields.CASCADE
    )
    step = fields.CharField(max_length=32)
    data: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    expires_at = fields.DatetimeField()

    class Meta:
        table = "conversation_states"


class PatrolSession(Model):
    id = fields.BigIntField(primary_key=True)
    volunteer: fields.ForeignKeyRelation[Volunteer] = fields.ForeignKeyField(
        "models.Volunteer", related_name="sessions", on_delete=fields.RESTRICT
    )
    pair: fields.ForeignKeyNullableRelation[Pair] = fields.ForeignKeyField(
        "models.Pair", related_name="sessions", null=True, on_delete=fields.SET_NULL
    )
    local_date = fields.DateField()  # the local day of the check-in owns the session
    started_at = fields.DatetimeField()
    ended_at = fields.DatetimeField(null=True)
    minutes = fields.IntField(null=True)
    # "volunteer" (checked out), "auto" (closed at SESSION_MAX_MINUTES), "undone" (UNDO).
    closed_by = fields.CharField(max_length=10, null=True)
    confirmed = fields.BooleanField(default=True)

    volunteer_id: int
    pair_id: int | None

    class Meta:
        table = "patrol_sessions"
        indexes = (("volunteer_id", "local_date"),)


class HoursEntry(Model):
    """Service-hours ledger, append-only: the record exported to the national system."""

    id = fields.BigIntField(primary_key=True)
    volunteer: fields.ForeignKeyRelation[Volunteer] = fields.ForeignKeyField(
        "models.Volunteer", related_name="hours", on_delete=fields.RESTRICT
    )
    session: fields.ForeignKeyNullableRelation[PatrolSession] = fields.ForeignKeyField(
        "models.PatrolSession", related_name="hours", null=True, on_delete=fields.SET_NULL
    )
    local_date = fields.DateField()
    minutes = fields.IntField()  # negative to reverse an earlier entry
    zone_name = fields.CharField(max_length=200, default="")
    confirmed = fields.BooleanField(default=True)
    note = fields.CharField(max_length=200, default="")
    # A correction names the entry it cancels; the original line is never edited.
    corrects: fields.ForeignKeyNullableRelation[HoursEntry] = fields.ForeignKeyField(
        "models.HoursEntry", related_name="corrections", null=True, on_delete=fields.RESTRICT
    )
    created_at = fields.DatetimeField()

    corrects_id: int | None

    class Meta:
        table = "hours_ledger"


class PointsEntry(Model):
    """Points ledger, append-only. The balance is the sum of `amount`."""

    id = fields.BigIntField(primary_key=True)
    volunteer: fields.ForeignKeyRelation[Volunteer] = fields.ForeignKeyField(
        "models.Volunteer", related_name="points", on_delete=fields.RESTRICT
    )
    amount = fields.IntField()
    kind = fields.CharField(max_length=32)  # patrol_day, report_filed, award, redeem, undo...
    local_date = fields.DateField()
    note = fields.CharField(max_length=200, default="")
    report: fields.ForeignKeyNullableRelation[Report] = fields.ForeignKeyField(
        "models.Report", related_name="points", null=True, on_delete=fields.SET_NULL
    )
    # Makes awards idempotent, e.g. "patrol_day:<volunteer>:<date>".
    dedupe_key = fields.CharField(max_length=200, null=True, unique=True)
    # A correction names the entry it cancels (its dedupe key "correction:<id>" allows one).
    corrects: fields.ForeignKeyNullableRelation[PointsEntry] = fields.ForeignKeyField(
        "models.PointsEntry", related_name="corrections", null=True, on_delete=fields.RESTRICT
    )
    # Who made an office entry (award, redemption, correction); empty for the service's own.
    actor = fields.CharField(max_length=100, default="", db_default="")
    created_at = fields.DatetimeField()

    volunteer_id: int
    corrects_id: int | None

    class Meta:
        table = "points_ledger"
        indexes = (("volunteer_id", "local_date"),)


class Report(Model):
    id = fields.IntField(primary_key=True)
    number = fields.IntField(unique=True)  # the short "#N" volunteers see
    reporter: fields.ForeignKeyRelation[Volunteer] = fields.ForeignKeyField(
        "models.Volunteer", related_name="reports", on_delete=fields.RESTRICT
    )
    community: fields.ForeignKeyRelation[Community] = fields.ForeignKeyField(
        "models.Community", related_name="reports", on_delete=fields.RESTRICT
    )
    zone: fields.ForeignKeyNullableRelation[Zone] = fields.ForeignKeyField(
        "models.Zone", related_name="reports", null=True, on_delete=fields.SET_NULL
    )
    category = fields.SmallIntField()
    urgent = fields.BooleanField(default=False)
    description = fields.TextField(default="")
    place = fields.CharField(max_length=200, default="")
    status = fields.CharField(max_length=20, default="new")
    duplicate_of: fields.ForeignKeyNullableRelation[Report] = fields.ForeignKeyField(
        "models.Report", related_name="duplicates", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    reporter_id: int
    community_id: int
    zone_id: int | None
    duplicate_of_id: int | None

    class Meta:
        table = "reports"


class ReportEvent(Model):
    id = fields.BigIntField(primary_key=True)
    report: fields.ForeignKeyRelation[Report] = fields.ForeignKeyField(
        "models.Report", related_name="events", on_delete=fields.CASCADE
    )
    from_status = fields.CharField(max_length=20, null=True)
    to_status = fields.CharField(max_length=20)
    actor: fields.ForeignKeyNullableRelation[Volunteer] = fields.ForeignKeyField(
        "models.Volunteer", related_name="report_events", null=True, on_delete=fields.SET_NULL
    )
    channel = fields.CharField(max_length=16, default="")
    note = fields.TextField(default="")
    created_at = fields.DatetimeField()

    class Meta:
        table = "report_events"


class Attachment(Model):
    """A photo or a location sent with or after a report (SMS MMS or Telegram)."""

    id = fields.BigIntField(primary_key=True)
    report: fields.ForeignKeyNullableRelation[Report] = fields.ForeignKeyField(
        "models.Report", related_name="attachments", null=True, on_delete=fields.CASCADE
    )
    inbound: fields.ForeignKeyNullableRelation[InboundMessage] = fields.ForeignKeyField(
        "models.InboundMessage", related_name="attachments", null=True, on_delete=fields.SET_NULL
    )
    kind = fields.CharField(max_length=16)  # photo | location
    url = fields.TextField(default="")
    content_type = fields.CharField(max_length=100, default="")
    latitude = fields.FloatField(null=True)
    longitude = fields.FloatField(null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "attachments"


class ChatInvite(Model):
    """A one-time code that binds a Telegram group to a community's leads or a street office."""

    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=16, unique=True)
    role = fields.CharEnumField(Role, max_length=10)  # lead or office
    street: fields.ForeignKeyRelation[Street] = fields.ForeignKeyField(
        "models.Street", related_name="chat_invites", on_delete=fields.CASCADE
    )
    community: fields.ForeignKeyNullableRelation[Community] = fields.ForeignKeyField(
        "models.Community", related_name="chat_invites", null=True, on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    used_by_chat_id = fields.BigIntField(null=True)

    street_id: int
    community_id: int | None

    class Meta:
        table = "chat_invites"


class ChatGroup(Model):
    """A Telegram group bound to a community's leads (role lead) or a street office (office)."""

    id = fields.IntField(primary_key=True)
    chat_id = fields.BigIntField(unique=True)
    title = fields.CharField(max_length=200, default="")
    role = fields.CharEnumField(Role, max_length=10)
    street: fields.ForeignKeyRelation[Street] = fields.ForeignKeyField(
        "models.Street", related_name="chat_groups", on_delete=fields.CASCADE
    )
    community: fields.ForeignKeyNullableRelation[Community] = fields.ForeignKeyField(
        "models.Community", related_name="chat_groups", null=True, on_delete=fields.CASCADE
    )
    bound_at = fields.DatetimeField()

    street_id: int
    community_id: int | None

    class Meta:
        table = "chat_groups"


class ApplicationStatus(StrEnum):
    """Lifecycle of an application to serve (SPEC §9).

    draft -> pending                 (the applicant answered the last question)
    pending -> approved | declined   (the street decides; who and when are stored)
    approved -> joined | declined | lapsed   (同意 within 7 days, or not)

    A draft holds the conversation of someone not on the roster: the step waiting for an
    answer and the answers so far. An applicant under 18, or one who texts STOP, leaves no row.
    """

    DRAFT = "draft"
    PENDING = "pending"
    APPROVED = "approved"
    JOINED = "joined"
    DECLINED = "declined"
    LAPSED = "lapsed"


class Application(Model):
    """Someone who applied by text to become a steward: their answers and what became of it."""

    id = fields.IntField(primary_key=True)  # the N of `steward applicants approve N`
    channel = fields.CharField(max_length=16)
    address = fields.CharField(max_length=64)  # E.164, or telegram:<chat id>
    phone = fields.CharField(max_length=20, null=True)  # E.164 when the applicant texted by SMS
    language = fields.CharField(max_length=2, default="zh")
    status = fields.CharEnumField(ApplicationStatus, max_length=10, default=ApplicationStatus.DRAFT)
    # The guided conversation while a draft: the step waiting for an answer, until when.
    step = fields.CharField(max_length=32, null=True)
    step_expires_at = fields.DatetimeField(null=True)
    # The answers (SPEC §9 asks for nothing else).
    name = fields.CharField(max_length=100, default="")
    community: fields.ForeignKeyNullableRelation[Community] = fields.ForeignKeyField(
        "models.Community", related_name="applications", null=True, on_delete=fields.RESTRICT
    )
    birth = fields.CharField(max_length=7, default="")  # YYYY-MM
    party_member = fields.BooleanField(null=True)
    experience = fields.CharField(max_length=200, default="")
    lane = fields.CharField(max_length=200, default="")
    started_at = fields.DatetimeField()
    received_at = fields.DatetimeField(null=True)  # when the last answer came in
    # The street's decision, and the pair an approved applicant is to join.
    pair: fields.ForeignKeyNullableRelation[Pair] = fields.ForeignKeyField(
        "models.Pair", related_name="applications", null=True, on_delete=fields.SET_NULL
    )
    decided_by = fields.CharField(max_length=100, default="")
    decided_at = fields.DatetimeField(null=True)
    decline_reason = fields.CharField(max_length=200, default="")
    # The record of the signed pledge (承诺书): when the applicant answered 同意.
    pledge_accepted_at = fields.DatetimeField(null=True)
    lapsed_at = fields.DatetimeField(null=True)
    volunteer: fields.ForeignKeyNullableRelation[Volunteer] = fields.ForeignKeyField(
        "models.Volunteer", related_name="applications", null=True, on_delete=fields.SET_NULL
    )
    updated_at = fields.DatetimeField(auto_now=True)

    community_id: int | None
    pair_id: int | None
    volunteer_id: int | None

    class Meta:
        table = "applications"
        indexes = (("address", "status"), ("community_id", "status"))
