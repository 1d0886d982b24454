"""What to do when a message could not be delivered (SPEC §7): try the person's other channel.

An SMS that Twilio reports failed or undelivered goes by Telegram when the volunteer linked it;
otherwise their community's leads are told, so someone can call.
"""

from __future__ import annotations

from steward.flows import texts
from steward.flows.reports import fit_two_segments
from steward.flows.state import Contact, Notice

GIVEN_UP = frozenset({"failed", "undelivered"})


def after_failed_sms(
    outbox_id: int, person: Contact, body: str, kind: str, leads: tuple[Contact, ...]
) -> tuple[Notice, ...]:
    """The messages that stand in for an SMS the network could not deliver to `person`."""
    if person.telegram_chat_id is not None:
        return (Notice(person, body, kind, f"fallback:{outbox_id}"),)
    notices = []
    for lead in leads:
        if lead.volunteer_id == person.volunteer_id:
            continue

        def build(text: str, language: str = lead.language) -> str:
            return texts.render(
                "sms_undelivered",
                language,
                name=texts.short_name(person.name, language),
                phone=texts.mask_phone(person.phone),
                body=text,
            )

        notices.append(
            Notice(
                lead,
                fit_two_segments(build, body),
                "alert",
                f"undelivered:{outbox_id}:{lead.volunteer_id}",
            )
        )
    return tuple(notices)
