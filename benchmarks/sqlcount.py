"""Counting the SQL statements the service sends to SQLite, in-process (benchmark code only).

Two hooks for the duration of a measurement:
- sqlite3's trace callback on tortoise's aiosqlite connection sees every statement SQLite runs,
  transaction control (BEGIN, COMMIT, SAVEPOINT, RELEASE) and aiosqlite's own
  `SELECT last_insert_rowid()` included;
- aiosqlite's `Connection._execute` (every call funnels through it) is wrapped at the class level
  to tag each call with the asyncio task that made it, so statements can be attributed (webhook,
  processor, dispatcher) and an `executemany` counts once, however many rows it carries. The
  wrapper can also stop a run at a deadline: the next statement raises `OverBudget` (transaction
  control still goes through, so the run unwinds cleanly).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiosqlite

TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "END")
_FINISHING_CALLS = frozenset({"commit", "rollback", "close", "set_trace_callback", "stop"})


class OverBudget(Exception):
    """The measured run passed its deadline and was stopped at its next statement."""


@dataclass(frozen=True)
class Statement:
    at: float  # time.perf_counter() when SQLite started it
    task: str  # name of the asyncio task that issued it
    call: int  # which driver call it belongs to
    via: str  # the driver function (execute, executemany, _execute_insert, commit, ...)
    sql: str

    @property
    def is_transaction_control(self) -> bool:
        return self.sql.lstrip().upper().startswith(TRANSACTION_CONTROL)


@dataclass
class StatementLog:
    items: list[Statement] = field(default_factory=list)
    deadline: float | None = None
    stopped: bool = False

    def clear(self) -> None:
        self.items.clear()

    def snapshot(self) -> list[Statement]:
        return list(self.items)


def distinct(statements: Iterable[Statement]) -> list[Statement]:
    """One entry per statement sent: an executemany's rows collapse into its first."""
    seen: set[int] = set()
    out = []
    for s in statements:
        if s.via == "executemany":
            if s.call in seen:
                continue
            seen.add(s.call)
        out.append(s)
    return out


def count(statements: Iterable[Statement]) -> int:
    return len(distinct(statements))


def by_task(statements: Iterable[Statement]) -> Counter[str]:
    return Counter(s.task for s in distinct(statements))


def task_label(name: str) -> str:
    """asyncio's default names (Task-123) say nothing: group them."""
    return "unnamed tasks" if re.fullmatch(r"Task-\d+", name) else name


def describe(statements: Iterable[Statement]) -> str:
    """'N statements incl. T transaction control; by task: a n, b m' for a note."""
    items = distinct(statements)
    control = sum(s.is_transaction_control for s in items)
    tasks = Counter(task_label(s.task) for s in items)
    parts = ", ".join(f"{name} {n}" for name, n in tasks.most_common())
    return (
        f"{len(items)} statements incl. {control} BEGIN/COMMIT/SAVEPOINT/RELEASE; by task: {parts}"
    )


def _finishing(via: str, args: tuple[Any, ...]) -> bool:
    if via in _FINISHING_CALLS:
        return True
    sql = args[0] if args and isinstance(args[0], str) else ""
    return sql.lstrip().upper().startswith(("COMMIT", "ROLLBACK", "RELEASE", "END"))


@contextlib.asynccontextmanager
async def recording() -> AsyncIterator[StatementLog]:
    """Record every statement on tortoise's default SQLite connection while inside."""
    from tortoise import connections

    client = connections.get("default")
    if client.capabilities.dialect != "sqlite":
        raise RuntimeError("statement counting is for SQLite only")
    await client.execute_query("SELECT 1")  # make sure the connection is open
    raw = getattr(client, "_connection", None)
    if not isinstance(raw, aiosqlite.Connection):
        raise RuntimeError("tortoise's SQLite client no longer keeps an aiosqlite connection")

    log = StatementLog()
    local = threading.local()
    calls = itertools.count()
    original = aiosqlite.Connection._execute

    async def tagged_execute(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        task = asyncio.current_task()
        name = task.get_name() if task is not None else "-"
        via = getattr(fn, "__name__", "?")
        if (
            log.deadline is not None
            and time.perf_counter() > log.deadline
            and not _finishing(via, args)
        ):
            log.stopped = True
            raise OverBudget(f"stopped at the time limit after {count(log.items):,} statements")
        tag = (name, next(calls), via)

        def run(*a: Any, **k: Any) -> Any:
            local.tag = tag
            try:
                return fn(*a, **k)
            finally:
                local.tag = None

        return await original(self, run, *args, **kwargs)  # type: ignore[no-untyped-call]

    def trace(sql: str) -> None:
        name, call, via = getattr(local, "tag", None) or ("-", -1, "?")
        log.items.append(Statement(time.perf_counter(), name, call, via, sql))

    aiosqlite.Connection._execute = tagged_execute  # type: ignore[method-assign]
    try:
        await raw.set_trace_callback(trace)
        yield log
    finally:
        log.deadline = None
        with contextlib.suppress(Exception):
            await raw.set_trace_callback(None)  # type: ignore[arg-type]
        aiosqlite.Connection._execute = original  # type: ignore[method-assign]
