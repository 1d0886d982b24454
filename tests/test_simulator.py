"""The simulator's JSON API (SPEC §8): the same path as a webhook in, the same outbox out.

The app runs in-process with its processor and dispatcher in the background; tests wait for
replies by polling the thread API with a deadline. The machine's clock is moved to Monday
23 November 2026, 07:50 in Shanghai (and ticks on from there), so nothing depends on the day
the suite runs; the simulator's own clock moves forward from it when a job runs later.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import time_machine
from starlette.applications import Starlette

from steward.app import build_senders, create_app
from steward.clock import system_clock, utcnow
from steward.flows.segments import segment_count
from steward.gateway.simulator import SimulatorSender
from steward.settings import Settings, load_settings
from steward.storage.models import InboundMessage, OutboxMessage
from tests.harness import Street1, add_office, seed_street

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY_MORNING = datetime(2026, 11, 23, 7, 50, tzinfo=SHANGHAI)
PRIVATE_TELEGRAM = "the simulator has Telegram groups only"


def sim_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "DATABASE_URL": database_url,
        "SIMULATOR": True,
        "SCHEDULER": False,
        "TWILIO_MPS": 1000.0,
        "TIMEZONE": "Asia/Shanghai",
        **overrides,
    }
    return load_settings(**values)


@asynccontextmanager
async def client(settings: Settings) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    app = create_app(settings, own_database=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as http:
            yield app, http


@dataclass
class Sim:
    http: httpx.AsyncClient
    street: Street1
    app: Starlette

    async def text(self, sender: str, text: str) -> httpx.Response:
        response = await self.http.post("/sim/api/messages", json={"from": sender, "text": text})
        assert response.status_code == 202, response.text
        return response

    async def thread(self, address: str, count: int) -> list[Any]:
        """The thread once everything stored is processed and sent; it must hold `count`."""
        await self.app.state.processor.drain()
        await self.app.state.dispatcher.drain()
        response = await self.http.get(f"/sim/api/threads/{address}")
        assert response.status_code == 200, response.text
        items: list[Any] = response.json()
        assert len(items) >= count, f"{address} has {items}, expected {count} messages"
        return items

    async def job(self, name: str, at: str) -> dict[str, Any]:
        response = await self.http.post(f"/sim/api/jobs/{name}", json={"at": at})
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


@pytest.fixture
async def sim(db: str) -> AsyncIterator[Sim]:
    with time_machine.travel(MONDAY_MORNING, tick=True):
        street = await seed_street()
        async with client(sim_settings(db)) as (app, http):
            yield Sim(http, street, app)


async def test_a_text_is_answered_through_the_outbox(sim: Sim) -> None:
    wang = sim.street.wang.phone
    sent = (await sim.text(wang, "签到")).json()
    assert sent["from"] == wang and sent["at"].startswith("2026-11-23T07:50")
    items = await sim.thread(wang, 2)
    assert [(m["direction"], m["segments"]) for m in items] == [("in", 1), ("out", 1)]
    assert items[0]["text"] == "签到"
    assert items[1]["text"] == "王秀英，7:50签到成功，祝巡查顺利！结束时回复2签退。"
    assert items[0]["at"] <= items[1]["at"] and items[1]["at"].endswith("+08:00")
    # The same records as a webhook and a Twilio send: stored in, queued and marked sent out.
    stored = await InboundMessage.get(address=wang)
    assert (stored.channel, stored.intent) == ("sms", "check_in")
    assert stored.external_id.startswith("SIM")
    reply = await OutboxMessage.get(address=wang)
    assert reply.status == "sent" and reply.in_reply_to_id == stored.id
    assert reply.provider_id is not None and reply.provider_id.startswith("SIM")


async def test_numbers_are_read_the_way_people_write_them(sim: Sim) -> None:
    li = sim.street.li.phone  # +8613800138002
    sent = (await sim.text("138 0013 8002", "P")).json()
    assert sent["from"] == li
    items = await sim.thread("13800138002", 2)
    assert items[1]["text"].startswith("Li: 0 points")
    assert items == await sim.thread(li, 2)


async def test_an_unknown_number_gets_the_polite_reply(sim: Sim) -> None:
    await sim.text("+8613912345678", "你好")
    reply = (await sim.thread("+8613912345678", 2))[1]["text"]
    assert reply.startswith("您好，本号码未登记为小巷管家")


async def test_segments_are_counted_for_every_message(sim: Sim) -> None:
    await sim.text(
        sim.street.wang.phone, "报 1 5号楼门口垃圾堆放，楼道里也堆满了纸箱和旧家具，请尽快清理"
    )
    alert = (await sim.thread(sim.street.lead.phone, 1))[0]
    assert alert["direction"] == "out" and alert["text"].startswith("新上报#1")
    assert alert["segments"] == segment_count(alert["text"]) == 2


async def test_a_later_job_moves_the_clock_and_its_messages_arrive(sim: Sim) -> None:
    wang, li, lead = sim.street.wang.phone, sim.street.li.phone, sim.street.lead.phone
    result = await sim.job("nudges", "2026-11-23T09:31")  # no offset: local to the deployment
    assert result["at"] == "2026-11-23T09:31:00+08:00"
    assert result["now"] >= "2026-11-23T09:31" and result["held_until"] is None
    assert {q["address"] for q in result["queued"]} >= {wang, li, lead}
    assert (await sim.thread(wang, 1))[0]["text"].startswith("王秀英，今天8:00的巡查还没签到")
    assert "A1" in (await sim.thread(lead, 1))[0]["text"]
    # Texts sent afterwards happen after the job, on the simulator's clock.
    await sim.text(wang, "签到")
    assert (await sim.thread(wang, 3))[2]["text"].startswith("王秀英，9:31签到成功")
    clock = (await sim.http.get("/sim/api/clock")).json()
    assert clock["local"] >= "2026-11-23T09:31" and clock["timezone"] == "Asia/Shanghai"


async def test_the_digest_reaches_the_office(sim: Sim) -> None:
    office = await add_office(sim.street)
    result = await sim.job("digest", "2026-11-23T18:00+08:00")
    assert [q["to"] for q in result["queued"]] == [office.name]
    digest = (await sim.thread(office.phone, 1))[0]
    assert digest["text"].startswith("鼓楼街道 11/23日报") and digest["segments"] <= 2
    again = await sim.job("digest", "2026-11-23T18:05")
    assert again["queued"] == []  # deduped, as any late or repeated run


async def test_quiet_hours_hold_until_the_clock_moves_on(sim: Sim) -> None:
    wang = sim.street.wang.phone
    result = await sim.job("day_close", "2026-11-23T22:00")
    assert result["held_until"] == "2026-11-24T07:00:00+08:00"
    assert wang in {q["address"] for q in result["queued"]}  # two days absent: a reminder
    response = await sim.http.get(f"/sim/api/threads/{wang}")
    assert response.json() == []  # held: nothing has reached the phone yet
    moved = await sim.http.post("/sim/api/clock", json={"at": "2026-11-24T07:01"})
    assert moved.status_code == 200 and moved.json()["local"] == "2026-11-24T07:01"
    assert "王秀英" in (await sim.thread(wang, 1))[0]["text"]


async def test_the_page_and_the_roster(sim: Sim) -> None:
    home = await sim.http.get("/", follow_redirects=False)
    assert home.status_code == 302 and home.headers["location"] == "/sim"
    page = await sim.http.get("/sim")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "SIMULATOR" in page.text and 'name="viewport"' in page.text
    for person in (sim.street.wang, sim.street.li, sim.street.lead):
        assert f'value="{person.phone}"' in page.text and person.name in page.text
    people = (await sim.http.get("/sim/api/people")).json()
    assert {(p["name"], p["role"]) for p in people} >= {("赵建国", "lead"), ("Li Wei", "steward")}


BAD_INPUT = [
    ("POST", "/sim/api/messages", b"not json", 400, "expected a JSON object"),
    ("POST", "/sim/api/messages", b"[1, 2]", 400, "expected a JSON object"),
    ("POST", "/sim/api/messages", b'{"text": "hi"}', 400, 'give "from"'),
    ("POST", "/sim/api/messages", b'{"from": "12345", "text": "hi"}', 400, "not a phone number"),
    ("POST", "/sim/api/messages", b'{"from": "+8613800138001"}', 400, 'give "text"'),
    ("POST", "/sim/api/messages", b'{"from": "+8613800138001", "text": " "}', 400, "empty"),
    ("POST", "/sim/api/messages", b'{"from": "+8613800138001", "text": 5}', 400, 'give "text"'),
    (
        "POST",
        "/sim/api/messages",
        b'{"from": "+8613800138001", "text": "a\\u0000b"}',
        400,
        "NUL",
    ),
    (
        "POST",
        "/sim/api/messages",
        b'{"from": "+8613800138001", "text": "' + b"x" * 1601 + b'"}',
        400,
        "longer than 1600",
    ),
    (
        "POST",
        "/sim/api/messages",
        b'{"from": "telegram:42", "chat": "1001", "text": "/today"}',
        400,
        "is a group: a negative id",
    ),
    (
        "POST",
        "/sim/api/messages",
        b'{"from": "telegram:abc", "chat": "-1001", "text": "/today"}',
        400,
        '"from" must be a Telegram id',
    ),
    (
        "POST",
        "/sim/api/messages",
        b'{"from": "telegram:42", "chat": "-1001", "button": "ack:1", "message": 99}',
        404,
        "no message 99",
    ),
    ("POST", "/sim/api/messages", b'{"from": "telegram:42", "text": "hi"}', 400, PRIVATE_TELEGRAM),
    ("POST", "/sim/api/messages", b"{" * 70_000, 413, "too large"),
    ("GET", "/sim/api/threads/not-a-number", b"", 400, "not a phone number"),
    ("GET", "/sim/api/threads/telegram:-10x", b"", 400, '"address" must be a Telegram id'),
    ("POST", "/sim/api/jobs/payroll", b"{}", 404, "no job 'payroll'"),
    ("POST", "/sim/api/jobs/digest", b'{"at": "tomorrow"}', 400, "not an ISO 8601 time"),
    ("POST", "/sim/api/jobs/digest", b'{"at": 1800}', 400, 'give "at"'),
    ("POST", "/sim/api/jobs/digest", b'{"at": "2031-01-01T08:00"}', 400, "within a year"),
    ("POST", "/sim/api/clock", b"{}", 400, 'give "at"'),
    ("POST", "/sim/api/clock", b'{"at": "2026-11-23T07:00"}', 409, "only moves forward"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "reason"), BAD_INPUT)
async def test_bad_input_is_a_4xx_with_the_reason(
    sim: Sim, method: str, path: str, body: bytes, status: int, reason: str
) -> None:
    response = await sim.http.request(method, path, content=body)
    assert response.status_code == status, response.text
    assert reason in response.json()["error"]
    assert await InboundMessage.all().count() == 0


async def test_the_clock_is_given_back_when_the_app_stops(db: str) -> None:
    month_on = system_clock() + timedelta(days=30)
    async with client(sim_settings(db)) as (_, http):
        moved = await http.post("/sim/api/clock", json={"at": month_on.isoformat()})
        assert moved.status_code == 200
        assert utcnow() >= month_on  # every "now" of the product, while the simulator runs
    assert abs(utcnow() - system_clock()) < timedelta(seconds=5)


async def test_off_unless_enabled(db: str) -> None:
    async with client(sim_settings(db, SIMULATOR=False)) as (_, http):
        for method, path in (
            ("GET", "/"),
            ("GET", "/sim"),
            ("GET", "/sim/api/threads/+8613800138001"),
            ("GET", "/sim/api/clock"),
            ("POST", "/sim/api/messages"),
            ("POST", "/sim/api/jobs/digest"),
        ):
            assert (await http.request(method, path, json={})).status_code == 404, path


def test_sms_goes_to_the_simulator_and_the_log_says_so(caplog: pytest.LogCaptureFixture) -> None:
    # Twilio's credentials are set too: the simulator still takes the SMS channel.
    settings = load_settings(
        SIMULATOR=True, TWILIO_ACCOUNT_SID="AC1", TWILIO_AUTH_TOKEN="t", TWILIO_FROM="+1"
    )
    with caplog.at_level(logging.WARNING, logger="steward"):
        senders = build_senders(settings)
    assert isinstance(senders["sms"], SimulatorSender)
    assert any("SIMULATOR ON" in r.getMessage() for r in caplog.records)


@pytest.fixture
def no_chat_spacing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Telegram's 3 s between group messages would only be waited out here (the dispatch
    benchmark measures it); set before the app starts, whose pacers read it."""
    from steward.gateway import outbox

    monkeypatch.setitem(outbox.SPACINGS, "telegram", outbox.no_spacing)


async def test_a_lead_group_works_a_card_through_the_api(no_chat_spacing: None, sim: Sim) -> None:
    from steward.shells import groups as group_shell
    from steward.storage.models import Volunteer
    from steward.storage.unit import UnitOfWork

    # The lead linked Telegram user 7001 (what sharing their number in a private chat does).
    await Volunteer.filter(id=sim.street.lead.id).update(telegram_chat_id=7001)
    made = await group_shell.invite("鼓楼街道", "新开河社区", "lead", utcnow(), UnitOfWork())
    group = "telegram:-1001"

    async def say(body: dict[str, Any]) -> None:
        response = await sim.http.post(
            "/sim/api/messages", json={"from": "telegram:7001", "chat": "-1001", **body}
        )
        assert response.status_code == 202, response.text

    await say({"text": f"/bind {made.code}"})
    groups = (await sim.http.get("/sim/api/groups")).json()
    await sim.thread(group, 2)
    groups = (await sim.http.get("/sim/api/groups")).json()
    assert groups == [
        {
            "chat": "-1001",
            "address": group,
            "role": "lead",
            "place": "新开河社区",
            "people": [{"user": 7001, "name": "赵建国", "role": "lead"}],
        }
    ]
    await sim.text(sim.street.wang.phone, "报 1 门口垃圾")
    card = (await sim.thread(group, 3))[-1]
    assert card["buttons"] == [["受理", "ack:1"], ["办结", "resolve:1"], ["驳回", "reject:1"]]
    await say({"button": "ack:1", "message": card["id"]})
    items = await sim.thread(group, 3)
    assert items[-1]["text"].endswith("— 已受理（赵建国）")  # the card, edited in place
    assert [b[1] for b in items[-1]["buttons"]] == ["resolve:1", "reject:1"]
    await say({"button": "resolve:1", "message": card["id"]})
    question = (await sim.thread(group, 4))[-1]
    assert question["asks_reply"] and question["text"].startswith("#1 办结")
    await say({"text": "已清理", "reply_to": question["id"]})
    items = await sim.thread(group, 5)
    edited = next(m for m in items if m.get("id") == card["id"])
    assert edited["text"].endswith("— 已办结（赵建国）：已清理") and edited["buttons"] == []
    wang = [
        m["text"] for m in await sim.thread(sim.street.wang.phone, 3) if m["direction"] == "out"
    ]
    assert wang[-1].startswith("上报#1已处理：已清理")
