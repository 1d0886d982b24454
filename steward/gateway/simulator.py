"""The browser simulator (SPEC §8): the /sim page, its JSON API, and the channel behind them.

With SIMULATOR on, the SMS channel's sender is `SimulatorSender`: every text the service would
send by SMS goes through the same outbox, pacing and records, and is marked sent with a `SIM…`
provider id instead of reaching Twilio. The phones on the page read those rows back. What the
page sends enters as a webhook would: an `InboundMessage` handed to the inbound writer.

The simulator owns the clock while it runs (`Simulator.start` to `stop`): the machine's time, moved
forward when a trainer runs a job "as of" a later moment, so that what the job queued falls due
and everything texted afterwards happens after it. It never moves back.

Off (SIMULATOR unset) none of these routes exist: /sim and /sim/api/* answer 404.
"""

from __future__ import annotations

import html
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from steward.clock import reading, system_clock, utc, utcnow
from steward.flows import jobs as job_rules
from steward.flows.groups import card_buttons
from steward.flows.segments import segment_count
from steward.gateway.messages import GroupPost, InboundMessage, OutboundMessage, SendResult
from steward.gateway.webhooks import BadRequest, read_body
from steward.settings import Settings
from steward.shells import jobs as job_shells
from steward.storage.chats_store import group_people
from steward.storage.models import InboundMessage as StoredInbound
from steward.storage.models import OutboxMessage, OutboxStatus
from steward.storage.roster_store import RosterEntry, list_roster

log = logging.getLogger(__name__)

CHANNEL = "sms"  # the simulator stands in for the SMS network, and for Telegram's groups
GROUP_CHANNEL = "telegram"
PRIVATE_TELEGRAM = (
    'the simulator has Telegram groups only: give "chat" (a group id) with a Telegram "from"'
)
PROVIDER_PREFIX = "SIM"
MAX_TEXT = 1600  # what one SMS (all its segments together) can carry at Twilio
THREAD_LIMIT = 300  # the latest messages of a thread the page shows
MAX_JUMP = timedelta(days=366)  # a job "as of" a moment further off is a typo, not a plan
SHOWN = (OutboxStatus.SENT, OutboxStatus.DELIVERED)  # what has reached the simulated phone
BANNER = (
    "SIMULATOR ON: texts go to the /sim page, not to Twilio; nothing reaches a real phone. "
    "Never enable SIMULATOR in production."
)

Accept = Callable[[InboundMessage], Awaitable[bool]]


class SimulatorSender:
    """The SMS channel's sender while the simulator is on: the simulated phone receives at once."""

    channel = CHANNEL

    async def send(self, message: OutboundMessage) -> SendResult:
        return SendResult(provider_id=f"{PROVIDER_PREFIX}{secrets.token_hex(16)}", status="sent")

    async def close(self) -> None:
        return None


class TelegramGroupSender:
    """Telegram's sender while the simulator is on: the page's group chats read the outbox.

    A sent message's id in its chat is its outbox id (`tg:<chat>:<id>`, as Telegram's ids are
    kept), so a card can be pressed and edited the way it is in a real group.
    """

    channel = GROUP_CHANNEL

    async def send(self, message: OutboundMessage) -> SendResult:
        chat = message.address.split(":", 1)[1]
        if message.edit_message_id is not None:
            provider = f"tg:{chat}:{message.edit_message_id}:edit{message.outbox_id}"
        else:
            provider = f"tg:{chat}:{message.outbox_id}"
        return SendResult(provider_id=provider, status="sent")

    async def close(self) -> None:
        return None


def sender() -> SimulatorSender:
    """The simulator's SMS sender, announced loudly in the log (it replaces Twilio)."""
    log.warning(BANNER)
    return SimulatorSender()


class SimulatorClock:
    """The product's clock while the simulator runs: the machine's, moved forward on request."""

    def __init__(self, base: Callable[[], datetime] = system_clock) -> None:
        self._base = base
        self._ahead = timedelta(0)

    def __call__(self) -> datetime:
        return utc(self._base()) + self._ahead

    def move_to(self, at: datetime) -> bool:
        """Move forward to `at`; False (and no change) when it is not later than now."""
        gap = utc(at) - self()
        if gap <= timedelta(0):
            return False
        self._ahead += gap
        return True


class ApiError(Exception):
    """Bad input to the simulator's API: answered with its status and reason, never a 500."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# --- reading what the API is given ------------------------------------------------------------


def phone_address(raw: object, region: str) -> str:
    """The E.164 address of a phone number written any common way; ApiError otherwise."""
    if not isinstance(raw, str) or not raw.strip():
        raise ApiError(400, 'give "from" as a phone number, e.g. "+8613800138000"')
    if raw.strip().startswith("telegram:"):
        raise ApiError(400, PRIVATE_TELEGRAM)
    try:
        number = phonenumbers.parse(raw.strip()[:64], region)
    except NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise ApiError(400, f"not a phone number: {raw[:64]!r}")
    return str(phonenumbers.format_number(number, PhoneNumberFormat.E164))


def moment(raw: object, tz: ZoneInfo, now: datetime) -> datetime:
    """An ISO 8601 time (local to the deployment when it has no offset), within a year of now."""
    if raw is None:
        return now
    if not isinstance(raw, str):
        raise ApiError(400, 'give "at" as ISO 8601, e.g. "2026-12-02T08:31"')
    try:
        parsed = datetime.fromisoformat(raw.strip())
        at = utc(parsed if parsed.tzinfo else parsed.replace(tzinfo=tz))
    except (ValueError, OverflowError):
        raise ApiError(400, f'"at" is not an ISO 8601 time: {raw[:40]!r}') from None
    if abs(at - now) > MAX_JUMP:
        raise ApiError(400, '"at" must be within a year of the simulator\'s clock')
    return at


async def json_object(request: Request, limit: int) -> dict[str, Any]:
    try:
        body = await read_body(request, limit)
    except BadRequest as exc:
        raise ApiError(exc.status, exc.reason) from None
    if not body.strip():
        return {}
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "expected a JSON object") from None
    if not isinstance(data, dict):
        raise ApiError(400, "expected a JSON object")
    return data


def telegram_id(raw: object, name: str) -> int:
    """A Telegram id as the API is given it: 12345, "-1001", or "telegram:12345"."""
    text = str(raw if raw is not None else "").strip().removeprefix("telegram:")
    try:
        return int(text)
    except ValueError:
        raise ApiError(400, f'"{name}" must be a Telegram id such as "telegram:7001"') from None


async def _our_message(address: str, raw: object) -> tuple[int, str]:
    """The message of ours in a simulated group that a button or a reply is about."""
    try:
        message_id = int(str(raw))
    except ValueError:
        raise ApiError(400, '"message" / "reply_to" is the id of a message in the thread') from None
    row = await OutboxMessage.filter(id=message_id, address=address).first()
    if row is None:
        raise ApiError(404, f"no message {message_id} in {address}")
    latest = (
        await OutboxMessage.filter(address=address, edit_message_id=message_id)
        .order_by("-id")
        .first()
    )
    return message_id, (latest or row).body


def message_text(raw: object) -> str:
    if not isinstance(raw, str):
        raise ApiError(400, 'give "text" as a string')
    if not raw.strip():
        raise ApiError(400, "text is empty")
    if len(raw) > MAX_TEXT:
        raise ApiError(400, f"text is longer than {MAX_TEXT} characters (the SMS limit)")
    if "\x00" in raw:
        raise ApiError(400, "text contains NUL")
    return raw


# --- what a phone has seen ---------------------------------------------------------------------


def local_iso(at: datetime, tz: ZoneInfo) -> str:
    return utc(at).astimezone(tz).isoformat(timespec="seconds")


async def thread(address: str, tz: ZoneInfo) -> list[dict[str, Any]]:
    """A phone's messages both ways, oldest first: what it sent, and what reached it."""
    # The one read of the tables this module makes; it returns stored facts only.
    received = (
        await StoredInbound.filter(channel=CHANNEL, address=address)
        .order_by("-received_at", "-id")
        .limit(THREAD_LIMIT)
    )
    delivered = (
        await OutboxMessage.filter(channel=CHANNEL, address=address, status__in=list(SHOWN))
        .order_by("-sent_at", "-id")
        .limit(THREAD_LIMIT)
    )
    # At the same instant a text comes before its reply.
    rows = [(utc(r.received_at), 0, int(r.id), "in", r.text) for r in received] + [
        (utc(r.sent_at or r.created_at), 1, int(r.id), "out", r.body) for r in delivered
    ]
    rows.sort()
    return [
        {"direction": d, "text": text, "at": local_iso(at, tz), "segments": segment_count(text)}
        for at, _, _, d, text in rows[-THREAD_LIMIT:]
    ]


async def group_thread(address: str, tz: ZoneInfo) -> list[dict[str, Any]]:
    """A group's messages both ways, oldest first; a card shows its latest edit and buttons."""
    received = (
        await StoredInbound.filter(channel=GROUP_CHANNEL, address=address)
        .order_by("-received_at", "-id")
        .limit(THREAD_LIMIT)
    )
    delivered = (
        await OutboxMessage.filter(channel=GROUP_CHANNEL, address=address, status__in=list(SHOWN))
        .order_by("-sent_at", "-id")
        .limit(THREAD_LIMIT)
    )
    edits: dict[int, OutboxMessage] = {}
    for edit in sorted(delivered, key=lambda row: int(row.id)):  # the newest edit wins
        if edit.edit_message_id is not None:
            edits[int(edit.edit_message_id)] = edit
    rows: list[tuple[datetime, int, int, dict[str, Any]]] = []
    for r in received:
        post = (r.details or {}).get("group", {})
        if post.get("callback_id"):
            continue  # a button press shows as the card's edit, not as a message
        item = {"direction": "in", "text": r.text, "from": post.get("user_name", "")}
        rows.append((utc(r.received_at), 0, int(r.id), item))
    for sent in delivered:
        if sent.edit_message_id is not None:
            continue
        latest = edits.get(int(sent.id), sent)
        buttons = card_buttons(latest.keyboard or "") if latest.keyboard else None
        item = {
            "direction": "out",
            "text": latest.body,
            "id": int(sent.id),
            "buttons": buttons or [],
            "asks_reply": sent.keyboard == "answer",
            "photo": bool(sent.attachment),
        }
        rows.append((utc(sent.sent_at or sent.created_at), 1, int(sent.id), item))
    rows.sort(key=lambda row: row[:3])
    return [
        {**item, "at": local_iso(at, tz), "segments": segment_count(item["text"])}
        for at, _, _, item in rows[-THREAD_LIMIT:]
    ]


def person(entry: RosterEntry) -> dict[str, str]:
    return {
        "street": entry.street,
        "name": entry.name,
        "phone": entry.phone,
        "role": entry.role,
        "language": entry.language,
        "community": entry.community,
        "pair": entry.pair,
        "zone": entry.zone,
        "status": entry.status,
    }


async def bound_groups() -> list[dict[str, Any]]:
    """The bound groups and who may speak in each (linked leads or office staff)."""
    return [
        {
            "chat": str(g.chat_id),
            "address": f"{GROUP_CHANNEL}:{g.chat_id}",
            "role": g.role,
            "place": g.place,
            "people": [{"user": u, "name": n, "role": r} for u, n, r in people],
        }
        for g, people in await group_people()
    ]


# --- the routes --------------------------------------------------------------------------------

Handler = Callable[[Request], Awaitable[Response]]


def api(handler: Handler) -> Handler:
    """Answer ApiError with its status and reason as JSON."""

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as exc:
            return JSONResponse({"error": exc.reason}, status_code=exc.status)

    return guarded


@dataclass
class Simulator:
    """The simulator's routes and clock; `enabled` False gives neither."""

    settings: Settings
    accept: Accept
    clock: SimulatorClock
    _in_use: ExitStack = field(default_factory=ExitStack)

    @property
    def enabled(self) -> bool:
        return self.settings.SIMULATOR

    def start(self) -> None:
        """Make the simulator's clock every "now" of the product until stop() (when enabled)."""
        if self.enabled:
            self._in_use.enter_context(reading(self.clock))

    def stop(self) -> None:
        """Give the product its previous clock back."""
        self._in_use.close()

    def routes(self) -> list[BaseRoute]:
        if not self.enabled:
            return []
        return [
            Route("/", self.home, methods=["GET"]),
            Route("/sim", self.page, methods=["GET"]),
            Route("/sim/api/people", api(self.people), methods=["GET"]),
            Route("/sim/api/groups", api(self.groups), methods=["GET"]),
            Route("/sim/api/messages", api(self.message), methods=["POST"]),
            Route("/sim/api/threads/{address:path}", api(self.thread), methods=["GET"]),
            Route("/sim/api/jobs/{name}", api(self.job), methods=["POST"]),
            Route("/sim/api/clock", api(self.time), methods=["GET", "POST"]),
        ]

    @property
    def tz(self) -> ZoneInfo:
        return self.settings.tz

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/sim", status_code=302)

    async def page(self, request: Request) -> Response:
        people = [person(e) for e in await list_roster()]
        return HTMLResponse(render_page(people, self.settings))

    async def people(self, request: Request) -> Response:
        return JSONResponse([person(e) for e in await list_roster()])

    async def groups(self, request: Request) -> Response:
        return JSONResponse(await bound_groups())

    async def message(self, request: Request) -> Response:
        data = await json_object(request, self.settings.MAX_WEBHOOK_BYTES)
        if "chat" in data:
            return await self._group_message(data)
        address = phone_address(data.get("from"), self.settings.DEFAULT_REGION)
        text = message_text(data.get("text"))
        msg = InboundMessage(
            channel=CHANNEL,
            address=address,
            text=text,
            external_id=f"{PROVIDER_PREFIX}{secrets.token_hex(16)}",
            received_at=utcnow(),
        )
        await self.accept(msg)  # durable once this returns; the processor is woken by the commit
        body = {"from": address, "id": msg.external_id, "at": local_iso(msg.received_at, self.tz)}
        return JSONResponse(body, status_code=202)

    async def _group_message(self, data: dict[str, Any]) -> Response:
        """`{"from": "telegram:<user>", "chat": "<group>", "text": "/today"}`, or a card's
        button (`"button": "ack:3", "message": <id>`), or an answer to one of our questions
        (`"reply_to": <id>`): as Telegram would deliver it to the webhook."""
        user, chat = telegram_id(data.get("from"), "from"), telegram_id(data.get("chat"), "chat")
        if chat >= 0:
            raise ApiError(400, '"chat" is a group: a negative id, e.g. "-1001"')
        address = f"{GROUP_CHANNEL}:{chat}"
        names = {int(g["chat"]): g for g in await bound_groups()}
        speaker = next(
            (p["name"] for p in names.get(chat, {}).get("people", []) if p["user"] == user), ""
        )
        external_id = f"{PROVIDER_PREFIX}{secrets.token_hex(16)}"
        button, text = data.get("button"), ""
        post = GroupPost(user_id=user, user_name=speaker, title="")
        if button is not None:
            card = await _our_message(address, data.get("message"))
            text = message_text(button)
            post = replace(post, callback_id=external_id, message_id=card[0], card_text=card[1])
        else:
            text = message_text(data.get("text"))
            if data.get("reply_to") is not None:
                asked = await _our_message(address, data.get("reply_to"))
                post = replace(post, reply_to_text=asked[1])
        msg = InboundMessage(
            channel=GROUP_CHANNEL,
            address=address,
            text=text,
            external_id=external_id,
            received_at=utcnow(),
            group=post,
        )
        await self.accept(msg)
        body = {"from": address, "id": external_id, "at": local_iso(msg.received_at, self.tz)}
        return JSONResponse(body, status_code=202)

    async def thread(self, request: Request) -> Response:
        raw = str(request.path_params["address"])
        if raw.startswith(f"{GROUP_CHANNEL}:-"):
            telegram_id(raw.split(":", 1)[1], "address")
            return JSONResponse(await group_thread(raw, self.tz))
        address = phone_address(raw, self.settings.DEFAULT_REGION)
        return JSONResponse(await thread(address, self.tz))

    async def job(self, request: Request) -> Response:
        name = str(request.path_params["name"])
        names = list(job_shells.JOBS) if name == "all" else [name]
        if any(n not in job_shells.JOBS for n in names):
            known = ", ".join([*job_shells.JOBS, "all"])
            raise ApiError(404, f"no job {name[:40]!r}; the jobs are {known}")
        data = await json_object(request, self.settings.MAX_WEBHOOK_BYTES)
        at = moment(data.get("at"), self.tz, utcnow())
        self.clock.move_to(at)  # a later moment moves the clock on, so what is queued falls due
        queued = []
        for job in names:
            notices = await job_shells.run_job(
                job, self.settings, at, units=request.app.state.units
            )
            queued += [
                {"job": job, "to": n.to.name, "address": n.to.phone, "text": n.body}
                for n in notices
            ]
        request.app.state.dispatcher.wake()
        held = job_rules.quiet_until(at, self.settings)
        body = {
            "job": name,
            "at": local_iso(at, self.tz),
            "now": local_iso(utcnow(), self.tz),
            "queued": queued,
            "held_until": local_iso(held, self.tz) if held > at else None,
        }
        return JSONResponse(body)

    async def time(self, request: Request) -> Response:
        if request.method == "POST":
            data = await json_object(request, self.settings.MAX_WEBHOOK_BYTES)
            if "at" not in data:
                raise ApiError(400, 'give "at" as ISO 8601, e.g. "2026-12-02T07:45"')
            at = moment(data["at"], self.tz, utcnow())
            if not self.clock.move_to(at):
                it_is = local_iso(utcnow(), self.tz)
                raise ApiError(409, f"the simulator's clock only moves forward (it is {it_is})")
            request.app.state.dispatcher.wake()  # messages held until then are due now
        now = utcnow().astimezone(self.tz)
        return JSONResponse(
            {
                "now": now.isoformat(timespec="seconds"),
                "local": now.strftime("%Y-%m-%dT%H:%M"),
                "timezone": self.settings.TIMEZONE,
            }
        )


def mount(settings: Settings, accept: Accept) -> Simulator:
    """The simulator for these settings (no routes and the machine's clock when it is off)."""
    return Simulator(settings, accept, SimulatorClock())


# --- the page ----------------------------------------------------------------------------------

ROLE_LABELS = {"steward": "管家", "lead": "片长", "office": "街道办"}


def _option(p: dict[str, str]) -> str:
    where = f" {p['pair']}" if p["pair"] else ""
    status = "" if p["status"] == "active" else f" ({p['status']})"
    label = f"{p['name']} · {ROLE_LABELS.get(p['role'], p['role'])}{where}{status}"
    return f'<option value="{html.escape(p["phone"])}">{html.escape(label)}</option>'


def _options(people: list[dict[str, str]], roles: tuple[str, ...]) -> str:
    """Options grouped by community (the office first), for the chosen roles."""
    groups: dict[str, list[str]] = {}
    for p in people:
        if p["role"] in roles:
            groups.setdefault(p["community"], []).append(_option(p))
    return "".join(
        f'<optgroup label="{html.escape(name)}">{"".join(items)}</optgroup>'
        for name, items in groups.items()
    )


def render_page(people: list[dict[str, str]], settings: Settings) -> str:
    """The whole page, server-rendered; the script only polls and posts to the JSON API."""
    streets = sorted({p.get("street", "") for p in people} - {""})
    roster_json = json.dumps(people, ensure_ascii=False).replace("<", "\\u003c")
    values = {
        "@@PHONES@@": _options(people, ("steward", "lead", "office")),
        "@@JOBS@@": "".join(f'<option value="{j}">{j}</option>' for j in [*job_shells.JOBS, "all"]),
        "@@ROSTER@@": roster_json,
        "@@ZONE@@": html.escape(settings.TIMEZONE),
        "@@BANNER@@": html.escape(BANNER),
        "@@STREETS@@": html.escape("、".join(streets)),
        "@@EMPTY@@": "" if people else '<p class="warn">The roster is empty: import one first.</p>',
    }
    page = PAGE
    for key, value in values.items():
        page = page.replace(key, value)
    return page


PAGE = """<!doctype html>
<html lang="zh">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>[SIMULATOR] 小巷管家 Alley Steward</title>
<style>
:root { font-family: system-ui, "WenQuanYi Zen Hei", "Noto Sans CJK SC", sans-serif; }
body { margin: 0; background: #eef1f4; color: #1d2329; font-size: 16px; }
.banner { background: #b00020; color: #fff; padding: .5rem 1rem; font-weight: 700; }
.banner small { font-weight: 400; display: block; }
header, main { padding: .5rem 1rem; }
.clock { background: #fff; border-radius: 10px; padding: .6rem .8rem; display: flex;
  flex-wrap: wrap; gap: .4rem .8rem; align-items: center; }
.clock .now { font-size: 1.3rem; font-weight: 700; font-variant-numeric: tabular-nums; }
.clock .presets button { font-size: .85rem; }
.result { flex-basis: 100%; font-size: .9rem; color: #37474f; min-height: 1.2em; }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 1rem; }
section { background: #fff; border-radius: 14px; display: flex; flex-direction: column;
  min-height: 70vh; max-height: 86vh; box-shadow: 0 1px 3px #0002; }
section h2 { font-size: 1rem; margin: 0; padding: .6rem .8rem 0; }
.who { margin: .4rem .8rem; font-size: 1rem; padding: .3rem; }
.number { font-size: .8rem; color: #607d8b; margin: 0 .8rem .3rem; }
.other { display: flex; gap: .3rem; margin: 0 .8rem; }
.other input { flex: 1; min-width: 0; }
.thread { flex: 1; overflow-y: auto; padding: .6rem .8rem; background: #f6f7f9;
  margin-top: .4rem; display: flex; flex-direction: column; gap: .4rem; }
.msg { max-width: 85%; padding: .4rem .6rem; border-radius: 12px; white-space: pre-wrap;
  word-break: break-word; }
.msg.in { align-self: flex-end; background: #c8f7c5; }
.msg.out { align-self: flex-start; background: #fff; border: 1px solid #d7dce1; }
.meta { font-size: .75rem; color: #607d8b; margin-top: .15rem; }
.quick { display: flex; flex-wrap: wrap; gap: .3rem; margin-top: .3rem; }
.keys { display: flex; gap: .3rem; padding: .4rem .8rem 0; flex-wrap: wrap; }
.keys button { flex: 1; font-size: 1.05rem; padding: .5rem 0; }
form.compose { display: flex; gap: .3rem; padding: .5rem .8rem .8rem; }
form.compose input { flex: 1; min-width: 0; font-size: 1rem; padding: .45rem; }
button { font-size: .95rem; padding: .35rem .7rem; border-radius: 8px; border: 1px solid #90a4ae;
  background: #f5f8fa; cursor: pointer; }
button.primary { background: #1565c0; color: #fff; border-color: #1565c0; }
select.group, select.speaker { margin: .4rem .8rem 0; font-size: 1rem; padding: .3rem; }
.msg .from { font-size: .75rem; color: #2e7d32; }
.msg .photo { font-size: .8rem; color: #607d8b; }
.msg.ask { border-color: #1565c0; }
.hint { font-size: .8rem; color: #607d8b; padding: 0 .8rem; }
.warn { color: #b00020; }
</style>
</head>
<body>
<div class="banner" role="alert">模拟器 SIMULATOR — 不发真实短信 @@STREETS@@
<small>@@BANNER@@</small></div>
<header>
<form class="clock" id="clock" aria-label="clock">
<span>时钟 Clock</span><span class="now" id="now">…</span><span class="hint">@@ZONE@@</span>
<label>任务 Job <select id="job">@@JOBS@@</select></label>
<label>时间 As of <input type="datetime-local" id="at" required></label>
<button type="submit" class="primary" id="run">运行 Run</button>
<button type="button" id="move">拨到此刻 Move clock</button>
<span class="presets" id="presets"></span>
<div class="result" id="result" aria-live="polite"></div>
</form>
@@EMPTY@@
</header>
<main>
<section id="phone" data-role="phone">
<h2>手机 Phone</h2>
<select class="who" aria-label="person">@@PHONES@@</select>
<div class="number"></div>
<form class="other"><input placeholder="或输入号码 or type a number" aria-label="number">
<button type="submit">打开 Open</button></form>
<div class="thread" aria-live="polite"></div>
<div class="keys"></div>
<form class="compose"><input aria-label="text" placeholder="短信 text (Enter sends)"
autocomplete="off"><button type="submit" class="primary">发送</button></form>
<p class="hint">试试 Try: 签到 · 报 · 积分 · 请假 2 · 查 1 · 撤销 · HELP</p>
</section>
<section id="lead" data-role="lead">
<h2>片长群 Lead group (Telegram)</h2>
<select class="group" aria-label="lead group"></select>
<select class="speaker" aria-label="speaking as"></select>
<div class="thread" aria-live="polite"></div>
<div class="keys"></div>
<form class="compose"><input aria-label="text" placeholder="/today · /reports · /ack N"
autocomplete="off"><button type="submit" class="primary">发送</button></form>
</section>
<section id="office" data-role="office">
<h2>街道办群 Office group (Telegram)</h2>
<select class="group" aria-label="office group"></select>
<select class="speaker" aria-label="speaking as"></select>
<div class="thread" aria-live="polite"></div>
<div class="keys"></div>
<form class="compose"><input aria-label="text" placeholder="/digest · /flags · /applicants"
autocomplete="off"><button type="submit" class="primary">发送</button></form>
</section>
</main>
<script id="roster" type="application/json">@@ROSTER@@</script>
<script>
"use strict";
const ZONE = "@@ZONE@@";
const ROSTER = JSON.parse(document.getElementById("roster").textContent);
const PEOPLE = new Map(ROSTER.map(p => [p.phone, p]));
const KEYS = {
  zh: [["签到", "签到"], ["签退", "签退"], ["上报", "报"], ["积分", "积分"]],
  en: [["签到 IN", "IN"], ["签退 OUT", "OUT"], ["上报 REPORT", "R"], ["积分 POINTS", "P"]],
};
const PRESETS = [["nudges", "08:31"], ["nudges", "09:31"], ["sessions", "10:10"],
  ["reports", "12:00"], ["digest", "18:00"], ["day_close", "22:00"]];

async function api(method, path, body) {
  const options = {method, headers: {"Content-Type": "application/json"}};
  if (body !== undefined) options.body = JSON.stringify(body);
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function node(tag, cls, text) {
  const n = document.createElement(tag);
  if (cls) n.className = cls;
  if (text !== undefined) n.textContent = text;
  return n;
}

// Commands a message asks for ("回复“受理3”", "ACK 3"): one button each, like a report card.
function commands(text) {
  const found = [];
  for (const m of text.matchAll(/回复“([^”]{1,12})”/g)) found.push(m[1]);
  for (const m of text.matchAll(/\\b((?:ACK|YES|NO) \\d+)\\b/g)) found.push(m[1]);
  const extra = [];
  for (const c of found) {
    let m = c.match(/^受理\\s*(\\d+)$/);
    if (m) extra.push("办结" + m[1] + " ", "驳回" + m[1] + " ");
    m = c.match(/^ACK (\\d+)$/);
    if (m) extra.push("FIXED " + m[1] + " ", "REJECT " + m[1] + " ");
  }
  return [...new Set([...found, ...extra])];
}

class Chat {
  constructor(id, keys) {
    this.root = document.getElementById(id);
    this.list = this.root.querySelector(".thread");
    this.input = this.root.querySelector("form.compose input");
    this.keys = this.root.querySelector(".keys");
    this.who = this.root.querySelector("select.who");
    this.keySet = keys;
    this.address = "";
    this.shown = "";
    this.root.querySelector("form.compose").addEventListener("submit", event => {
      event.preventDefault();
      const text = this.input.value;
      if (text.trim()) { this.input.value = ""; this.send(text); }
    });
    this.who.addEventListener("change", () => this.open(this.who.value));
    const other = this.root.querySelector("form.other");
    if (other) other.addEventListener("submit", event => {
      event.preventDefault();
      const number = other.querySelector("input").value.trim();
      if (number) this.open(number);
    });
    if (this.who.value) this.open(this.who.value);
  }
  open(address) {
    this.address = address;
    this.shown = "";
    this.list.replaceChildren();
    const p = PEOPLE.get(address);
    const about = p ? [p.language === "en" ? "English" : "中文", p.community, p.zone, p.status]
      : ["不在名册 not on the roster"];
    this.root.querySelector(".number").textContent =
      [address, ...about.filter(x => x && x !== "active")].join(" · ");
    const keys = typeof this.keySet === "function" ? this.keySet(p) : this.keySet;
    this.keys.replaceChildren(...keys.map(([label, text]) => {
      const b = node("button", "", label);
      b.type = "button";
      b.addEventListener("click", () => this.send(text));
      return b;
    }));
    this.refresh();
  }
  async refresh() {
    if (!this.address) return;
    const address = this.address;
    let items;
    try {
      items = await api("GET", "/sim/api/threads/" + encodeURIComponent(address));
    } catch (error) {
      this.list.replaceChildren(node("p", "warn", error.message));
      this.shown = "";
      return;
    }
    const key = JSON.stringify(items);
    if (address !== this.address || key === this.shown) return;
    this.shown = key;
    this.list.replaceChildren(...items.map(m => this.bubble(m)));
    this.list.scrollTop = this.list.scrollHeight;
  }
  bubble(m) {
    const b = node("div", "msg " + m.direction);
    b.append(node("div", "body", m.text));
    const when = m.at.slice(5, 10).replace("-", "/") + " " + m.at.slice(11, 16);
    b.append(node("div", "meta", when + " · " + m.segments + " seg"));
    if (m.direction === "out") {
      const quick = commands(m.text);
      if (quick.length) {
        const row = node("div", "quick");
        for (const c of quick) {
          const button = node("button", "", c.trim());
          button.type = "button";
          button.addEventListener("click", () => {
            if (c.endsWith(" ")) { this.input.value = c; this.input.focus(); } else this.send(c);
          });
          row.append(button);
        }
        b.append(row);
      }
    }
    return b;
  }
  async send(text) {
    try {
      await api("POST", "/sim/api/messages", {from: this.address, text});
    } catch (error) {
      this.list.append(node("p", "warn", error.message));
      return;
    }
    // The reply is usually a moment behind: look often for a little while.
    for (let i = 1; i <= 8; i++) setTimeout(() => this.refresh(), 250 * i);
  }
}

// A Telegram group as its members see it: commands, report cards with buttons, and our
// questions (办结 / 驳回 ask for a note: answer in the box, it goes as a reply to the question).
class GroupChat {
  constructor(id, role, keys) {
    this.root = document.getElementById(id);
    this.role = role;
    this.list = this.root.querySelector(".thread");
    this.input = this.root.querySelector("form.compose input");
    this.groupBox = this.root.querySelector("select.group");
    this.speaker = this.root.querySelector("select.speaker");
    this.groups = [];
    this.address = "";
    this.shown = "";
    this.replyTo = null;
    this.root.querySelector(".keys").replaceChildren(...keys.map(text => {
      const b = node("button", "", text);
      b.type = "button";
      b.addEventListener("click", () => this.send({text}));
      return b;
    }));
    this.root.querySelector("form.compose").addEventListener("submit", event => {
      event.preventDefault();
      const text = this.input.value;
      if (!text.trim()) return;
      this.input.value = "";
      const body = {text};
      if (this.replyTo !== null && !text.startsWith("/")) body.reply_to = this.replyTo;
      this.replyTo = null;
      this.input.placeholder = this.placeholder;
      this.send(body);
    });
    this.placeholder = this.input.placeholder;
    this.groupBox.addEventListener("change", () => this.open(this.groupBox.value));
  }
  async load() {
    const all = await api("GET", "/sim/api/groups");
    this.groups = all.filter(g => g.role === this.role);
    if (!this.groups.length) {
      this.groupBox.replaceChildren(node("option", "", "（没有绑定的群 no group bound）"));
      return;
    }
    this.groupBox.replaceChildren(...this.groups.map(g => {
      const o = node("option", "", g.place);
      o.value = g.address;
      return o;
    }));
    this.open(this.groups[0].address);
  }
  open(address) {
    this.address = address;
    this.shown = "";
    this.list.replaceChildren();
    const group = this.groups.find(g => g.address === address);
    const people = group ? group.people : [];
    this.speaker.replaceChildren(...people.map(p => {
      const o = node("option", "", p.name + (p.role === "office" ? "（街道办）" : "（片长）"));
      o.value = "telegram:" + p.user;
      return o;
    }));
    this.refresh();
  }
  async refresh() {
    if (!this.address) return;
    const address = this.address;
    let items;
    try {
      items = await api("GET", "/sim/api/threads/" + encodeURIComponent(address));
    } catch (error) {
      this.list.replaceChildren(node("p", "warn", error.message));
      this.shown = "";
      return;
    }
    const key = JSON.stringify(items);
    if (address !== this.address || key === this.shown) return;
    this.shown = key;
    this.list.replaceChildren(...items.map(m => this.bubble(m)));
    this.list.scrollTop = this.list.scrollHeight;
  }
  bubble(m) {
    const b = node("div", "msg " + m.direction + (m.asks_reply ? " ask" : ""));
    if (m.direction === "in" && m.from) b.append(node("div", "from", m.from));
    if (m.photo) b.append(node("div", "photo", "[图表 chart: sent as a photo]"));
    b.append(node("div", "body", m.text));
    const when = m.at.slice(5, 10).replace("-", "/") + " " + m.at.slice(11, 16);
    b.append(node("div", "meta", when));
    if (m.buttons && m.buttons.length) {
      const row = node("div", "quick");
      for (const [label, data] of m.buttons) {
        const button = node("button", "", label);
        button.type = "button";
        button.addEventListener("click", () => this.send({button: data, message: m.id}));
        row.append(button);
      }
      b.append(row);
    }
    if (m.asks_reply) {
      const answer = node("button", "", "回复 Reply");
      answer.type = "button";
      answer.addEventListener("click", () => {
        this.replyTo = m.id;
        this.input.placeholder = "回复 #" + m.id + "…";
        this.input.focus();
      });
      b.append(answer);
      this.replyTo = m.id;  // the newest question is the one the box answers
      this.input.placeholder = "回复：" + m.text.slice(0, 20);
    }
    return b;
  }
  async send(body) {
    if (!this.address || !this.speaker.value) return;
    try {
      await api("POST", "/sim/api/messages",
        {...body, from: this.speaker.value, chat: this.address.split(":")[1]});
    } catch (error) {
      this.list.append(node("p", "warn", error.message));
      return;
    }
    for (let i = 1; i <= 8; i++) setTimeout(() => this.refresh(), 250 * i);
  }
}

const chats = [
  new Chat("phone", p => KEYS[p && p.language === "en" ? "en" : "zh"]),
  new GroupChat("lead", "lead", ["/today", "/reports", "/roster"]),
  new GroupChat("office", "office", ["/digest", "/flags", "/applicants"]),
];
chats.slice(1).forEach(c => c.load());
setInterval(() => chats.forEach(c => c.refresh()), 1200);

// The clock: the simulator's time, ticking here between reads.
const clockText = new Intl.DateTimeFormat("zh-CN", {timeZone: ZONE, month: "numeric",
  day: "numeric", weekday: "short", hour: "2-digit", minute: "2-digit", second: "2-digit",
  hour12: false});
let skew = 0;
let simDay = "";
async function readClock(fillInput) {
  const c = await api("GET", "/sim/api/clock");
  skew = Date.parse(c.now) - Date.now();
  simDay = c.local.slice(0, 10);
  const input = document.getElementById("at");
  if (fillInput || !input.value) input.value = c.local;
  drawPresets();
  showClock();
}
function showClock() {
  document.getElementById("now").textContent = clockText.format(new Date(Date.now() + skew));
}
function drawPresets() {
  const box = document.getElementById("presets");
  box.replaceChildren(...PRESETS.map(([job, time]) => {
    const b = node("button", "", job + " " + time);
    b.type = "button";
    b.addEventListener("click", () => {
      document.getElementById("job").value = job;
      document.getElementById("at").value = simDay + "T" + time;
    });
    return b;
  }));
}
function report(text) { document.getElementById("result").textContent = text; }
document.getElementById("clock").addEventListener("submit", async event => {
  event.preventDefault();
  const job = document.getElementById("job").value;
  const at = document.getElementById("at").value;
  try {
    const r = await api("POST", "/sim/api/jobs/" + job, {at});
    const who = r.queued.map(q => q.to).join("、");
    let text = job + " @ " + r.at.slice(5, 16).replace("T", " ") + ": ";
    text += r.queued.length ? r.queued.length + " queued → " + who : "nothing new to send";
    if (r.held_until && r.queued.length) {
      text += " (quiet hours: held until " + r.held_until.slice(11, 16) + ")";
    }
    report(text);
  } catch (error) { report(error.message); }
  await readClock(false);
  chats.forEach(c => c.refresh());
});
document.getElementById("move").addEventListener("click", async () => {
  try {
    await api("POST", "/sim/api/clock", {at: document.getElementById("at").value});
    report("clock moved");
  } catch (error) { report(error.message); }
  await readClock(false);
});
readClock(true);
setInterval(showClock, 1000);
setInterval(() => readClock(false), 15000);
</script>
</body>
</html>
"""
