"""Shared plumbing for CLI commands: settings, a database connection, friendly errors."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from steward.settings import Settings, SettingsError, load_settings
from steward.storage import db

T = TypeVar("T")


def cli_settings() -> Settings:
    """Load settings or exit with the setting's name (never a traceback)."""
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def run_with_db(work: Callable[[Settings], Awaitable[T]]) -> T:
    """Run `work(settings)` with the schema upgraded and the database connected."""
    settings = cli_settings()

    async def main() -> T:
        await db.upgrade(settings.DATABASE_URL)
        await db.connect(settings.DATABASE_URL, process_wide=False)
        try:
            return await work(settings)
        finally:
            await db.disconnect()

    return asyncio.run(main())
