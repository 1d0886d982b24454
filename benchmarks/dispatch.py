"""The outbox dispatcher's pacing, checked where it matters: at the providers' stand-ins.

SMS: a `steward serve` process with TWILIO_MPS=10 gets 100 webhooks (签到 from 100 imported
stewards) at once, so 100 replies queue up behind the rate. The stand-in stamps each accepted
message on arrival; per sending number we take the achieved rate over the run, as a share of
the allowed one, and count violations: sends that open a 1-second window [t, t + 1 s) holding
more than MPS sends.

Telegram: a `steward serve` with its bot at the Bot API stand-in (webhook mode). Two leads link
their accounts and bind their communities' groups, and 360 stewards share their contact (each
gets "linked"). Then, the load: the 360 text 签到 (each gets its reply), while the leads send
commands in the two groups, so some 360 replies to private chats, one to each, and a few to
groups queue up at once. (One message a chat: the measured rate is the dispatcher's, not how
long a chat's second message must wait for its first.) The stand-in stamps every message the
bot sends; the achieved rate over the load is taken as a share of Telegram's 30/s, and
violations are counted, over the whole run, for each limit: 30 in any second, 1 a second to a
private chat, 20 a minute to a group (and the 3 s the dispatcher keeps between two messages to
one group, which is how it keeps the 20 a minute).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks import section
from benchmarks.load import closed_loop
from benchmarks.report import at_least, at_most, not_measured
from benchmarks.support import (
    cli_env,
    free_port,
    log,
    run_cli,
    serve_env,
    signed_webhooks,
    steward_serve,
    timed_twilio,
    wait_quiet,
    write_roster,
)

if TYPE_CHECKING:
    from tests.fakes.telegram_api import FakeTelegram

MPS = 10
MESSAGES = 100
SHARE_TARGET = 95.0
RATE_FIGURE = f"SMS dispatch rate at TWILIO_MPS={MPS}"
VIOLATION_FIGURE = f"SMS dispatch: 1-s windows over {MPS} sends"
TELEGRAM_FIGURE = "Telegram dispatch rate (30/s allowed)"
TELEGRAM_VIOLATION_FIGURE = "Telegram dispatch: sends over 30/s, 1/s a chat, 20/min a group"
TELEGRAM_STEWARDS = 360
TELEGRAM_GROUP_COMMANDS = ("/today", "/reports", "/roster", "/today")  # in each of two groups
TELEGRAM_SECRET = "bench-dispatch-secret"
STREET = "基准街道"


async def run(emit: section.Emitter, args: list[str]) -> None:
    emit.expect(
        [
            (RATE_FIGURE, f">= {SHARE_TARGET:.0f} % of allowed"),
            (VIOLATION_FIGURE, "<= 0"),
            (TELEGRAM_FIGURE, f">= {SHARE_TARGET:.0f} % of allowed"),
            (TELEGRAM_VIOLATION_FIGURE, "<= 0"),
        ]
    )
    await sms(emit)
    await telegram(emit)


async def sms(emit: section.Emitter) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as folder:
        url = f"sqlite://{Path(folder) / 'steward.sqlite3'}"
        fake, timed = timed_twilio()
        try:
            roster = Path(folder) / "roster.csv"
            phones = write_roster(roster, MESSAGES, communities=2)
            run_cli(["roster", "import", str(roster)], cli_env(url), Path(folder))
            port = free_port()
            public_base = f"http://127.0.0.1:{port}"
            env = serve_env(url, fake, public_base, TWILIO_MPS=str(MPS))
            hooks = signed_webhooks(public_base, fake.auth_token, [(p, "签到") for p in phones])
            async with steward_serve(env, Path(folder), port) as server:
                log(f"dispatch: {len(hooks)} webhooks, replies paced at {MPS}/s")
                result = await closed_loop(server.base_url, hooks, 32)
                await wait_quiet(lambda: len(timed), len(hooks), MESSAGES / MPS * 3 + 10, quiet=5)
        finally:
            fake.stop()

    by_sender: dict[str, list[float]] = {}
    for at, message in timed.arrivals():
        by_sender.setdefault(message.from_ or message.messaging_service_sid or "?", []).append(at)
    if not by_sender:
        reason = f"no message reached the stand-in ({result.problems() or 'webhooks answered'})"
        emit(not_measured(RATE_FIGURE, reason, f">= {SHARE_TARGET:.0f} %"))
        emit(not_measured(VIOLATION_FIGURE, reason, "0"))
        return
    shares, violations, notes = [], 0, []
    for sender, times in sorted(by_sender.items()):
        times.sort()
        n = len(times)
        span = times[-1] - times[0]
        rate = (n - 1) / span if span > 0 else float("inf")
        shares.append(100 * rate / MPS)
        bad = [i for i in range(n) if bisect_left(times, times[i] + 1.0) - i > MPS]
        violations += len(bad)
        busiest = max(bisect_left(times, t + 1.0) - i for i, t in enumerate(times))
        tightest = min((times[i + MPS] - times[i] for i in range(n - MPS)), default=float("nan"))
        notes.append(
            f"{sender}: {n} sends over {span:.2f} s = {rate:.2f}/s; busiest 1-s window {busiest}; "
            f"shortest span of {MPS + 1} consecutive sends {tightest * 1000:.0f} ms"
        )
    note = "; ".join(notes)
    emit(
        at_least(RATE_FIGURE, min(shares), "% of allowed", SHARE_TARGET, note),
        at_most(VIOLATION_FIGURE, violations, "windows", 0),
    )


# ---- Telegram ---------------------------------------------------------------------------------


def invite_code(env: dict[str, str], cwd: Path, community: str) -> str:
    """A one-time /bind code for a community's lead group (`steward chats invite`)."""
    argv = [sys.executable, "-m", "steward.cli", "chats", "invite", "--street", STREET]
    argv += ["--community", community, "--role", "lead"]
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or not done.stdout.startswith("/bind "):
        raise RuntimeError(f"steward chats invite failed: {(done.stderr or done.stdout)[-300:]}")
    return done.stdout.split()[1]


async def bounded(jobs: Sequence[Callable[[], Awaitable[Any]]], at_once: int) -> None:
    """Run the jobs, `at_once` of them at a time, each started as soon as one ends."""
    work = iter(jobs)

    async def worker() -> None:
        for job in work:
            await job()

    await asyncio.gather(*(worker() for _ in range(at_once)))


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.perf_counter() + timeout
    while not check():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


async def telegram(emit: section.Emitter) -> None:
    from tests.fakes.telegram_api import FakeTelegram

    with tempfile.TemporaryDirectory(prefix="bench-telegram-") as folder:
        url = f"sqlite://{Path(folder) / 'steward.sqlite3'}"
        twilio, _ = timed_twilio()  # the SMS channel is on too; nothing here goes by SMS
        bot = FakeTelegram().start()
        try:
            roster = Path(folder) / "roster.csv"
            phones = write_roster(roster, TELEGRAM_STEWARDS, communities=2, street=STREET)
            run_cli(["roster", "import", str(roster)], cli_env(url), Path(folder))
            # One after the other: two CLI processes opening a fresh SQLite file at once can meet
            # "database is locked".
            codes = [invite_code(cli_env(url), Path(folder), f"社区{c + 1}") for c in range(2)]
            port = free_port()
            public_base = f"http://127.0.0.1:{port}"
            env = serve_env(
                url,
                twilio,
                public_base,
                TELEGRAM_BOT_TOKEN=bot.token,
                TELEGRAM_API_BASE=bot.base_url,
                TELEGRAM_WEBHOOK_SECRET=TELEGRAM_SECRET,
            )
            async with steward_serve(env, Path(folder), port):
                started, began = await telegram_load(bot, phones, codes)
        finally:
            bot.stop()
            twilio.stop()
    report_telegram(emit, bot, started, began)


async def telegram_load(
    bot: FakeTelegram, phones: list[str], codes: list[str]
) -> tuple[int, float]:
    """Bind the two groups, then queue the load; return where the load's sends begin (an index
    into `bot.sends`) and when, once they have stopped coming."""
    leads = [bot.user(820_000 + c, f"片长{c}") for c in range(2)]
    groups = [bot.add_group(-100_900 - c, f"社区{c + 1}片长群") for c in range(2)]
    stewards = [bot.user(810_000 + i, f"管家{i}") for i in range(len(phones))]
    for c, lead in enumerate(leads):
        await bot.share_contact(lead, f"+86137{c:08d}")  # write_roster's lead of 社区{c + 1}
        await bot.group_command(groups[c], lead, f"/bind {codes[c]}")
    await until(lambda: all(bot.messages_to(g.id) for g in groups), 30, "the groups bound")
    await until(lambda: all(bot.messages_to(lead.id) for lead in leads), 30, "the leads linked")

    async def link(n: int) -> None:
        await bot.share_contact(stewards[n], phones[n])

    await bounded([lambda n=n: link(n) for n in range(len(stewards))], 32)
    await until(lambda: all(bot.messages_to(s.id) for s in stewards), 60, "the stewards linked")
    started, began = len(bot.sends), time.perf_counter()

    async def steward(n: int) -> None:
        await bot.private_text(stewards[n], "签到")

    async def lead(c: int) -> None:
        for command in TELEGRAM_GROUP_COMMANDS:
            await bot.group_command(groups[c], leads[c], command)

    expected = len(stewards) + len(groups) * len(TELEGRAM_GROUP_COMMANDS)
    log(f"dispatch: Telegram, {expected} replies queued by webhooks, paced at 30/s")
    jobs: list[Callable[[], Awaitable[None]]] = [lambda c=c: lead(c) for c in range(len(groups))]
    jobs += [lambda n=n: steward(n) for n in range(len(stewards))]
    await bounded(jobs, 32)
    await wait_quiet(lambda: len(bot.sends) - started, expected, expected / 30 * 3 + 10, quiet=5)
    return started, began


def report_telegram(emit: section.Emitter, bot: FakeTelegram, started: int, began: float) -> None:
    from tests.fakes.rates import busiest, by_chat, rate, telegram_limits

    sends = list(bot.sends)
    load = sends[started:]
    if len(load) < 2:
        reason = "no Telegram message reached the stand-in after the groups were bound"
        emit(not_measured(TELEGRAM_FIGURE, reason, f">= {SHARE_TARGET:.0f} %"))
        emit(not_measured(TELEGRAM_VIOLATION_FIGURE, reason, "0"))
        return
    times = [s.at for s in load]
    achieved = rate(times)
    # Without the load's first and last second (the queue still filling, then running dry).
    inner = [t for t in times if min(times) + 1 <= t <= max(times) - 1]
    limits = telegram_limits(sends)  # over everything the bot sent, the binding included
    chats = by_chat(load)
    private = sum(len(t) for chat, t in chats.items() if chat > 0)
    note = (
        f"{len(load)} sends ({private} to {sum(1 for c in chats if c > 0)} private chats, "
        f"{len(load) - private} to {sum(1 for c in chats if c < 0)} groups) over "
        f"{max(times) - min(times):.2f} s = {achieved:.2f}/s, the first "
        f"{min(times) - began:.2f} s after the load began ({rate(inner):.2f}/s without its first "
        f"and last second); busiest 1-s window {busiest(times)}; "
        f"over 30/s {limits.overall}, over 1/s a chat {limits.private}, over 20/min a group "
        f"{limits.group}, under 3 s apart in a group {limits.group_spacing}; "
        f"Bot API description broken {len(bot.violations)} times"
    )
    emit(
        at_least(TELEGRAM_FIGURE, 100 * achieved / 30, "% of allowed", SHARE_TARGET, note),
        at_most(TELEGRAM_VIOLATION_FIGURE, limits.total, "sends", 0),
    )


if __name__ == "__main__":
    section.main(run)
