"""Parameterised SQL for the hot path, written once for both databases.

Statements are written with `?` placeholders (SQLite's); for PostgreSQL they become `$1, $2 ...`.
Values must be UTC datetimes, dates, numbers or text: SQLite compares datetimes as text, so
a UTC value written the way tortoise writes it compares right.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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
