"""Time helpers: everything stored is UTC; local days and clock times use the deployment zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    """Return the current time, aware, in UTC."""
    return datetime.now(UTC)


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
