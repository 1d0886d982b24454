"""Provider status callbacks: move the message on, and stand in for one that did not arrive."""

from __future__ import annotations

from datetime import datetime

from steward.flows import delivery
from steward.storage import outbox_store
from steward.storage.unit import Topic, UnitOfWork


async def on_status(
    provider_id: str, status: str, error_code: str | None, now: datetime, units: UnitOfWork
) -> None:
    """Record a delivery status; a failed SMS to a volunteer goes by their other channel."""
    async with units.transaction(Topic.OUTBOX) as conn:
        moved = await outbox_store.apply_status(provider_id, status, error_code, now, conn)
        if moved is None or moved.channel != "sms" or moved.person is None:
            return
        if moved.status not in delivery.GIVEN_UP:
            return
        notices = delivery.after_failed_sms(
            moved.outbox_id, moved.person, moved.body, moved.kind, moved.leads
        )
        await outbox_store.enqueue_notices(notices, now, conn)
