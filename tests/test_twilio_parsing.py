"""Twilio webhook forms, signatures and status callbacks, as tables of raw payloads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from twilio.request_validator import RequestValidator

from steward.gateway.messages import InboundMessage, Media
from steward.gateway.twilio_sms import (
    STATUS_TABLE,
    FormError,
    StatusUpdate,
    inbound_from_form,
    public_url,
    status_from_form,
    verify_signature,
)
from steward.storage.models import STATUS_RANK, is_forward

NOW = datetime(2025, 3, 1, 8, 2, tzinfo=UTC)
TOKEN = "12345678901234567890123456789012"
ACCOUNT = "AC" + "0" * 32
BASE_FORM = {
    "ToCountry": "US",
    "SmsMessageSid": "SM11111111111111111111111111111111",
    "NumMedia": "0",
    "SmsSid": "SM11111111111111111111111111111111",
    "SmsStatus": "received",
    "To": "+15005550006",
    "NumSegments": "1",
    "MessageSid": "SM11111111111111111111111111111111",
    "AccountSid": ACCOUNT,
    "From": "+8613800138000",
    "ApiVersion": "2010-04-01",
    "Body": "签到",
}
MEDIA_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages/MM1/Media/ME"


@dataclass(frozen=True)
class IncomingCase:
    label: str
    form: dict[str, str]
    expected: InboundMessage | None = None
    error: str = ""


def form(drop: tuple[str, ...] = (), **changes: str) -> dict[str, str]:
    values = {k: v for k, v in BASE_FORM.items() if k not in drop}
    values.update(changes)
    return values


def inbound(text: str, *media: Media) -> InboundMessage:
    return InboundMessage(
        channel="sms",
        address="+8613800138000",
        text=text,
        external_id="SM11111111111111111111111111111111",
        received_at=NOW,
        media=media,
    )


INCOMING = [
    IncomingCase("plain sms", form(Body="2"), inbound("2")),
    IncomingCase(
        "chinese body", form(Body="上报 3号楼门口有积水"), inbound("上报 3号楼门口有积水")
    ),
    IncomingCase(
        "photo-only mms with 2 media",
        form(
            Body="",
            NumMedia="2",
            MediaUrl0=MEDIA_URL + "0",
            MediaContentType0="image/jpeg",
            MediaUrl1=MEDIA_URL + "1",
            MediaContentType1="image/png",
        ),
        inbound("", Media(MEDIA_URL + "0", "image/jpeg"), Media(MEDIA_URL + "1", "image/png")),
    ),
    IncomingCase("no body field at all", form(drop=("Body",)), inbound("")),
    IncomingCase("missing MessageSid", form(drop=("MessageSid",)), error="MessageSid"),
    IncomingCase("blank MessageSid", form(MessageSid="  "), error="MessageSid"),
    IncomingCase("missing From", form(drop=("From",)), error="From"),
    IncomingCase("NumMedia not a number", form(NumMedia="two"), error="NumMedia"),
    IncomingCase("NumMedia negative", form(NumMedia="-1"), error="NumMedia"),
    IncomingCase("NumMedia huge", form(NumMedia="100000"), error="NumMedia"),
    IncomingCase(
        "MediaUrl missing",
        form(NumMedia="2", MediaUrl0=MEDIA_URL + "0", MediaContentType0="image/jpeg"),
        error="MediaUrl1",
    ),
]


@pytest.mark.parametrize("case", INCOMING, ids=[c.label for c in INCOMING])
def test_inbound_from_form(case: IncomingCase) -> None:
    if case.error:
        with pytest.raises(FormError, match=case.error):
            inbound_from_form(case.form, NOW)
    else:
        assert inbound_from_form(case.form, NOW) == case.expected


# --- signatures -------------------------------------------------------------------------------

URL = "https://steward.example.org/twilio/sms"


def sign(url: str, params: dict[str, str], token: str = TOKEN) -> str:
    return str(RequestValidator(token).compute_signature(url, params))


def test_valid_signature_passes() -> None:
    assert verify_signature(TOKEN, URL, BASE_FORM, sign(URL, BASE_FORM))


def test_list_of_pairs_is_verified_like_a_mapping() -> None:
    assert verify_signature(TOKEN, URL, list(BASE_FORM.items()), sign(URL, BASE_FORM))


def test_tampered_body_fails() -> None:
    signature = sign(URL, BASE_FORM)
    assert not verify_signature(TOKEN, URL, form(Body="签退"), signature)


def test_other_token_fails() -> None:
    assert not verify_signature(TOKEN, URL, BASE_FORM, sign(URL, BASE_FORM, token="x" * 32))


@pytest.mark.parametrize("header", [None, ""])
def test_missing_signature_fails(header: str | None) -> None:
    assert not verify_signature(TOKEN, URL, BASE_FORM, header)


def test_blank_form_fields_are_signed() -> None:
    with_blank = form(Body="")
    signature = sign(URL, with_blank)
    assert verify_signature(TOKEN, URL, with_blank, signature)
    assert not verify_signature(TOKEN, URL, form(drop=("Body",)), signature)


def test_query_string_matters() -> None:
    with_query = public_url("https://steward.example.org/", "/twilio/sms", "street=3&x=")
    assert with_query == "https://steward.example.org/twilio/sms?street=3&x="
    signature = sign(with_query, BASE_FORM)
    assert verify_signature(TOKEN, with_query, BASE_FORM, signature)
    assert not verify_signature(TOKEN, URL, BASE_FORM, signature)
    assert not verify_signature(TOKEN, URL + "?street=4&x=", BASE_FORM, signature)


def test_public_url_without_query() -> None:
    assert public_url("http://127.0.0.1:8000", "/twilio/status", "") == (
        "http://127.0.0.1:8000/twilio/status"
    )


# --- status callbacks -------------------------------------------------------------------------


def status_form(status: str, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT,
        "From": "+15005550006",
        "MessageSid": "SM22222222222222222222222222222222",
        "MessageStatus": status,
        "SmsSid": "SM22222222222222222222222222222222",
        "SmsStatus": status,
        "To": "+8613800138000",
        "ApiVersion": "2010-04-01",
        **extra,
    }


@pytest.mark.parametrize(
    ("twilio_status", "ours"),
    [
        ("accepted", "queued"),
        ("scheduled", "queued"),
        ("queued", "queued"),
        ("sending", "sending"),
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("read", "delivered"),
        ("undelivered", "undelivered"),
        ("failed", "failed"),
        ("canceled", "failed"),
        ("receiving", "sending"),
        ("received", "delivered"),
    ],
)
def test_status_mapping(twilio_status: str, ours: str) -> None:
    update = status_from_form(status_form(twilio_status))
    assert update == StatusUpdate("SM22222222222222222222222222222222", ours, None)


def test_every_mapped_status_is_ranked() -> None:
    assert set(STATUS_TABLE.values()) <= set(STATUS_RANK)


def test_error_code_is_kept() -> None:
    update = status_from_form(status_form("undelivered", ErrorCode="30003"))
    assert (update.status, update.error_code) == ("undelivered", "30003")


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"MessageSid": ""}, "MessageSid"),
        ({"MessageStatus": ""}, "MessageStatus"),
        ({"MessageStatus": "teleported"}, "teleported"),
    ],
)
def test_bad_status_callback(changes: dict[str, str], error: str) -> None:
    with pytest.raises(FormError, match=error):
        status_from_form({**status_form("sent"), **changes})


@pytest.mark.parametrize(
    ("current", "new", "forward"),
    [
        ("queued", "sending", True),
        ("queued", "delivered", True),
        ("sending", "sent", True),
        ("sent", "delivered", True),
        ("sent", "failed", True),
        ("delivered", "sent", False),
        ("undelivered", "sending", False),
        ("delivered", "failed", False),
        ("sent", "sent", False),
        ("pending", "queued", True),
        ("sent", "teleported", False),
    ],
)
def test_is_forward(current: str, new: str, forward: bool) -> None:
    assert is_forward(current, new) is forward


def test_ids_too_long_for_twilio_are_refused() -> None:
    from datetime import UTC, datetime

    from steward.gateway.twilio_sms import FormError, inbound_from_form

    form = {
        "MessageSid": "SM" + "0" * 80,
        "From": "+8613800138000",
        "Body": "签到",
        "NumMedia": "0",
    }
    with pytest.raises(FormError, match="MessageSid"):
        inbound_from_form(form, datetime.now(UTC))
    form = {
        "MessageSid": "SM" + "0" * 32,
        "From": "+86" + "1" * 70,
        "Body": "签到",
        "NumMedia": "0",
    }
    with pytest.raises(FormError, match="From"):
        inbound_from_form(form, datetime.now(UTC))
