"""The outbox dispatcher's pacing, checked where it matters: at the Twilio stand-in.

A `steward serve` process with TWILIO_MPS=10 gets 100 webhooks (签到 from 100 imported
stewards) at once, so 100 replies queue up behind the rate. The stand-in stamps each accepted
message on arrival; per sending number we take the achieved rate over the run, as a share of
the allowed one, and count violations: sends that open a 1-second window [t, t + 1 s) holding
more than MPS sends.
"""

from __future__ import annotations

import tempfile
from bisect import bisect_left
from pathlib import Path

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

MPS = 10
MESSAGES = 100
SHARE_TARGET = 95.0
RATE_FIGURE = f"SMS dispatch rate at TWILIO_MPS={MPS}"
VIOLATION_FIGURE = f"SMS dispatch: 1-s windows over {MPS} sends"
TELEGRAM_FIGURE = "Telegram dispatch rate"


async def run(emit: section.Emitter, args: list[str]) -> None:
    emit.expect(
        [
            (RATE_FIGURE, f">= {SHARE_TARGET:.0f} % of allowed"),
            (VIOLATION_FIGURE, "<= 0"),
            (TELEGRAM_FIGURE, "-"),
        ]
    )
    emit(not_measured(TELEGRAM_FIGURE, "not built yet: the Telegram channel does not exist"))
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


if __name__ == "__main__":
    section.main(run)
