"""TwilioSmsSender through the real twilio client against the local Twilio stand-in."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from steward.gateway.messages import (
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
)
from steward.gateway.twilio_sms import TwilioSmsSender
from steward.settings import load_settings
from tests.fakes.twilio_api import LIST_PARAMS, FakeTwilio

FROM = "+15005550006"
SERVICE = "MG" + "a" * 32
PUBLIC = "https://steward.example.org"
TO = "+8613800138000"

MakeSender = Callable[..., TwilioSmsSender]


@pytest.fixture
async def make_sender(twilio: FakeTwilio) -> AsyncIterator[MakeSender]:
    senders: list[TwilioSmsSender] = []

    def make(timeout: float = 15.0, **overrides: object) -> TwilioSmsSender:
        values: dict[str, object] = {
            "TWILIO_ACCOUNT_SID": twilio.account_sid,
            "TWILIO_AUTH_TOKEN": twilio.auth_token,
            "TWILIO_FROM": FROM,
            "TWILIO_API_BASE": twilio.base_url,
            "PUBLIC_BASE_URL": PUBLIC,
        }
        values.update(overrides)
        sender = TwilioSmsSender(load_settings(**values), timeout=timeout)
        senders.append(sender)
        return sender

    yield make
    for sender in senders:
        await sender.close()


def outbound(body: str = "签到成功 8:02，谢谢您！", to: str = TO) -> OutboundMessage:
    return OutboundMessage(channel="sms", address=to, body=body, outbox_id=1)


async def test_sent_message_reaches_twilio_with_auth_and_callback(
    twilio: FakeTwilio, make_sender: MakeSender
) -> None:
    result = await make_sender().send(outbound())

    [message] = twilio.messages
    assert (message.to, message.from_, message.body) == (TO, FROM, "签到成功 8:02，谢谢您！")
    assert message.messaging_service_sid is None
    assert message.status_callback == PUBLIC + "/twilio/status"
    assert result.provider_id == message.sid and result.provider_id.startswith("SM")
    assert result.status == "queued"
    [request] = twilio.requests
    assert request.path == f"/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    assert request.auth_user == twilio.account_sid


async def test_messaging_service_sid_is_sent_as_messaging_service(
    twilio: FakeTwilio, make_sender: MakeSender
) -> None:
    result = await make_sender(TWILIO_FROM=SERVICE).send(outbound())

    [message] = twilio.messages
    assert message.messaging_service_sid == SERVICE
    assert "From" not in twilio.requests[0].form
    assert result.status == "queued"  # Twilio's "accepted", in our vocabulary


@pytest.mark.parametrize("code", [21211, 21610, 21614])
async def test_refused_number_is_permanent(
    twilio: FakeTwilio, make_sender: MakeSender, code: int
) -> None:
    twilio.fail_number(TO, code)

    with pytest.raises(PermanentSendError) as caught:
        await make_sender().send(outbound())

    assert caught.value.code == str(code)
    assert twilio.messages == []


async def test_wrong_credentials_are_permanent(twilio: FakeTwilio, make_sender: MakeSender) -> None:
    with pytest.raises(PermanentSendError) as caught:
        await make_sender(TWILIO_AUTH_TOKEN="not-the-token").send(outbound())

    assert caught.value.code == "20003"


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_server_trouble_is_retryable(
    twilio: FakeTwilio, make_sender: MakeSender, status: int
) -> None:
    twilio.fail_next(1, status=status)

    with pytest.raises(RetryableSendError) as caught:
        await make_sender().send(outbound())

    assert caught.value.retry_after is None
    assert twilio.messages == []


async def test_retry_after_is_honoured_and_next_attempt_succeeds(
    twilio: FakeTwilio, make_sender: MakeSender
) -> None:
    twilio.fail_next(1, status=429, retry_after=7)
    sender = make_sender()

    with pytest.raises(RetryableSendError) as caught:
        await sender.send(outbound())
    result = await sender.send(outbound())

    assert caught.value.retry_after == 7.0
    assert [m.sid for m in twilio.messages] == [result.provider_id]


async def test_nothing_listening_is_retryable(make_sender: MakeSender) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"

    with pytest.raises(RetryableSendError):
        await make_sender(TWILIO_API_BASE=closed).send(outbound())


async def test_hung_request_times_out_as_retryable_and_is_not_recorded(
    twilio: FakeTwilio, make_sender: MakeSender
) -> None:
    twilio.hang()

    with pytest.raises(RetryableSendError):
        await make_sender(timeout=0.5).send(outbound())

    await asyncio.to_thread(twilio.wait_for_dropped, 1, 5.0)
    assert twilio.messages == []


async def test_held_request_goes_through_once_released(
    twilio: FakeTwilio, make_sender: MakeSender
) -> None:
    twilio.hang()
    sending = asyncio.create_task(make_sender().send(outbound()))

    await asyncio.to_thread(twilio.wait_for_request, 5.0)
    assert twilio.messages == []
    twilio.release()
    result = await asyncio.wait_for(sending, 5.0)

    assert [m.sid for m in twilio.messages] == [result.provider_id]


# --- what became of an unanswered send: the Messages list -------------------------------------

# ../shared beside the checkout (a worktree sits deeper: look up the tree).
SPEC_FILE = next(
    (
        up / "shared" / "twilio" / "twilio_api_v2010_messages.json"
        for up in Path(__file__).resolve().parents
        if (up / "shared" / "twilio").is_dir()
    ),
    Path("shared/twilio/twilio_api_v2010_messages.json"),
)


async def test_find_sent_lists_by_to_from_and_date_and_matches_body_and_time(
    twilio: FakeTwilio, make_sender: MakeSender
) -> None:
    sender = make_sender()
    before = datetime.now(UTC) - timedelta(seconds=1)
    ours = await sender.send(outbound("签到成功"))
    await sender.send(outbound("别的话"))  # another body
    await sender.send(outbound("签到成功", to="+8613800138999"))  # another person

    assert await sender.find_sent(outbound("签到成功"), before) == [ours.provider_id]
    assert await sender.find_sent(outbound("签到成功"), datetime.now(UTC) + timedelta(1)) == []
    [query] = [r.query for r in twilio.requests if r.method == "GET"][:1]
    day = before.strftime("%Y-%m-%d")
    assert query == {"To": TO, "From": FROM, "DateSent>": day, "PageSize": "50"}


async def test_find_sent_through_a_messaging_service_matches_its_sid(
    twilio: FakeTwilio, make_sender: MakeSender
) -> None:
    sender = make_sender(TWILIO_FROM=SERVICE)
    before = datetime.now(UTC) - timedelta(seconds=1)
    ours = await sender.send(outbound())
    assert await sender.find_sent(outbound(), before) == [ours.provider_id]
    assert "From" not in next(r.query for r in twilio.requests if r.method == "GET")


async def test_find_sent_pages_through_a_long_list(
    twilio: FakeTwilio, make_sender: MakeSender
) -> None:
    sender = make_sender()
    before = datetime.now(UTC) - timedelta(seconds=1)
    sids = [(await sender.send(outbound("同一句话"))).provider_id for _ in range(55)]
    assert await sender.find_sent(outbound("同一句话"), before) == sids  # oldest first
    assert len([r for r in twilio.requests if r.method == "GET"]) == 2  # 50 a page


async def test_find_sent_failing_is_retryable_and_in_doubt(
    twilio: FakeTwilio, make_sender: MakeSender
) -> None:
    twilio.fail_next(1, 503)
    with pytest.raises(RetryableSendError) as caught:
        await make_sender().find_sent(outbound(), datetime.now(UTC))
    assert caught.value.maybe_sent


def test_the_stand_ins_list_has_the_shape_of_twilios_spec(twilio: FakeTwilio) -> None:
    """Field names of the list page and of each message, and the query parameters it takes, as
    in Twilio's OpenAPI description (skipped when the description is not beside the project)."""
    if not SPEC_FILE.exists():
        pytest.skip(f"Twilio's OpenAPI description is not at {SPEC_FILE}")
    spec = json.loads(SPEC_FILE.read_text())
    listing = spec["paths"]["/2010-04-01/Accounts/{AccountSid}/Messages.json"]["get"]
    page_schema = listing["responses"]["200"]["content"]["application/json"]["schema"]
    message_schema = spec["components"]["schemas"]["api.v2010.account.message"]
    params = {p["name"] for p in listing["parameters"] if p["in"] == "query"}
    assert params == set(LIST_PARAMS)

    url = f"{twilio.base_url}/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    auth = (twilio.account_sid, twilio.auth_token)
    httpx.post(url, data={"To": TO, "From": FROM, "Body": "hi"}, auth=auth).raise_for_status()
    page = httpx.get(url, params={"To": TO, "PageSize": "1"}, auth=auth).json()
    assert set(page) == set(page_schema["properties"])
    assert set(page["messages"][0]) == set(message_schema["properties"])
    assert page["messages"][0]["date_sent"] is not None
    bad = httpx.get(url, params={"Too": TO}, auth=auth)
    assert bad.status_code == 400  # a misspelt filter never lists everything
