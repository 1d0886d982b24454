"""`make bench`: measure the service's figures against their targets (measured, not asserted).

Each section runs as its own process (`python -m benchmarks.<module> --out FILE`, see
section.py) under a time limit, inside an overall budget that keeps the whole run under ten
minutes on a 2-core machine. Then one table (figure, value, target, pass/miss) is printed and
written to benchmarks/results.json.

    inbound.py     1-3, 8  steward serve under signed webhooks: throughput on SQLite and
                           PostgreSQL against a bare Starlette endpoint, latency at 200 msg/s,
                           peak RSS
    statements.py  4       SQL statements per message, by intent
    jobs.py        5       nudges and day_close at 3,000 and 30,000 stewards
    digest.py      6       a 600-steward street's digest with a year of history
    dispatch.py    7       outbox pacing at TWILIO_MPS, checked at the Twilio stand-in
    parse.py               the grammar micro-benchmark

A section that fails to import the service (someone is mid-change) is tried once more a little
later; a figure that cannot be measured says n/a and why, never a made-up number.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.report import NA, Row, not_measured, table, write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results.json"
BUDGET_SECONDS = 570.0  # the whole run stays under 10 minutes
RETRY_AFTER_SECONDS = 10.0
IMPORT_TROUBLE = (
    "ImportError",
    "ModuleNotFoundError",
    "SyntaxError",
    "AttributeError",
    "LookupError",
)


@dataclass
class Section:
    title: str
    module: str
    args: list[str] = field(default_factory=list)
    limit: float = 120.0  # seconds


SECTIONS = [
    Section("inbound on SQLite", "benchmarks.inbound", ["sqlite"], 200),
    Section("inbound on PostgreSQL", "benchmarks.inbound", ["postgres"], 150),
    Section("SQL statements per message", "benchmarks.statements", [], 90),
    Section("jobs at scale", "benchmarks.jobs", [], 300),
    Section("digest", "benchmarks.digest", [], 90),
    Section("dispatch", "benchmarks.dispatch", [], 90),
    Section("parse", "benchmarks.parse", [], 60),
]


def run_section(section: Section, limit: float) -> tuple[list[Row], str | None]:
    """Run one section's process; its rows, and what went wrong with the process if anything."""
    with tempfile.TemporaryDirectory(prefix="bench-section-") as folder:
        out = Path(folder) / "rows.json"
        argv = [sys.executable, "-m", section.module, "--out", str(out), *section.args]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True)
        problem = None
        try:
            code = proc.wait(timeout=limit)
            if code != 0:
                problem = f"the section's process exited with {code}"
        except subprocess.TimeoutExpired:
            problem = f"stopped at its {limit:.0f} s time limit"
            _stop_group(proc)
        rows = [Row.from_json(r) for r in json.loads(out.read_text())] if out.exists() else []
    return rows, problem


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop the section and everything it started (servers), politely first."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _import_trouble(rows: list[Row]) -> bool:
    """Nothing measured because the service would not import (or an entry point was missing)."""
    if not rows or any(r.status != NA for r in rows):
        return False
    return any(
        r.note.startswith(f"section failed: {name}") for r in rows for name in IMPORT_TROUBLE
    )


def _cleanup_postgres() -> None:
    """A PostgreSQL section stopped from outside cannot drop its scratch database: do it here."""
    from benchmarks.support import SCRATCH_DATABASE, postgres_admin_url, postgres_problem

    async def drop() -> None:
        import asyncpg

        admin = postgres_admin_url()
        if await postgres_problem(admin):
            return
        conn = await asyncpg.connect("postgresql://" + admin.split("://", 1)[1])
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH_DATABASE}" WITH (FORCE)')
        finally:
            await conn.close()

    try:
        asyncio.run(drop())
    except Exception as exc:  # cleanup is best effort; say so
        print(f"could not drop the scratch database: {exc}", file=sys.stderr)


def main() -> None:
    started = time.perf_counter()
    started_at = datetime.now(UTC)
    head_at_start = _git_head()
    load_at_start = os.getloadavg()[0]
    rows: list[Row] = []
    timings: dict[str, float] = {}
    for section in SECTIONS:
        remaining = BUDGET_SECONDS - (time.perf_counter() - started)
        if remaining < 15:
            rows.append(
                not_measured(f"[{section.title}]", "not run: the 10-minute budget was used up")
            )
            continue
        print(f"== {section.title}", file=sys.stderr, flush=True)
        t = time.perf_counter()
        got, problem = run_section(section, min(section.limit, remaining))
        if _import_trouble(got) and BUDGET_SECONDS - (time.perf_counter() - started) > 60:
            print(
                f"   the service did not import; trying again in {RETRY_AFTER_SECONDS:.0f} s",
                file=sys.stderr,
            )
            time.sleep(RETRY_AFTER_SECONDS)
            got, problem = run_section(
                section, min(section.limit, BUDGET_SECONDS - (time.perf_counter() - started))
            )
        timings[section.title] = time.perf_counter() - t
        if problem:
            for row in got:
                if row.status == NA and row.note.startswith("not reached"):
                    row.note = f"not reached: the section was {problem}"
            if not got:
                got = [not_measured(f"[{section.title}]", f"no figures: the section was {problem}")]
            if "PostgreSQL" in section.title:
                _cleanup_postgres()
        rows.extend(got)
        print(f"   {section.title}: {timings[section.title]:.0f} s", file=sys.stderr, flush=True)

    wall = time.perf_counter() - started
    head_at_end = _git_head()
    meta = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "wall_seconds": round(wall, 1),
        "section_seconds": {k: round(v, 1) for k, v in timings.items()},
        "git_head_at_start": head_at_start,
        "git_head_at_end": head_at_end,
        "load_average_1min": {
            "start": round(load_at_start, 2),
            "end": round(os.getloadavg()[0], 2),
        },
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
    }
    write_json(RESULTS, rows, meta)
    print()
    print(table(rows))
    print()
    print(
        f"total wall time {wall:.0f} s ({wall / 60:.1f} min); "
        f"written to {RESULTS.relative_to(ROOT)}"
    )
    print(
        f"git HEAD {head_at_start}; load average {load_at_start:.2f} at start, "
        f"{os.getloadavg()[0]:.2f} at end"
    )
    if head_at_end != head_at_start:
        print(f"note: HEAD moved to {head_at_end} during the run; sections saw different code")


def _git_head() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
    except OSError:
        return None
    return done.stdout.strip() or None


if __name__ == "__main__":
    main()
