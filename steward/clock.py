"""Time helpers: everything stored is UTC; local days and clock times use the deployment zone.

Every "now" the product reads comes from `utcnow()`, which reads one replaceable source: the
system clock in service, a test's manual clock under `reading(...)`. Jobs, the CLI's `--at` and
replays take their moment as an argument instead, so nothing decides on a clock of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

Source = Callable[[], datetime]


def system_clock() -> datetime:
    """Return the machine's time, aware, in UTC."""
    return datetime.now(UTC)


_source: Source = system_clock


def utcnow() -> datetime:
    """Return the current time, aware, in UTC, from the one clock source."""
    return utc(_source())


@contextmanager
def reading(source: Source) -> Iterator[None]:
    """Read every clock of the product from `source` meanwhile (background loops included)."""
    global _source
    previous, _source = _source, source
    try:
        yield
    finally:
        _source = previous


def utc(moment: datetime) -> datetime:
    """Return `moment` in UTC; naive values are taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def local_date(moment: datetime, tz: ZoneInfo) -> date:
    """Return the local calendar day of an instant."""
    return utc(moment).astimezone(tz).date()


def local_clock(moment: datetime, tz: ZoneInfo) -> str:
    """Return the local time of an instant as H:MM (as a volunteer would say it)."""
    local = utc(moment).astimezone(tz)
    return f"{local.hour}:{local.minute:02d}"
