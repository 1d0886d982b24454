"""Count the SMS segments a text will cost, the way Twilio and 3GPP TS 23.038/23.040 do.

A text that fits the GSM-7 alphabet travels in 7-bit septets: 160 in a lone SMS, 153 per part
once it is split (the concatenation header takes the rest). Anything else goes as UCS-2: 70
UTF-16 code units alone, 67 per part. A character is never cut in two across parts, so an
extension character (two septets) or an emoji (two code units) that does not fit the end of a
part starts the next one; this can cost one part more than a plain division would say.
"""

from __future__ import annotations

from collections.abc import Iterable

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Reached through the escape septet, so each costs two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


def is_gsm7(text: str) -> bool:
    """Tell whether every character of the text is in the GSM-7 alphabet or its extension."""
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def segment_count(text: str) -> int:
    """Return how many SMS segments the text costs; an empty text is still one message."""
    if is_gsm7(text):
        return _parts((2 if c in GSM7_EXTENSION else 1 for c in text), GSM7_SINGLE, GSM7_PART)
    # Characters beyond the Basic Multilingual Plane are a UTF-16 surrogate pair.
    return _parts((2 if ord(c) > 0xFFFF else 1 for c in text), UCS2_SINGLE, UCS2_PART)


def _parts(sizes: Iterable[int], single: int, part: int) -> int:
    """Pack characters of the given sizes into parts without splitting any character."""
    sizes = list(sizes)
    if sum(sizes) <= single:
        return 1
    count, used = 1, 0
    for size in sizes:
        if used + size > part:
            count, used = count + 1, 0
        used += size
    return count
