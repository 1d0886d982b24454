"""The office's points actions and the ranking, as plain rules (SPEC §4).

An award, a redemption or a correction is decided here from the holder and their balance as
stored: the ledger line to append and the one-segment SMS that tells the volunteer. Nothing here
reads a clock or a database; the shell (`steward.shells.points`) does, in one transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from steward.flows import texts
from steward.flows.segments import segment_count
from steward.flows.state import Contact, Notice

AWARD, REDEEM, CORRECTION = "award", "redeem", "correction"
# A single office entry larger than this is a typo (an extra zero), not a decision.
MAX_POINTS = 10_000
NOTE_LIMIT = 200  # the ledger's note column
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_YEAR = re.compile(r"^\d{4}$")


class PointsError(Exception):
    """An office points action that cannot be done; the message says why."""


class NoSuchVolunteer(PointsError):
    """Nobody on the roster answers to that name or phone (in that street)."""


class AmbiguousName(PointsError):
    """More than one person has that name: the operator must choose, by phone."""

    def __init__(self, name: str, candidates: tuple[Holder, ...]) -> None:
        self.name = name
        self.candidates = candidates
        super().__init__(self.listing(mask=False))

    def listing(self, *, mask: bool) -> str:
        """Name the candidates (phones masked for a group chat, whole for the CLI)."""
        listed = "; ".join(
            f"{_phone(c.contact.phone, mask)} ({c.street} {c.community}"
            f"{' ' + c.pair_code if c.pair_code else ''})"
            for c in self.candidates
        )
        count = len(self.candidates)
        return f"{count} people are called {self.name!r}: {listed}; use the phone number"


class BeyondBalance(PointsError):
    """A redemption larger than the balance."""

    def __init__(self, holder: Holder, balance: int, asked: int) -> None:
        self.holder = holder
        self.balance = balance
        self.asked = asked
        super().__init__(
            f"{holder.contact.name} {holder.contact.phone} has {balance} points; "
            f"cannot redeem {asked}"
        )


class BadRequest(PointsError):
    """An amount or a reason the office would not mean (zero, negative, huge, blank)."""


class NoSuchEntry(PointsError):
    """No ledger entry has that number."""


class AlreadyCorrected(PointsError):
    """The entry was corrected before: correct the correction, or award anew."""


@dataclass(frozen=True)
class Holder:
    """Someone who holds points, as the office names them."""

    contact: Contact
    street_id: int
    street: str
    community: str
    pair_code: str
    serving: bool = True  # False once removed: their ledger may be corrected, never texted


@dataclass(frozen=True)
class LedgerLine:
    """One stored points entry."""

    id: int
    volunteer_id: int
    local_date: date
    amount: int
    kind: str
    note: str
    actor: str
    corrects_id: int | None
    corrected: bool  # a later correction names this entry


@dataclass(frozen=True)
class NewEntry:
    """A points entry to append (`corrects_id` names the entry a correction cancels)."""

    amount: int
    kind: str
    note: str
    local_date: date
    dedupe_key: str
    corrects_id: int | None = None


@dataclass(frozen=True)
class Decision:
    """What an office action writes: one ledger line and the SMS that tells the volunteer."""

    holder: Holder
    entry: NewEntry
    balance: int  # after the entry
    notice: Notice


@dataclass(frozen=True)
class Period:
    """A span of local days, `start` included and `end` excluded (a month or a year)."""

    start: date
    end: date
    label: str


@dataclass(frozen=True)
class Ranked:
    """One line of a ranking; `place` is shared by people tied on points and hours."""

    place: int
    volunteer_id: int
    name: str
    phone: str
    street: str
    community: str
    points: int
    done_days: int
    verified_reports: int
    confirmed_minutes: int


def month(text: str) -> Period:
    """Read YYYY-MM as that month."""
    match = _MONTH.match(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"{text!r} is not a month written YYYY-MM")
    return month_of(date(int(match.group(1)), int(match.group(2)), 1))


def month_of(day: date) -> Period:
    """The month `day` falls in."""
    start = day.replace(day=1)
    end = date(start.year + 1, 1, 1) if start.month == 12 else start.replace(month=start.month + 1)
    return Period(start, end, f"{start:%Y-%m}")


def year(text: str) -> Period:
    """Read YYYY as that calendar year."""
    if not _YEAR.match(text.strip()):
        raise ValueError(f"{text!r} is not a year written YYYY")
    first = int(text)
    return Period(date(first, 1, 1), date(first + 1, 1, 1), str(first))


def entry_key(kind: str, volunteer_id: int, now: datetime) -> str:
    """A dedupe key for an office entry made without a caller's own request key."""
    return f"{kind}:{volunteer_id}:{now.isoformat()}"


def award(
    holder: Holder, amount: int, reason: str, balance: int, today: date, key: str
) -> Decision:
    """Add points with a reason."""
    note = _required(reason, "a reason")
    _check(amount)
    entry = NewEntry(amount, AWARD, note, today, key)
    return _decided(holder, entry, balance, "points_awarded", "reason", note)


def redeem(holder: Holder, amount: int, item: str, balance: int, today: date, key: str) -> Decision:
    """Spend points on a prize; refused beyond the balance."""
    note = _required(item, "the item")
    _check(amount)
    if amount > balance:
        raise BeyondBalance(holder, balance, amount)
    entry = NewEntry(-amount, REDEEM, note, today, key)
    return _decided(holder, entry, balance, "points_redeemed", "item", note)


def correct(
    holder: Holder, original: LedgerLine, reason: str, balance: int, today: date
) -> Decision:
    """Cancel an entry by a new one of the opposite amount that names it."""
    note = _required(reason, "a reason")
    if original.corrected:
        raise AlreadyCorrected(f"entry {original.id} was corrected already")
    if original.amount == 0:
        raise BadRequest(f"entry {original.id} moved no points")
    # The dedupe key is unique in the ledger, so even two racing corrections write one line.
    entry = NewEntry(
        -original.amount, CORRECTION, note, today, f"correction:{original.id}", original.id
    )
    return _decided(holder, entry, balance, "points_corrected", "reason", note)


def _check(amount: int) -> None:
    if not 0 < amount <= MAX_POINTS:
        raise BadRequest(f"points must be a whole number from 1 to {MAX_POINTS}, got {amount}")


def _required(text: str, what: str) -> str:
    cleaned = " ".join(text.split())
    if not cleaned:
        raise BadRequest(f"please give {what}")
    return texts.clip(cleaned, NOTE_LIMIT)


def _decided(
    holder: Holder, entry: NewEntry, balance: int, key: str, field: str, free_text: str
) -> Decision:
    after = balance + entry.amount
    person = holder.contact
    values: dict[str, object] = {
        "name": texts.short_name(person.name, person.language),
        "points": abs(entry.amount),
        "change": f"{entry.amount:+d}",
        "balance": after,
    }

    def build(text: str) -> str:
        return texts.render(key, person.language, **{**values, field: text})

    body = fit_one_segment(build, free_text)
    notice = Notice(person, body, "points", f"points_sms:{entry.dedupe_key}")
    return Decision(holder, entry, after, notice)


def fit_one_segment(build: Callable[[str], str], free_text: str) -> str:
    """The longest cut of `free_text` whose message still fits one SMS segment."""
    cut = len(free_text)
    body = build(free_text)
    while segment_count(body) > 1 and cut > 0:
        cut -= 1
        body = build(texts.clip(free_text, cut))
    return body


_DONE = {
    "en": {
        AWARD: "awarded {points} points to {who}: {text}; balance {balance}",
        REDEEM: "{who} redeemed {points} points for {text}; balance {balance}",
        CORRECTION: "corrected {who} by {change} ({text}); balance {balance}",
    },
    "zh": {
        AWARD: "已为{who}加{points}分：{text}；现有{balance}分",
        REDEEM: "{who}已用{points}分兑换{text}；剩余{balance}分",
        CORRECTION: "已为{who}更正{change}分（{text}）；现有{balance}分",
    },
}
_SMS = {
    "en": ("; SMS queued", "; no SMS (opted out)", " (already recorded; nothing new)"),
    "zh": ("；已短信通知", "；对方已退订短信", "（此前已记录，未重复）"),
}


def done_message(
    kind: str,
    holder: Holder,
    amount: int,
    text: str,
    balance: int,
    *,
    sms_queued: bool,
    repeated: bool,
    language: str = "en",
    mask: bool = False,
) -> str:
    """What the operator is told after an office action (`mask`: for a group chat)."""
    lang = language if language in _DONE else "en"
    who = f"{holder.contact.name} {_phone(holder.contact.phone, mask)}"
    line = _DONE[lang][kind].format(
        who=who, points=abs(amount), change=f"{amount:+d}", text=text, balance=balance
    )
    queued, opted_out, again = _SMS[lang]
    if repeated:
        return line + again
    return line + (queued if sms_queued else opted_out)


def _phone(phone: str, mask: bool) -> str:
    return texts.mask_phone(phone) if mask else phone
