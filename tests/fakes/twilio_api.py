"""A local stand-in of Twilio's REST API (Messages resource) that speaks real HTTP.

It runs a Starlette app under uvicorn in a background thread with its own event loop, so it keeps
answering while a test's loop is blocked, and a service started as a subprocess can reach it at
`base_url` (point TWILIO_API_BASE there).

Failure controls model what the outbox must survive:
- `fail_number` / `fail_next`: Twilio refuses (4xx with Twilio's error body) or is down (5xx, 429).
- `delay`: Twilio accepts at once but answers slowly: the message is recorded before the delay,
  so a client that gives up (or dies) meanwhile has sent it without learning its SID (the
  duplicate-on-retry case, which the outbox settles by listing what was sent).
- `hang` / `release`: the request is held open and never reaches "Twilio"; if the client drops
  the connection meanwhile, nothing is recorded (the lost-request case).

Every accepted message carries `arrived`, the moment it was accepted (time.perf_counter), so a
test can count sends per one-second window at the stand-in (`tests.fakes.rates`).

Besides creating messages it answers the Messages list (`GET .../Messages.json`, filtered by
`To`, `From`, `DateSent`, `DateSent<`, `DateSent>`, paged by `PageSize`/`Page`), newest first, as
Twilio's OpenAPI description shapes `ListMessageResponse`.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.server import ReadyServer, local_socket

DEFAULT_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
DEFAULT_AUTH_TOKEN = "fake-twilio-auth-token"
API_VERSION = "2010-04-01"

_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXT = set("^{}\\[~]|€\f")

_ERROR_MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
    21211: "The 'To' number {to} is not a valid phone number.",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the "
    "'To' number: {to}.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
}
_CODE_FOR_STATUS = {429: 20429, 500: 20500, 503: 20503}


def num_segments(body: str) -> int:
    """Count SMS segments the way carriers do (GSM-7 160/153, UCS-2 70/67 in UTF-16 units)."""
    if all(c in _GSM7 or c in _GSM7_EXT for c in body):
        units, single, multi = sum(2 if c in _GSM7_EXT else 1 for c in body), 160, 153
    else:
        units, single, multi = len(body.encode("utf-16-le")) // 2, 70, 67
    if units <= single:
        return 1
    return -(-units // multi)


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the stand-in received it."""

    method: str
    path: str
    form: dict[str, str]
    form_items: list[tuple[str, str]]
    auth_user: str | None
    headers: dict[str, str]
    query: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FakeMessage:
    """A message the stand-in accepted (answered 201)."""

    sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    status_callback: str | None
    media_urls: tuple[str, ...]
    status: str
    form: dict[str, str] = field(repr=False)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # When it was accepted, on time.perf_counter (this process's): for counting rates.
    arrived: float = field(default_factory=time.perf_counter, repr=False, compare=False)


@dataclass
class _Failure:
    status: int
    code: int
    message: str
    retry_after: float | None = None


def twilio_error(
    status: int, code: int, message: str | None = None, retry_after: float | None = None, **fmt: str
) -> JSONResponse:
    """Answer with Twilio's legacy JSON error body."""
    text = message if message is not None else _ERROR_MESSAGES.get(code, "Error").format(**fmt)
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    body = {
        "code": code,
        "message": text,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return JSONResponse(body, status_code=status, headers=headers)


def _basic_auth(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password


def _rfc2822(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=False)


class FakeTwilio:
    """Twilio's Messages API on 127.0.0.1, run in a background thread."""

    def __init__(
        self, account_sid: str = DEFAULT_ACCOUNT_SID, auth_token: str = DEFAULT_AUTH_TOKEN
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.requests: list[RecordedRequest] = []
        self.messages: list[FakeMessage] = []
        self._cond = threading.Condition()
        self._server: ReadyServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self._clear_controls()

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if not self._port:
            raise RuntimeError("FakeTwilio is not started")
        return f"http://127.0.0.1:{self._port}"

    def start(self, timeout: float = 10.0) -> FakeTwilio:
        """Listen on a free port and answer from a background thread."""
        sock = local_socket()
        self._port = sock.getsockname()[1]
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST"])])
        # stop() drops held requests first; the grace period only bounds a stuck answer.
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=2,
        )
        self._server = ReadyServer(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-twilio", daemon=True
        )
        self._thread.start()
        if not self._server.ready.wait(timeout):
            raise RuntimeError("FakeTwilio did not start listening")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Drop held requests (unrecorded) and stop the server."""
        if self._server is None or self._thread is None:
            return
        self._wake_held(proceed=False)
        self._delay = 0.0
        self._server.should_exit = True
        self._thread.join(timeout)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget requests, messages and failure controls (held requests are dropped)."""
        self._wake_held(proceed=False)
        with self._cond:
            self.requests.clear()
            self.messages.clear()
            self._clear_controls()

    def _clear_controls(self) -> None:
        self._number_failures: dict[str, _Failure] = {}
        self._next_failures: list[_Failure] = []
        self._delay = 0.0
        self._hanging = False
        self._held: list[asyncio.Future[bool]] = []
        self.held_count = 0
        self.dropped_count = 0

    # --- controls -------------------------------------------------------------------------

    def fail_number(
        self, to: str, code: int, status: int = 400, message: str | None = None
    ) -> None:
        """Refuse every message to `to` with Twilio error `code` (e.g. 21211, 21610)."""
        text = message if message is not None else _ERROR_MESSAGES.get(code, "Error")
        with self._cond:
            self._number_failures[to] = _Failure(status, code, text.format(to=to))

    def fail_next(self, n: int = 1, status: int = 500, retry_after: float | None = None) -> None:
        """Answer the next `n` requests with `status` (500, 503, 429...) before looking at them."""
        code = _CODE_FOR_STATUS.get(status, 20000 + status)
        failure = _Failure(status, code, _ERROR_MESSAGES.get(code, "Error"), retry_after)
        with self._cond:
            self._next_failures.extend([failure] * n)

    def delay(self, seconds: float) -> None:
        """Answer every request `seconds` late (the message is still accepted)."""
        with self._cond:
            self._delay = seconds

    def hang(self) -> None:
        """Hold requests open until release(); a request dropped meanwhile is not recorded."""
        with self._cond:
            self._hanging = True
            self.held_count = 0

    def release(self) -> None:
        """Let held and future requests through."""
        self._wake_held(proceed=True)

    def _wake_held(self, proceed: bool) -> None:
        with self._cond:
            self._hanging = False
            held, self._held = self._held, []
        loop = self._server.loop if self._server else None
        for future in held:
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(_settle, future, proceed)

    # --- waiting (threading.Condition, never a sleep loop) --------------------------------

    def _wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise TimeoutError(f"FakeTwilio: timed out after {timeout}s waiting for {what}")

    def wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Block until `predicate()` holds for what the stand-in has seen (checked on each change)."""
        self._wait(predicate, timeout, what)

    def wait_for_request(self, timeout: float = 5.0, count: int = 1) -> None:
        """Block until `count` requests are held by hang()."""
        self._wait(lambda: self.held_count >= count, timeout, f"{count} held request(s)")

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until `n` requests have arrived (any outcome)."""
        self._wait(lambda: len(self.requests) >= n, timeout, f"{n} request(s)")
        return list(self.requests)

    def wait_for_messages(self, n: int, timeout: float = 5.0) -> list[FakeMessage]:
        """Block until `n` messages were accepted; return them."""
        self._wait(lambda: len(self.messages) >= n, timeout, f"{n} accepted message(s)")
        return list(self.messages)

    def wait_for_dropped(self, n: int = 1, timeout: float = 5.0) -> None:
        """Block until `n` held requests were abandoned by their client."""
        self._wait(lambda: self.dropped_count >= n, timeout, f"{n} dropped request(s)")

    # --- the HTTP side (runs on the server's loop) ----------------------------------------

    async def _handle(self, request: Request) -> JSONResponse:
        form_data = await request.form()
        items = [(k, v) for k, v in form_data.multi_items() if isinstance(v, str)]
        auth = _basic_auth(request.headers.get("authorization"))
        recorded = RecordedRequest(
            method=request.method,
            path=request.url.path,
            form=dict(items),
            form_items=items,
            auth_user=auth[0] if auth else None,
            headers=dict(request.headers),
            query=dict(request.query_params),
        )
        with self._cond:
            self.requests.append(recorded)
            self._cond.notify_all()
            failure = self._next_failures.pop(0) if self._next_failures else None
        if failure is not None:
            return twilio_error(
                failure.status, failure.code, failure.message, retry_after=failure.retry_after
            )
        if not await self._hold(request):
            return twilio_error(503, 20503)
        answer = self._answer(recorded, auth)
        # Accepted already; only the answer is late (cut short by delay(0), reset or stop).
        deadline = time.monotonic() + self._delay
        while self._delay and time.monotonic() < deadline:
            await asyncio.sleep(min(0.05, deadline - time.monotonic()))
        return answer

    async def _hold(self, request: Request) -> bool:
        """While hanging, wait for release() or the client leaving; True means go on."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        with self._cond:
            if not self._hanging:
                return True
            self._held.append(future)
            self.held_count += 1
            self._cond.notify_all()
        gone = asyncio.ensure_future(_disconnected(request))
        either: set[asyncio.Future[Any]] = {future, gone}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if gone.done():
            with self._cond:
                self.dropped_count += 1
                self._cond.notify_all()
            return False
        gone.cancel()
        return future.result()

    def _answer(self, req: RecordedRequest, auth: tuple[str, str] | None) -> JSONResponse:
        prefix = f"/{API_VERSION}/Accounts/"
        account, _, rest = req.path.removeprefix(prefix).partition("/")
        if not req.path.startswith(prefix) or rest != "Messages.json":
            return twilio_error(404, 20404)
        if auth != (self.account_sid, self.auth_token) or account != self.account_sid:
            return twilio_error(401, 20003)
        if req.method == "GET":
            return self._list(req, account)
        problem = self._validate(req.form)
        if problem is not None:
            return problem
        return self._accept(req, account)

    def _validate(self, form: dict[str, str]) -> JSONResponse | None:
        to = form.get("To", "")
        if not to:
            return twilio_error(400, 21604)
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return twilio_error(400, 21603)
        if not form.get("Body") and not form.get("MediaUrl"):
            return twilio_error(400, 21602)
        with self._cond:
            failure = self._number_failures.get(to)
        if failure is not None:
            return twilio_error(failure.status, failure.code, failure.message)
        return None

    def _accept(self, req: RecordedRequest, account: str) -> JSONResponse:
        form = req.form
        sid = "SM" + secrets.token_hex(16)
        service = form.get("MessagingServiceSid") or None
        # Through a Messaging Service Twilio answers "accepted" and picks the sender later.
        status = "accepted" if service and not form.get("From") else "queued"
        media = tuple(v for k, v in req.form_items if k == "MediaUrl")
        message = FakeMessage(
            sid=sid,
            to=form["To"],
            from_=form.get("From") or None,
            messaging_service_sid=service,
            body=form.get("Body", ""),
            status_callback=form.get("StatusCallback") or None,
            media_urls=media,
            status=status,
            form=dict(form),
        )
        with self._cond:
            self.messages.append(message)
            self._cond.notify_all()
        return JSONResponse(_resource(message, account), status_code=201)

    def _list(self, req: RecordedRequest, account: str) -> JSONResponse:
        """The Messages list: filtered, newest first, one page of it."""
        query = req.query
        unknown = set(query) - LIST_PARAMS
        if unknown:
            return twilio_error(400, 20001, f"Unknown parameters: {sorted(unknown)}")
        try:
            size = int(query.get("PageSize", "50"))
            page = int(query.get("Page", "0"))
            bounds = {name: _date_bound(query[name]) for name in DATE_FILTERS if name in query}
        except ValueError as exc:
            return twilio_error(400, 20001, f"Invalid parameter: {exc}")
        if not 1 <= size <= 1000 or page < 0:
            return twilio_error(400, 20001, "PageSize must be 1 to 1000, Page 0 or more")
        with self._cond:
            found = [m for m in self.messages if _matches(m, query, bounds)]
        found.sort(key=lambda m: m.created_at, reverse=True)
        chunk = found[page * size : (page + 1) * size]
        base = f"/{API_VERSION}/Accounts/{account}/Messages.json"
        filters = {k: v for k, v in query.items() if k not in {"Page", "PageSize", "PageToken"}}

        def page_uri(n: int) -> str:
            return f"{base}?{urlencode({**filters, 'PageSize': size, 'Page': n})}"

        more = (page + 1) * size < len(found)
        body = {
            "end": page * size + max(len(chunk) - 1, 0),
            "first_page_uri": page_uri(0),
            "next_page_uri": page_uri(page + 1) if more else None,
            "page": page,
            "page_size": size,
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
            "start": page * size,
            "uri": page_uri(page),
            "messages": [_resource(m, account, listed=True) for m in chunk],
        }
        return JSONResponse(body)


# The list's query parameters in Twilio's OpenAPI description; anything else is refused, so a
# misspelt filter cannot silently list every message.
DATE_FILTERS = ("DateSent", "DateSent<", "DateSent>")
LIST_PARAMS = frozenset({"To", "From", *DATE_FILTERS, "PageSize", "Page", "PageToken"})


def _date_bound(raw: str) -> datetime | date:
    """Twilio's DateSent value: a GMT date (YYYY-MM-DD) or a moment (ISO 8601, as twilio sends)."""
    text = raw.strip()
    if len(text) == 10:
        return date.fromisoformat(text)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _matches(m: FakeMessage, query: dict[str, str], bounds: dict[str, datetime | date]) -> bool:
    if "To" in query and m.to != query["To"]:
        return False
    if "From" in query and m.from_ != query["From"]:
        return False
    # The stand-in hands a message to the carrier the moment it accepts it: date_sent is then.
    sent = m.created_at.astimezone(UTC)
    for name, bound in bounds.items():
        value: datetime | date = sent if isinstance(bound, datetime) else sent.date()
        ok = {
            "DateSent": value == bound,
            "DateSent<": value <= bound,  # type: ignore[operator]
            "DateSent>": value >= bound,  # type: ignore[operator]
        }[name]
        if not ok:
            return False
    return True


def _resource(message: FakeMessage, account: str, *, listed: bool = False) -> dict[str, Any]:
    """Shape an accepted message like Twilio's Message resource (as listed: already sent)."""
    now = _rfc2822(message.created_at)
    uri = f"/{API_VERSION}/Accounts/{account}/Messages/{message.sid}"
    return {
        "account_sid": account,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": now,
        "date_sent": now if listed else None,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": message.from_,
        "messaging_service_sid": message.messaging_service_sid,
        "num_media": str(len(message.media_urls)),
        "num_segments": str(num_segments(message.body)),
        "price": None,
        "price_unit": "USD",
        "sid": message.sid,
        "status": "sent" if listed else message.status,
        "subresource_uris": {"media": f"{uri}/Media.json"},
        "to": message.to,
        "uri": f"{uri}.json",
    }


def _settle(future: asyncio.Future[bool], proceed: bool) -> None:
    if not future.done():
        future.set_result(proceed)


async def _disconnected(request: Request) -> None:
    """Return when the client closes the connection (the body has already been read)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
