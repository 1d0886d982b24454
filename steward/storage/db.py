"""Connecting to the database and bringing its schema up to date (tortoise's own migrations)."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from tortoise import Tortoise, connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.migrations.api.migrate import migrate
from tortoise.transactions import in_transaction

MODELS_MODULE = "steward.storage.models"
MIGRATIONS_MODULE = "steward.storage.migrations"


T = TypeVar("T")


@asynccontextmanager
async def savepoint(conn: BaseDBAsyncClient) -> AsyncIterator[BaseDBAsyncClient]:
    """A nested transaction: what fails inside rolls back alone, the outer one goes on."""
    async with in_transaction(conn.connection_name) as inner:
        yield inner


async def create_once(
    conn: BaseDBAsyncClient, create: Callable[[BaseDBAsyncClient], Awaitable[T]]
) -> T | None:
    """Insert a row guarded by a unique key; None when another writer got there first.

    The insert runs in a savepoint: on PostgreSQL a unique violation would otherwise abort the
    caller's whole transaction (the state change and every message it causes).
    """
    try:
        async with in_transaction(conn.connection_name) as savepoint:
            return await create(savepoint)
    except IntegrityError:
        return None


def normalise_url(url: str) -> str:
    """Accept postgres:// and postgresql:// (as people write them) for tortoise's asyncpg driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "asyncpg://" + url[len(prefix) :]
    return url


def is_postgres(url: str) -> bool:
    return normalise_url(url).startswith("asyncpg://")


# SQLite: write-ahead log (readers never wait for the writer), wait up to 5 s for a lock held by
# another process (the CLI beside the service) rather than failing, and FULL sync by default so
# a power cut loses no acknowledged message; batching amortises the fsync.
SQLITE_PRAGMAS = {"journal_mode": "WAL", "busy_timeout": "5000"}
SYNCHRONOUS = ("FULL", "NORMAL")


def connection_url(url: str, synchronous: str = "FULL") -> str:
    """The URL tortoise opens: asyncpg for PostgreSQL; SQLite with its pragmas as parameters."""
    url = normalise_url(url)
    if not url.startswith("sqlite://") or "?" in url:
        return url
    if synchronous not in SYNCHRONOUS:
        raise ValueError(f"synchronous must be one of {SYNCHRONOUS}, got {synchronous!r}")
    pragmas = {**SQLITE_PRAGMAS, "synchronous": synchronous}
    return url + "?" + "&".join(f"{name}={value}" for name, value in pragmas.items())


def tortoise_config(url: str, synchronous: str = "FULL") -> dict[str, Any]:
    """Build the tortoise config for one database URL."""
    return {
        "connections": {"default": connection_url(url, synchronous)},
        "apps": {
            "models": {
                "models": [MODELS_MODULE],
                "migrations": MIGRATIONS_MODULE,
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def ensure_sqlite_dir(url: str) -> None:
    """Create the folder of a SQLite file so a fresh checkout just works."""
    if url.startswith("sqlite://") and ":memory:" not in url:
        Path(url[len("sqlite://") :]).parent.mkdir(parents=True, exist_ok=True)


async def upgrade(url: str) -> None:
    """Apply every pending migration.

    Runs in a fresh context: tortoise's migrate opens its own connections and closing them must
    not close the caller's (a server or a test session that is already connected).
    """
    ensure_sqlite_dir(url)

    async def migrate_and_close() -> None:
        try:
            await migrate(config=tortoise_config(url))
        finally:
            await Tortoise.close_connections()

    await asyncio.create_task(migrate_and_close(), context=contextvars.Context())


async def connect(url: str, *, process_wide: bool = True, synchronous: str = "FULL") -> None:
    """Open the connections.

    process_wide: make them visible to every task (uvicorn runs each request in a task that
    does not inherit the lifespan's context); a one-shot CLI command does not need that.

    Note: tortoise writes os.environ["TIMEZONE"] = "UTC" here and reads it back for its own
    conversions, which keeps every stored datetime in UTC (what SQLite's text comparisons need).
    That variable is also our TIMEZONE setting, so settings are read once, before connecting.
    """
    ensure_sqlite_dir(url)
    await Tortoise.init(
        config=tortoise_config(url, synchronous), _enable_global_fallback=process_wide
    )


async def ping() -> str | None:
    """None when the database answers; otherwise what went wrong (for /healthz)."""
    try:
        await connections.get("default").execute_query("SELECT 1")
    except Exception as exc:  # health is a yes/no, with the reason for the operator
        return str(exc) or type(exc).__name__
    return None


async def disconnect() -> None:
    await Tortoise.close_connections()
