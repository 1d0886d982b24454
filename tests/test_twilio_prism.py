"""Our send request checked against Twilio's own OpenAPI description, served by Stoplight Prism.

Prism validates each request against the spec and answers 201 with the spec's example, or 422
when the request breaks the spec. Needs ../shared/twilio, node and npm; skips otherwise. Prism
is installed once into .cache/prism (about 15 s); later runs take about a second.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from steward.gateway.messages import OutboundMessage
from steward.gateway.twilio_sms import TwilioSmsSender
from steward.settings import load_settings

PRISM_VERSION = "5.14.2"  # later releases need Node 24
# ../shared beside the checkout (a git worktree sits deeper: look up the tree).
SPEC = next(
    (
        up / "shared" / "twilio" / "twilio_api_v2010_messages.json"
        for up in Path(__file__).resolve().parents
        if (up / "shared" / "twilio").is_dir()
    ),
    Path("shared/twilio/twilio_api_v2010_messages.json"),
)
CACHE = Path(__file__).resolve().parents[1] / ".cache" / "prism"
PRISM = CACHE / "node_modules" / ".bin" / "prism"
ACCOUNT = "AC" + "0123456789abcdef" * 2
START_SECONDS = 30.0
INSTALL_SECONDS = 300.0


def _install_prism() -> Path:
    """Install Prism into the cache unless it is there; skip the module when that fails."""
    if PRISM.exists():
        return PRISM
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node and npm are needed to run Stoplight Prism")
    CACHE.mkdir(parents=True, exist_ok=True)
    command = [
        "npm",
        "install",
        "--prefix",
        str(CACHE),
        f"@stoplight/prism-cli@{PRISM_VERSION}",
        "--no-audit",
        "--no-fund",
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=INSTALL_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"npm install of Prism failed: {exc}")
    if done.returncode != 0 or not PRISM.exists():
        pytest.skip(f"npm install of Prism failed ({done.returncode}): {done.stderr[-500:]}")
    return PRISM


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_listening(process: subprocess.Popen[bytes], base_url: str) -> None:
    """Poll until Prism answers 404 on / (its readiness signal), within START_SECONDS."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        try:
            if httpx.get(base_url + "/", timeout=1.0).status_code == 404:
                return
        except httpx.TransportError:
            pass
        # Pause by waiting on the process itself: returns at once if Prism died.
        try:
            code = process.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            continue
        raise RuntimeError(f"Prism exited with {code} before listening")
    raise RuntimeError(f"Prism did not listen within {START_SECONDS}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a Prism mock of Twilio's Messages API."""
    if not SPEC.exists():
        pytest.skip(f"Twilio's OpenAPI description is not at {SPEC}")
    prism = _install_prism()
    port = _free_port()
    log = tmp_path_factory.mktemp("prism") / "prism.log"
    command = [str(prism), "mock", "-h", "127.0.0.1", "-p", str(port), "-v", "warn", str(SPEC)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_until_listening(process, f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)


@pytest.fixture(params=["+15005550006", "MG" + "0123456789abcdef" * 2], ids=["from", "service"])
async def sender(prism: str, request: pytest.FixtureRequest) -> AsyncIterator[TwilioSmsSender]:
    settings = load_settings(
        TWILIO_ACCOUNT_SID=ACCOUNT,
        TWILIO_AUTH_TOKEN="prism-does-not-check-the-token",
        TWILIO_FROM=request.param,
        TWILIO_API_BASE=prism,
        PUBLIC_BASE_URL="https://steward.example.org",
    )
    sender = TwilioSmsSender(settings, timeout=10)
    yield sender
    await sender.close()


async def test_our_send_request_matches_twilios_spec(sender: TwilioSmsSender) -> None:
    message = OutboundMessage(channel="sms", address="+8613800138000", body="签到成功", outbox_id=1)

    result = await sender.send(message)  # a 422 from Prism would raise PermanentSendError

    assert result.provider_id.startswith("SM")


async def test_our_message_list_request_matches_twilios_spec(sender: TwilioSmsSender) -> None:
    """The lookup before re-sending an unconfirmed message (To, From, DateSent>, PageSize)."""
    message = OutboundMessage(channel="sms", address="+8613800138000", body="签到成功", outbox_id=1)

    # A 422 from Prism would raise RetryableSendError; its canned messages match nothing of ours.
    assert await sender.find_sent(message, datetime.now(UTC)) == []


def test_prism_rejects_a_request_without_to(prism: str) -> None:
    url = f"{prism}/2010-04-01/Accounts/{ACCOUNT}/Messages.json"

    answer = httpx.post(url, data={"From": "+15005550006", "Body": "hi"}, auth=(ACCOUNT, "t"))

    assert answer.status_code == 422, answer.text
    assert "To" in answer.text
