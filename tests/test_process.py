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

from steward.storage.models import InboundMessage, OutboxMessage, PatrolSession
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
