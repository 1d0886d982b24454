"""The Twilio webhooks at the HTTP edge: what a refused request looks like and what it stores.

Every refusal is checked twice: what Twilio (or an operator watching /metrics) sees, and that
nothing reached the inbox or the outbox.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
import time_machine
from prometheus_client.parser import text_string_to_metric_families
from twilio.request_validator import RequestValidator

from steward.storage.models import InboundMessage, OutboxMessage, OutboxStatus
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import (
    Service,
    Street1,
    new_sid,
    running_service,
    seed_street,
    service_settings,
    sign,
    sms_form,
    status_form,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
MORNING = datetime(2026, 11, 23, 8, 2, tzinfo=SHANGHAI)
SENDER = "+8613800138001"
LIMIT = 2048
FORM_TYPE = "application/x-www-form-urlencoded"


async def metric(svc: Service, name: str, **labels: str) -> float:
    """Read one sample from GET /metrics as Prometheus would scrape it (0 when absent)."""
    response = await svc.http.get("/metrics")
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


async def assert_nothing_stored(svc: Service) -> None:
    """No inbound row, no outbox row, and nothing went out to Twilio."""
    assert await InboundMessage.all().count() == 0
    assert await OutboxMessage.all().count() == 0
    await svc.drain()
    assert svc.fake.requests == []


# --- refused requests, as a table -------------------------------------------------------------

Send = Callable[[Service], Awaitable[httpx.Response]]


def _form() -> dict[str, str]:
    return sms_form(SENDER, "签到", new_sid())


async def _bad_signature(svc: Service) -> httpx.Response:
    headers = {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJlIGF0IGFsbA=="}
    return await svc.http.post("/twilio/sms", data=_form(), headers=headers)


async def _missing_signature(svc: Service) -> httpx.Response:
    return await svc.http.post("/twilio/sms", data=_form())


async def _non_ascii_signature(svc: Service) -> httpx.Response:
    headers = [(b"X-Twilio-Signature", b"\xe9t\xe9")]
    return await svc.http.post("/twilio/sms", data=_form(), headers=headers)


async def _signed_for_internal_url(svc: Service) -> httpx.Response:
    # Behind a proxy the app sees http://testserver; Twilio signs the public URL instead.
    form = _form()
    validator = RequestValidator(svc.settings.TWILIO_AUTH_TOKEN)
    signature = validator.compute_signature(f"{svc.http.base_url}/twilio/sms", form)
    return await svc.http.post("/twilio/sms", data=form, headers={"X-Twilio-Signature": signature})


async def _tampered_body(svc: Service) -> httpx.Response:
    form = _form()
    signature = sign(svc.settings, "/twilio/sms", form)
    form["Body"] = "签退"
    return await svc.http.post("/twilio/sms", data=form, headers={"X-Twilio-Signature": signature})


async def _json_unsigned(svc: Service) -> httpx.Response:
    return await svc.http.post("/twilio/sms", json=_form())


async def _json_signed(svc: Service) -> httpx.Response:
    form = _form()
    headers = {"X-Twilio-Signature": sign(svc.settings, "/twilio/sms", form)}
    return await svc.http.post("/twilio/sms", json=form, headers=headers)


async def _multipart(svc: Service) -> httpx.Response:
    form = _form()
    headers = {"X-Twilio-Signature": sign(svc.settings, "/twilio/sms", form)}
    return await svc.http.post("/twilio/sms", data=form, files={"x": b"y"}, headers=headers)


async def _oversized(svc: Service) -> httpx.Response:
    form = sms_form(SENDER, "巡" * LIMIT, new_sid())
    return await svc.post_signed("/twilio/sms", form)


async def _oversized_without_length(svc: Service) -> httpx.Response:
    # Chunked, so no Content-Length to refuse up front: the limit must hold while reading.
    async def chunks() -> AsyncIterator[bytes]:
        yield b"From=%2B8613800138001&MessageSid=SM1&Body="
        for _ in range(LIMIT // 256 + 2):
            yield b"a" * 256

    headers = {"Content-Type": FORM_TYPE, "X-Twilio-Signature": "x"}
    return await svc.http.post("/twilio/sms", content=chunks(), headers=headers)


async def _percent_encoded_non_utf8(svc: Service) -> httpx.Response:
    body = f"MessageSid={new_sid()}&From=%2B8613800138001&Body=%FF%FE%C3"
    return await svc.http.post(
        "/twilio/sms", content=body.encode(), headers={"Content-Type": FORM_TYPE}
    )


async def _raw_non_utf8(svc: Service) -> httpx.Response:
    body = f"MessageSid={new_sid()}&From=%2B8613800138001&Body=".encode() + b"\xff\xfe"
    return await svc.http.post("/twilio/sms", content=body, headers={"Content-Type": FORM_TYPE})


def _signed_without(field: str, blank: bool = False) -> Send:
    async def send(svc: Service) -> httpx.Response:
        form = _form()
        if blank:
            form[field] = " "
        else:
            del form[field]
        return await svc.post_signed("/twilio/sms", form)

    return send


async def _signed_bad_num_media(svc: Service) -> httpx.Response:
    form = _form()
    form["NumMedia"] = "lots"
    return await svc.post_signed("/twilio/sms", form)


async def _signed_media_missing(svc: Service) -> httpx.Response:
    form = _form()
    form["NumMedia"] = "1"  # but no MediaUrl0
    return await svc.post_signed("/twilio/sms", form)


async def _signed_nul_in_body(svc: Service) -> httpx.Response:
    return await svc.post_signed("/twilio/sms", sms_form(SENDER, "签\x00到", new_sid()))


async def _get(svc: Service) -> httpx.Response:
    return await svc.http.get("/twilio/sms")


@dataclass(frozen=True)
class Refusal:
    send: Send
    status: int
    reason: str | None  # the steward_rejected_requests_total label an operator sees
    says: str  # what the answer's body tells whoever looks at Twilio's debugger


REFUSALS: dict[str, Refusal] = {
    "bad signature": Refusal(_bad_signature, 403, "bad signature", "bad signature"),
    "missing signature": Refusal(_missing_signature, 403, "bad signature", "bad signature"),
    "non-ASCII signature": Refusal(_non_ascii_signature, 403, "bad signature", "bad signature"),
    "signed for the internal URL": Refusal(
        _signed_for_internal_url, 403, "bad signature", "bad signature"
    ),
    "body changed after signing": Refusal(_tampered_body, 403, "bad signature", "bad signature"),
    "JSON, unsigned": Refusal(_json_unsigned, 415, "expected " + FORM_TYPE, FORM_TYPE),
    "JSON, signed": Refusal(_json_signed, 415, "expected " + FORM_TYPE, FORM_TYPE),
    "multipart": Refusal(_multipart, 415, "expected " + FORM_TYPE, FORM_TYPE),
    "oversized": Refusal(_oversized, 413, "request too large", "too large"),
    "oversized, chunked": Refusal(_oversized_without_length, 413, "request too large", "too large"),
    "percent-encoded non-UTF-8": Refusal(
        _percent_encoded_non_utf8, 400, "form is not valid UTF-8 url-encoding", "UTF-8"
    ),
    "raw non-UTF-8": Refusal(_raw_non_utf8, 400, "form is not valid UTF-8 url-encoding", "UTF-8"),
    "signed, no MessageSid": Refusal(_signed_without("MessageSid"), 400, "bad form", "MessageSid"),
    "signed, no From": Refusal(_signed_without("From"), 400, "bad form", "From"),
    "signed, blank From": Refusal(_signed_without("From", blank=True), 400, "bad form", "From"),
    "signed, NumMedia not a number": Refusal(_signed_bad_num_media, 400, "bad form", "NumMedia"),
    "signed, media URL missing": Refusal(_signed_media_missing, 400, "bad form", "MediaUrl0"),
    "signed, NUL in Body": Refusal(_signed_nul_in_body, 400, "form contains NUL", "NUL"),
    "GET": Refusal(_get, 405, None, "Method Not Allowed"),
}


@pytest.mark.parametrize("case", REFUSALS.values(), ids=REFUSALS.keys())
async def test_a_bad_request_is_refused_and_stores_nothing(
    db: str, twilio: FakeTwilio, case: Refusal
) -> None:
    await seed_street()  # SENDER is a volunteer: an accepted text would be answered
    settings = service_settings(db, twilio, MAX_WEBHOOK_BYTES=LIMIT)
    async with running_service(settings, twilio) as svc:
        with time_machine.travel(MORNING, tick=False):
            response = await case.send(svc)
        assert response.status_code == case.status, response.text
        if case.reason is not None:
            assert await metric(svc, "steward_rejected_requests_total", reason=case.reason) == 1
        assert case.says in response.text
        assert await metric(svc, "steward_inbound_messages_total", channel="sms", result="new") == 0
        await assert_nothing_stored(svc)


async def test_the_limit_leaves_room_for_a_real_text(db: str, twilio: FakeTwilio) -> None:
    """The 413 above is about size, not the setting: a normal text under the same limit is taken."""
    street = await seed_street()
    settings = service_settings(db, twilio, MAX_WEBHOOK_BYTES=LIMIT)
    async with running_service(settings, twilio) as svc:
        with time_machine.travel(MORNING, tick=False):
            await svc.text(street.wang.phone, "签到")
            sent = await svc.settle()
    assert [m.to for m in sent] == [street.wang.phone]
    assert await InboundMessage.all().count() == 1


# --- accepted texts ---------------------------------------------------------------------------


async def test_a_redelivered_text_has_one_effect(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    sid = new_sid()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        with time_machine.travel(MORNING, tick=False):
            first = await svc.post_signed("/twilio/sms", sms_form(street.wang.phone, "签到", sid))
            await svc.settle()
            again = await svc.post_signed("/twilio/sms", sms_form(street.wang.phone, "签到", sid))
            sent = await svc.settle()
        duplicates = await metric(
            svc, "steward_inbound_messages_total", channel="sms", result="duplicate"
        )
    for response in (first, again):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/xml")
        assert "<Response/>" in response.text
    assert await InboundMessage.filter(external_id=sid).count() == 1
    assert [(m.to, m.body) for m in sent] == [
        (street.wang.phone, "王秀英，8:02签到成功，祝巡查顺利！结束时回复2签退。")
    ]
    assert await OutboxMessage.all().count() == 1
    assert duplicates == 1


async def test_with_sms_off_the_webhook_refuses_and_the_app_still_runs(
    db: str, twilio: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    await seed_street()
    settings = service_settings(
        db, twilio, TWILIO_ACCOUNT_SID="", TWILIO_AUTH_TOKEN="", TWILIO_FROM=""
    )
    assert not settings.twilio_enabled
    async with running_service(settings, twilio) as svc:
        health = await svc.http.get("/healthz")
        signed = await svc.post_signed("/twilio/sms", _form())
        unsigned = await svc.http.post("/twilio/sms", data=_form())
        status = await svc.post_signed(
            "/twilio/status", {"MessageSid": new_sid(), "MessageStatus": "delivered"}
        )
        await assert_nothing_stored(svc)
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    for response in (signed, unsigned, status):
        assert response.status_code == 503
        assert response.text == "SMS channel is off"
    assert "SMS channel off" in caplog.text
    assert "TWILIO_ACCOUNT_SID" in caplog.text


async def test_health_and_metrics(db: str, twilio: FakeTwilio) -> None:
    street = await seed_street()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        health = await svc.http.get("/healthz")
        scrape = await svc.http.get("/metrics")
        before = await metric(svc, "steward_inbound_messages_total", channel="sms", result="new")
        with time_machine.travel(MORNING, tick=False):
            await svc.text(street.wang.phone, "签到")
            await svc.text(street.li.phone, "IN")
        after = await metric(svc, "steward_inbound_messages_total", channel="sms", result="new")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    assert "steward_inbound_messages_total" in scrape.text
    assert (before, after) == (0, 2)


# --- status callbacks -------------------------------------------------------------------------


@pytest.fixture
async def replied(db: str, twilio: FakeTwilio) -> AsyncIterator[tuple[Service, str]]:
    """A running service that has sent one reply; yields it and the SID Twilio gave the reply."""
    street: Street1 = await seed_street()
    async with running_service(service_settings(db, twilio), twilio) as svc:
        with time_machine.travel(MORNING, tick=False):
            await svc.text(street.wang.phone, "签到")
            [message] = await svc.settle()
        row = await OutboxMessage.get(provider_id=message.sid)
        assert row.status == OutboxStatus.SENT
        yield svc, message.sid


async def post_status(svc: Service, form: dict[str, str]) -> None:
    response = await svc.post_signed("/twilio/status", form)
    assert response.status_code == 200, response.text
    assert "<Response/>" in response.text


async def test_delivery_reports_move_a_message_forward_never_back(
    replied: tuple[Service, str],
) -> None:
    svc, sid = replied
    await post_status(svc, status_form(sid, "sent"))
    assert (await OutboxMessage.get(provider_id=sid)).status == OutboxStatus.SENT
    await post_status(svc, status_form(sid, "delivered"))
    assert (await OutboxMessage.get(provider_id=sid)).status == OutboxStatus.DELIVERED
    # Twilio does not promise order: a late "sent" or "queued" must not undo "delivered".
    await post_status(svc, status_form(sid, "sent"))
    await post_status(svc, status_form(sid, "queued"))
    row = await OutboxMessage.get(provider_id=sid)
    assert row.status == OutboxStatus.DELIVERED
    assert row.error_code is None


@pytest.mark.parametrize(
    ("twilio_status", "code", "expected"),
    [("undelivered", "30003", OutboxStatus.UNDELIVERED), ("failed", "30008", OutboxStatus.FAILED)],
)
async def test_a_failed_delivery_records_the_error_code(
    replied: tuple[Service, str], twilio_status: str, code: str, expected: OutboxStatus
) -> None:
    svc, sid = replied
    await post_status(svc, status_form(sid, twilio_status, code))
    await post_status(svc, status_form(sid, "delivered"))  # a final status stays final
    row = await OutboxMessage.get(provider_id=sid)
    assert (row.status, row.error_code) == (expected, code)


async def test_a_report_for_an_unknown_message_changes_nothing(
    replied: tuple[Service, str],
) -> None:
    svc, sid = replied
    before = await OutboxMessage.get(provider_id=sid)
    await post_status(svc, status_form(new_sid(), "failed", "30005"))
    after = await OutboxMessage.get(provider_id=sid)
    assert await OutboxMessage.all().count() == 1
    assert (after.status, after.error_code, after.updated_at) == (
        before.status,
        before.error_code,
        before.updated_at,
    )


async def test_a_badly_signed_report_is_refused(replied: tuple[Service, str]) -> None:
    svc, sid = replied
    form = status_form(sid, "failed", "30008")
    refused = await svc.http.post(
        "/twilio/status", data=form, headers={"X-Twilio-Signature": "forged"}
    )
    unsigned = await svc.http.post("/twilio/status", data=form)
    assert (refused.status_code, unsigned.status_code) == (403, 403)
    row = await OutboxMessage.get(provider_id=sid)
    assert (row.status, row.error_code) == (OutboxStatus.SENT, None)


@pytest.mark.parametrize(
    "form",
    [
        {"MessageStatus": "delivered"},
        {"MessageSid": "SMx"},
        {"MessageSid": "SMx", "MessageStatus": "teleported"},
    ],
    ids=["no MessageSid", "no MessageStatus", "unknown MessageStatus"],
)
async def test_a_malformed_report_is_a_400(
    replied: tuple[Service, str], form: dict[str, str]
) -> None:
    svc, sid = replied
    response = await svc.post_signed("/twilio/status", form)
    assert response.status_code == 400
    assert (await OutboxMessage.get(provider_id=sid)).status == OutboxStatus.SENT
