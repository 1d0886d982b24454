"""Everything that speaks Twilio's SMS protocol: signatures, webhook forms, statuses, sending.

No decisions and no database here: the routes hand what arrives to a callback (the inbound
writer), and the outbox calls the sender.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from twilio.base.exceptions import (
    TwilioException,
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from steward.clock import utcnow
from steward.gateway.messages import (
    InboundMessage,
    Media,
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
    SendResult,
)
from steward.gateway.webhooks import BadRequest, read_form
from steward.metrics import Metrics
from steward.settings import Settings

CHANNEL = "sms"
# Twilio's "the recipient has replied STOP": we must not text them again until they say START.
UNSUBSCRIBED_CODES = frozenset({"21610"})
DEFAULT_API_BASE = "https://api.twilio.com"
STATUS_CALLBACK_PATH = "/twilio/status"
SEND_TIMEOUT_SECONDS = 15.0
# Messages to one person from us in the lookup window: far fewer than this in any real day.
LOOKUP_LIMIT = 200
LOOKUP_PAGE = 50
# A real MMS carries at most 10 media; anything far above that is a forged or broken form.
MAX_MEDIA = 10

Form = Mapping[str, str] | list[tuple[str, str]]


class FormError(ValueError):
    """A Twilio webhook form lacks a required field or has a malformed one."""


# --- signatures -----------------------------------------------------------------------------


def public_url(base: str, path: str, query: str) -> str:
    """Return the URL Twilio signed: the public base, the path and the exact query string."""
    url = base.rstrip("/") + path
    return f"{url}?{query}" if query else url


class _MultiForm:
    """Give a list of (name, value) pairs the `getall` RequestValidator uses for repeated names."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def getall(self, name: str) -> list[str]:
        return [value for key, value in self._items if key == name]


def verify_signature(auth_token: str, url: str, form: Form, signature: str | None) -> bool:
    """Tell whether `signature` (X-Twilio-Signature) signs this public URL and form."""
    params = _MultiForm(form) if isinstance(form, list) else form
    # The validator raises TypeError on None; a missing header is simply a wrong signature.
    return bool(RequestValidator(auth_token).validate(url, params, signature or ""))


# --- inbound messages -----------------------------------------------------------------------


# Twilio ids are 34 characters and addresses short; anything longer is not Twilio (and would not
# fit the columns that store it).
MAX_ID_LENGTH = 64


def _required(form: Mapping[str, str], name: str) -> str:
    value = (form.get(name) or "").strip()
    if not value:
        raise FormError(f"Twilio form field {name} is missing or blank")
    if len(value) > MAX_ID_LENGTH:
        raise FormError(f"Twilio form field {name} is longer than {MAX_ID_LENGTH} characters")
    return value


def _media_count(form: Mapping[str, str]) -> int:
    raw = (form.get("NumMedia") or "0").strip()
    if not raw.isdigit() or int(raw) > MAX_MEDIA:
        raise FormError(f"NumMedia must be an integer from 0 to {MAX_MEDIA}, got {raw!r}")
    return int(raw)


def _media(form: Mapping[str, str]) -> tuple[Media, ...]:
    media = []
    for n in range(_media_count(form)):
        url = (form.get(f"MediaUrl{n}") or "").strip()
        if not url:
            raise FormError(f"MediaUrl{n} is missing although NumMedia is {form.get('NumMedia')}")
        content_type = (form.get(f"MediaContentType{n}") or "").strip()
        media.append(Media(url=url, content_type=content_type or "application/octet-stream"))
    return tuple(media)


def inbound_from_form(form: Mapping[str, str], received_at: datetime) -> InboundMessage:
    """Turn the form of POST /twilio/sms into an InboundMessage; raise FormError if malformed."""
    return InboundMessage(
        channel=CHANNEL,
        address=_required(form, "From"),
        # A photo-only MMS has an empty Body; that is a message, not an error.
        text=form.get("Body") or "",
        external_id=_required(form, "MessageSid"),
        received_at=received_at,
        media=_media(form),
    )


# --- status callbacks -----------------------------------------------------------------------

# Twilio's message statuses in our outbox vocabulary (courier's statusMapping idea).
STATUS_TABLE: dict[str, str] = {
    "accepted": "queued",  # taken by a Messaging Service, not yet queued
    "scheduled": "queued",
    "queued": "queued",
    "sending": "sending",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",  # WhatsApp/RCS read receipt: delivered and then some
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",  # a scheduled message that will never go
    # Inbound statuses; they should not reach the status callback, but never crash on them.
    "receiving": "sending",
    "received": "delivered",
}


@dataclass(frozen=True)
class StatusUpdate:
    """What one status callback says about one outbound message."""

    provider_id: str
    status: str
    error_code: str | None


def map_status(twilio_status: str) -> str:
    """Translate a Twilio message status into ours; raise FormError for an unknown one."""
    try:
        return STATUS_TABLE[twilio_status.strip().lower()]
    except KeyError:
        raise FormError(f"unknown Twilio MessageStatus {twilio_status!r}") from None


def status_from_form(form: Mapping[str, str]) -> StatusUpdate:
    """Read the form of POST /twilio/status; raise FormError if malformed."""
    error_code = (form.get("ErrorCode") or "").strip()
    return StatusUpdate(
        provider_id=_required(form, "MessageSid"),
        status=map_status(_required(form, "MessageStatus")),
        error_code=error_code or None,
    )


# --- sending --------------------------------------------------------------------------------

# The twilio library drops response headers when it raises; the HTTP client leaves the last
# answer's headers here, per task, so a 429/503 can still honour Retry-After.
_response_headers: ContextVar[dict[str, str] | None] = ContextVar(
    "twilio_response_headers", default=None
)


class _RedirectingHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """An aiohttp client that sends *.twilio.com requests to TWILIO_API_BASE, with a timeout."""

    def __init__(self, api_base: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.api_base = api_base.rstrip("/")

    def rewrite(self, url: str) -> str:
        """Point a Twilio URL at the configured API root (a stand-in in tests)."""
        if self.api_base == DEFAULT_API_BASE:
            return url
        parts = urlsplit(url)
        if parts.hostname is None or not parts.hostname.endswith(".twilio.com"):
            return url
        base = urlsplit(self.api_base)
        return urlunsplit((base.scheme, base.netloc, base.path + parts.path, parts.query, ""))

    async def request(self, method: str, url: str, **kwargs: Any) -> Any:
        # The parent passes `timeout=None` straight to aiohttp, which means "no timeout".
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        # aiohttp 3.14 deprecates the BasicAuth the parent builds; send the header ourselves.
        auth = kwargs.pop("auth", None)
        if auth is not None:
            kwargs["headers"] = {**(kwargs.get("headers") or {}), **_basic_auth(*auth)}
        response = await super().request(method, self.rewrite(url), **kwargs)
        holder = _response_headers.get()
        if holder is not None:
            holder.update({k.lower(): v for k, v in (response.headers or {}).items()})
        return response


def _basic_auth(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Read Retry-After (seconds or an HTTP date) as seconds from now."""
    raw = headers.get("retry-after", "").strip()
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - utcnow()).total_seconds())


def _send_error(
    exc: TwilioRestException | TwilioServiceException, headers: Mapping[str, str]
) -> RetryableSendError | PermanentSendError:
    """Classify a refusal: throttling and server trouble are worth retrying, the rest is final."""
    status = int(exc.status)
    code = str(exc.code) if exc.code is not None else str(status)
    text = getattr(exc, "msg", None) or getattr(exc, "detail", None) or getattr(exc, "title", "")
    message = f"Twilio answered {status} (code {code}): {text}"
    if status == 429 or status >= 500:
        return RetryableSendError(message, code=code, retry_after=_retry_after(headers))
    # 21211 invalid To, 21610 unsubscribed, 21614 not mobile, 21408 region, 20003 bad auth...
    return PermanentSendError(message, code=code, unsubscribed=code in UNSUBSCRIBED_CODES)


class TwilioSmsSender:
    """Send SMS through Twilio's REST API (the Sender protocol of gateway.messages)."""

    channel = CHANNEL

    def __init__(self, settings: Settings, *, timeout: float = SEND_TIMEOUT_SECONDS) -> None:
        self._settings = settings
        self._timeout = timeout
        self._http: _RedirectingHttpClient | None = None
        self._client: Client | None = None

    def _ensure_client(self) -> Client:
        # aiohttp sessions belong to the running loop, so build them on first use, not before.
        if self._client is None:
            self._http = _RedirectingHttpClient(self._settings.TWILIO_API_BASE, self._timeout)
            self._client = Client(
                self._settings.TWILIO_ACCOUNT_SID,
                self._settings.TWILIO_AUTH_TOKEN,
                http_client=self._http,
            )
        return self._client

    def _create_args(self, message: OutboundMessage) -> dict[str, str]:
        sender = self._settings.TWILIO_FROM
        origin = "messaging_service_sid" if sender.startswith("MG") else "from_"
        return {
            "to": message.address,
            "body": message.body,
            origin: sender,
            "status_callback": self._settings.PUBLIC_BASE_URL.rstrip("/") + STATUS_CALLBACK_PATH,
        }

    async def send(self, message: OutboundMessage) -> SendResult:
        """Hand one message to Twilio; raise RetryableSendError or PermanentSendError."""
        client = self._ensure_client()
        headers: dict[str, str] = {}
        token = _response_headers.set(headers)
        try:
            created = await client.messages.create_async(**self._create_args(message))
        except (TwilioRestException, TwilioServiceException) as exc:
            raise _send_error(exc, headers) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # asyncio.TimeoutError is TimeoutError on 3.11; the request may or may not have
            # reached Twilio: before trying again the outbox asks Twilio (find_sent).
            raise RetryableSendError(
                f"Twilio unreachable: {type(exc).__name__}: {exc}", maybe_sent=True
            ) from exc
        finally:
            _response_headers.reset(token)
        status = STATUS_TABLE.get(str(created.status or "queued"), "queued")
        return SendResult(provider_id=str(created.sid), status=status)

    async def find_sent(self, message: OutboundMessage, since: datetime) -> list[str]:
        """The SIDs, oldest first, of messages Twilio took from us for `message.address` with
        `message.body` at or after `since`: what an attempt whose answer we never got became.

        The Messages list is filtered by To, From (our number; a Messaging Service's messages
        are matched on its SID instead) and DateSent from `since`'s GMT date; body and creation
        time are matched here. Twilio sets date_sent when it hands a message to the carrier, so
        this relies on Twilio's own queue being short (it is: we pace at TWILIO_MPS).
        """
        client = self._ensure_client()
        sender = self._settings.TWILIO_FROM
        service = sender if sender.startswith("MG") else None
        filters: dict[str, Any] = {"to": message.address}
        if service is None:
            filters["from_"] = sender
        try:
            listed = await client.messages.list_async(
                **filters,
                date_sent_after=since.astimezone(UTC).strftime("%Y-%m-%d"),
                limit=LOOKUP_LIMIT,
                page_size=LOOKUP_PAGE,
            )
        except TwilioException as exc:  # a refusal, or a later page that failed to come
            raise RetryableSendError(
                f"Twilio's message list failed: {exc}", maybe_sent=True
            ) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise RetryableSendError(
                f"Twilio unreachable for the message list: {type(exc).__name__}", maybe_sent=True
            ) from exc
        since = since.replace(microsecond=0)  # Twilio's times are whole seconds
        found = [
            m
            for m in reversed(listed)  # Twilio lists newest first
            if m.body == message.body
            and (service is None or m.messaging_service_sid == service)
            and m.date_created is not None
            and m.date_created >= since
        ]
        found.sort(key=lambda m: m.date_created)  # stable: same-second ones keep list order
        return [str(m.sid) for m in found]

    async def close(self) -> None:
        """Close the HTTP session (call on shutdown, inside the loop that sent)."""
        if self._http is not None:
            await self._http.close()
        self._http = None
        self._client = None


__all__ = [
    "STATUS_TABLE",
    "FormError",
    "StatusUpdate",
    "TwilioSmsSender",
    "inbound_from_form",
    "map_status",
    "public_url",
    "status_from_form",
    "verify_signature",
]


# --- routes ---------------------------------------------------------------------------------

Accept = Callable[[InboundMessage], Awaitable[bool]]
OnStatus = Callable[[StatusUpdate], Awaitable[None]]
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def routes(
    settings: Settings, accept: Accept, on_status: OnStatus, metrics: Metrics
) -> list[Route]:
    """POST /twilio/sms and /twilio/status: verified, parsed, handed on, answered with TwiML.

    `accept` returns once the message is durable (True when new); replies leave through the
    outbox, never in the webhook's answer, so a Twilio timeout can never duplicate them.
    """

    async def signed_form(request: Request) -> dict[str, str]:
        if not settings.twilio_enabled:
            raise BadRequest(503, "SMS channel is off")
        fields = await read_form(request, settings.MAX_WEBHOOK_BYTES)
        url = public_url(settings.PUBLIC_BASE_URL, request.url.path, request.url.query)
        signature = request.headers.get("x-twilio-signature")
        if not verify_signature(settings.TWILIO_AUTH_TOKEN, url, fields, signature):
            raise BadRequest(403, "bad signature")
        return dict(fields)

    async def incoming(request: Request) -> Response:
        started = time.perf_counter()
        try:
            inbound = inbound_from_form(await signed_form(request), utcnow())
        except BadRequest as exc:
            metrics.rejected.labels(exc.reason).inc()
            return PlainTextResponse(exc.reason, status_code=exc.status)
        except FormError as exc:
            metrics.rejected.labels("bad form").inc()
            return PlainTextResponse(str(exc), status_code=400)
        is_new = await accept(inbound)
        metrics.inbound.labels(CHANNEL, "new" if is_new else "duplicate").inc()
        metrics.webhook_commit.labels(CHANNEL).observe(time.perf_counter() - started)
        return Response(EMPTY_TWIML, media_type="application/xml")

    async def status(request: Request) -> Response:
        try:
            update = status_from_form(await signed_form(request))
        except BadRequest as exc:
            metrics.rejected.labels(exc.reason).inc()
            return PlainTextResponse(exc.reason, status_code=exc.status)
        except FormError as exc:
            metrics.rejected.labels("bad status form").inc()
            return PlainTextResponse(str(exc), status_code=400)
        await on_status(update)
        return Response(EMPTY_TWIML, media_type="application/xml")

    return [
        Route("/twilio/sms", incoming, methods=["POST"]),
        Route(STATUS_CALLBACK_PATH, status, methods=["POST"]),
    ]
