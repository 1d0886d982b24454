"""Linking a Telegram private chat to a volunteer on the roster (SPEC §6).

`/start` (or anything) from an unknown chat asks for the phone number through Telegram's
"share contact" button; a contact card that is the sender's own and whose number is on the
roster links the chat. Someone else's card, or a number not on the roster, gets a kind no.
"""

from __future__ import annotations

from steward.flows import texts
from steward.flows.state import Contact, InboxContext, LinkTelegram, Outcome, Reply

CONTACT_KEYBOARD = "contact"
MAIN_KEYBOARD = "main"


def keyboard(name: str, language: str) -> str:
    """The stored name of a reply keyboard in one language, e.g. "main:zh"."""
    return f"{name}:{'en' if language == 'en' else 'zh'}"


def chat_id_of(address: str) -> int:
    return int(address.split(":", 1)[1])


def unlinked_chat(ctx: InboxContext, language: str) -> Outcome:
    """Answer a private chat we cannot place yet: link it, or ask how to."""
    shared = ctx.shared_contact
    if shared is None:
        return _ask(language)
    chat_id = chat_id_of(ctx.address)
    if shared.user_id != chat_id:  # in a private chat, the chat id is the sender's user id
        return _refuse("telegram_not_own_contact", language)
    match: Contact | None = ctx.contact_match
    if match is None:
        return _refuse("telegram_not_on_roster", language)
    body = texts.render(
        "telegram_linked", match.language, name=texts.short_name(match.name, match.language)
    )
    reply = Reply(body, "reply", keyboard=keyboard(MAIN_KEYBOARD, match.language))
    return Outcome("link", reply, (LinkTelegram(match.volunteer_id, chat_id),))


def _ask(language: str) -> Outcome:
    body = texts.render("telegram_share_contact", language)
    return Outcome("link", Reply(body, "reply", keyboard=keyboard(CONTACT_KEYBOARD, language)))


def _refuse(key: str, language: str) -> Outcome:
    body = texts.render(key, language)
    return Outcome("link", Reply(body, "reply", keyboard=keyboard(CONTACT_KEYBOARD, language)))
