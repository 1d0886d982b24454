"""A local stand-in of the Telegram Bot API that speaks real HTTP.

It runs a Starlette app under uvicorn in a background thread with its own event loop (like
`twilio_api.FakeTwilio`), so the real PTB client talks to it over a socket:

    ApplicationBuilder().token(fake.token).base_url(f"{fake.base_url}/bot")
        .base_file_url(f"{fake.base_url}/file/bot").updater(None)

What it models:
- one bot (`getMe`), users, private chats and groups, and every message in them;
- updates made by the test (`private_text`, `group_command`, `share_contact`, `send_photo_from`,
  `send_location`, `press_button`): queued for `getUpdates` (a long poll that waits on a future,
  never a clock), or, once `setWebhook` is called, POSTed to the webhook with
  `X-Telegram-Bot-Api-Secret-Token`; the coroutine returns the status the service answered
  (set `webhook_transport = httpx.ASGITransport(app)` to deliver into an app without a socket);
- the methods `getMe`, `setWebhook`, `deleteWebhook`, `getWebhookInfo`, `getUpdates`,
  `sendMessage`, `sendPhoto`, `editMessageText`, `editMessageReplyMarkup`,
  `answerCallbackQuery`, `getFile` (+ download under `/file/bot<token>/<path>`), `deleteMessage`,
  `sendChatAction`, `setMyCommands`; bodies may be JSON, form or multipart (PTB sends form,
  multipart when it uploads a file);
- failures: a chat that blocked the bot (403), flood control (429 with `retry_after`), any
  status for the next requests of a method;
- `sends`: when each message the bot sent (or edited) was accepted, on time.perf_counter, with
  its chat, for counting Telegram's limits at the stand-in (`tests.fakes.rates`).

Every request is checked against the Bot API description in /work/shared/telegram/api.json when
that file exists (method known, required parameters present, no unknown ones, value types, the
fields of JSON-serialised objects); the stand-in's own answers and updates are checked too. A
mismatch is recorded in `violations` and fails the test: `__exit__` raises, and a per-test fixture
should call `assert_no_violations()` after the test:

    @pytest.fixture
    def telegram(fake_telegram):
        fake_telegram.reset()
        yield fake_telegram
        fake_telegram.assert_no_violations()

Deliberate differences from Telegram: webhook URLs may be plain http, updates are delivered once
(a failed webhook delivery is not retried; use `redeliver`), file URLs are not fetched, inline
mode and business connections are not modelled.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import re
import struct
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import ReadyServer, local_socket

DEFAULT_TOKEN = "7000000001:AAF4ke-T0ken_for_the_Telegram_stand-in"
DEFAULT_BOT_USERNAME = "alley_steward_test_bot"
# The shared/ directory beside the checkout (parents[3]); a git worktree sits deeper, so look up.
SPEC_PATH = next(
    (
        up / "shared" / "telegram" / "api.json"
        for up in Path(__file__).resolve().parents
        if (up / "shared" / "telegram").is_dir()
    ),
    Path(__file__).resolve().parents[3] / "shared" / "telegram" / "api.json",
)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_INTEGER = re.compile(r"-?\d+")


# --- the Bot API description (PaulSonOfLars/telegram-bot-api-spec) ---------------------------


class BotApiSpec:
    """Check requests and objects against the Bot API's machine-readable description."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.version = str(data.get("version", "?"))
        self.methods: dict[str, Mapping[str, Any]] = {
            name.lower(): method for name, method in data["methods"].items()
        }
        self.types: Mapping[str, Mapping[str, Any]] = data["types"]

    @classmethod
    def load(cls, path: Path | None = SPEC_PATH) -> BotApiSpec | None:
        """Read the description, or None when the file is absent (a fresh clone)."""
        if path is None or not path.is_file():
            return None
        return _load_spec(path)

    def knows(self, method: str) -> bool:
        return method.lower() in self.methods

    def returns(self, method: str) -> list[str]:
        return list(self.methods[method.lower()]["returns"])

    def check_request(
        self, method: str, params: Mapping[str, Any], files: Collection[str] = ()
    ) -> list[str]:
        """List what is wrong with a call of `method` (empty when it follows the description)."""
        spec = self.methods.get(method.lower())
        if spec is None:
            return [f"no method {method!r} in Bot API {self.version}"]
        fields = {f["name"]: f for f in spec.get("fields", [])}
        problems = [
            f"missing required parameter {name!r}"
            for name, f in fields.items()
            if f["required"] and name not in params and name not in files
        ]
        for name, value in params.items():
            if name not in fields:
                problems.append(f"unknown parameter {name!r}")
            else:
                problems += self.check_value(value, fields[name]["types"], name)
        return problems + _stray_files(files, fields, params)

    def check_value(self, value: Any, types: list[str], where: str) -> list[str]:
        """List what is wrong with `value` as one of `types` (form strings are accepted)."""
        partial: list[list[str]] = []
        for type_name in types:
            problems = self._check_one(value, type_name, where)
            if problems == []:
                return []
            if problems is not None:
                partial.append(problems)
        if partial:
            return min(partial, key=len)
        return [f"{where}: expected {' or '.join(types)}, got {_short(value)}"]

    def _check_one(self, value: Any, type_name: str, where: str) -> list[str] | None:
        """None: `value` is not this type at all; a list: it is, with these problems."""
        if type_name.startswith("Array of "):
            items = _as_json(value, list)
            if items is None:
                return None
            inner = [type_name.removeprefix("Array of ")]
            return [
                p
                for i, item in enumerate(items)
                for p in self.check_value(item, inner, f"{where}[{i}]")
            ]
        primitive = _PRIMITIVE_CHECKS.get(type_name)
        if primitive is not None:
            return [] if primitive(value) else None
        if type_name == "KeyboardButton" and isinstance(value, str):
            return []  # "For simple text buttons, String can be used instead of this object"
        if type_name not in self.types:
            return []  # a type the description does not spell out: nothing to check
        obj = _as_json(value, dict)
        return None if obj is None else self.check_object(obj, type_name, where)

    def check_object(self, obj: Mapping[str, Any], type_name: str, where: str) -> list[str]:
        """List unknown and missing fields of `obj` as a `type_name`, and their types."""
        spec = self.types[type_name]
        if "subtypes" in spec:
            return self.check_value(obj, list(spec["subtypes"]), where)
        if "fields" not in spec:
            return []  # a placeholder such as CallbackGame
        fields = {f["name"]: f for f in spec["fields"]}
        problems = [
            f"{where}: {type_name} has no field {key!r}" for key in obj if key not in fields
        ]
        problems += [
            f"{where}: {type_name} needs {name!r}"
            for name, f in fields.items()
            if f["required"] and name not in obj
        ]
        for key, item in obj.items():
            if key in fields:
                problems += self.check_value(item, fields[key]["types"], f"{where}.{key}")
        return problems


@functools.lru_cache(maxsize=4)
def _load_spec(path: Path) -> BotApiSpec:
    return BotApiSpec(json.loads(path.read_text(encoding="utf-8")))


def _is_integer(value: Any) -> bool:
    if isinstance(value, str):
        return _INTEGER.fullmatch(value) is not None
    return isinstance(value, int) and not isinstance(value, bool)


def _is_float(value: Any) -> bool:
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_boolean(value: Any) -> bool:
    return isinstance(value, bool) or (isinstance(value, str) and value.lower() in _BOOLEANS)


_BOOLEANS = {"true": True, "false": False}
_PRIMITIVE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "Integer": _is_integer,
    "Float": _is_float,
    "Boolean": _is_boolean,
    "String": lambda value: isinstance(value, str),
    # A file goes as its own multipart part (checked by _stray_files) or as attach://<part>.
    "InputFile": lambda value: isinstance(value, str) and value.startswith("attach://"),
}


def _as_json(value: Any, kind: type) -> Any:
    """`value` if it is a `kind`, or the `kind` a JSON-serialised string holds, else None."""
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except ValueError:
            return None
        return decoded if isinstance(decoded, kind) else None
    return None


def _stray_files(
    files: Collection[str], fields: Mapping[str, Mapping[str, Any]], params: Mapping[str, Any]
) -> list[str]:
    """Name uploaded parts that are neither an InputFile parameter nor attach:// referenced."""
    attached = " ".join(v for v in params.values() if isinstance(v, str))
    return [
        f"uploaded part {name!r} is not a file parameter"
        for name in files
        if "InputFile" not in fields.get(name, {}).get("types", [])
        and f"attach://{name}" not in attached
    ]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- what the stand-in keeps --------------------------------------------------------------


@dataclass(frozen=True)
class FakeUser:
    """A Telegram user the test plays."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _without_none(
            id=self.id,
            is_bot=False,
            first_name=self.first_name,
            last_name=self.last_name,
            username=self.username,
            language_code=self.language_code,
        )


@dataclass(frozen=True)
class FakeChat:
    """A private chat (id = the user's id) or a group (negative id)."""

    id: int
    type: str
    title: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    username: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _without_none(
            id=self.id,
            type=self.type,
            title=self.title,
            first_name=self.first_name,
            last_name=self.last_name,
            username=self.username,
        )


@dataclass(frozen=True)
class SentMessage:
    """A message the bot sent, as it stands now (after any edits)."""

    chat_id: int
    message_id: int
    text: str | None
    caption: str | None
    photo_file_id: str | None
    document_file_id: str | None
    reply_markup: dict[str, Any] | None  # as the bot sent it, reply keyboards included
    edits: int
    data: dict[str, Any] = field(repr=False)  # the Message object the bot was answered

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """Every button of the keyboard, row after row (plain-string buttons as {"text": s})."""
        markup = self.reply_markup or {}
        rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
        return [b if isinstance(b, dict) else {"text": b} for row in rows for b in row]

    @property
    def button_texts(self) -> list[str]:
        return [str(b["text"]) for b in self.buttons]

    @property
    def callback_data(self) -> list[str]:
        return [str(b["callback_data"]) for b in self.buttons if "callback_data" in b]


@dataclass(frozen=True)
class RecordedCall:
    """One Bot API request as the stand-in received it."""

    method: str
    params: dict[str, Any]  # values as sent; JSON-serialised objects and arrays decoded
    raw: dict[str, Any] = field(repr=False)  # values exactly as sent (form values are strings)
    files: dict[str, bytes] = field(repr=False)
    content_type: str


@dataclass(frozen=True)
class Delivery:
    """An update the test made, and where it went."""

    update: dict[str, Any]
    via: str  # "queue" (for getUpdates), "webhook", or "filtered" (not in allowed_updates)
    status: int | None = None  # what the webhook answered

    @property
    def update_id(self) -> int:
        return int(self.update["update_id"])


@dataclass(frozen=True)
class Violation:
    """A request (or an answer of the stand-in) that does not follow the Bot API description."""

    method: str
    problem: str

    def __str__(self) -> str:
        return f"{self.method}: {self.problem}"


class Stamp(NamedTuple):
    """A message the bot sent or edited: when the stand-in accepted it (time.perf_counter), and
    in which chat."""

    at: float
    chat_id: int


@dataclass
class _Stored:
    message: dict[str, Any]
    markup: dict[str, Any] | None
    from_bot: bool
    edits: int = 0


@dataclass(frozen=True)
class _File:
    file_id: str
    unique_id: str
    path: str
    content: bytes


@dataclass
class _Webhook:
    url: str
    secret: str | None
    max_connections: int
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass(frozen=True)
class _Failure:
    method: str | None
    status: int
    description: str
    retry_after: int | None


class ApiError(Exception):
    """An answer with ok=false, as the Bot API gives it."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return JSONResponse(body, status_code=self.status)


class _Own(Enum):
    """Default of share_contact's contact_user_id: the sender's own id."""

    ID = "own"


OWN_ID = _Own.ID


# --- the stand-in -------------------------------------------------------------------------


class FakeTelegram:
    """The Telegram Bot API for one bot on 127.0.0.1, run in a background thread."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_username: str = DEFAULT_BOT_USERNAME,
        spec_path: Path | None = SPEC_PATH,
        clock: Callable[[], float] = time.time,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_username = bot_username
        self.spec = BotApiSpec.load(spec_path)
        self.clock = clock
        # e.g. httpx.ASGITransport(app): deliver webhook updates into an app without a socket.
        self._default_transport = webhook_transport
        self.webhook_transport = webhook_transport
        self._cond = threading.Condition()
        self._server: ReadyServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self._update_ids = itertools.count(70_001)
        self._ids = itertools.count(1)
        self._handlers: dict[str, Callable[[RecordedCall], Any]] = {
            "getme": self._get_me,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "sendmessage": self._send_message,
            "sendphoto": self._send_photo,
            "senddocument": self._send_document,
            "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "answercallbackquery": self._answer_callback_query,
            "getfile": self._get_file,
            "deletemessage": self._delete_message,
            "sendchataction": self._send_chat_action,
            "setmycommands": self._set_my_commands,
        }
        self._clear()

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if not self._port:
            raise RuntimeError("FakeTelegram is not started")
        return f"http://127.0.0.1:{self._port}"

    def start(self, timeout: float = 10.0) -> FakeTelegram:
        """Listen on a free port and answer from a background thread."""
        sock = local_socket()
        self._port = sock.getsockname()[1]
        routes = [
            Route("/bot{token}/{method}", self._handle, methods=["GET", "POST"]),
            Route("/file/bot{token}/{file_path:path}", self._download, methods=["GET"]),
        ]
        config = uvicorn.Config(
            Starlette(routes=routes),
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=2,
        )
        self._server = ReadyServer(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-telegram", daemon=True
        )
        self._thread.start()
        if not self._server.ready.wait(timeout):
            raise RuntimeError("FakeTelegram did not start listening")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """End waiting long polls and stop the server."""
        if self._server is None or self._thread is None:
            return
        self._wake_pollers("shutdown")
        self._late.clear()
        self._server.should_exit = True
        self._thread.join(timeout)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if exc_type is None:
            self.assert_no_violations()

    def reset(self) -> None:
        """Forget users, chats, messages, files, updates, the webhook, requests and controls."""
        self._wake_pollers("shutdown")
        with self._cond:
            self._clear()
            self.webhook_transport = self._default_transport
            self._cond.notify_all()

    def _clear(self) -> None:
        self.requests: list[RecordedCall] = []
        self.violations: list[Violation] = []
        self.callback_answers: list[dict[str, Any]] = []
        self.commands: list[dict[str, Any]] = []
        self.downloads: list[str] = []
        self._users: dict[int, FakeUser] = {}
        self._chats: dict[int, FakeChat] = {}
        self._messages: dict[int, dict[int, _Stored]] = {}
        self._sent_order: list[tuple[int, int]] = []
        self.sends: list[Stamp] = []
        self._files: dict[str, _File] = {}
        self._queue: list[dict[str, Any]] = []
        self._redelivered: list[dict[str, Any]] = []
        self._pollers: list[asyncio.Future[str]] = []
        self._callbacks: dict[str, bool] = {}  # query id -> answered
        self._webhook: _Webhook | None = None
        self._allowed_updates: list[str] = []
        self._blocked: dict[int, str] = {}
        self._failures: list[_Failure] = []
        self._late: dict[str, float] = {}

    # --- people and places ----------------------------------------------------------------

    def user(
        self,
        id: int,
        first_name: str,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> FakeUser:
        """Register a user (and their private chat with the bot)."""
        person = FakeUser(id, first_name, last_name, username, language_code)
        chat = FakeChat(id, "private", None, first_name, last_name, username)
        with self._cond:
            self._users[id] = person
            self._chats[id] = chat
        return person

    def add_group(self, id: int, title: str, type: str = "group") -> FakeChat:
        """Register a group the bot is a member of (`type` "group" or "supergroup")."""
        if id >= 0 or type not in ("group", "supergroup"):
            raise ValueError("a group has a negative id and type 'group' or 'supergroup'")
        chat = FakeChat(id, type, title)
        with self._cond:
            self._chats[id] = chat
        return chat

    # --- simulating users (each makes one update with a new update_id) --------------------

    async def private_text(self, user: FakeUser, text: str) -> Delivery:
        """`user` writes `text` to the bot in their private chat."""
        return await self._message_update(self._chats[user.id], user, _text_content(text))

    async def group_command(
        self, group: FakeChat, user: FakeUser, text: str, *, mention: bool = False
    ) -> Delivery:
        """`user` sends a command such as "/ack 3" in `group` ("/ack@bot 3" with mention)."""
        if not text.startswith("/") or group.type == "private":
            raise ValueError("a group command starts with '/' and goes to a group")
        if mention:
            command, _, rest = text.partition(" ")
            text = f"{command}@{self.bot_username} {rest}".rstrip()
        return await self._message_update(group, user, _text_content(text))

    async def reply_in_group(
        self, group: FakeChat, user: FakeUser, to: SentMessage, text: str
    ) -> Delivery:
        """`user` answers the bot's message `to` in `group` (a reply, which privacy mode lets
        the bot see)."""
        with self._cond:
            stored = self._messages.get(group.id, {}).get(to.message_id)
            if stored is None:
                raise ValueError("reply_in_group needs a message of that group")
            content = {**_text_content(text), "reply_to_message": dict(stored.message)}
            message = self._store(group, user.to_json(), content, markup=None, from_bot=False)
        return await self.deliver(self._new_update("message", message))

    async def share_contact(
        self,
        user: FakeUser,
        phone: str,
        *,
        contact_user_id: int | _Own | None = OWN_ID,
        first_name: str | None = None,
    ) -> Delivery:
        """`user` shares a contact (by default their own, as a request_contact button does)."""
        owner = user.id if contact_user_id is OWN_ID else contact_user_id
        contact = _without_none(
            phone_number=phone, first_name=first_name or user.first_name, user_id=owner
        )
        return await self._message_update(self._chats[user.id], user, {"contact": contact})

    async def send_photo_from(
        self, user: FakeUser, image: bytes, *, caption: str | None = None
    ) -> Delivery:
        """`user` sends a photo; getFile and the download then give back `image`."""
        with self._cond:
            photo = self._photo_sizes(self._register_file(image))
        content = _without_none(photo=photo, caption=caption)
        return await self._message_update(self._chats[user.id], user, content)

    async def send_location(self, user: FakeUser, latitude: float, longitude: float) -> Delivery:
        """`user` sends a location pin in their private chat."""
        location = {"latitude": latitude, "longitude": longitude}
        return await self._message_update(self._chats[user.id], user, {"location": location})

    async def press_button(
        self, user: FakeUser, message: SentMessage, callback_data: str
    ) -> Delivery:
        """`user` presses the inline button carrying `callback_data` on the bot's `message`."""
        with self._cond:
            stored = self._messages.get(message.chat_id, {}).get(message.message_id)
            if stored is None or not stored.from_bot:
                raise ValueError("press_button needs a message the bot sent (and did not delete)")
            current = self._snapshot(stored)
            if callback_data not in current.callback_data:
                raise ValueError(f"no button with callback_data {callback_data!r} on the message")
            query_id = str(next(self._ids) * 1_000_003)
            self._callbacks[query_id] = False
            query = {
                "id": query_id,
                "from": user.to_json(),
                "message": dict(stored.message),
                "chat_instance": f"{abs(message.chat_id)}-{self.bot_id}",
                "data": callback_data,
            }
        return await self.deliver(self._new_update("callback_query", query))

    async def redeliver(self, delivery: Delivery) -> Delivery:
        """Deliver the same update again (same update_id), as Telegram does after a failure."""
        return await self.deliver(delivery.update, again=True)

    async def deliver(self, update: dict[str, Any], *, again: bool = False) -> Delivery:
        """POST `update` to the webhook if one is set, else queue it for getUpdates."""
        with self._cond:
            hook = self._webhook
            if self._allowed_updates and _update_kind(update) not in self._allowed_updates:
                return Delivery(update, "filtered")
            if hook is None:
                (self._redelivered if again else self._queue).append(update)
                self._cond.notify_all()
        if hook is None:
            self._wake_pollers("update")
            return Delivery(update, "queue")
        return Delivery(update, "webhook", await self._post_webhook(hook, update))

    async def _message_update(
        self, chat: FakeChat, user: FakeUser, content: dict[str, Any]
    ) -> Delivery:
        with self._cond:
            message = self._store(chat, user.to_json(), content, markup=None, from_bot=False)
        return await self.deliver(self._new_update("message", message))

    def _new_update(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), kind: payload}
        self._self_check("update", update, ["Update"])
        return update

    async def _post_webhook(self, hook: _Webhook, update: dict[str, Any]) -> int:
        headers = {"Content-Type": "application/json"}
        if hook.secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret
        body = json.dumps(update, ensure_ascii=False).encode()
        async with httpx.AsyncClient(
            transport=self.webhook_transport, trust_env=False, timeout=30
        ) as client:
            try:
                response = await client.post(hook.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                self._webhook_error(hook, f"Connection failed: {exc!r}")
                raise
        if not response.is_success:
            self._webhook_error(hook, f"Wrong response from the webhook: {response.status_code}")
        return response.status_code

    def _webhook_error(self, hook: _Webhook, message: str) -> None:
        with self._cond:
            hook.last_error_date = int(self.clock())
            hook.last_error_message = message

    # --- failure controls -----------------------------------------------------------------

    def block(self, chat_id: int, description: str | None = None) -> None:
        """Answer 403 to anything the bot sends to `chat_id` (the user blocked the bot)."""
        with self._cond:
            is_group = chat_id < 0
            default = (
                "bot was kicked from the group chat" if is_group else "bot was blocked by the user"
            )
            self._blocked[chat_id] = f"Forbidden: {description or default}"

    def unblock(self, chat_id: int) -> None:
        with self._cond:
            self._blocked.pop(chat_id, None)

    def answer_late(self, method: str, seconds: float) -> None:
        """Carry out `method` at once but answer `seconds` later (0: on time again): a bot
        that dies meanwhile never learns that its message went."""
        with self._cond:
            self._late[method.lower()] = seconds

    def flood(self, method: str, retry_after: int, times: int = 1) -> None:
        """Answer the next `times` calls of `method` with 429 and parameters.retry_after."""
        text = f"Too Many Requests: retry after {retry_after}"
        self.fail_next(method, 429, text, times=times, retry_after=retry_after)

    def fail_next(
        self,
        method: str | None = None,
        status: int = 500,
        description: str = "Internal Server Error",
        *,
        times: int = 1,
        retry_after: int | None = None,
    ) -> None:
        """Answer the next `times` calls of `method` (None: of any method) with `status`."""
        failure = _Failure(method.lower() if method else None, status, description, retry_after)
        with self._cond:
            self._failures.extend([failure] * times)

    def _take_failure(self, method: str) -> _Failure | None:
        with self._cond:
            for i, failure in enumerate(self._failures):
                if failure.method in (None, method.lower()):
                    return self._failures.pop(i)
        return None

    # --- inspecting (the waits use threading.Condition, never a sleep loop) ---------------

    def calls(self, method: str | None = None) -> list[RecordedCall]:
        """Requests received, optionally only those of `method`."""
        with self._cond:
            return [
                c for c in self.requests if method is None or c.method.lower() == method.lower()
            ]

    def messages_to(self, chat_id: int) -> list[SentMessage]:
        """What the bot has sent to `chat_id` (as edited since), oldest first."""
        with self._cond:
            chat = self._messages.get(chat_id, {})
            return [self._snapshot(s) for s in chat.values() if s.from_bot]

    def sent_messages(self) -> list[SentMessage]:
        """Everything the bot has sent, in the order it was sent."""
        with self._cond:
            stored = [self._messages[c].get(m) for c, m in self._sent_order]
            return [self._snapshot(s) for s in stored if s is not None]

    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates queued for getUpdates and not yet confirmed by an offset."""
        with self._cond:
            return list(self._redelivered + self._queue)

    @property
    def webhook_url(self) -> str | None:
        with self._cond:
            return self._webhook.url if self._webhook else None

    @property
    def pollers(self) -> int:
        """How many getUpdates long polls are waiting now."""
        with self._cond:
            return len(self._pollers)

    def file_content(self, file_id: str) -> bytes:
        with self._cond:
            return self._files[file_id].content

    def wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Block until `predicate()` holds (checked on each change); TimeoutError otherwise."""
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise TimeoutError(f"FakeTelegram: timed out after {timeout}s waiting for {what}")

    def wait_for_messages(self, chat_id: int, n: int, timeout: float = 5.0) -> list[SentMessage]:
        """Block until the bot has sent `n` messages to `chat_id`; return them."""
        self.wait_until(
            lambda: len(self.messages_to(chat_id)) >= n, timeout, f"{n} message(s) to {chat_id}"
        )
        return self.messages_to(chat_id)

    def wait_for_calls(self, method: str, n: int = 1, timeout: float = 5.0) -> list[RecordedCall]:
        """Block until `n` calls of `method` have arrived; return them."""
        self.wait_until(lambda: len(self.calls(method)) >= n, timeout, f"{n} {method} call(s)")
        return self.calls(method)

    def wait_for_pollers(self, n: int = 1, timeout: float = 5.0) -> None:
        """Block until `n` getUpdates long polls are waiting."""
        self.wait_until(lambda: len(self._pollers) >= n, timeout, f"{n} waiting getUpdates")

    def take_violations(self) -> list[Violation]:
        """Return the violations recorded so far and forget them (for tests that expect some)."""
        with self._cond:
            taken, self.violations = self.violations, []
        return taken

    def assert_no_violations(self) -> None:
        """Fail if any request broke the Bot API description (then forget them)."""
        problems = self.take_violations()
        if problems:
            lines = "\n  ".join(str(v) for v in problems)
            raise AssertionError(f"Bot API violations ({len(problems)}):\n  {lines}")

    def _violate(self, method: str, problems: list[str]) -> None:
        with self._cond:
            self.violations += [Violation(method, p) for p in problems]
            self._cond.notify_all()

    def _self_check(self, what: str, value: Any, types: list[str]) -> None:
        """Record it when the stand-in itself would answer something Telegram never sends."""
        if self.spec is not None:
            problems = self.spec.check_value(value, types, what)
            self._violate("stand-in", [f"answered {p}" for p in problems])

    # --- the HTTP side (runs on the server's loop) ----------------------------------------

    async def _handle(self, request: Request) -> Response:
        method = request.path_params["method"]
        try:
            call = await _read_call(request, method)
        except ApiError as err:
            return err.response()
        with self._cond:
            self.requests.append(call)
            self._cond.notify_all()
        try:
            result = await self._dispatch(request.path_params["token"], call)
        except ApiError as err:
            return err.response()
        # Done already; only the answer is late (cut short by answer_late(method, 0) or reset).
        deadline = time.monotonic() + self._late.get(call.method.lower(), 0.0)
        while self._late.get(call.method.lower()) and time.monotonic() < deadline:
            await asyncio.sleep(min(0.05, deadline - time.monotonic()))
        return JSONResponse({"ok": True, "result": result})

    async def _dispatch(self, token: str, call: RecordedCall) -> Any:
        if token != self.token:
            raise ApiError(401, "Unauthorized")
        if self.spec is not None:
            self._violate(call.method, self.spec.check_request(call.method, call.raw, call.files))
        failure = self._take_failure(call.method)
        if failure is not None:
            raise ApiError(failure.status, failure.description, failure.retry_after)
        if call.method.lower() == "getupdates":
            result: Any = await self._get_updates(call)
        else:
            result = self._run_handler(call)
        if self.spec is not None and self.spec.knows(call.method):
            self._self_check(f"{call.method} result", result, self.spec.returns(call.method))
        return result

    def _run_handler(self, call: RecordedCall) -> Any:
        handler = self._handlers.get(call.method.lower())
        if handler is None:
            if self.spec is not None and self.spec.knows(call.method):
                self._violate(call.method, ["not modelled by the Telegram stand-in"])
                raise ApiError(501, f"Not Implemented: the stand-in has no {call.method}")
            raise ApiError(404, "Not Found")
        with self._cond:
            result = handler(call)
            self._cond.notify_all()
        return result

    async def _download(self, request: Request) -> Response:
        path = request.path_params["file_path"]
        with self._cond:
            self.downloads.append(path)
            self._cond.notify_all()
            found = next((f for f in self._files.values() if f.path == path), None)
        if request.path_params["token"] != self.token or found is None:
            return ApiError(404, "Not Found").response()
        return Response(found.content, media_type="application/octet-stream")

    # --- getUpdates: a long poll that waits on a future -----------------------------------

    async def _get_updates(self, call: RecordedCall) -> list[dict[str, Any]]:
        offset = _int(call, "offset") or 0
        limit = min(max(_int(call, "limit") or 100, 1), 100)
        timeout = max(_int(call, "timeout") or 0, 0)
        with self._cond:
            if self._webhook is not None:
                raise ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
            self._confirm(offset)
            self._remember_allowed_updates(call)
            ready = self._take_updates(limit)
            if ready or timeout == 0:
                return ready
            waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            others, self._pollers = self._pollers, [waiter]
            self._cond.notify_all()
        for other in others:  # Telegram ends an older poll when a newer one arrives
            _settle(other, "conflict")
        return await self._await_updates(waiter, timeout, limit)

    async def _await_updates(
        self, waiter: asyncio.Future[str], timeout: int, limit: int
    ) -> list[dict[str, Any]]:
        try:
            await asyncio.wait({waiter}, timeout=timeout)  # woken by deliver(), reset(), stop()
        finally:
            with self._cond:
                if waiter in self._pollers:
                    self._pollers.remove(waiter)
                self._cond.notify_all()
        if waiter.done() and waiter.result() == "conflict":
            raise ApiError(409, "Conflict: terminated by other getUpdates request")
        with self._cond:
            return self._take_updates(limit)

    def _confirm(self, offset: int) -> None:
        if offset < 0:
            self._queue = self._queue[offset:]
        elif offset:
            self._queue = [u for u in self._queue if u["update_id"] >= offset]

    def _take_updates(self, limit: int) -> list[dict[str, Any]]:
        ready = (self._redelivered + self._queue)[:limit]
        self._redelivered = []
        return ready

    def _remember_allowed_updates(self, call: RecordedCall) -> None:
        """Keep allowed_updates when given (an empty list means the default kinds)."""
        kinds = call.params.get("allowed_updates")
        if kinds is not None:
            self._allowed_updates = [str(k) for k in kinds] if isinstance(kinds, list) else []

    def _wake_pollers(self, reason: str) -> None:
        loop = self._server.loop if self._server else None
        with self._cond:
            pollers = list(self._pollers)
        for waiter in pollers:
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(_settle, waiter, reason)

    # --- methods (called with the lock held) ----------------------------------------------

    def _bot_json(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Alley Steward",
            "username": self.bot_username,
        }

    def _get_me(self, call: RecordedCall) -> dict[str, Any]:
        return self._bot_json() | {
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _set_webhook(self, call: RecordedCall) -> bool:
        url = _str(call, "url")
        if url is None:
            raise ApiError(400, 'Bad Request: parameter "url" is required')
        secret = _str(call, "secret_token")
        if secret is not None and not _SECRET_TOKEN.fullmatch(secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if _bool(call, "drop_pending_updates"):
            self._queue.clear()
        self._remember_allowed_updates(call)
        max_connections = _int(call, "max_connections") or 40
        self._webhook = _Webhook(url, secret, max_connections) if url else None
        return True

    def _delete_webhook(self, call: RecordedCall) -> bool:
        if _bool(call, "drop_pending_updates"):
            self._queue.clear()
        self._webhook = None
        return True

    def _get_webhook_info(self, call: RecordedCall) -> dict[str, Any]:
        hook = self._webhook
        info: dict[str, Any] = {
            "url": hook.url if hook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._queue),
        }
        if hook is not None:
            info["max_connections"] = hook.max_connections
            info |= _without_none(
                last_error_date=hook.last_error_date, last_error_message=hook.last_error_message
            )
        if self._allowed_updates:
            info["allowed_updates"] = list(self._allowed_updates)
        return info

    def _send_message(self, call: RecordedCall) -> dict[str, Any]:
        chat = self._target_chat(call)
        text = _str(call, "text") or ""
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        markup = _markup(call)
        return self._store(chat, self._bot_json(), _text_content(text), markup, from_bot=True)

    def _send_photo(self, call: RecordedCall) -> dict[str, Any]:
        chat = self._target_chat(call)
        photo = self._photo_to_send(call)
        content = _without_none(photo=self._photo_sizes(photo), caption=_str(call, "caption"))
        return self._store(chat, self._bot_json(), content, _markup(call), from_bot=True)

    def _send_document(self, call: RecordedCall) -> dict[str, Any]:
        chat = self._target_chat(call)
        upload = call.files.get("document")
        if upload is None:
            raise ApiError(400, "Bad Request: there is no document in the request")
        stored = self._register_file(upload)
        document = {"file_id": stored.file_id, "file_unique_id": stored.unique_id}
        content = _without_none(document=document, caption=_str(call, "caption"))
        return self._store(chat, self._bot_json(), content, _markup(call), from_bot=True)

    def _photo_to_send(self, call: RecordedCall) -> _File:
        """The uploaded photo (kept as a new file), or the known file its file_id names."""
        upload = call.files.get("photo")
        if upload is not None:
            return self._register_file(upload)
        known = self._files.get(_str(call, "photo") or "")
        if known is None:
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        return known

    def _edit_message_text(self, call: RecordedCall) -> dict[str, Any]:
        stored = self._editable(call)
        if "text" not in stored.message:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        text = _str(call, "text") or ""
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        return self._edit(stored, text, _markup(call))

    def _edit_message_reply_markup(self, call: RecordedCall) -> dict[str, Any]:
        stored = self._editable(call)
        return self._edit(stored, stored.message.get("text"), _markup(call))

    def _answer_callback_query(self, call: RecordedCall) -> bool:
        query_id = _str(call, "callback_query_id") or ""
        if self._callbacks.get(query_id, True):
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        self._callbacks[query_id] = True
        self.callback_answers.append(dict(call.params))
        return True

    def _get_file(self, call: RecordedCall) -> dict[str, Any]:
        found = self._files.get(_str(call, "file_id") or "")
        if found is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        return {
            "file_id": found.file_id,
            "file_unique_id": found.unique_id,
            "file_size": len(found.content),
            "file_path": found.path,
        }

    def _delete_message(self, call: RecordedCall) -> bool:
        chat = self._target_chat(call)
        message_id = _int(call, "message_id")
        if self._messages.get(chat.id, {}).pop(message_id or 0, None) is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        return True

    def _send_chat_action(self, call: RecordedCall) -> bool:
        self._target_chat(call)
        return True

    def _set_my_commands(self, call: RecordedCall) -> bool:
        self.commands = list(call.params.get("commands") or [])
        return True

    # --- helpers of the methods -----------------------------------------------------------

    def _target_chat(self, call: RecordedCall) -> FakeChat:
        value = call.raw.get("chat_id")
        chat = self._find_chat(value)
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        if chat.id in self._blocked:
            raise ApiError(403, self._blocked[chat.id])
        return chat

    def _find_chat(self, value: Any) -> FakeChat | None:
        if isinstance(value, str) and value.startswith("@"):
            return next((c for c in self._chats.values() if c.username == value[1:]), None)
        if not _is_integer(value):
            return None
        return self._chats.get(int(value))

    def _editable(self, call: RecordedCall) -> _Stored:
        if "inline_message_id" in call.raw:
            raise ApiError(400, "Bad Request: the stand-in does not model inline messages")
        chat = self._target_chat(call)
        stored = self._messages.get(chat.id, {}).get(_int(call, "message_id") or 0)
        if stored is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if not stored.from_bot:
            raise ApiError(400, "Bad Request: message can't be edited")
        return stored

    def _edit(
        self, stored: _Stored, text: str | None, markup: dict[str, Any] | None
    ) -> dict[str, Any]:
        if text == stored.message.get("text") and markup == stored.markup:
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        message = {k: v for k, v in stored.message.items() if k != "reply_markup"}
        if text is not None:
            message["text"] = text
        message["edit_date"] = int(self.clock())
        if markup is not None:
            message["reply_markup"] = markup
        stored.message, stored.markup = message, markup
        stored.edits += 1
        self.sends.append(Stamp(time.perf_counter(), int(message["chat"]["id"])))
        return dict(message)

    def _store(
        self,
        chat: FakeChat,
        sender: dict[str, Any],
        content: dict[str, Any],
        markup: dict[str, Any] | None,
        *,
        from_bot: bool,
    ) -> dict[str, Any]:
        """Keep a message in `chat` under the chat's next message_id; return its Message."""
        in_chat = self._messages.setdefault(chat.id, {})
        message_id = max(in_chat, default=0) + 1
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": sender,
            "chat": chat.to_json(),
            "date": int(self.clock()),
            **content,
        }
        if markup is not None and "inline_keyboard" in markup:
            message["reply_markup"] = markup  # Telegram echoes only inline keyboards
        in_chat[message_id] = _Stored(message, markup, from_bot)
        if from_bot:
            self._sent_order.append((chat.id, message_id))
            self.sends.append(Stamp(time.perf_counter(), chat.id))
        return dict(message)

    def _register_file(self, content: bytes) -> _File:
        n = next(self._ids)
        extension = "png" if content.startswith(_PNG_SIGNATURE) else "jpg"
        stored = _File(
            f"AgACAgUAAx-photo-{n:06d}", f"AQAD{n:06d}", f"photos/file_{n}.{extension}", content
        )
        self._files[stored.file_id] = stored
        return stored

    def _photo_sizes(self, photo: _File) -> list[dict[str, Any]]:
        width, height = _png_size(photo.content)
        size = {
            "file_id": photo.file_id,
            "file_unique_id": photo.unique_id,
            "width": width,
            "height": height,
            "file_size": len(photo.content),
        }
        return [size]

    def _snapshot(self, stored: _Stored) -> SentMessage:
        message = stored.message
        photo = message.get("photo")
        document = message.get("document")
        return SentMessage(
            chat_id=int(message["chat"]["id"]),
            message_id=int(message["message_id"]),
            text=message.get("text"),
            caption=message.get("caption"),
            photo_file_id=photo[-1]["file_id"] if photo else None,
            document_file_id=document["file_id"] if document else None,
            reply_markup=stored.markup,
            edits=stored.edits,
            data=dict(message),
        )


# --- reading a request --------------------------------------------------------------------


async def _read_call(request: Request, method: str) -> RecordedCall:
    """Read query, JSON, form or multipart parameters (and uploaded files) of a request."""
    raw: dict[str, Any] = dict(request.query_params)
    files: dict[str, bytes] = {}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        raw |= _json_body(await request.body())
    elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        async with request.form() as form:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    files[key] = await value.read()
                else:
                    raw[key] = value
    params = {k: _decoded(v) for k, v in raw.items()}
    return RecordedCall(method, params, raw, files, content_type)


def _json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError:
        raise ApiError(400, "Bad Request: can't parse JSON body") from None
    if not isinstance(data, dict):
        raise ApiError(400, "Bad Request: the JSON body must be an object")
    return data


def _decoded(value: Any) -> Any:
    """A JSON-serialised object or array as Python, anything else as it is."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _int(call: RecordedCall, name: str) -> int | None:
    value = call.raw.get(name)
    if value is None:
        return None
    if not _is_integer(value):
        raise ApiError(400, f"Bad Request: invalid {name} specified")
    return int(value)


def _str(call: RecordedCall, name: str) -> str | None:
    value = call.raw.get(name)
    return None if value is None else str(value)


def _bool(call: RecordedCall, name: str) -> bool:
    value = call.raw.get(name)
    return value is True or (isinstance(value, str) and _BOOLEANS.get(value.lower(), False))


def _markup(call: RecordedCall) -> dict[str, Any] | None:
    if "reply_markup" not in call.raw:
        return None
    markup = _as_json(call.raw["reply_markup"], dict)
    if markup is None:
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    return dict(markup)


# --- small pieces -------------------------------------------------------------------------


def _text_content(text: str) -> dict[str, Any]:
    """A text message's fields; a leading /command gets its bot_command entity, as Telegram does."""
    content: dict[str, Any] = {"text": text}
    if text.startswith("/"):
        command = text.split(maxsplit=1)[0]
        length = len(command.encode("utf-16-le")) // 2  # entity offsets count UTF-16 units
        content["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
    return content


def _update_kind(update: Mapping[str, Any]) -> str:
    return next(k for k in update if k != "update_id")


def _png_size(content: bytes) -> tuple[int, int]:
    if content.startswith(_PNG_SIGNATURE) and len(content) >= 24:
        width, height = struct.unpack(">II", content[16:24])
        return int(width), int(height)
    return 0, 0


def _without_none(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _settle(future: asyncio.Future[str], reason: str) -> None:
    if not future.done():
        future.set_result(reason)
