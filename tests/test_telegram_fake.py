"""The Telegram Bot API stand-in, driven by the real python-telegram-bot client over HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import socket
import struct
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    NetworkError,
    RetryAfter,
)
from telegram.ext import Application, ApplicationBuilder, CommandHandler, MessageHandler, filters
from telegram.warnings import PTBUserWarning

from tests.fakes.server import local_socket
from tests.fakes.telegram_api import SPEC_PATH, BotApiSpec, FakeTelegram

needs_spec = pytest.mark.skipif(
    not SPEC_PATH.is_file(), reason=f"no Bot API description at {SPEC_PATH}"
)


def png(width: int = 2, height: int = 1) -> bytes:
    """A small valid PNG (red pixels)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(pixels))
        + chunk(b"IEND", b"")
    )


def bot_for(fake: FakeTelegram) -> Bot:
    return Bot(
        fake.token, base_url=f"{fake.base_url}/bot", base_file_url=f"{fake.base_url}/file/bot"
    )


def application_for(fake: FakeTelegram) -> Application[Any, Any, Any, Any, Any, Any]:
    return (
        ApplicationBuilder()
        .token(fake.token)
        .base_url(f"{fake.base_url}/bot")
        .base_file_url(f"{fake.base_url}/file/bot")
        .updater(None)
        .build()
    )


@pytest.fixture(scope="module")
def fake_telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def telegram(fake_telegram: FakeTelegram) -> Iterator[FakeTelegram]:
    """The stand-in, emptied; the test fails if the bot broke the Bot API description."""
    fake_telegram.reset()
    yield fake_telegram
    fake_telegram.assert_no_violations()


@pytest.fixture
async def bot(telegram: FakeTelegram) -> AsyncIterator[Bot]:
    async with bot_for(telegram) as client:
        yield client


class _LoopServer(uvicorn.Server):
    """uvicorn on the test's own loop, saying when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.listening.set()


@asynccontextmanager
async def serve(app: Starlette) -> AsyncIterator[str]:
    """Serve `app` on a free port of 127.0.0.1 on this loop; yield its base URL."""
    sock = local_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", ws="none")
    server = _LoopServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await asyncio.wait_for(server.listening.wait(), 10)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


# --- the bot's side -------------------------------------------------------------------------


async def test_get_me_through_the_application_builder(telegram: FakeTelegram) -> None:
    application = application_for(telegram)
    async with application:
        me = await application.bot.get_me()
    assert (me.id, me.username, me.is_bot) == (telegram.bot_id, telegram.bot_username, True)
    assert application.bot.username == telegram.bot_username
    assert [c.method for c in telegram.requests] == ["getMe", "getMe"]


async def test_send_message_with_a_reply_keyboard(telegram: FakeTelegram, bot: Bot) -> None:
    alice = telegram.user(1001, "Alice", username="alice")
    keyboard = ReplyKeyboardMarkup(
        [[KeyboardButton("共享手机号", request_contact=True)], ["签到", "签退"]],
        resize_keyboard=True,
    )

    sent = await bot.send_message(alice.id, "请共享手机号", reply_markup=keyboard)

    assert (sent.chat.id, sent.chat.type, sent.text) == (alice.id, "private", "请共享手机号")
    assert sent.from_user is not None and sent.from_user.id == telegram.bot_id
    assert sent.reply_markup is None  # Telegram echoes inline keyboards only
    (message,) = await asyncio.to_thread(telegram.wait_for_messages, alice.id, 1)
    assert message.button_texts == ["共享手机号", "签到", "签退"]
    assert message.buttons[0]["request_contact"] is True
    (call,) = telegram.calls("sendMessage")
    assert call.content_type == "application/x-www-form-urlencoded"
    assert call.params["reply_markup"]["resize_keyboard"] is True
    assert (await bot.send_message("@alice", "by username")).chat.id == alice.id
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(999, "nobody")


async def test_send_photo_uploads_multipart_then_reuses_the_file_id(
    telegram: FakeTelegram, bot: Bot
) -> None:
    alice = telegram.user(1001, "Alice")
    image = png(3, 2)

    sent = await bot.send_photo(alice.id, photo=image, caption="井盖缺失")
    again = await bot.send_photo(alice.id, photo=sent.photo[-1].file_id)

    assert (sent.photo[-1].width, sent.photo[-1].height, sent.caption) == (3, 2, "井盖缺失")
    upload, reuse = telegram.calls("sendPhoto")
    assert upload.content_type == "multipart/form-data" and upload.files == {"photo": image}
    assert reuse.files == {} and reuse.params["photo"] == sent.photo[-1].file_id
    assert again.photo[-1].file_id == sent.photo[-1].file_id
    assert [m.photo_file_id for m in telegram.messages_to(alice.id)] == [
        again.photo[-1].file_id
    ] * 2
    with pytest.raises(BadRequest, match="Wrong file identifier"):
        await bot.send_photo(alice.id, photo="no-such-file-id")


async def test_buttons_callback_answers_and_edits(telegram: FakeTelegram, bot: Bot) -> None:
    lead = telegram.user(2001, "Zhao")
    group = telegram.add_group(-100500, "新开河社区")
    buttons = [
        InlineKeyboardButton("确认", callback_data="ack:3"),
        InlineKeyboardButton("驳回", callback_data="reject:3"),
    ]
    card = await bot.send_message(group.id, "上报 #3", reply_markup=InlineKeyboardMarkup([buttons]))
    assert card.reply_markup == InlineKeyboardMarkup([buttons])
    (sent,) = telegram.messages_to(group.id)
    assert sent.callback_data == ["ack:3", "reject:3"]

    pressed = await telegram.press_button(lead, sent, "ack:3")
    (update,) = await bot.get_updates()
    query = update.callback_query
    assert query is not None and update.update_id == pressed.update_id
    assert (query.data, query.from_user.id) == ("ack:3", lead.id)
    assert query.message is not None and query.message.message_id == card.message_id
    assert await query.answer("已确认")
    assert telegram.callback_answers == [{"callback_query_id": query.id, "text": "已确认"}]
    with pytest.raises(BadRequest, match="Query is too old"):
        await query.answer()

    resolve = InlineKeyboardMarkup([[InlineKeyboardButton("解决", callback_data="resolve:3")]])
    edited = await bot.edit_message_text(
        "上报 #3 已确认", chat_id=group.id, message_id=card.message_id, reply_markup=resolve
    )
    assert isinstance(edited, type(card)) and edited.text == "上报 #3 已确认"
    assert edited.edit_date is not None
    with pytest.raises(BadRequest, match="not modified"):
        await bot.edit_message_text(
            "上报 #3 已确认", chat_id=group.id, message_id=card.message_id, reply_markup=resolve
        )
    await bot.edit_message_reply_markup(chat_id=group.id, message_id=card.message_id)
    (now,) = telegram.messages_to(group.id)
    assert (now.text, now.reply_markup, now.edits) == ("上报 #3 已确认", None, 2)
    with pytest.raises(ValueError, match="no button"):
        await telegram.press_button(lead, now, "ack:3")


async def test_get_file_and_download_a_photo_a_user_sent(telegram: FakeTelegram, bot: Bot) -> None:
    alice = telegram.user(1001, "Alice")
    image = png(4, 4)

    await telegram.send_photo_from(alice, image, caption="1 垃圾堆放")
    (update,) = await bot.get_updates()

    assert update.message is not None and update.message.caption == "1 垃圾堆放"
    photo = update.message.photo[-1]
    file = await photo.get_file()
    buffer = io.BytesIO()
    await file.download_to_memory(buffer)
    assert buffer.getvalue() == image
    assert file.file_size == len(image) and telegram.file_content(photo.file_id) == image
    assert len(telegram.downloads) == 1
    with pytest.raises(BadRequest, match="Invalid file_id"):
        await bot.get_file("no-such-file")


# --- updates ------------------------------------------------------------------------------


async def test_get_updates_returns_a_queued_text_at_once_and_waits_without_a_clock(
    telegram: FakeTelegram, bot: Bot
) -> None:
    alice = telegram.user(1001, "Alice", language_code="zh-hans")
    queued = await telegram.private_text(alice, "签到")
    assert queued.via == "queue"

    started = time.monotonic()
    (update,) = await bot.get_updates(timeout=30)
    assert time.monotonic() - started < 5  # answered at once, not after the long-poll timeout
    assert update.update_id == queued.update_id
    assert update.message is not None and update.message.text == "签到"
    assert update.message.from_user is not None and update.message.from_user.id == alice.id

    poll = asyncio.create_task(bot.get_updates(offset=queued.update_id + 1, timeout=30))
    await asyncio.to_thread(telegram.wait_for_pollers, 1)
    later = await telegram.private_text(alice, "签退")
    (update,) = await asyncio.wait_for(poll, 10)
    assert update.update_id == later.update_id
    assert await bot.get_updates(offset=later.update_id + 1) == ()
    assert telegram.pending_updates() == []


async def test_contact_location_and_commands_reach_ptb_handlers(telegram: FakeTelegram) -> None:
    alice = telegram.user(1001, "Alice")
    lead = telegram.user(2001, "Zhao")
    group = telegram.add_group(-100500, "新开河社区")
    seen: list[tuple[str, object]] = []

    async def on_command(update: Update, context: Any) -> None:
        assert update.effective_message is not None and update.effective_chat is not None
        seen.append(
            (update.effective_message.text or "", (update.effective_chat.type, context.args))
        )

    async def on_contact(update: Update, context: Any) -> None:
        contact = update.effective_message.contact if update.effective_message else None
        assert contact is not None
        seen.append(("contact", (contact.phone_number, contact.user_id)))

    async def on_location(update: Update, context: Any) -> None:
        location = update.effective_message.location if update.effective_message else None
        assert location is not None
        seen.append(("location", (location.latitude, location.longitude)))

    application = application_for(telegram)
    application.add_handler(CommandHandler(["start", "ack"], on_command))
    application.add_handler(MessageHandler(filters.CONTACT, on_contact))
    application.add_handler(MessageHandler(filters.LOCATION, on_location))
    deliveries = [
        await telegram.private_text(alice, "/start"),
        await telegram.share_contact(alice, "+8613800138001"),
        await telegram.share_contact(alice, "+8613800138002", contact_user_id=None),
        await telegram.send_location(alice, 39.1422, 117.1767),
        await telegram.group_command(group, lead, "/ack 3", mention=True),
    ]
    async with application:
        for delivery in deliveries:
            await application.process_update(Update.de_json(delivery.update, application.bot))

    assert seen == [
        ("/start", ("private", [])),
        ("contact", ("+8613800138001", alice.id)),
        ("contact", ("+8613800138002", None)),
        ("location", (39.1422, 117.1767)),
        (f"/ack@{telegram.bot_username} 3", ("group", ["3"])),
    ]
    assert len({d.update_id for d in deliveries}) == len(deliveries)


async def test_webhook_gets_updates_with_the_secret_header(
    telegram: FakeTelegram, bot: Bot
) -> None:
    alice = telegram.user(1001, "Alice")
    received: list[tuple[str | None, dict[str, Any]]] = []

    async def webhook(request: Request) -> Response:
        secret = request.headers.get("x-telegram-bot-api-secret-token")
        received.append((secret, await request.json()))
        return Response(status_code=200 if secret == "s3cret-Token_1" else 403)

    app = Starlette(routes=[Route("/telegram/webhook", webhook, methods=["POST"])])
    async with serve(app) as base:
        url = f"{base}/telegram/webhook"
        assert await bot.set_webhook(url, secret_token="s3cret-Token_1")
        assert (await bot.get_webhook_info()).url == url

        first = await telegram.private_text(alice, "签到")
        again = await telegram.redeliver(first)
        with pytest.raises(Conflict, match="webhook is active"):
            await bot.get_updates()
        await bot.set_webhook(url, secret_token="another-secret")
        refused = await telegram.private_text(alice, "签退")
        info = await bot.get_webhook_info()

    assert (first.via, first.status, again.status, refused.status) == ("webhook", 200, 200, 403)
    assert again.update_id == first.update_id
    assert [secret for secret, _ in received] == ["s3cret-Token_1"] * 2 + ["another-secret"]
    update = Update.de_json(received[0][1], bot)
    assert update.message is not None and update.message.text == "签到"
    assert info.last_error_message is not None and "403" in info.last_error_message
    assert await bot.delete_webhook()
    assert (await telegram.private_text(alice, "积分")).via == "queue"


async def test_webhook_into_an_asgi_app_without_a_socket(telegram: FakeTelegram, bot: Bot) -> None:
    alice = telegram.user(1001, "Alice")
    received: list[dict[str, Any]] = []

    async def webhook(request: Request) -> Response:
        received.append(await request.json())
        return Response(status_code=200)

    app = Starlette(routes=[Route("/telegram/webhook", webhook, methods=["POST"])])
    telegram.webhook_transport = httpx.ASGITransport(app=app)
    await bot.set_webhook("https://steward.example.org/telegram/webhook")

    delivery = await telegram.private_text(alice, "帮助")

    assert (delivery.status, received) == (200, [delivery.update])
    assert telegram.webhook_url == "https://steward.example.org/telegram/webhook"


# --- failures -----------------------------------------------------------------------------


async def test_a_blocked_chat_raises_forbidden(telegram: FakeTelegram, bot: Bot) -> None:
    alice = telegram.user(1001, "Alice")
    telegram.block(alice.id)

    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(alice.id, "签到成功")

    assert telegram.messages_to(alice.id) == []
    telegram.unblock(alice.id)
    await bot.send_message(alice.id, "签到成功")
    assert len(telegram.messages_to(alice.id)) == 1


async def test_flood_control_raises_retry_after(
    telegram: FakeTelegram, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # PTB 22 warns when retry_after is read as int
    alice = telegram.user(1001, "Alice")
    telegram.flood("sendMessage", retry_after=7, times=2)

    for _ in range(2):
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(alice.id, "签到成功")
        assert caught.value.retry_after == dt.timedelta(seconds=7)
    await bot.get_me()  # other methods are not held back
    await bot.send_message(alice.id, "签到成功")

    telegram.fail_next("sendMessage", 502, "Bad Gateway")
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(alice.id, "签退成功")
    assert [m.text for m in telegram.messages_to(alice.id)] == ["签到成功"]
    assert len(telegram.calls("sendMessage")) == 4


async def test_json_bodies_and_a_wrong_token(telegram: FakeTelegram) -> None:
    alice = telegram.user(1001, "Alice")
    markup = {"inline_keyboard": [[{"text": "确认", "callback_data": "ack:1"}]]}
    async with httpx.AsyncClient(base_url=telegram.base_url, trust_env=False) as client:
        ok = await client.post(
            f"/bot{telegram.token}/sendMessage",
            json={"chat_id": alice.id, "text": "hi", "reply_markup": markup},
        )
        wrong = await client.post("/bot1:nope/getMe")

    assert ok.json()["ok"] is True and ok.json()["result"]["reply_markup"] == markup
    assert telegram.calls("sendMessage")[0].content_type == "application/json"
    assert (wrong.status_code, wrong.json()["description"]) == (401, "Unauthorized")


# --- the Bot API description ----------------------------------------------------------------


@needs_spec
async def test_requests_that_break_the_description_are_violations(
    telegram: FakeTelegram, bot: Bot
) -> None:
    alice = telegram.user(1001, "Alice")
    bad_keyboard = {"keyboard": [[{"text": "签到", "request_phone": True}]]}

    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("noSuchMethod")
    await bot.send_message(alice.id, "hi", api_kwargs={"colour": "red"})
    with (
        pytest.warns(PTBUserWarning, match="Please use"),
        pytest.raises(BadRequest, match="text is empty"),
    ):
        await bot.do_api_request("sendMessage", api_kwargs={"chat_id": alice.id})
    await bot.send_message(alice.id, "hi", api_kwargs={"reply_markup": bad_keyboard})

    with pytest.raises(AssertionError, match=r"violations \(4\)"):
        telegram.assert_no_violations()
    assert telegram.violations == []  # asserting forgets them; the fixture then passes


@needs_spec
async def test_violations_name_the_method_and_the_problem(telegram: FakeTelegram, bot: Bot) -> None:
    alice = telegram.user(1001, "Alice")
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("noSuchMethod")
    with pytest.warns(PTBUserWarning), pytest.raises(BadRequest):
        await bot.do_api_request("sendMessage", api_kwargs={"chat_id": alice.id})
    bad_keyboard = {"keyboard": [[{"text": "签到", "request_phone": True}]]}
    await bot.send_message(alice.id, "hi", api_kwargs={"reply_markup": bad_keyboard})

    assert telegram.spec is not None
    assert [str(v) for v in telegram.take_violations()] == [
        f"noSuchMethod: no method 'noSuchMethod' in Bot API {telegram.spec.version}",
        "sendMessage: missing required parameter 'text'",
        "sendMessage: reply_markup.keyboard[0][0]: KeyboardButton has no field 'request_phone'",
    ]


@needs_spec
def test_the_checker_knows_types_and_nested_objects() -> None:
    spec = BotApiSpec.load()
    assert spec is not None
    assert spec.check_request("sendMessage", {"chat_id": "-100", "text": "x"}) == []
    assert spec.check_request("getUpdates", {"timeout": "soon", "limit": 5}) == [
        "timeout: expected Integer, got 'soon'"
    ]
    assert spec.check_request(
        "sendMessage", {"chat_id": 1, "text": "x", "protect_content": "maybe"}
    ) == ["protect_content: expected Boolean, got 'maybe'"]
    assert spec.check_request("sendPhoto", {"chat_id": 1}, files={"photo"}) == []
    assert spec.check_request("sendPhoto", {"chat_id": 1}, files={"picture"}) == [
        "missing required parameter 'photo'",
        "uploaded part 'picture' is not a file parameter",
    ]
    assert (
        spec.check_request("sendLocation", {"chat_id": 1, "latitude": "39.1", "longitude": 117})
        == []
    )
    assert spec.check_request("setMyCommands", {"commands": '[{"command": "today"}]'}) == [
        "commands[0]: BotCommand needs 'description'"
    ]


@needs_spec
async def test_leaving_the_stand_in_with_violations_fails() -> None:
    with pytest.raises(AssertionError, match="noSuchMethod"), FakeTelegram() as fake:
        async with bot_for(fake) as client:
            with pytest.raises(EndPointNotFound):
                await client.do_api_request("noSuchMethod")


async def test_without_the_description_nothing_is_checked(tmp_path: Path) -> None:
    with FakeTelegram(spec_path=tmp_path / "api.json") as fake:
        assert fake.spec is None
        alice = fake.user(1001, "Alice")
        async with bot_for(fake) as client:
            with pytest.raises(EndPointNotFound):
                await client.do_api_request("noSuchMethod")
            await client.send_message(alice.id, "hi", api_kwargs={"colour": "red"})
        assert fake.violations == []
