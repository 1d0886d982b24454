"""Parameterised SQL for the hot path, written once for both databases.

Statements are written with `?` placeholders (SQLite's); for PostgreSQL they become `$1, $2 ...`.
Values must be UTC datetimes, dates, numbers or text: SQLite compares datetimes as text, so
a UTC value written the way tortoise writes it compares right.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import date, datetime
from functools import cache
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

_MARK = re.compile(r"\?")


@cache
def _for_postgres(sql: str) -> str:
    count = iter(range(1, 10_000))
    return _MARK.sub(lambda _: f"${next(count)}", sql)


def dialect_sql(conn: BaseDBAsyncClient, sql: str) -> str:
    """The statement in the placeholder style of `conn`'s database."""
    return _for_postgres(sql) if conn.capabilities.dialect == "postgres" else sql


async def rows(conn: BaseDBAsyncClient, sql: str, values: Sequence[Any] = ()) -> list[Any]:
    """Run a query; return its rows (each indexable by position and by column name)."""
    _, result = await conn.execute_query(dialect_sql(conn, sql), list(values))
    return list(result)


async def execute(conn: BaseDBAsyncClient, sql: str, values: Sequence[Any] = ()) -> int:
    """Run a statement; return how many rows it changed."""
    changed, _ = await conn.execute_query(dialect_sql(conn, sql), list(values))
    return int(changed)


async def returning(conn: BaseDBAsyncClient, sql: str, values: Sequence[Any] = ()) -> list[Any]:
    """Run a writing statement with RETURNING; return the rows it gave back.

    (tortoise's asyncpg client discards the rows of a statement starting with INSERT or UPDATE
    in `execute_query`; `execute_query_dict` keeps them on both databases.)
    """
    return await conn.execute_query_dict(dialect_sql(conn, sql), list(values))


def json_table(
    conn: BaseDBAsyncClient, columns: Sequence[tuple[str, str]], alias: str = "r"
) -> str:
    """A FROM item named `alias` whose rows come from one `?` parameter: a JSON array of objects
    (see `as_json`) with these (name, PostgreSQL type) columns.

    One statement, one parameter, however many rows: a bulk write or a lookup stays a single
    statement at any size (no placeholder limit, no chunking). SQLite reads the array with
    `json_each`, PostgreSQL with `json_to_recordset`; `ord` (the position in the array) is there
    on both, for ORDER BY.
    """
    if conn.capabilities.dialect == "postgres":
        typed = ", ".join(f"{name} {kind}" for name, kind in [*columns, ("ord", "integer")])
        return f"json_to_recordset(CAST(? AS json)) AS {alias}({typed})"
    picked = ", ".join(f"json_extract(value, '$.{name}') AS {name}" for name, _ in columns)
    return f"(SELECT {picked}, key AS ord FROM json_each(?)) AS {alias}"


def as_json(items: Sequence[dict[str, Any]]) -> str:
    """The parameter for `json_table`: the rows in order, each with its position as `ord`."""
    return json.dumps(
        [{**item, "ord": i} for i, item in enumerate(items)], ensure_ascii=False, default=str
    )


def as_date(value: Any) -> date | None:
    """A DATE column read by raw SQL: asyncpg gives a date, SQLite the ISO text tortoise wrote."""
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def as_datetime(value: Any) -> datetime | None:
    """A timestamp column read by raw SQL: asyncpg gives a datetime, SQLite the text tortoise
    wrote (always with its UTC offset)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))
