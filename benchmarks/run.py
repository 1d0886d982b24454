"""Throughput and memory of the hot paths, measured (not asserted): `make bench`.

1. Parsing texts with the grammar.
2. The whole inbound path on SQLite: signed webhook -> stored -> decided -> reply queued ->
   sent to the local Twilio stand-in, for a street of volunteers checking in and out (the
   same ASGI app, lifespan and twilio client as production; only the HTTP hop is in-process).
"""

from __future__ import annotations

import asyncio
import resource
import tempfile
import time
from pathlib import Path

from steward.flows import grammar
from steward.storage import db
from steward.storage.models import Community, Pair, Street, Volunteer, Zone
from tests.fakes.twilio_api import FakeTwilio
from tests.harness import running_service, service_settings

TEXTS = [
    "签到",
    "签退",
    "积分",
    "报 1 5号楼门口垃圾堆放",
    "CHEKIN",
    "今天天气真好",
    "R 4 fire exit",
    "#123",
]


def bench_parse(rounds: int = 20_000) -> None:
    start = time.perf_counter()
    for i in range(rounds):
        grammar.parse(TEXTS[i % len(TEXTS)])
    elapsed = time.perf_counter() - start
    print(f"parse: {rounds / elapsed:,.0f} texts/s ({elapsed * 1e6 / rounds:.1f} µs each)")


async def seed_volunteers(count: int) -> list[str]:
    street = await Street.create(name="基准街道")
    community = await Community.create(street=street, name="基准社区")
    phones = []
    for n in range(count // 2):
        zone = await Zone.create(community=community, name=f"巷{n}")
        pair = await Pair.create(community=community, code=f"P{n}", zone=zone, patrol_start="08:00")
        for member in range(2):
            phone = f"+86139{2 * n + member:08d}"
            await Volunteer.create(
                name=f"管家{2 * n + member}",
                phone=phone,
                street=street,
                community=community,
                pair=pair,
            )
            phones.append(phone)
    return phones


async def bench_inbound(volunteers: int = 200) -> None:
    with tempfile.TemporaryDirectory() as folder, FakeTwilio() as fake:
        url = f"sqlite://{Path(folder) / 'bench.sqlite3'}"
        await db.upgrade(url)
        await db.connect(url)
        try:
            phones = await seed_volunteers(volunteers)
            settings = service_settings(url, fake, TWILIO_MPS=10_000.0)
            async with running_service(settings, fake) as svc:
                start = time.perf_counter()
                for text in ("签到", "签退"):
                    for phone in phones:
                        await svc.text(phone, text)
                await svc.settle()
                elapsed = time.perf_counter() - start
            messages = 2 * volunteers
            print(
                f"inbound SMS end to end (SQLite, {volunteers} volunteers): "
                f"{messages / elapsed:,.0f} msg/s, {elapsed * 1000 / messages:.1f} ms each, "
                f"{len(fake.messages)} replies sent"
            )
        finally:
            await db.disconnect()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of the benchmark process: {peak_mb:.0f} MB")


def main() -> None:
    bench_parse()
    asyncio.run(bench_inbound())


if __name__ == "__main__":
    main()
