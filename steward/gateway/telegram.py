"""Everything that speaks Telegram's Bot API: the webhook, updates -> InboundMessage, sending.

python-telegram-bot's `Application` is built here with `.updater(None)`: we never let PTB
process updates (it swallows handler errors and keeps state in memory). The webhook checks the
secret, turns the update into our one message type and hands it to `accept` (the inbound
writer), answering 200 only once it is durable, so a redelivered `update_id` has no second
effect. Without a webhook secret the channel long-polls instead (development), through the
same translation and the same writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from telegram import (
    Bot,
    CallbackQuery,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.error import BadRequest as TelegramBadRequest
from telegram.error import Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import Application, ApplicationBuilder

from steward.clock import utcnow
from steward.flows.groups import card_buttons
from steward.gateway.messages import (
    GroupPost,
    InboundMessage,
    Media,
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
    SendResult,
)
from steward.gateway.webhooks import BadRequest, read_body
from steward.metrics import Metrics
from steward.settings import Settings

log = logging.getLogger(__name__)

CHANNEL = "telegram"
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "x-telegram-bot-api-secret-token"
ALLOWED_UPDATES = ["message", "callback_query"]
POLL_TIMEOUT_SECONDS = 25

# The big buttons of a linked volunteer's chat; their labels read as keywords of the grammar.
MAIN_BUTTONS = {
    "zh": (("签到", "签退"), ("上报", "积分", "帮助")),
    "en": (("Check in", "Check out"), ("Report", "Points", "Help")),
}
SHARE_CONTACT = {"zh": "分享手机号", "en": "Share my number"}

Accept = Callable[[InboundMessage], Awaitable[bool]]


class FileError(Exception):
    """A photo could not be fetched from Telegram; the update is refused so Telegram retries."""


def address_of(chat_id: int) -> str:
    return f"{CHANNEL}:{chat_id}"


def chat_of(address: str) -> int:
    return int(address.split(":", 1)[1])


Markup = ReplyKeyboardMarkup | InlineKeyboardMarkup | ForceReply


def reply_keyboard(name: str | None) -> Markup | None:
    """The keyboard a stored keyboard name stands for: a private chat's reply keyboard
    ("main:zh", "contact:en"), a report card's buttons ("card:12:zh"), or "answer" (the
    group member who pressed 办结 is asked to reply)."""
    if not name:
        return None
    if name == "answer":
        return ForceReply(selective=False)
    buttons = card_buttons(name)
    if buttons is not None:
        return InlineKeyboardMarkup(
            [[InlineKeyboardButton(label, callback_data=data) for label, data in buttons]]
        )
    kind, _, language = name.partition(":")
    language = "en" if language == "en" else "zh"
    if kind == "contact":
        button = KeyboardButton(SHARE_CONTACT[language], request_contact=True)
        return ReplyKeyboardMarkup([[button]], resize_keyboard=True, one_time_keyboard=True)
    if kind == "main":
        rows = [[KeyboardButton(label) for label in row] for row in MAIN_BUTTONS[language]]
        return ReplyKeyboardMarkup(rows, resize_keyboard=True, is_persistent=True)
    raise ValueError(f"unknown keyboard {name!r}")


async def inbound_from_update(
    update: Update, received_at: datetime, photos: PhotoStore
) -> InboundMessage | None:
    """Our message for an update; None for what we do not handle (channel posts, edits)."""
    if update.callback_query is not None:
        return _button_press(update, update.callback_query, received_at)
    msg: Message | None = update.message
    if msg is None:
        return None
    if msg.chat.type in ("group", "supergroup"):
        return _group_message(update, msg, received_at)
    if msg.chat.type != "private":
        return None
    contact = msg.contact
    location = msg.location
    media: tuple[Media, ...] = ()
    if msg.photo:
        media = (await photos.fetch(msg.photo[-1].file_id, msg.photo[-1].file_unique_id),)
    return InboundMessage(
        channel=CHANNEL,
        address=address_of(msg.chat.id),
        text=msg.text or msg.caption or "",
        external_id=str(update.update_id),
        received_at=received_at,
        media=media,
        contact_phone=contact.phone_number if contact else None,
        contact_user_id=contact.user_id if contact else None,
        location=(location.latitude, location.longitude) if location else None,
        language_code=msg.from_user.language_code if msg.from_user else None,
    )


def _group_message(update: Update, msg: Message, received_at: datetime) -> InboundMessage | None:
    """A command in a group, or an answer to one of our questions there (privacy mode shows
    the bot nothing else)."""
    if msg.from_user is None or msg.from_user.is_bot:
        return None
    answered = msg.reply_to_message
    return InboundMessage(
        channel=CHANNEL,
        address=address_of(msg.chat.id),
        text=msg.text or msg.caption or "",
        external_id=str(update.update_id),
        received_at=received_at,
        language_code=msg.from_user.language_code,
        group=GroupPost(
            user_id=msg.from_user.id,
            user_name=msg.from_user.full_name,
            title=msg.chat.title or "",
            reply_to_text=(
                answered.text
                if answered is not None and answered.from_user and answered.from_user.is_bot
                else None
            ),
        ),
    )


def _button_press(
    update: Update, query: CallbackQuery, received_at: datetime
) -> InboundMessage | None:
    """A press on a report card's button, as a message whose text is the button's data."""
    card = query.message
    if card is None or not isinstance(card, Message) or card.chat.type == "private":
        return None
    return InboundMessage(
        channel=CHANNEL,
        address=address_of(card.chat.id),
        text=query.data or "",
        external_id=str(update.update_id),
        received_at=received_at,
        language_code=query.from_user.language_code,
        group=GroupPost(
            user_id=query.from_user.id,
            user_name=query.from_user.full_name,
            title=card.chat.title or "",
            callback_id=query.id,
            message_id=card.message_id,
            card_text=card.text,
        ),
    )


class PhotoStore:
    """Downloads a photo through getFile into MEDIA_DIR; the stored media points at the file."""

    def __init__(self, bot: Bot, folder: Path) -> None:
        self._bot = bot
        self._folder = folder

    async def fetch(self, file_id: str, unique_id: str) -> Media:
        path = self._folder / "telegram" / f"{unique_id}.jpg"
        try:
            if not path.exists():
                file = await self._bot.get_file(file_id)
                data = await file.download_as_bytearray()
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(bytes(data))
        except (TelegramError, OSError) as exc:
            raise FileError(f"could not fetch photo {file_id}: {exc}") from exc
        return Media(url=path.resolve().as_uri(), content_type="image/jpeg")


class TelegramSender:
    """Send through the Bot API (the Sender protocol of gateway.messages)."""

    channel = CHANNEL

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def send(self, message: OutboundMessage) -> SendResult:
        chat_id = chat_of(message.address)
        markup = reply_keyboard(message.keyboard)
        try:
            if message.edit_message_id is not None:
                return await self._edit(chat_id, message, markup)
            if message.attachment is not None:
                sent = await self._send_file(chat_id, message)
            else:
                sent = await self._bot.send_message(chat_id, message.body, reply_markup=markup)
        except RetryAfter as exc:
            raise RetryableSendError(
                f"Telegram flood control: {exc}", code="429", retry_after=_seconds(exc.retry_after)
            ) from exc
        except Forbidden as exc:  # blocked by the user, or kicked from the group
            raise PermanentSendError(str(exc), code="403", unreachable=True) from exc
        except TelegramBadRequest as exc:
            gone = "chat not found" in str(exc).lower()
            raise PermanentSendError(str(exc), code="400", unreachable=gone) from exc
        except (TimedOut, NetworkError) as exc:
            raise RetryableSendError(f"Telegram unreachable: {exc}") from exc
        return SendResult(provider_id=f"tg:{chat_id}:{sent.message_id}", status="sent")

    async def _send_file(self, chat_id: int, message: OutboundMessage) -> Message:
        """A picture (the digest chart) as a photo, any other file (a spreadsheet) as a
        document; the body is its caption."""
        assert message.attachment is not None
        path = Path(message.attachment)
        data, caption = path.read_bytes(), message.body[:1024]
        if path.suffix.lower() == ".png":
            return await self._bot.send_photo(chat_id, data, caption=caption)
        return await self._bot.send_document(chat_id, data, filename=path.name, caption=caption)

    async def _edit(
        self, chat_id: int, message: OutboundMessage, markup: Markup | None
    ) -> SendResult:
        """Replace a message of ours (a report card after a button press)."""
        assert message.edit_message_id is not None
        inline = markup if isinstance(markup, InlineKeyboardMarkup) else None
        try:
            await self._bot.edit_message_text(
                message.body, chat_id, message.edit_message_id, reply_markup=inline
            )
        except TelegramBadRequest as exc:
            if "not modified" not in str(exc).lower():
                raise
        # Its own id: the card's message keeps the id of the send that made it.
        provider_id = f"tg:{chat_id}:{message.edit_message_id}:edit{message.outbox_id}"
        return SendResult(provider_id=provider_id, status="sent")

    async def close(self) -> None:
        """The bot's HTTP client closes with the Application (TelegramChannel.stop)."""


def _seconds(value: int | float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class TelegramChannel:
    """The bot, its webhook route or its long poll, and its sender."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        # PTB 22 warns on every RetryAfter unless told to hand out timedeltas (its next default).
        os.environ.setdefault("PTB_TIMEDELTA", "true")
        self._settings = settings
        self._metrics = metrics
        base = settings.TELEGRAM_API_BASE.rstrip("/")
        self.application: Application = (  # type: ignore[type-arg]
            ApplicationBuilder()
            .token(settings.TELEGRAM_BOT_TOKEN)
            .base_url(f"{base}/bot")
            .base_file_url(f"{base}/file/bot")
            .updater(None)
            .build()
        )
        self.bot: Bot = self.application.bot
        self.sender = TelegramSender(self.bot)
        self.photos = PhotoStore(self.bot, Path(settings.MEDIA_DIR))
        self._poller: asyncio.Task[None] | None = None
        self._accept: Accept | None = None

    @property
    def uses_webhook(self) -> bool:
        return bool(self._settings.TELEGRAM_WEBHOOK_SECRET)

    def routes(self, accept: Accept) -> list[Route]:
        """POST /telegram/webhook: secret checked, update stored, then 200."""
        self._accept = accept

        async def webhook(request: Request) -> Response:
            secret = self._settings.TELEGRAM_WEBHOOK_SECRET
            given = request.headers.get(SECRET_HEADER, "")
            if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
                self._metrics.rejected.labels("bad telegram secret").inc()
                return PlainTextResponse("bad secret", status_code=403)
            try:
                update = self._parse(await read_body(request, self._settings.MAX_WEBHOOK_BYTES))
                inbound = await inbound_from_update(update, utcnow(), self.photos)
            except BadRequest as exc:
                self._metrics.rejected.labels(exc.reason).inc()
                return PlainTextResponse(exc.reason, status_code=exc.status)
            except FileError as exc:
                log.warning("%s; Telegram will deliver the update again", exc)
                return PlainTextResponse("photo not available yet", status_code=503)
            if inbound is not None:
                is_new = await accept(inbound)
                self._metrics.inbound.labels(CHANNEL, "new" if is_new else "duplicate").inc()
                await self._answer_button(inbound)
            return JSONResponse({"ok": True})

        return [Route(WEBHOOK_PATH, webhook, methods=["POST"])]

    async def _answer_button(self, inbound: InboundMessage) -> None:
        """Stop the pressed button's spinner once the press is stored; what it did follows as
        an edit of the card. Best effort: an unanswered press only spins a while longer."""
        if inbound.group is None or inbound.group.callback_id is None:
            return
        try:
            await self.bot.answer_callback_query(inbound.group.callback_id)
        except TelegramError as exc:
            log.info("could not answer a button press: %s", exc)

    def _parse(self, body: bytes) -> Update:
        try:
            data = json.loads(body)
            if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
                raise ValueError("an update is an object with an integer update_id")
            update = Update.de_json(data, self.bot)
        except (ValueError, TypeError, KeyError) as exc:
            raise BadRequest(400, f"not a Telegram update: {exc}") from exc
        if update is None:
            raise BadRequest(400, "not a Telegram update")
        return update

    async def start(self) -> None:
        """Open the bot; register the webhook (with its secret) or start long polling."""
        await self.application.initialize()
        if self.uses_webhook:
            url = self._settings.PUBLIC_BASE_URL.rstrip("/") + WEBHOOK_PATH
            await self.bot.set_webhook(
                url,
                secret_token=self._settings.TELEGRAM_WEBHOOK_SECRET,
                allowed_updates=ALLOWED_UPDATES,
            )
            log.info("Telegram channel on: webhook at %s", url)
        else:
            await self.bot.delete_webhook()
            self._poller = asyncio.create_task(self._poll(), name="telegram-poller")
            log.info("Telegram channel on: long polling (no TELEGRAM_WEBHOOK_SECRET set)")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        await self.application.shutdown()

    async def _poll(self) -> None:
        """Long-poll for updates; each is stored before the next poll confirms it (offset)."""
        offset: int | None = None
        while True:
            try:
                updates = await self.bot.get_updates(
                    offset=offset,
                    timeout=POLL_TIMEOUT_SECONDS,
                    allowed_updates=ALLOWED_UPDATES,
                )
                for update in updates:
                    inbound = await inbound_from_update(update, utcnow(), self.photos)
                    if inbound is not None and self._accept is not None:
                        await self._accept(inbound)
                        await self._answer_button(inbound)
                    offset = update.update_id + 1
            except asyncio.CancelledError:
                raise
            except Exception:  # a bad moment (network, database): poll again shortly
                log.exception("Telegram polling failed; trying again")
                await asyncio.sleep(1)
