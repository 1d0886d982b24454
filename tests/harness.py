"""Test helpers: a seeded street, signed Twilio webhooks, and the service on the ASGI app."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import httpx
import pytest
import time_machine
from starlette.applications import Starlette
from twilio.request_validator import RequestValidator

from steward.app import create_app
from steward.settings import Settings, load_settings
from steward.storage import outbox_store
from steward.storage.models import Community, Pair, Role, Street, Volunteer, Zone
from steward.storage.outbox_store import SendOutcome
from tests.fakes.twilio_api import FakeMessage, FakeTwilio

PUBLIC_BASE = "https://steward.example.org"
# Everyone seeded joined well before any day a test settles: join dates are data, not "today".
SEEDED_ON = date(2025, 1, 1)
SERVICE_NUMBER = "+8610000000000"
_sids = itertools.count(1)


def new_sid(prefix: str = "SM") -> str:
    return f"{prefix}{next(_sids):032x}"


def service_settings(database_url: str, fake: FakeTwilio, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "DATABASE_URL": database_url,
        "PUBLIC_BASE_URL": PUBLIC_BASE,
        "TWILIO_ACCOUNT_SID": fake.account_sid,
        "TWILIO_AUTH_TOKEN": fake.auth_token,
        "TWILIO_FROM": SERVICE_NUMBER,
        "TWILIO_API_BASE": fake.base_url,
        "TWILIO_MPS": 1000.0,
        "TIMEZONE": "Asia/Shanghai",
        "SCHEDULER": False,  # tests drive jobs by hand; none must run behind their back
        # One send at a time: transcripts read the stand-in's messages in the order sent.
        "OUTBOX_SENDS_IN_FLIGHT": 1,
    }
    values.update(overrides)
    return load_settings(**values)


def sign(settings: Settings, path: str, form: dict[str, str]) -> str:
    validator = RequestValidator(settings.TWILIO_AUTH_TOKEN)
    return str(validator.compute_signature(settings.PUBLIC_BASE_URL + path, form))


def sms_form(
    sender: str, body: str, sid: str, media: tuple[tuple[str, str], ...] = ()
) -> dict[str, str]:
    """The fields Twilio posts for an incoming message (blank ones included, as Twilio does)."""
    form = {
        "ToCountry": "CN",
        "ToState": "",
        "SmsMessageSid": sid,
        "NumMedia": str(len(media)),
        "ToCity": "",
        "FromZip": "",
        "SmsSid": sid,
        "FromState": "",
        "SmsStatus": "received",
        "FromCity": "",
        "Body": body,
        "FromCountry": "CN",
        "To": SERVICE_NUMBER,
        "ToZip": "",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "ApiVersion": "2010-04-01",
    }
    for i, (url, content_type) in enumerate(media):
        form[f"MediaUrl{i}"] = url
        form[f"MediaContentType{i}"] = content_type
    return form


class ManualClock:
    """A clock that moves only when the test moves it; install it with `steward.clock.reading`.

    Unlike a time-travel block it also holds between steps, so the dispatcher's background loop
    sees the test's time, never the machine's.
    """

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment


def status_form(
    sid: str, status: str, error_code: str | None = None, to: str = "+8613800138001"
) -> dict[str, str]:
    """The fields Twilio posts to a message's StatusCallback."""
    form = {
        "SmsSid": sid,
        "SmsStatus": status,
        "MessageStatus": status,
        "To": to,
        "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": SERVICE_NUMBER,
        "ApiVersion": "2010-04-01",
    }
    if error_code is not None:
        form["ErrorCode"] = error_code
    return form


@dataclass
class Service:
    """The running app, an HTTP client for it, and the Twilio stand-in it sends through."""

    app: Starlette
    http: httpx.AsyncClient
    settings: Settings
    fake: FakeTwilio

    async def post_signed(self, path: str, form: dict[str, str]) -> httpx.Response:
        headers = {"X-Twilio-Signature": sign(self.settings, path, form)}
        return await self.http.post(path, data=form, headers=headers)

    async def text(
        self,
        sender: str,
        body: str,
        *,
        sid: str | None = None,
        media: tuple[tuple[str, str], ...] = (),
    ) -> httpx.Response:
        """Deliver an SMS (or MMS, with media) as Twilio would; assert it was accepted."""
        form = sms_form(sender, body, sid or new_sid(), media)
        response = await self.post_signed("/twilio/sms", form)
        assert response.status_code == 200, response.text
        assert "<Response/>" in response.text
        return response

    async def wait_sent(self, total: int, timeout: float = 5.0) -> list[FakeMessage]:
        """Wait (without blocking our loop) until the stand-in has accepted `total` messages."""
        return await asyncio.to_thread(self.fake.wait_for_messages, total, timeout)

    async def drain(self) -> int:
        """Process every stored text, then send what is due; return how many sends were tried."""
        await self.app.state.processor.drain()
        attempted: int = await self.app.state.dispatcher.drain()
        return attempted

    async def settle(self) -> list[FakeMessage]:
        """Process and send whatever is still due; return everything the stand-in accepted."""
        await self.drain()
        return list(self.fake.messages)


@asynccontextmanager
async def running_service(
    settings: Settings, fake: FakeTwilio, *, background: bool = True
) -> AsyncIterator[Service]:
    """The app with its lifespan; background=False: nothing is processed or sent until the test
    drains (so a moved clock is seen only when the test says)."""
    app = create_app(settings, own_database=False, background=background)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Service(app, http, settings, fake)


@dataclass(frozen=True)
class Street1:
    """A small seeded street: one community, one pair (one Chinese, one English speaker), a lead."""

    wang: Volunteer
    li: Volunteer
    lead: Volunteer
    other: Volunteer


async def seed_street(joined_on: date = SEEDED_ON) -> Street1:
    """Seed the street; everyone on it joined on `joined_on`."""
    street = await Street.create(name="鼓楼街道")
    community = await Community.create(street=street, name="新开河社区")
    zone = await Zone.create(community=community, name="东巷")
    pair = await Pair.create(community=community, code="A1", zone=zone, patrol_start="08:00")
    zone2 = await Zone.create(community=community, name="西巷")
    pair2 = await Pair.create(community=community, code="A2", zone=zone2, patrol_start="08:00")

    async def person(name: str, phone: str, language: str, **extra: object) -> Volunteer:
        return await Volunteer.create(
            name=name,
            phone=phone,
            language=language,
            street=street,
            community=community,
            joined_on=joined_on,
            **extra,
        )

    return Street1(
        wang=await person("王秀英", "+8613800138001", "zh", pair=pair),
        li=await person("Li Wei", "+8613800138002", "en", pair=pair),
        lead=await person("赵建国", "+8613800138009", "zh", role=Role.LEAD),
        other=await person("孙丽", "+8613800138003", "zh", pair=pair2),
    )


def record_outcomes(monkeypatch: pytest.MonkeyPatch) -> list[SendOutcome]:
    """Every send outcome the dispatcher records from now on, in order (recorded as usual)."""
    recorded: list[SendOutcome] = []
    record = outbox_store.record

    async def recording(outcomes: Sequence[SendOutcome], *args: Any) -> None:
        recorded.extend(outcomes)
        await record(outcomes, *args)

    monkeypatch.setattr(outbox_store, "record", recording)
    return recorded


async def seed_pairs(n: int) -> list[Volunteer]:
    """A street of `n` stewards in pairs (phones +86139 and the number, from 0), in id order."""
    street = await Street.create(name="鼓楼街道")
    community = await Community.create(street=street, name="新开河社区")
    zone = await Zone.create(community=community, name="东巷")
    await Pair.bulk_create(
        [
            Pair(community=community, code=f"P{i:04d}", zone=zone, patrol_start="08:00")
            for i in range(n // 2)
        ]
    )
    pairs = await Pair.all().order_by("id")
    await Volunteer.bulk_create(
        [
            Volunteer(
                name=f"志愿者{i:04d}",
                phone=f"+86139{i:08d}",
                language="zh",
                street=street,
                community=community,
                pair=pairs[i // 2],
                joined_on=SEEDED_ON,
            )
            for i in range(n)
        ]
    )
    return list(await Volunteer.all().order_by("id"))


async def add_person(street: Street1, name: str, phone: str, **extra: object) -> Volunteer:
    """Add someone to the seeded street's community (a steward unless `role` says otherwise)."""
    values: dict[str, object] = {"joined_on": SEEDED_ON, **extra}
    return await Volunteer.create(
        name=name,
        phone=phone,
        street_id=street.wang.street_id,
        community_id=street.wang.community_id,
        **values,
    )


async def add_office(street: Street1) -> Volunteer:
    """The street office's clerk, who gets urgent reports, escalations, flags and the digest."""
    return await add_person(street, "钱主任", "+8613800138010", role=Role.OFFICE)


Step = tuple[datetime, str, str | None]


async def converse(svc: Service, sender: str, script: list[Step]) -> None:
    """Play a transcript: at each time, text; expect exactly this reply (None: no reply)."""
    for moment, text, expected in script:
        got = await say(svc, moment, sender, text)
        assert got == ([expected] if expected else []), f"after {text!r} at {moment:%H:%M}"


async def say(
    svc: Service,
    moment: datetime,
    sender: str,
    text: str,
    media: tuple[tuple[str, str], ...] = (),
) -> list[str]:
    """Text at a given time; return what the sender got back."""
    before = len(svc.fake.messages)
    with time_machine.travel(moment, tick=False):
        await svc.text(sender, text, media=media)
        await svc.drain()
    return [m.body for m in svc.fake.messages[before:] if m.to == sender]


def sent_to(svc: Service, phone: str) -> list[str]:
    """Everything the stand-in accepted for one number, in order."""
    return [m.body for m in svc.fake.messages if m.to == phone]
