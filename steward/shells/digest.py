"""The daily digest job (SPEC §5): each street's day, texted to its office staff once a day.

Like the other jobs it recomputes from stored state, and the dedupe key (street, person, local
date) makes a late, repeated or concurrent run queue nothing new.
"""

from __future__ import annotations

from datetime import date, datetime

from steward.clock import local_date
from steward.flows import jobs
from steward.flows.digest import digest_sms, digest_text
from steward.flows.state import Notice
from steward.settings import Settings
from steward.storage import digest_store, jobs_store
from steward.storage.outbox_store import enqueue_routed
from steward.storage.unit import Topic, UnitOfWork


async def run_digest_job(
    rules: Settings, now: datetime, *, dry_run: bool, units: UnitOfWork | None = None
) -> list[Notice]:
    """Text every street's digest for the local day of `now` to its office staff."""
    day = local_date(now, rules.tz)
    return await send_digests(None, day, rules, now, dry_run=dry_run, units=units or UnitOfWork())


async def send_digests(
    street_id: int | None,
    day: date,
    rules: Settings,
    now: datetime,
    *,
    dry_run: bool,
    units: UnitOfWork,
) -> list[Notice]:
    """Queue (or, dry, list) the SMS digest of one street or all streets for `day`."""
    ids = [street_id] if street_id is not None else await digest_store.street_ids()
    notices: list[Notice] = []
    for sid in ids:
        notices.extend(await _street_notices(sid, day, rules, now))
    if dry_run:
        return await jobs_store.pending_notices(tuple(notices))
    return await _enqueue(notices, now, jobs.quiet_until(now, rules), units)


async def _street_notices(
    street_id: int, day: date, rules: Settings, now: datetime
) -> list[Notice]:
    data = await digest_store.load_digest(street_id, day, rules, as_of=now)
    return [
        Notice(
            person,
            digest_sms(data, person.language),
            "digest",
            f"digest:{street_id}:{person.volunteer_id}:{day.isoformat()}",
        )
        for person in await digest_store.office_contacts(street_id)
    ]


async def _enqueue(
    notices: list[Notice], now: datetime, not_before: datetime, units: UnitOfWork
) -> list[Notice]:
    """Queue the digests in one transaction; return those not queued before."""
    async with units.transaction(Topic.OUTBOX) as conn:
        return await enqueue_routed(notices, now, conn, not_before=not_before)


class UnknownStreet(LookupError):
    """No street by that name."""


async def street_id_named(name: str) -> int:
    street_id = await digest_store.street_named(name)
    if street_id is None:
        raise UnknownStreet(name)
    return street_id


async def digest_for(
    street: str | None, day: date, language: str, rules: Settings
) -> list[tuple[str, str]]:
    """The full digest text of the named street (or of every street): (street name, text)."""
    ids = [await street_id_named(street)] if street else await digest_store.street_ids()
    result = []
    for street_id in ids:
        data = await digest_store.load_digest(street_id, day, rules)
        result.append((data.street, digest_text(data, language)))
    return result
