"""What the sections share: the Twilio stand-in with arrival times, signed webhooks, a roster
CSV, the `steward` CLI and `steward serve` as child processes, PostgreSQL scratch databases.

Only stable surfaces of the service are used here: the HTTP webhook, the `steward` CLI and its
environment variables, and the test fakes. Imports of the service happen inside functions, so a
module that is mid-change breaks only the figures that need it.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import importlib
import itertools
import os
import socket
import statistics
import subprocess
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    from tests.fakes.twilio_api import FakeTwilio

ROOT = Path(__file__).resolve().parents[1]

# uvicorn logs "Application startup complete" before it binds the socket, "running on" after.
READY = b"Uvicorn running on"
TIMEZONE = "Asia/Shanghai"
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/test"
SCRATCH_DATABASE = "steward_bench"
_sids = itertools.count(1)


def log(message: str) -> None:
    """Progress goes to stderr; the figures go back to run.py as JSON."""
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), nearest-rank on the sorted values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# ---- the Twilio stand-in, with the time each message arrived ------------------------------------


class TimedList(list[Any]):
    """The stand-in's `messages` list, stamping each append with time.perf_counter().

    The stand-in appends under its own lock from its server thread, in this process, so the
    stamps share a clock with the load generator's.
    """

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def append(self, item: Any) -> None:
        self.times.append(time.perf_counter())
        super().append(item)

    def clear(self) -> None:
        self.times.clear()
        super().clear()

    def arrivals(self) -> list[tuple[float, Any]]:
        """(arrival time, FakeMessage) for everything accepted so far."""
        return list(zip(list(self.times), list(self), strict=False))


def timed_twilio() -> tuple[FakeTwilio, TimedList]:
    """A started FakeTwilio whose accepted messages carry arrival times."""
    from tests.fakes.twilio_api import FakeTwilio

    fake = FakeTwilio()
    timed = TimedList()
    fake.messages = timed
    fake.start()
    return fake, timed


# ---- signed webhooks ----------------------------------------------------------------------------


def new_sid() -> str:
    return f"SM{os.getpid():08x}{next(_sids):024x}"


@dataclass(frozen=True)
class Webhook:
    """One prepared POST: the encoded form and its headers (signature included)."""

    sender: str
    text: str
    body: bytes
    headers: dict[str, str]


def signed_webhooks(
    public_base: str,
    auth_token: str,
    messages: Sequence[tuple[str, str]],
    path: str = "/twilio/sms",
) -> list[Webhook]:
    """Sign each (sender, text) as Twilio would, against PUBLIC_BASE_URL + path."""
    from twilio.request_validator import RequestValidator

    from tests.harness import sms_form  # the suite's form: one idea of what Twilio posts

    validator = RequestValidator(auth_token)
    prepared = []
    for sender, text in messages:
        form = sms_form(sender, text, new_sid())
        signature = str(validator.compute_signature(public_base + path, form))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        }
        prepared.append(Webhook(sender, text, urlencode(form).encode(), headers))
    return prepared


# ---- a roster CSV (SPEC §2) and the CLI -------------------------------------------------------

ROSTER_HEADER = (
    "street",
    "community",
    "zone",
    "pair",
    "name",
    "phone",
    "role",
    "language",
    "patrol_start",
    "patrol_days",
    "joined",
)


def steward_phone(n: int) -> str:
    return f"+86139{n:08d}"


def write_roster(
    path: Path, stewards: int, communities: int = 5, street: str = "基准街道"
) -> list[str]:
    """A roster of `stewards` stewards in pairs, one lead per community and one office clerk.

    Every tenth steward speaks English. Returns the stewards' phones (E.164), in file order.
    """
    phones = []
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(ROSTER_HEADER)
        pairs = stewards // 2
        for p in range(pairs):
            community = f"社区{p % communities + 1}"
            for member in range(2):
                n = 2 * p + member
                language = "en" if n % 10 == 9 else "zh"
                phone = steward_phone(n)
                writer.writerow(
                    [
                        street,
                        community,
                        f"巷{p}",
                        f"P{p}",
                        f"管家{n}",
                        phone,
                        "steward",
                        language,
                        "08:00",
                        "daily",
                        "2025-01-01",
                    ]
                )
                phones.append(phone)
        for c in range(communities):
            lead = [f"片长{c}", f"+86137{c:08d}", "lead", "zh"]
            writer.writerow([street, f"社区{c + 1}", "", "", *lead, "", "", "2025-01-01"])
        writer.writerow(
            [
                street,
                "社区1",
                "",
                "",
                "主任",
                "+8613600000000",
                "office",
                "zh",
                "",
                "",
                "2025-01-01",
            ]
        )
    return phones


def cli_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "TELEGRAM_"))}
    env.update({"DATABASE_URL": database_url, "TIMEZONE": TIMEZONE, "SCHEDULER": "false"})
    env["LOG_LEVEL"] = "INFO"  # the default; readiness is read from uvicorn's INFO line
    env.update(extra)
    return env


def run_cli(args: Sequence[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> float:
    """Run `steward ARGS` (as `python -m steward.cli`); return its wall time, raise on failure."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "steward.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"steward {' '.join(args[:2])} failed: {' | '.join(tail)}")
    return elapsed


def serve_env(
    database_url: str, fake: FakeTwilio, public_base: str, **extra: str
) -> dict[str, str]:
    from tests.harness import SERVICE_NUMBER

    return cli_env(
        database_url,
        PUBLIC_BASE_URL=public_base,
        TWILIO_ACCOUNT_SID=fake.account_sid,
        TWILIO_AUTH_TOKEN=fake.auth_token,
        TWILIO_FROM=SERVICE_NUMBER,
        TWILIO_API_BASE=fake.base_url,
        **extra,
    )


@dataclass
class Server:
    proc: asyncio.subprocess.Process
    port: int
    log_tail: deque[bytes] = field(default_factory=lambda: deque(maxlen=200))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def errors(self) -> list[str]:
        """Log lines at ERROR or with a traceback (what went wrong inside the server)."""
        lines = [line.decode(errors="replace").rstrip() for line in self.log_tail]
        return [x for x in lines if " ERROR " in x or x.startswith(("ERROR", "Traceback"))]


@contextlib.asynccontextmanager
async def serve_process(
    argv: Sequence[str], env: dict[str, str], cwd: Path, port: int, timeout: float = 60
) -> AsyncIterator[Server]:
    """Start a server process and return once its log says it is ready (not after a timer)."""
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, cwd=cwd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    server = Server(proc, port)
    assert proc.stderr is not None
    stderr = proc.stderr
    drain: asyncio.Task[None] | None = None
    try:
        deadline = time.monotonic() + timeout
        while True:
            line = await asyncio.wait_for(stderr.readline(), max(0.1, deadline - time.monotonic()))
            if not line:
                tail = b"".join(server.log_tail).decode(errors="replace").strip().splitlines()
                raise RuntimeError(f"{argv[2]} exited before it was ready: {' | '.join(tail[-5:])}")
            server.log_tail.append(line)
            if READY in line:
                break
        await _until_accepting(port, deadline)

        async def keep_reading() -> None:  # the pipe must never fill up
            while line := await stderr.readline():
                server.log_tail.append(line)

        drain = asyncio.create_task(keep_reading())
        yield server
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if drain is not None:
            drain.cancel()


async def _until_accepting(port: int, deadline: float) -> None:
    """Return once 127.0.0.1:port accepts a connection (the log line is not the socket)."""
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing accepts connections on port {port}") from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return


def steward_serve(
    env: dict[str, str], cwd: Path, port: int
) -> contextlib.AbstractAsyncContextManager[Server]:
    argv = [sys.executable, "-m", "steward.cli", "serve", "--port", str(port)]
    return serve_process(argv, env, cwd, port)


def bare_serve(port: int) -> contextlib.AbstractAsyncContextManager[Server]:
    """The bare Starlette endpoint (benchmarks/bare_app.py) under uvicorn's defaults."""
    argv = [sys.executable, "-m", "uvicorn", "benchmarks.bare_app:app", "--port", str(port)]
    argv += ["--log-level", "info"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return serve_process(argv, env, ROOT, port)


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM (peak resident set) of a live process, in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


async def wait_quiet(
    count: Callable[[], int], expected: int, timeout: float, quiet: float = 3.0
) -> float:
    """Wait until count() reaches `expected`, or stops growing for `quiet` s; return when it
    last grew (perf_counter)."""
    last, last_change = count(), time.perf_counter()
    deadline = time.perf_counter() + timeout
    while last < expected and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
        now = count()
        if now != last:
            last, last_change = now, time.perf_counter()
        elif time.perf_counter() - last_change > quiet:
            break
    return last_change


# ---- PostgreSQL ---------------------------------------------------------------------------------


def postgres_admin_url() -> str:
    return os.environ.get("DATABASE_URL_POSTGRES", DEFAULT_POSTGRES_URL)


def _dsn(url: str) -> str:
    for prefix in ("postgresql://", "postgres://", "asyncpg://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


async def postgres_problem(url: str) -> str | None:
    """None when PostgreSQL answers at `url`; otherwise why not."""
    import asyncpg

    try:
        conn = await asyncio.wait_for(asyncpg.connect(_dsn(url)), 5)
    except Exception as exc:  # any failure to connect means "not reachable"
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


@contextlib.asynccontextmanager
async def scratch_database(admin_url: str, name: str = SCRATCH_DATABASE) -> AsyncIterator[str]:
    """Create a database of our own (dropped afterwards); yield its URL."""
    import asyncpg

    conn = await asyncpg.connect(_dsn(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        conn = await asyncpg.connect(_dsn(admin_url))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


# ---- entry points that moved while the service is being rebuilt ---------------------------------


def find_callable(*candidates: str) -> tuple[Callable[..., Any], str]:
    """The first of 'module:attr' that imports; (function, where). Raises with every reason."""
    problems = []
    for candidate in candidates:
        module_name, attr = candidate.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                problems.append(f"{module_name}: not there")
                continue
            raise
        if hasattr(module, attr):
            return getattr(module, attr), candidate
        problems.append(f"{candidate}: no such name")
    raise LookupError("; ".join(problems))


def run_job_entry() -> tuple[Callable[..., Any], str]:
    """`run_job(name, settings, now)`: steward.service (as briefed) or where it moved."""
    return find_callable("steward.service:run_job", "steward.shells.jobs:run_job")


def digest_entry() -> tuple[Callable[..., Any], str]:
    """`digest_for(street, day, language, settings)`, wherever the digest shell lives now."""
    return find_callable("steward.digest_service:digest_for", "steward.shells.digest:digest_for")
