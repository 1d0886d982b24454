"""Hostile and malformed input (issue 13, item 6): the grammar on any text, random signed forms,
unsigned and wrongly signed requests to every webhook, floods, strangers, auto-responders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from urllib.parse import quote_from_bytes
from zoneinfo import ZoneInfo

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steward.flows import grammar
from steward.flows.inbox import FLOOD_LIMIT
from steward.gateway.twilio_sms import MAX_ID_LENGTH
from steward.storage.models import InboundMessage, OutboxMessage
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import (
    Service,
    new_sid,
    running_service,
    say,
    seed_street,
    service_settings,
    sign,
    sms_form,
    status_form,
)
from tests.reliability.numbers import Record, report
from tests.test_telegram import SECRET, telegram_service

SHANGHAI = ZoneInfo("Asia/Shanghai")
MORNING = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)
EXAMPLES = 150


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(text=st.text(max_size=1600), in_step=st.booleans())
def test_the_grammar_reads_any_text_as_some_intent(text: str, in_step: bool) -> None:
    parsed = grammar.parse(text, in_step=in_step)
    assert parsed.intent in grammar.INTENTS
    parsed.as_json()  # what `steward parse` prints: never raises either


def test_the_grammar_property_ran(record_property: Record) -> None:
    report(record_property, "grammar_any_text", examples=EXAMPLES, max_chars=1600, violations=0)


# --- random forms, signed -----------------------------------------------------------------

field_names = st.one_of(
    st.sampled_from(["From", "To", "Body", "MessageSid", "NumMedia", "MediaUrl0", "AccountSid"]),
    st.text(min_size=1, max_size=12),
)
field_values = st.one_of(st.text(max_size=300), st.sampled_from(["", " ", "+8613800138001"]))


@pytest.fixture
async def svc(db: str, twilio: FakeTwilio) -> AsyncIterator[Service]:
    await seed_street()
    settings_ = service_settings(db, twilio, MAX_WEBHOOK_BYTES=65536)
    async with running_service(settings_, twilio, background=False) as service:
        yield service


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    form=st.dictionaries(field_names, field_values, max_size=12),
    drop=st.sampled_from([None, "From", "MessageSid", "Body"]),
    base=st.booleans(),
)
async def test_signed_random_forms_never_get_a_5xx_and_refusals_store_nothing(
    svc: Service, form: dict[str, str], drop: str | None, base: bool
) -> None:
    fields = {**(sms_form("+8613800138001", "签到", new_sid()) if base else {}), **form}
    if drop is not None:
        fields.pop(drop, None)
    before = await InboundMessage.all().count()
    # The database lives across examples: a MessageSid an earlier one stored is a redelivery.
    # It is stored stripped; one with NUL or longer than Twilio's ids is refused and never
    # stored (and cannot even be looked up: PostgreSQL refuses NUL, tortoise an over-long value).
    sid = (fields.get("MessageSid") or "").strip()
    seen = (
        0 < len(sid) <= MAX_ID_LENGTH
        and "\x00" not in sid
        and await InboundMessage.filter(external_id=sid).exists()
    )
    try:
        response = await svc.post_signed("/twilio/sms", fields)
    except UnicodeEncodeError:
        return  # a lone surrogate cannot even be put on the wire
    assert response.status_code < 500, response.text
    stored = await InboundMessage.all().count() - before
    assert stored == (1 if response.status_code == 200 and not seen else 0)


def test_the_random_form_property_ran(record_property: Record) -> None:
    report(record_property, "random_signed_forms", examples=60, violations=0)


async def _raw(svc: Service, body: bytes, content_type: str, method: str = "POST") -> int:
    # Signed over what a form parser would see; the body itself is what is odd.
    headers = {
        "content-type": content_type,
        "x-twilio-signature": sign(svc.settings, "/twilio/sms", {}),
    }
    response = await svc.http.request(method, "/twilio/sms", content=body, headers=headers)
    return response.status_code


async def test_odd_bodies_methods_and_types_are_4xx_and_store_nothing(
    svc: Service, record_property: Record
) -> None:
    form = "application/x-www-form-urlencoded"
    big = b"Body=" + b"a" * (2 * 1024 * 1024)  # 2 MB
    cases = {
        "2 MB": (big, form, "POST"),
        "latin-1 bytes": ("Body=签到".encode("gb18030"), form, "POST"),
        "bad percent": (b"Body=%E7%AD&From=%ZZ", form, "POST"),
        "bad bytes quoted": (b"Body=" + quote_from_bytes(b"\xff\xfe").encode(), form, "POST"),
        "json": (b'{"Body": "1"}', "application/json", "POST"),
        "xml": (b"<Body>1</Body>", "text/xml", "POST"),
        "no type": (b"Body=1", "", "POST"),
        "PUT": (b"Body=1", form, "PUT"),
        "DELETE": (b"", form, "DELETE"),
        "GET": (b"", form, "GET"),
    }
    statuses = {name: await _raw(svc, *case) for name, case in cases.items()}
    assert all(400 <= s < 500 for s in statuses.values()), statuses
    assert await InboundMessage.all().count() == 0
    report(record_property, "odd_bodies", cases=len(cases), violations=0)


# --- every webhook refuses what is not signed by the provider ------------------------------


async def test_every_webhook_refuses_unsigned_and_wrongly_signed_requests(
    db: str, twilio: FakeTwilio, telegram_api: FakeTelegram, record_property: Record
) -> None:
    await seed_street()
    update = {
        "update_id": 1,
        "message": {
            "message_id": 1,
            "date": 0,
            "chat": {"id": 5, "type": "private"},
            "text": "签到",
        },
    }
    async with telegram_service(db, twilio, telegram_api) as svc:
        sms = sms_form("+8613800138001", "签到", new_sid())
        status = status_form("SM" + "1" * 32, "delivered")
        wrong = {"X-Twilio-Signature": "c2lnbmVkIGJ5IHNvbWVvbmUgZWxzZQ=="}
        other_token = sign(
            service_settings(db, twilio, TWILIO_AUTH_TOKEN="not-ours"), "/twilio/sms", sms
        )
        answers = [
            await svc.http.post("/twilio/sms", data=sms),
            await svc.http.post("/twilio/sms", data=sms, headers=wrong),
            await svc.http.post(
                "/twilio/sms", data=sms, headers={"X-Twilio-Signature": other_token}
            ),
            await svc.http.post("/twilio/status", data=status),
            await svc.http.post("/twilio/status", data=status, headers=wrong),
            await svc.http.post("/telegram/webhook", json=update),
            await svc.http.post(
                "/telegram/webhook",
                json=update,
                headers={"X-Telegram-Bot-Api-Secret-Token": SECRET + "x"},
            ),
        ]
        assert [a.status_code for a in answers] == [403] * len(answers)
        assert await InboundMessage.all().count() == 0
        assert await OutboxMessage.all().count() == 0
    report(record_property, "unsigned_webhooks", requests=len(answers), refused=len(answers))


# --- floods, strangers, auto-responders ----------------------------------------------------


async def test_a_flood_from_one_number_gets_a_capped_number_of_replies(
    db: str, twilio: FakeTwilio, record_property: Record
) -> None:
    street = await seed_street()
    texts = 200
    async with running_service(service_settings(db, twilio), twilio, background=False) as svc:
        for i in range(texts):  # 200 texts in one minute, all different
            with time_machine.travel(MORNING + timedelta(seconds=i * 0.3), tick=False):
                await svc.text(street.wang.phone, f"你好 {i}")
        with time_machine.travel(MORNING + timedelta(seconds=61), tick=False):
            await svc.drain()
    replies = [m for m in twilio.messages if m.to == street.wang.phone]
    assert await InboundMessage.all().count() == texts  # every one stored
    assert len(replies) <= FLOOD_LIMIT
    report(
        record_property, "flood", messages=texts, seconds=60, replies=len(replies), cap=FLOOD_LIMIT
    )


async def test_an_unknown_number_gets_one_reply_a_day(
    db: str, twilio: FakeTwilio, record_property: Record
) -> None:
    await seed_street()
    stranger = "+8613912345678"
    days, per_day = 3, 12
    async with running_service(service_settings(db, twilio), twilio, background=False) as svc:
        for day in range(days):
            for i in range(per_day):  # every two hours, different words
                moment = MORNING + timedelta(days=day, hours=2 * i, minutes=1)
                await say(svc, moment, stranger, f"请问这是哪里 {day}-{i}")
    replies = [m for m in twilio.messages if m.to == stranger]
    assert len(replies) <= days
    report(record_property, "stranger", messages=days * per_day, days=days, replies=len(replies))


async def test_a_loop_with_an_auto_responder_stops(
    db: str, twilio: FakeTwilio, record_property: Record
) -> None:
    """A phone that answers everything it gets, with the same words or with ours echoed back."""
    street = await seed_street()
    rounds = 50
    counts: dict[str, int] = {}
    async with running_service(service_settings(db, twilio), twilio, background=False) as svc:
        for who, echo in ((street.wang.phone, False), (street.li.phone, True)):
            got = await say(svc, MORNING, who, "积分")
            replies = len(got)
            for i in range(1, rounds):
                if not got:
                    break  # we fell silent: the loop is over
                answer = got[-1] if echo else "【自动回复】我正在开车，稍后回复您。"
                got = await say(svc, MORNING + timedelta(seconds=5 * i), who, answer)
                replies += len(got)
            counts[who] = replies
            assert not got, f"still answering {who} after {rounds} rounds"
    assert all(n <= 3 for n in counts.values()), counts
    report(record_property, "auto_responder", rounds=rounds, replies=sum(counts.values()), loops=0)
