"""Scheduled jobs at city scale: `nudges` at patrol start + 31 min and `day_close` at 22:00.

A city is seeded at 3,000 and at 30,000 stewards (seed.py `seed_city`: the same 10 streets x 30
communities; only the pairs per community grow), each job runs in-process through the service's
`run_job(name, settings, now)` with `now` given (Monday 23 November 2026, Asia/Shanghai), on its
own copy of the seeded file, and its statements are counted (sqlcount.py). A run still going
after its limit (JOB_LIMIT_SECONDS) is stopped at its next statement and reported as "> limit",
with the statements it had issued by then: a lower bound, never an estimate.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from benchmarks import section
from benchmarks.report import MISS, PASS, Row, at_most, info, not_measured
from benchmarks.sqlcount import OverBudget, count, recording
from benchmarks.support import TIMEZONE, log, run_job_entry

SIZES = (3_000, 30_000)
DAY = date(2026, 11, 23)  # a Monday
TZ = ZoneInfo(TIMEZONE)
MOMENTS = {
    "nudges": datetime(2026, 11, 23, 8, 31, tzinfo=TZ),  # patrol start 08:00 + 31 min
    "day_close": datetime(2026, 11, 23, 22, 0, tzinfo=TZ),
}
TIME_TARGET_SECONDS = 2.0
# The small city's count is the baseline of the comparison, so it gets room to finish even on a
# busy machine; the large one is stopped early (its figure is then a bound).
JOB_LIMIT_SECONDS = {3_000: 90.0, 30_000: 40.0}


def time_figure(job: str, size: int) -> str:
    return f"{job} job, {size:,} stewards"


def count_figure(job: str) -> str:
    return f"{job} statements, {SIZES[0]:,} vs {SIZES[-1]:,} stewards"


def seed_figure(size: int) -> str:
    return f"seeding a city of {size:,} stewards"


async def run(emit: section.Emitter, args: list[str]) -> None:
    expected = []
    for job in MOMENTS:
        for size in SIZES:
            target = f"<= {TIME_TARGET_SECONDS:g} s" if size == SIZES[-1] else "-"
            expected.append((time_figure(job, size), target))
        expected.append((count_figure(job), "equal"))
    expected += [(seed_figure(size), "-") for size in SIZES]
    emit.expect(expected)

    run_job, where = run_job_entry()
    log(f"jobs: run_job from {where}")
    results: dict[tuple[str, int], tuple[float, int, bool, int]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as folder:
        for size in SIZES:
            pristine = Path(folder) / f"city{size}.sqlite3"
            seconds, shape = await _seed(pristine, size)
            emit(
                info(
                    seed_figure(size),
                    seconds,
                    "s",
                    ", ".join(f"{v:,} {k}" for k, v in shape.items()),
                )
            )
            for job, moment in MOMENTS.items():
                copy = Path(folder) / f"city{size}-{job}.sqlite3"
                shutil.copyfile(pristine, copy)
                log(f"jobs: {job} at {moment:%H:%M} with {size:,} stewards")
                outcome = await _time_job(run_job, job, copy, moment, JOB_LIMIT_SECONDS[size])
                results[(job, size)] = outcome
                emit(_time_row(job, size, outcome, where))
                copy.unlink()
            pristine.unlink()
    for job in MOMENTS:
        emit(_count_row(job, results))


async def _seed(path: Path, size: int) -> tuple[float, dict[str, int]]:
    from benchmarks.seed import seed_city
    from steward.storage import db

    url = f"sqlite://{path}"
    await db.upgrade(url)
    await db.connect(url)
    try:
        start = time.perf_counter()
        shape = await seed_city(size, DAY, TZ)
        return time.perf_counter() - start, shape
    finally:
        await db.disconnect()  # the last connection closing folds the WAL into the file


async def _time_job(
    run_job: object, job: str, path: Path, moment: datetime, limit: float
) -> tuple[float, int, bool, int]:
    """(seconds, statements, stopped at the limit, messages queued)."""
    from steward.settings import load_settings
    from steward.storage import db

    url = f"sqlite://{path}"
    settings = load_settings(DATABASE_URL=url, TIMEZONE=TIMEZONE, SCHEDULER=False)
    await db.connect(url)
    try:
        async with recording() as statements:
            statements.deadline = time.perf_counter() + limit
            start = time.perf_counter()
            queued = 0
            try:
                sent = await run_job(job, settings, moment.astimezone(ZoneInfo("UTC")))  # type: ignore[operator]
                queued = len(sent)
            except OverBudget:
                pass
            elapsed = time.perf_counter() - start
            stopped = statements.stopped
            n = count(statements.items)
    finally:
        await db.disconnect()
    log(f"jobs: {job}: {elapsed:.2f} s, {n:,} statements{' (stopped)' if stopped else ''}")
    return elapsed, n, stopped, queued


def _time_row(job: str, size: int, outcome: tuple[float, int, bool, int], where: str) -> Row:
    seconds, statements, stopped, queued = outcome
    name = time_figure(job, size)
    limit = JOB_LIMIT_SECONDS[size]
    if stopped:
        note = (
            f"stopped at its first statement past the {limit:g} s limit, after "
            f"{statements:,} statements; via {where}"
        )
        shown = f"> {limit:g} s"
        if size == SIZES[-1]:
            return at_most(name, seconds, "s", TIME_TARGET_SECONDS, note, shown)
        return info(name, seconds, "s", note, shown)
    note = f"{statements:,} statements, {queued:,} messages queued; via {where}"
    if size == SIZES[-1]:
        return at_most(name, seconds, "s", TIME_TARGET_SECONDS, note)
    return info(name, seconds, "s", note)


def _count_row(job: str, results: dict[tuple[str, int], tuple[float, int, bool, int]]) -> Row:
    name = count_figure(job)
    small, large = results.get((job, SIZES[0])), results.get((job, SIZES[-1]))
    if small is None or large is None:
        return not_measured(name, "a run is missing", "equal")
    a, b = small[1], large[1]
    more = ">= " if large[2] else ""
    shown = f"{a:,} vs {more}{b:,}"
    if small[2]:
        return not_measured(name, f"the {SIZES[0]:,} run was stopped at the time limit", "equal")
    status = MISS if large[2] or a != b else PASS
    growth = f"x{b / a:.1f}" if a else "-"
    note = f"{more}{growth} from {SIZES[0]:,} to {SIZES[-1]:,} stewards"
    if large[2]:
        note += f" (the {SIZES[-1]:,} run was stopped at the time limit: a lower bound)"
    return Row(name, float(b), "statements", "equal", status, note, shown)


if __name__ == "__main__":
    section.main(run)
