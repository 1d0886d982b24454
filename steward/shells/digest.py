"""The daily digest job (SPEC §5): each street's day, texted to its office staff once a day.

Like the other jobs it recomputes from stored state, and the dedupe key (street, person, local
date) makes a late, repeated or concurrent run queue nothing new.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

from steward.clock import local_date
from steward.flows import jobs
from steward.flows.digest import digest_sms, digest_text
from steward.flows.digest_chart import week_chart
from steward.flows.state import Notice
from steward.settings import Settings
from steward.storage import chats_store, digest_store, jobs_store
from steward.storage.chats_store import Binding
from steward.storage.outbox_store import (
    PRIORITY,
    NewMessage,
    enqueue,
    enqueue_routed,
    telegram_address,
)
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
    return await _enqueue(notices, day, now, rules, units)


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
            group_body=digest_text(data, person.language),
        )
        for person in await digest_store.office_contacts(street_id)
    ]


async def _enqueue(
    notices: list[Notice], day: date, now: datetime, rules: Settings, units: UnitOfWork
) -> list[Notice]:
    """Queue the digests in one transaction, with the week's chart for each street's office
    group; return the digests not queued before."""
    not_before = jobs.quiet_until(now, rules)
    async with units.transaction(Topic.OUTBOX) as conn:
        queued = await enqueue_routed(notices, now, conn, not_before=not_before)
        for group in await chats_store.office_groups(conn):
            if any(
                n.dedupe_key and n.dedupe_key.startswith(f"digest:{group.street_id}:")
                for n in queued
            ):
                await enqueue(
                    await chart_message(
                        group,
                        day,
                        rules,
                        dedupe=f"digest_chart:{group.street_id}:{day.isoformat()}",
                        not_before=not_before,
                    ),
                    now,
                    conn,
                )
        return queued


CHART_DAYS = 7


async def chart_message(
    group: Binding,
    day: date,
    rules: Settings,
    *,
    dedupe: str,
    not_before: datetime | None = None,
    language: str = "zh",
) -> NewMessage:
    """The week's chart of a street, up to `day`, as a photo for its office group."""
    days = [
        await digest_store.load_digest(group.street_id, day - timedelta(days=back), rules)
        for back in range(CHART_DAYS - 1, -1, -1)
    ]
    path = Path(rules.MEDIA_DIR) / "charts" / f"digest-{group.street_id}-{day.isoformat()}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(week_chart(days, language))
    caption = f"{days[-1].street} {day.isoformat()}"
    return NewMessage(
        channel="telegram",
        address=telegram_address(group.chat_id),
        body=caption,
        kind="digest",
        priority=PRIORITY["digest"],
        dedupe_key=dedupe,
        not_before=not_before,
        attachment=str(path.resolve()),
    )


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
