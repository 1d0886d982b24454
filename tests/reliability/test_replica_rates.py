"""Rates across replicas (issue 13, item 4).

Two real `steward serve` replicas on one PostgreSQL database, one Twilio sending number at
TWILIO_MPS=5 and one bot. Replica A starts first and takes both channels' dispatch locks; B
stands by. Then 40 stewards text 签到 (each webhook to one of the two replicas, alternately),
so 40 replies queue for SMS, and 163 Telegram messages are queued at once (4 to each of 40
private chats, 3 to a group). When 15 SMS have reached the Twilio stand-in, A is SIGKILLed
mid-send; B takes both locks over, pauses, and sends the rest, and after the lease the claims A
died with (Twilio's in-doubt lookup finds the SMS that had already gone).

The stand-ins stamp every message they accept. Counted there: 1-second windows holding more than
MPS SMS, and every Telegram limit (30 in a second, 1 a second to a private chat, 20 a minute to
a group, and the 3 s the dispatcher keeps between two group messages, the only group rule a run
this short can break). Every SMS reply reaches Twilio exactly once. Every Telegram message
arrives; one arrives twice only if A had it claimed when it died (Telegram cannot be asked
what it took: at least once).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import pytest
from tortoise.transactions import in_transaction

from steward.clock import utcnow
from steward.storage import outbox_store
from steward.storage.db import is_postgres
from steward.storage.models import (
    OutboxMessage,
    OutboxStatus,
    Volunteer,
)
from steward.storage.outbox_store import NewMessage
from tests.fakes.rates import busiest, crowded, rate, telegram_limits
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import new_sid, seed_pairs, service_settings, sign, sms_form
from tests.reliability.numbers import Record, report
from tests.reliability.test_in_flight import eventually
from tests.test_process import free_port, serve_env
from tests.test_replicas import replica

MPS = 5
STEWARDS = 40
CHATS, PER_CHAT = 40, 4
GROUP, GROUP_MESSAGES = -100_700, 3
KILL_AFTER = 15  # SMS at the stand-in
LEASE_SECONDS = 6  # a dead replica's claims are taken back this long after it claimed them
SECRET = "replica-rates-secret"


def env_for(db: str, twilio: FakeTwilio, bot: FakeTelegram, port: int) -> dict[str, str]:
    return {
        **serve_env(db, twilio, f"http://127.0.0.1:{port}"),
        "TWILIO_MPS": str(MPS),
        "OUTBOX_LEASE_SECONDS": str(LEASE_SECONDS),
        "TELEGRAM_BOT_TOKEN": bot.token,
        "TELEGRAM_API_BASE": bot.base_url,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
    }


async def queue_telegram(bot: FakeTelegram) -> dict[str, int]:
    """Register the chats at the stand-in and queue their messages, round after round (as
    replies would come); return each message's body with its outbox id."""
    for chat in range(CHATS):
        bot.user(9_000 + chat, f"用户{chat}")
    bot.add_group(GROUP, "新开河片长群")
    messages = [
        (f"telegram:{9_000 + chat}", f"消息 {chat}-{k}")
        for k in range(PER_CHAT)
        for chat in range(CHATS)
    ]
    for k in range(GROUP_MESSAGES):  # spread out, as a group's replies would be
        messages.insert(k * 60, (f"telegram:{GROUP}", f"群消息 {k}"))
    now = utcnow()
    ids = {}
    async with in_transaction() as conn:
        for address, body in messages:
            row = await outbox_store.enqueue(
                NewMessage("telegram", address, body, "reply"), now, conn
            )
            assert row is not None
            ids[body] = row
    return ids


async def test_two_replicas_keep_the_rates_and_a_killed_holder_is_replaced(
    db: str, twilio: FakeTwilio, telegram_api: FakeTelegram, record_property: Record
) -> None:
    if not is_postgres(db):
        pytest.skip("SQLite runs as one process: there are no replicas to share the rates")
    began = time.monotonic()
    people = await seed_pairs(STEWARDS)
    ports = free_port(), free_port()
    envs = [env_for(db, twilio, telegram_api, port) for port in ports]
    async with replica("A", envs[0], ports[0]) as a:
        await a.wait_for("outbox: this replica dispatches sms")
        await a.wait_for("outbox: this replica dispatches telegram")
        async with replica("B", envs[1], ports[1]) as b:
            await b.wait_for("outbox: another replica dispatches sms; standing by")
            await b.wait_for("outbox: another replica dispatches telegram; standing by")

            telegram_ids = await queue_telegram(telegram_api)
            bases = [f"http://127.0.0.1:{port}" for port in ports]
            settings = [service_settings(db, twilio, PUBLIC_BASE_URL=base) for base in bases]

            async def text(http: httpx.AsyncClient, n: int) -> None:
                form = sms_form(people[n].phone, "签到", new_sid())
                side = n % 2
                headers = {"X-Twilio-Signature": sign(settings[side], "/twilio/sms", form)}
                response = await http.post(f"{bases[side]}/twilio/sms", data=form, headers=headers)
                assert response.status_code == 200

            async with httpx.AsyncClient(timeout=15) as http:
                await asyncio.gather(*(text(http, n) for n in range(STEWARDS)))

            def enough_sent() -> bool:
                return len(twilio.messages) >= KILL_AFTER

            await asyncio.to_thread(twilio.wait_until, enough_sent, 30, f"{KILL_AFTER} SMS")
            a.proc.kill()  # SIGKILL: no shutdown code runs; PostgreSQL ends its sessions
            killed = time.perf_counter()
            await a.proc.wait()
            killed_at = utcnow()
            in_doubt = await OutboxMessage.filter(
                status=OutboxStatus.SENDING, claimed_at__lte=killed_at
            ).values_list("id", "channel")

            await b.wait_for("outbox: this replica dispatches sms after a pause")
            await b.wait_for("outbox: this replica dispatches telegram after a pause")

            async def all_sent() -> bool:
                return not await OutboxMessage.exclude(status=OutboxStatus.SENT).exists()

            await eventually(all_sent, 60.0, "B to send everything")
        # B stopped cleanly: whatever it sent is at the stand-ins now.

    assert_sms_once_within_the_rate(twilio, people, in_doubt, killed, record_property, began)
    assert_telegram_within_its_limits(telegram_api, telegram_ids, in_doubt, killed, record_property)


# A send A had on the wire when it died still lands, within milliseconds of the kill.
STRAGGLERS_SECONDS = 0.25


def first_after_the_kill(times: list[float], killed: float) -> float:
    """Seconds from the kill to B's first send (anything later than A's last stragglers)."""
    return round(
        min((t for t in times if t > killed + STRAGGLERS_SECONDS), default=0.0) - killed, 2
    )


def assert_sms_once_within_the_rate(
    twilio: FakeTwilio,
    people: list[Volunteer],
    in_doubt: list[tuple[int, str]],
    killed: float,
    record_property: Record,
    began: float,
) -> None:
    by_number: dict[str, list[float]] = {}
    for message in twilio.messages:
        by_number.setdefault(message.from_ or "?", []).append(message.arrived)
    violations = sum(crowded(times, MPS) for times in by_number.values())
    times = [m.arrived for m in twilio.messages]
    per_phone = Counter(m.to for m in twilio.messages)
    report(
        record_property,
        "replica_rates_sms",
        replicas=2,
        kills=1,
        mps=MPS,
        messages=len(twilio.messages),
        before_the_kill=sum(1 for t in times if t < killed),
        first_after_the_kill_s=first_after_the_kill(times, killed),
        sending_numbers=len(by_number),
        violations=violations,
        busiest_second=busiest(times),
        achieved_per_second=round(rate(times), 2),
        in_doubt_at_kill=sum(1 for _, channel in in_doubt if channel == "sms"),
        lookups=sum(1 for r in twilio.requests if r.method == "GET"),
        duplicates=sum(n - 1 for n in per_phone.values()),
        seconds=round(time.monotonic() - began, 1),
    )
    assert violations == 0
    assert first_after_the_kill(times, killed) >= 1.0  # B paused a second after taking over
    assert sorted(per_phone) == sorted(p.phone for p in people)
    assert set(per_phone.values()) == {1}


def assert_telegram_within_its_limits(
    bot: FakeTelegram,
    ids: dict[str, int],
    in_doubt: list[tuple[int, str]],
    killed: float,
    record_property: Record,
) -> None:
    limits = telegram_limits(bot.sends)
    arrived = Counter(m.text for m in bot.sent_messages())
    doubtful = {row for row, channel in in_doubt if channel == "telegram"}
    twice = {ids[body] for body, n in arrived.items() if n > 1 and body in ids}
    times = [s.at for s in bot.sends]
    report(
        record_property,
        "replica_rates_telegram",
        replicas=2,
        kills=1,
        messages=len(ids),
        private_chats=CHATS,
        groups=1,
        sends=len(bot.sends),
        before_the_kill=sum(1 for t in times if t < killed),
        first_after_the_kill_s=first_after_the_kill(times, killed),
        over_30_a_second=limits.overall,
        over_1_a_second_a_chat=limits.private,
        over_20_a_minute_a_group=limits.group,
        group_under_3_s_apart=limits.group_spacing,
        busiest_second=busiest(times),
        achieved_per_second=round(rate(times), 2),
        in_doubt_at_kill=len(doubtful),
        duplicates=sum(n - 1 for n in arrived.values()),
    )
    assert limits.total == 0
    assert first_after_the_kill(times, killed) >= 1.0
    assert set(ids) <= set(arrived)  # nothing lost
    assert twice <= doubtful  # a second copy only of what A died holding
    assert set(arrived) == set(ids)  # and nothing else
