"""The one wiring module: builds the ASGI app, mounts each channel's routes, wires the loops.

Nothing is read or opened at import time; `create_app(settings)` does it all, and the lifespan
opens the database, takes back what a crash left behind, and starts the inbound processor, the
outbox dispatcher and the scheduler, each woken by the commits the others make.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from steward.clock import utcnow
from steward.gateway import simulator, twilio_sms
from steward.gateway.messages import Sender
from steward.gateway.outbox import Dispatcher, recover_claims
from steward.gateway.scheduler import Scheduler
from steward.gateway.telegram import TelegramChannel
from steward.metrics import Metrics
from steward.settings import Settings
from steward.shells import delivery
from steward.shells.inbound import Processor
from steward.storage import db, dispatch_lock, outbox_store
from steward.storage.inbound import InboundWriter
from steward.storage.unit import Topic, UnitOfWork

log = logging.getLogger(__name__)


def build_senders(
    settings: Settings, telegram_channel: TelegramChannel | None = None
) -> dict[str, Sender]:
    """One sender per channel that has credentials; say which are off."""
    senders: dict[str, Sender] = {}
    if settings.SIMULATOR:  # simulator hook: what would go by SMS goes to the /sim page instead
        senders["sms"] = simulator.sender()
    elif settings.twilio_enabled:
        senders["sms"] = twilio_sms.TwilioSmsSender(settings)
        log.info("SMS channel on: sending through %s", settings.TWILIO_API_BASE)
    else:
        log.warning(
            "SMS channel off: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM to send SMS"
        )
    if settings.SIMULATOR:  # simulator hook: group messages go to the /sim page's group chats
        senders["telegram"] = simulator.TelegramGroupSender()
    elif telegram_channel is not None:
        senders["telegram"] = telegram_channel.sender
    else:
        log.warning("Telegram channel off: set TELEGRAM_BOT_TOKEN to use Telegram")
    return senders


def create_app(
    settings: Settings, *, own_database: bool = True, background: bool = True
) -> Starlette:
    """Build the service. With own_database=False the caller has connected tortoise already;
    with background=False the processor and dispatcher do not run on their own, and the caller
    drains them (tests that move time by hand)."""
    metrics = Metrics()
    units = UnitOfWork()
    writer = InboundWriter(units)
    sim = simulator.mount(settings, writer.store)  # simulator hook: /sim and its clock, when on
    telegram_channel = TelegramChannel(settings, metrics) if settings.telegram_enabled else None

    async def on_status(update: twilio_sms.StatusUpdate) -> None:
        await delivery.on_status(
            update.provider_id, update.status, update.error_code, utcnow(), units
        )

    async def healthz(request: Request) -> Response:
        problem = await db.ping()
        if problem is not None:  # health is a yes/no, with the reason for the operator
            return JSONResponse({"status": "error", "database": problem}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def metrics_endpoint(request: Request) -> Response:
        for status, count in (await outbox_store.depth_by_status()).items():
            metrics.outbox_depth.labels(status).set(count)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if own_database:
            await db.upgrade(settings.DATABASE_URL)
            await db.connect(settings.DATABASE_URL, synchronous=settings.SQLITE_SYNCHRONOUS)
        lease = timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
        if telegram_channel is not None:
            await telegram_channel.start()
        dispatcher = Dispatcher(
            build_senders(settings, telegram_channel),
            rates={"sms": settings.TWILIO_MPS, "telegram": 30.0},
            max_attempts=settings.OUTBOX_MAX_ATTEMPTS,
            in_flight=settings.OUTBOX_SENDS_IN_FLIGHT,
            poll_seconds=settings.OUTBOX_POLL_SECONDS,
            lease=lease,
            metrics=metrics,
            # PostgreSQL: one replica at a time sends on each channel, so the rates hold.
            locks=dispatch_lock.for_database(settings.DATABASE_URL),
        )
        processor = Processor(
            settings,
            units,
            poll_seconds=settings.OUTBOX_POLL_SECONDS,
            metrics=metrics,
            yield_to=None if db.is_postgres(settings.DATABASE_URL) else writer.busy,
            arrivals=writer.stored,
        )
        app.state.dispatcher, app.state.processor, app.state.units = dispatcher, processor, units
        app.state.telegram = telegram_channel
        stop_listening = [
            units.on_commit(Topic.OUTBOX, dispatcher.wake),
            units.on_commit(Topic.INBOUND, processor.wake),
        ]
        single = not db.is_postgres(settings.DATABASE_URL)
        await recover_claims(lease, single_process=single, now=utcnow())
        # Messages stored before a crash are simply the first the processor finds.
        if background:
            processor.start()
            dispatcher.start()
        scheduler = Scheduler(settings, units, metrics) if settings.SCHEDULER else None
        app.state.scheduler = scheduler
        if scheduler is not None:
            await scheduler.start()
        else:
            log.info("scheduler off (SCHEDULER=false): run jobs with `steward jobs run`")
        sim.start()  # simulator hook: its clock is every "now" until sim.stop() (when on)
        try:
            yield
        finally:
            if scheduler is not None:  # first: its last jobs still queue through the dispatcher
                await scheduler.stop()
            await writer.close()
            await processor.stop()
            for stop in stop_listening:
                stop()
            await dispatcher.stop()
            if telegram_channel is not None:
                await telegram_channel.stop()
            if own_database:
                await db.disconnect()
            sim.stop()  # simulator hook: last, so the final sends are stamped on its clock

    routes = [
        *twilio_sms.routes(settings, writer.store, on_status, metrics),
        *(telegram_channel.routes(writer.store) if telegram_channel else []),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        *sim.routes(),  # simulator hook: none unless SIMULATOR is on (then /sim is not a 404)
    ]
    return Starlette(routes=routes, lifespan=lifespan)
