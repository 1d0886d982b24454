"""The one wiring module: builds the ASGI app, routes, outbox dispatcher, scheduler, channels.

Nothing is read or opened at import time; `create_app(settings)` does it all, and the lifespan
opens the database, finishes work a crash left behind, and starts the dispatcher.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from urllib.parse import parse_qsl

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from tortoise import connections

from steward import service
from steward.clock import utcnow
from steward.gateway import twilio_sms
from steward.gateway.messages import Sender
from steward.gateway.outbox import Dispatcher, recover_claims
from steward.gateway.scheduler import Scheduler
from steward.settings import Settings
from steward.storage import db, inbox_store, outbox_store

log = logging.getLogger(__name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
FORM_TYPE = "application/x-www-form-urlencoded"


class BadRequest(Exception):
    """The request is malformed; answered with its status code and a short reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.inbound = Counter(
            "steward_inbound_messages",
            "Messages received",
            ["channel", "result"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "steward_rejected_requests",
            "Webhook requests refused",
            ["reason"],
            registry=self.registry,
        )


def build_senders(settings: Settings) -> dict[str, Sender]:
    """One sender per channel that has credentials; say which are off."""
    senders: dict[str, Sender] = {}
    if settings.twilio_enabled:
        senders["sms"] = twilio_sms.TwilioSmsSender(settings)
        log.info("SMS channel on: sending through %s", settings.TWILIO_API_BASE)
    else:
        log.warning(
            "SMS channel off: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM to send SMS"
        )
    if not settings.telegram_enabled:
        log.warning("Telegram channel off: set TELEGRAM_BOT_TOKEN to use Telegram")
    return senders


async def read_form(request: Request, limit: int) -> list[tuple[str, str]]:
    """Read a small url-encoded form, refusing anything else with a 4xx."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise BadRequest(415, f"expected {FORM_TYPE}")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BadRequest(413, "request too large")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BadRequest(413, "request too large")
    try:
        # errors="strict": parse_qsl would otherwise turn bad %-escapes into U+FFFD silently.
        fields = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(400, "form is not valid UTF-8 url-encoding") from exc
    # No real SMS carries NUL, and PostgreSQL text cannot store it (it would be a 500).
    if any("\x00" in name or "\x00" in value for name, value in fields):
        raise BadRequest(400, "form contains NUL")
    return fields


def create_app(settings: Settings, *, own_database: bool = True) -> Starlette:
    """Build the service. With own_database=False the caller has connected tortoise already."""
    metrics = Metrics()
    state: dict[str, Dispatcher] = {}

    async def signed_form(request: Request) -> dict[str, str]:
        if not settings.twilio_enabled:
            raise BadRequest(503, "SMS channel is off")
        fields = await read_form(request, settings.MAX_WEBHOOK_BYTES)
        url = twilio_sms.public_url(settings.PUBLIC_BASE_URL, request.url.path, request.url.query)
        signature = request.headers.get("x-twilio-signature")
        if not twilio_sms.verify_signature(settings.TWILIO_AUTH_TOKEN, url, fields, signature):
            raise BadRequest(403, "bad signature")
        return dict(fields)

    async def twilio_sms_webhook(request: Request) -> Response:
        try:
            form = await signed_form(request)
            inbound = twilio_sms.inbound_from_form(form, utcnow())
        except BadRequest as exc:
            metrics.rejected.labels(exc.reason).inc()
            return PlainTextResponse(exc.reason, status_code=exc.status)
        except twilio_sms.FormError as exc:
            metrics.rejected.labels("bad form").inc()
            return PlainTextResponse(str(exc), status_code=400)
        inbound_id, is_new = await inbox_store.store_inbound(inbound)
        metrics.inbound.labels("sms", "new" if is_new else "duplicate").inc()
        if is_new:
            try:
                await service.process_inbound(inbound_id, settings)
            except Exception:  # stored already: it is retried at the next start, never lost
                log.exception("processing message %s failed; it stays pending", inbound_id)
        return Response(EMPTY_TWIML, media_type="application/xml")

    async def twilio_status_webhook(request: Request) -> Response:
        try:
            form = await signed_form(request)
            update = twilio_sms.status_from_form(form)
        except BadRequest as exc:
            metrics.rejected.labels(exc.reason).inc()
            return PlainTextResponse(exc.reason, status_code=exc.status)
        except twilio_sms.FormError as exc:
            return PlainTextResponse(str(exc), status_code=400)
        await outbox_store.apply_status(
            update.provider_id, update.status, update.error_code, twilio_sms.is_forward, utcnow()
        )
        return Response(EMPTY_TWIML, media_type="application/xml")

    async def healthz(request: Request) -> Response:
        try:
            await connections.get("default").execute_query("SELECT 1")
        except Exception as exc:  # health is a yes/no, with the reason for the operator
            return JSONResponse({"status": "error", "database": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def metrics_endpoint(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if own_database:
            await db.upgrade(settings.DATABASE_URL)
            await db.connect(settings.DATABASE_URL)
        dispatcher = Dispatcher(
            build_senders(settings),
            rates={"sms": settings.TWILIO_MPS, "telegram": 30.0},
            max_attempts=settings.OUTBOX_MAX_ATTEMPTS,
            poll_seconds=settings.OUTBOX_POLL_SECONDS,
            lease=timedelta(seconds=settings.OUTBOX_LEASE_SECONDS),
        )
        state["dispatcher"] = dispatcher
        app.state.dispatcher = dispatcher
        unsubscribe = outbox_store.on_commit(dispatcher.wake)
        lease = timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
        single = not db.is_postgres(settings.DATABASE_URL)
        await recover_claims(lease, single_process=single, now=utcnow())
        recovered = await service.process_pending(settings)
        if recovered:
            log.info("processed %s message(s) stored before the last stop", recovered)
        dispatcher.start()
        scheduler = Scheduler(settings) if settings.SCHEDULER else None
        app.state.scheduler = scheduler
        if scheduler is not None:
            await scheduler.start()
        else:
            log.info("scheduler off (SCHEDULER=false): run jobs with `steward jobs run`")
        try:
            yield
        finally:
            if scheduler is not None:  # first: its last jobs still queue through the dispatcher
                await scheduler.stop()
            unsubscribe()
            await dispatcher.stop()
            if own_database:
                await db.disconnect()

    routes = [
        Route("/twilio/sms", twilio_sms_webhook, methods=["POST"]),
        Route("/twilio/status", twilio_status_webhook, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
