"""TwilioSmsSender through the real twilio client against the local Twilio stand-in."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable

import pytest

from steward.gateway.messages import (
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
)
from steward.gateway.twilio_sms import TwilioSmsSender
from steward.settings import load_settings
from tests.fakes.twilio_api import FakeTwilio

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
