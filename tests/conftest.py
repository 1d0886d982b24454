"""Shared fixtures. The suite runs on SQLite by default and on PostgreSQL with `--db postgres`.

The database is migrated once per session and wiped before every test that asks for `db`.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from tortoise import Tortoise, connections

from steward.storage import db as storage_db

if TYPE_CHECKING:
    from tests.fakes.telegram_api import FakeTelegram
    from tests.fakes.twilio_api import FakeTwilio

DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/test"
SHARED = Path(__file__).resolve().parents[2] / "shared"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--db", default="sqlite", choices=("sqlite", "postgres"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the PostgreSQL pass run only tests that touch a database; the rest ran on SQLite."""
    if config.getoption("--db") != "postgres":
        return
    keep = [item for item in items if "database_url" in getattr(item, "fixturenames", ())]
    dropped = [item for item in items if item not in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def _postgres_url() -> str:
    return os.environ.get("DATABASE_URL_POSTGRES", DEFAULT_POSTGRES_URL)


async def _postgres_reachable(url: str) -> str | None:
    import asyncpg

    try:
        conn = await asyncio.wait_for(
            asyncpg.connect(storage_db.normalise_url(url).replace("asyncpg://", "postgresql://")), 5
        )
    except Exception as exc:  # any failure to connect means "not reachable"
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


def _dsn(url: str) -> str:
    return storage_db.normalise_url(url).replace("asyncpg://", "postgresql://")


async def _private_database(url: str) -> str:
    """Create a database for this test session alone; two runs at once never share tables."""
    import asyncpg

    name = f"steward_test_{os.getpid()}"
    conn = await asyncpg.connect(_dsn(url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url.rsplit("/", 1)[0] + "/" + name


async def _drop_database(admin_url: str, url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_dsn(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--db"))


@pytest.fixture(scope="session")
def tmp_root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="steward-tests-") as root:
        yield Path(root)


@pytest.fixture(scope="session")
async def database_url(backend: str, tmp_root: Path) -> AsyncIterator[str]:
    """A migrated, empty database for this session (on PostgreSQL, one made for it)."""
    if backend == "sqlite":
        url = f"sqlite://{tmp_root / 'test.sqlite3'}"
        await storage_db.upgrade(url)
        yield url
        return
    admin = _postgres_url()
    problem = await _postgres_reachable(admin)
    if problem:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL required (REQUIRE_POSTGRES=1) but unreachable: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {admin}: {problem}")
    url = await _private_database(admin)
    await storage_db.upgrade(url)
    yield url
    await _drop_database(admin, url)


@pytest.fixture(scope="session")
async def _connected(database_url: str) -> AsyncIterator[str]:
    await storage_db.connect(database_url)
    yield database_url
    await storage_db.disconnect()


async def wipe_tables() -> None:
    """Empty every table of our models (not the migrations record)."""
    conn = connections.get("default")
    tables = [m._meta.db_table for m in Tortoise.apps["models"].values()]
    dialect = conn.capabilities.dialect
    if dialect == "postgres":
        await conn.execute_script(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    else:
        script = "PRAGMA foreign_keys=OFF;" + "".join(f"DELETE FROM {t};" for t in tables)
        await conn.execute_script(script + "DELETE FROM sqlite_sequence;PRAGMA foreign_keys=ON;")


@pytest.fixture
async def db(_connected: str) -> str:
    """An empty, connected database; the value is its URL."""
    await wipe_tables()
    return _connected


@pytest.fixture(scope="session")
def fake_twilio() -> Iterator[FakeTwilio]:
    from tests.fakes.twilio_api import FakeTwilio

    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def twilio(fake_twilio: FakeTwilio) -> FakeTwilio:
    """The Twilio stand-in, emptied and with no failures armed."""
    fake_twilio.reset()
    return fake_twilio


@pytest.fixture(scope="session")
def fake_telegram_api() -> Iterator[FakeTelegram]:
    from tests.fakes.telegram_api import FakeTelegram

    with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def telegram_api(fake_telegram_api: FakeTelegram) -> Iterator[FakeTelegram]:
    """The Telegram stand-in, emptied; the test fails if the bot broke the Bot API description."""
    fake_telegram_api.reset()
    yield fake_telegram_api
    fake_telegram_api.assert_no_violations()
