"""The load generator: prepared, signed webhooks over keep-alive HTTP/1.1 (aiohttp).

Two shapes:
- closed loop: N connections, each sends its next request as soon as the last one answered
  (throughput);
- open loop: requests leave on a fixed schedule whatever the answers (latency at an offered
  rate); latency is counted from the scheduled moment, so a client or server falling behind
  shows up in the figures instead of quietly lowering the rate.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

from benchmarks.support import Webhook

EXPECTED_BODY = b"<Response/>"


@dataclass
class Result:
    """What one load run saw."""

    started: float = 0.0  # perf_counter at the first send
    elapsed: float = 0.0  # until the last answer
    statuses: Counter[int] = field(default_factory=Counter)
    bad_bodies: int = 0
    errors: list[str] = field(default_factory=list)
    # Per request, in input order: scheduled (or actual, closed loop) send time, answer time.
    sent_at: list[float] = field(default_factory=list)
    answered_at: list[float] = field(default_factory=list)
    max_send_lag: float = 0.0  # open loop: how late the client was against its own schedule

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0) - self.bad_bodies

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def latencies(self) -> list[float]:
        return [a - s for s, a in zip(self.sent_at, self.answered_at, strict=True) if a > 0]

    def problems(self) -> str:
        parts = []
        others = {k: v for k, v in self.statuses.items() if k != 200}
        if others:
            parts.append(f"HTTP statuses {dict(others)}")
        if self.bad_bodies:
            parts.append(f"{self.bad_bodies} answers without <Response/>")
        if self.errors:
            parts.append(f"{len(self.errors)} client errors (first: {self.errors[0]})")
        return "; ".join(parts)


def _session(connections: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=connections, force_close=False, enable_cleanup_closed=True
    )
    timeout = aiohttp.ClientTimeout(total=60)
    return aiohttp.ClientSession(connector=connector, timeout=timeout)


async def _warm(session: aiohttp.ClientSession, base_url: str, connections: int) -> None:
    """Open the keep-alive connections before the clock starts (GET /healthz on each)."""

    async def one() -> None:
        async with session.get(base_url + "/healthz") as response:
            await response.read()

    await asyncio.gather(*(one() for _ in range(connections)))


async def _post(
    session: aiohttp.ClientSession, url: str, hook: Webhook, result: Result, index: int
) -> None:
    try:
        async with session.post(url, data=hook.body, headers=hook.headers) as response:
            body = await response.read()
            result.answered_at[index] = time.perf_counter()
            result.statuses[response.status] += 1
            if response.status == 200 and EXPECTED_BODY not in body:
                result.bad_bodies += 1
    except Exception as exc:  # counted and shown; one failure must not stop the run
        result.answered_at[index] = 0.0
        result.errors.append(f"{type(exc).__name__}: {exc}")


async def closed_loop(
    base_url: str, hooks: Sequence[Webhook], connections: int = 32, path: str = "/twilio/sms"
) -> Result:
    """Send every webhook over `connections` keep-alive connections, as fast as answered."""
    result = Result(sent_at=[0.0] * len(hooks), answered_at=[0.0] * len(hooks))
    async with _session(connections) as session:
        await _warm(session, base_url, connections)
        url = base_url + path
        indexes = iter(range(len(hooks)))

        async def worker() -> None:
            for i in indexes:
                result.sent_at[i] = time.perf_counter()
                await _post(session, url, hooks[i], result, i)

        result.started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        result.elapsed = time.perf_counter() - result.started
    return result


async def open_loop(
    base_url: str,
    hooks: Sequence[Webhook],
    rate: float,
    connections: int = 32,
    path: str = "/twilio/sms",
) -> Result:
    """Send webhook i at start + i / rate, whatever happened to the earlier ones."""
    result = Result(sent_at=[0.0] * len(hooks), answered_at=[0.0] * len(hooks))
    async with _session(connections) as session:
        await _warm(session, base_url, connections)
        url = base_url + path
        loop = asyncio.get_running_loop()
        tasks = []
        start = time.perf_counter() + 0.05
        result.started = start
        for i, hook in enumerate(hooks):
            due = start + i / rate
            result.sent_at[i] = due
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            result.max_send_lag = max(result.max_send_lag, time.perf_counter() - due)
            tasks.append(loop.create_task(_post(session, url, hook, result, i)))
        await asyncio.gather(*tasks)
        result.elapsed = time.perf_counter() - start
    return result
