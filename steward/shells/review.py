"""The office's decision on a flagged volunteer, read and stored in one transaction.

`steward review keep|remove` calls it today; the office group's /keep and /remove will too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from steward.clock import local_date
from steward.flows import office
from steward.settings import Settings
from steward.storage import recruitment_store, review_store
from steward.storage.unit import Topic, UnitOfWork

NotFound = review_store.NotFound


@dataclass(frozen=True)
class Decided:
    name: str
    phone: str
    decision: office.Decision
    queued: int


async def decide(
    name_or_phone: str, *, remove: bool, rules: Settings, now: datetime, units: UnitOfWork
) -> Decided:
    """Keep or remove the one volunteer so named; raise NotFound when that is not one person."""
    today = local_date(now, rules.tz)
    async with units.transaction(Topic.OUTBOX) as conn:
        vol = await review_store.find(name_or_phone, rules.DEFAULT_REGION, conn)
        who = await review_store.person(vol, conn)
        if remove:
            leads = await review_store.leads_of(vol, conn)
            candidates = await recruitment_store.candidates(vol.community_id, conn)
            decision = office.remove(who, leads, today, candidates)
        else:
            decision = office.keep(who, today)
        queued = await review_store.store_decision(decision, now, conn)
    return Decided(vol.name, vol.phone, decision, queued)
