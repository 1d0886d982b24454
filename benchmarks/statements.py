"""SQL statements per message, by intent, counted in-process on SQLite.

The service runs in this process (tests/harness.py `running_service`: the real app, lifespan,
background processor and dispatcher, Twilio client against the stand-in). For each intent one
volunteer sends one text; every statement SQLite runs is counted (see sqlcount.py), across all
tasks, from the moment the webhook is posted until the transaction that marks the sender's reply
as sent has committed. Statements after that (the loops looking for more work) are shown apart.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import section
from benchmarks.report import Row, at_most, info, not_measured
from benchmarks.sqlcount import Statement, StatementLog, count, describe, distinct, recording
from benchmarks.support import TimedList, log, new_sid, timed_twilio

INTENTS = (
    ("check_in", "签到"),
    ("check_out", "签退"),
    ("points", "积分"),
    ("report", "报 1 门口垃圾"),
    ("help", "帮助"),
)
CHECK_IN_TARGET = 8
QUIET_SECONDS = 0.3
BURST = 32  # stewards checking in at the same moment (one processor batch's worth)
BURST_FIGURE = f"SQL statements per check-in, {BURST} at once (per message)"


def figure(intent: str) -> str:
    return f"SQL statements per message: {intent}"


def target(intent: str) -> str:
    return f"<= {CHECK_IN_TARGET}" if intent == "check_in" else "-"


async def run(emit: section.Emitter, args: list[str]) -> None:
    emit.expect(
        [(figure(intent), target(intent)) for intent, _ in INTENTS]
        + [(BURST_FIGURE, f"<= {CHECK_IN_TARGET}")]
    )
    from steward.storage import db
    from steward.storage.models import InboundMessage
    from tests.harness import add_person, running_service, seed_street, service_settings

    with tempfile.TemporaryDirectory(prefix="bench-sql-") as folder:
        url = f"sqlite://{Path(folder) / 'steward.sqlite3'}"
        fake, timed = timed_twilio()
        try:
            await db.upgrade(url)
            settings = service_settings(url, fake)  # read before connecting (see db.connect)
            await db.connect(url)
            street = await seed_street()
            sender = street.wang.phone
            async with running_service(settings, fake) as svc, recording() as statements:
                await svc.text(street.other.phone, "帮助")  # warm-up, not counted
                await svc.wait_sent(1)
                for intent, text in INTENTS:
                    await _quiet(statements)
                    statements.clear()
                    before = len(timed)
                    started = time.perf_counter()
                    sid = new_sid()
                    await svc.text(sender, text, sid=sid)
                    await asyncio.to_thread(
                        fake.wait_until, _replied(timed, sender, before), 10.0, f"a reply to {text}"
                    )
                    await _quiet(statements)
                    seen = statements.snapshot()
                    reply_at = next(t for t, m in timed.arrivals()[before:] if m.to == sender)
                    row = await InboundMessage.get(external_id=sid)
                    result = _row(intent, text, row.intent, seen, started, reply_at)
                    emit(result)
                    log(f"statements: {intent}: {result.display_value()}")
                burst = [
                    (await add_person(street, f"志愿者{n}", f"+861390000{n:04d}")).phone
                    for n in range(BURST)
                ]
                await _quiet(statements)
                statements.clear()
                before = len(timed)
                started = time.perf_counter()
                await asyncio.gather(*(svc.text(phone, "签到") for phone in burst))
                await asyncio.to_thread(
                    fake.wait_until, lambda: len(timed) >= before + BURST, 10.0, "the replies"
                )
                await _quiet(statements)
                result = _burst_row(statements.snapshot(), started, timed.arrivals()[-1][0])
                emit(result)
                log(f"statements: burst: {result.display_value()}")
            await db.disconnect()
        finally:
            fake.stop()


def _replied(timed: TimedList, sender: str, before: int) -> Callable[[], bool]:
    def check() -> bool:
        return any(m.to == sender for m in list(timed)[before:])

    return check


def _row(
    intent: str,
    text: str,
    stored_intent: str | None,
    seen: list[Statement],
    started: float,
    reply_at: float,
) -> Row:
    window = [s for s in seen if s.at >= started]
    counted = _until_sent(window, reply_at)
    if counted is None:
        return not_measured(
            figure(intent),
            f"could not find the statement marking the reply sent among {len(window)}",
            target(intent),
        )
    after = count(window) - count(counted)
    note = (
        f"{text!r} (stored intent {stored_intent}): {describe(counted)}; "
        f"then {after} more while the loops looked for further work"
    )
    if stored_intent != intent:
        note = f"stored intent is {stored_intent}, not {intent}; " + note
    n = count(counted)
    if intent == "check_in":
        return at_most(figure(intent), n, "", CHECK_IN_TARGET, note)
    return info(figure(intent), n, "", note)


def _burst_row(seen: list[Statement], started: float, last_reply_at: float) -> Row:
    window = [s for s in seen if s.at >= started]
    counted = _until_sent(window, last_reply_at)
    if counted is None:
        return not_measured(BURST_FIGURE, "could not find the record of the last reply", "")
    n = count(counted)
    note = (
        f"{BURST} stewards text 签到 at once (concurrent webhooks): {describe(counted)}, "
        f"until the last reply is recorded as sent; {n / BURST:.1f} per message"
    )
    return at_most(BURST_FIGURE, n / BURST, "", CHECK_IN_TARGET, note)


def _until_sent(window: list[Statement], reply_at: float) -> list[Statement] | None:
    """The statements up to the commit of the first outbox UPDATE after the reply arrived."""
    items = distinct(window)
    for i, s in enumerate(items):
        if s.at < reply_at:
            continue
        sql = s.sql.upper()
        if "UPDATE" in sql and "OUTBOX" in sql:
            end = i
            for j in range(i + 1, len(items)):
                later = items[j]
                if later.task != s.task:
                    continue
                head = later.sql.lstrip().upper()
                if head.startswith("COMMIT"):
                    end = j
                    break
                if head.startswith("BEGIN"):  # the UPDATE ran on its own
                    break
            return items[: end + 1]
    return None


async def _quiet(statements: StatementLog) -> None:
    """Wait until no statement has run for QUIET_SECONDS."""
    while True:
        n = len(statements.items)
        await asyncio.sleep(QUIET_SECONDS)
        if len(statements.items) == n:
            return


if __name__ == "__main__":
    section.main(run)
