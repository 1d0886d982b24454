"""`steward serve` as a real process: killed between storing a text and sending its reply."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from steward.clock import utcnow
from steward.shells import groups as group_shell
from steward.storage.models import InboundMessage, OutboxMessage, PatrolSession, Report
from steward.storage.unit import UnitOfWork
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import SERVICE_NUMBER, new_sid, seed_street, service_settings, sign, sms_form

pytestmark = pytest.mark.process
# uvicorn logs "Application startup complete" before it binds the port; this line comes after.
READY = b"Uvicorn running on"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_env(database_url: str, fake: FakeTwilio, base: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "PUBLIC_BASE_URL": base,
        "TWILIO_ACCOUNT_SID": fake.account_sid,
        "TWILIO_AUTH_TOKEN": fake.auth_token,
        "TWILIO_FROM": SERVICE_NUMBER,
        "TWILIO_API_BASE": fake.base_url,
        "TWILIO_MPS": "100",
        "TIMEZONE": "Asia/Shanghai",
        # Another replica's claim is taken back after a second; look again every 0.2 s.
        "OUTBOX_LEASE_SECONDS": "1",
        "OUTBOX_POLL_SECONDS": "0.2",
        "SCHEDULER": "false",  # scheduled jobs would text the seeded street behind the test's back
    }


async def spawn_serve(env: dict[str, str], port: int) -> asyncio.subprocess.Process:
    """Start `steward serve` as its own process, its log on a pipe."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "steward.cli",
        "serve",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


@asynccontextmanager
async def serve(env: dict[str, str], port: int) -> AsyncIterator[asyncio.subprocess.Process]:
    """Start the service and return once it says it is ready (read from its log, not a timer)."""
    proc = await spawn_serve(env, port)
    assert proc.stderr is not None
    drain: asyncio.Task[bytes] | None = None
    try:
        log = b""
        while READY not in log:
            line = await asyncio.wait_for(proc.stderr.readline(), 30)
            assert line, f"service exited before it was ready:\n{log.decode()}"
            log += line
        drain = asyncio.create_task(proc.stderr.read())  # keep the pipe from filling up
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 30)
        if drain is not None:
            drain.cancel()


async def test_reply_goes_out_once_across_a_hard_kill(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = service_settings(db, twilio, PUBLIC_BASE_URL=base)
    env = serve_env(db, twilio, base)
    form = sms_form(street.wang.phone, "签到", new_sid())
    headers = {"X-Twilio-Signature": sign(settings, "/twilio/sms", form)}

    twilio.hang()  # the reply's send will be held open at the stand-in
    async with serve(env, port) as first:
        async with httpx.AsyncClient(base_url=base) as http:
            response = await http.post("/twilio/sms", data=form, headers=headers)
        assert response.status_code == 200
        await asyncio.to_thread(twilio.wait_for_request, 10.0)
        first.kill()  # SIGKILL: no shutdown code runs
        await first.wait()
    await asyncio.to_thread(twilio.wait_for_dropped, 1, 10.0)
    assert twilio.messages == []
    twilio.release()

    async with serve(env, port):
        sent = await asyncio.to_thread(twilio.wait_for_messages, 1, 20.0)
        async with httpx.AsyncClient(base_url=base) as http:
            again = await http.post("/twilio/sms", data=form, headers=headers)  # Twilio retries
        assert again.status_code == 200
    # The second server stopped cleanly: anything it would have sent twice is at the stand-in.
    assert [m.to for m in twilio.messages] == [street.wang.phone]
    assert sent[0].body.startswith("王秀英，") and "签到成功" in sent[0].body
    assert await InboundMessage.all().count() == 1
    assert await PatrolSession.filter(volunteer_id=street.wang.id).count() == 1
    rows = await OutboxMessage.all()
    assert [(r.status, r.provider_id) for r in rows] == [("sent", sent[0].sid)]


async def test_serve_with_telegram_end_to_end(
    db: str, twilio: FakeTwilio, telegram_api: FakeTelegram
) -> None:
    """`steward serve` with a bot token and TELEGRAM_API_BASE at the stand-in: it registers its
    webhook, links a lead, binds a group, puts a report's card there, and acts on its button."""
    street = await seed_street()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = service_settings(db, twilio, PUBLIC_BASE_URL=base)
    env = {
        **serve_env(db, twilio, base),
        "TELEGRAM_BOT_TOKEN": telegram_api.token,
        "TELEGRAM_API_BASE": telegram_api.base_url,
        "TELEGRAM_WEBHOOK_SECRET": "process-test-secret",
    }
    lead = telegram_api.user(7001, "建国")
    group = telegram_api.add_group(-100_200, "新开河片长群")
    made = await group_shell.invite("鼓楼街道", "新开河社区", "lead", utcnow(), UnitOfWork())

    def wait_for(chat: int, count: int, what: str) -> None:
        telegram_api.wait_until(lambda: len(telegram_api.messages_to(chat)) >= count, 20.0, what)

    async with serve(env, port):
        hooks = telegram_api.calls("setWebhook")
        assert [c.params.get("url") for c in hooks] == [f"{base}/telegram/webhook"]
        await telegram_api.share_contact(lead, street.lead.phone)
        await asyncio.to_thread(wait_for, lead.id, 1, "the lead's link confirmed")
        await telegram_api.group_command(group, lead, f"/bind {made.code}")
        await asyncio.to_thread(wait_for, group.id, 1, "the group bound")
        form = sms_form(street.wang.phone, "报 1 5号楼门口垃圾堆放", new_sid())
        headers = {"X-Twilio-Signature": sign(settings, "/twilio/sms", form)}
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.post("/twilio/sms", data=form, headers=headers)).status_code == 200
        await asyncio.to_thread(wait_for, group.id, 2, "the report's card")
        card = telegram_api.messages_to(group.id)[1]
        assert card.callback_data == ["ack:1", "resolve:1", "reject:1"]
        await telegram_api.press_button(lead, card, "ack:1")
        await asyncio.to_thread(
            telegram_api.wait_until,
            lambda: telegram_api.messages_to(group.id)[1].edits == 1,
            20.0,
            "the card edited",
        )
        sms = await asyncio.to_thread(twilio.wait_for_messages, 2, 20.0)
    assert [m.to for m in sms] == [street.wang.phone, street.wang.phone]
    assert sms[1].body == "您的上报#1已受理，正在处理，+3分。谢谢！"
    edited = telegram_api.messages_to(group.id)[1]
    assert (edited.text or "").endswith("— 已受理（赵建国）")
    assert (await Report.get(number=1)).status == "acknowledged"
