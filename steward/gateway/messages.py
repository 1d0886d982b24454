"""The one message shape at the edge, whatever the provider (no database ids here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Media:
    """A photo (or other file) that came with a message."""

    url: str
    content_type: str


@dataclass(frozen=True)
class InboundMessage:
    """A message received from a volunteer.

    `address` is E.164 (`+8613800138000`) for SMS or `telegram:<chat_id>` for Telegram.
    """

    channel: str
    address: str
    text: str
    external_id: str
    received_at: datetime
    media: tuple[Media, ...] = field(default_factory=tuple)
    # Telegram only: a contact card the sender shared (phone as sent, and whose card it is),
    # and a location pin.
    contact_phone: str | None = None
    contact_user_id: int | None = None
    location: tuple[float, float] | None = None
    language_code: str | None = None  # the sender's app language, as Telegram reports it
    group: GroupPost | None = None  # Telegram: said in a group (a command, a button, a reply)


@dataclass(frozen=True)
class GroupPost:
    """Telegram: who wrote in which group, and what a button press or a reply was about."""

    user_id: int
    user_name: str
    title: str
    callback_id: str | None = None  # a button press (its data is the message text)
    message_id: int | None = None  # the bot's message the button was on
    card_text: str | None = None  # that message's text, to edit it
    reply_to_text: str | None = None  # the bot's message this one answers


@dataclass(frozen=True)
class OutboundMessage:
    """A message ready to leave through a channel."""

    channel: str
    address: str
    body: str
    outbox_id: int
    keyboard: str | None = None  # Telegram: a named reply keyboard to show with it
    edit_message_id: int | None = None  # Telegram: replace this message of ours with it
    attachment: str | None = None  # Telegram: a picture (file path); the body is its caption


@dataclass(frozen=True)
class SendResult:
    """What the provider said when it accepted a message."""

    provider_id: str
    status: str


class SendError(Exception):
    """A provider refused or could not take a message."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class RetryableSendError(SendError):
    """Worth trying again later (network trouble, 5xx, rate limited).

    `maybe_sent`: the provider may have taken the message although we got no answer (a timeout,
    a dropped connection); before trying again, ask the provider if it can tell (`Lookup`).
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retry_after: float | None = None,
        maybe_sent: bool = False,
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after
        self.maybe_sent = maybe_sent


class PermanentSendError(SendError):
    """Trying again will not help (invalid number, unsubscribed, bad credentials).

    `unsubscribed`: the provider says this person opted out (Twilio 21610); we record it.
    `unreachable`: this address cannot be reached at all any more (Telegram: the bot was blocked
    or the chat is gone); the message goes by the person's other channel instead.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        unsubscribed: bool = False,
        unreachable: bool = False,
    ) -> None:
        super().__init__(message, code=code)
        self.unsubscribed = unsubscribed
        self.unreachable = unreachable


class Sender(Protocol):
    """One outbound channel; raises RetryableSendError or PermanentSendError on failure."""

    channel: str

    async def send(self, message: OutboundMessage) -> SendResult: ...

    async def close(self) -> None: ...


@runtime_checkable
class Lookup(Protocol):
    """A sender that can say what became of an attempt whose answer was lost (Twilio can;
    Telegram cannot, so there a lost answer means the message may go twice)."""

    async def find_sent(self, message: OutboundMessage, since: datetime) -> list[str]:
        """Provider ids, oldest first, of messages like `message` taken at or after `since`."""
        ...
