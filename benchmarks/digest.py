"""The daily digest of a 600-steward street with a year of history (seed.py `seed_street_year`).

Timed in-process through the digest shell's `digest_for(street, day, language, settings)` (what
`steward digest --street NAME --date DAY` prints), for the last seeded day: one cold run, then
RUNS more; the figure is their median, the statements those of one run.
"""

from __future__ import annotations

import tempfile
import time
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from benchmarks import section
from benchmarks.report import at_most, info
from benchmarks.sqlcount import count, recording
from benchmarks.support import TIMEZONE, digest_entry, log, median

STEWARDS = 600
DAY = date(2026, 11, 23)
RUNS = 5
TARGET_MS = 500.0
FIGURE = f"digest of a {STEWARDS}-steward street, one day"
SEED_FIGURE = f"seeding a {STEWARDS}-steward street with a year of history"


async def run(emit: section.Emitter, args: list[str]) -> None:
    emit.expect([(FIGURE, f"<= {TARGET_MS:.0f} ms"), (SEED_FIGURE, "-")])
    digest_for, where = digest_entry()
    from benchmarks.seed import DIGEST_STREET, seed_street_year
    from steward.settings import load_settings
    from steward.storage import db

    with tempfile.TemporaryDirectory(prefix="bench-digest-") as folder:
        url = f"sqlite://{Path(folder) / 'street.sqlite3'}"
        settings = load_settings(DATABASE_URL=url, TIMEZONE=TIMEZONE, SCHEDULER=False)
        await db.upgrade(url)
        await db.connect(url)
        try:
            log("digest: seeding a street with a year of history")
            start = time.perf_counter()
            shape = await seed_street_year(STEWARDS, DAY, ZoneInfo(TIMEZONE))
            seconds = time.perf_counter() - start
            emit(info(SEED_FIGURE, seconds, "s", ", ".join(f"{v:,} {k}" for k, v in shape.items())))
            await db.disconnect()
            await db.connect(url)  # a fresh connection, as a CLI run would have

            timings = []
            statements = 0
            text = ""
            for i in range(RUNS + 1):
                async with recording() as recorded:
                    start = time.perf_counter()
                    result = await digest_for(DIGEST_STREET, DAY, "zh", settings)
                    timings.append((time.perf_counter() - start) * 1000)
                    statements = count(recorded.items)
                if i == 0:
                    text = result[0][1] if result else ""
            cold, warm = timings[0], timings[1:]
            first_line = text.strip().splitlines()[0] if text.strip() else "(empty digest)"
            note = (
                f"median of {RUNS} runs after a cold one ({cold:.0f} ms); {statements} statements "
                f"a run; via {where}; it begins: {first_line[:60]}"
            )
            log(f"digest: {median(warm):.0f} ms (cold {cold:.0f} ms), {statements} statements")
            emit(at_most(FIGURE, median(warm), "ms", TARGET_MS, note))
        finally:
            await db.disconnect()


if __name__ == "__main__":
    section.main(run)
