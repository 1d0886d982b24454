"""Providers' rate limits, counted from when their stand-ins accepted each message.

A limit of `limit` sends per `window` seconds is broken by every send that opens a window
[t, t + window) holding more than `limit` sends; `crowded` counts those. Telegram's three
limits (30/s overall, 1/s per private chat, 20/min per group) are `telegram_limits`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

TELEGRAM_PER_SECOND = 30
TELEGRAM_GROUP_PER_MINUTE = 20
# What the dispatcher keeps between two messages to one group (20 a minute, evenly).
TELEGRAM_GROUP_SPACING = 3.0


def crowded(times: Iterable[float], limit: int, window: float = 1.0) -> int:
    """How many sends open a window [t, t + window) that holds more than `limit` sends."""
    ordered = sorted(times)
    return sum(1 for i, t in enumerate(ordered) if bisect_left(ordered, t + window) - i > limit)


def busiest(times: Iterable[float], window: float = 1.0) -> int:
    """The most sends any window [t, t + window) holds."""
    ordered = sorted(times)
    return max((bisect_left(ordered, t + window) - i for i, t in enumerate(ordered)), default=0)


def rate(times: Sequence[float]) -> float:
    """Sends per second from the first to the last (0 for fewer than two)."""
    if len(times) < 2:
        return 0.0
    span = max(times) - min(times)
    return (len(times) - 1) / span if span > 0 else float("inf")


@dataclass(frozen=True)
class TelegramLimits:
    """Sends breaking each of Telegram's limits (and the dispatcher's group spacing)."""

    overall: int  # windows of 1 s over 30
    private: int  # windows of 1 s over 1, per private chat
    group: int  # windows of 60 s over 20, per group
    group_spacing: int  # two sends to one group less than 3 s apart

    @property
    def total(self) -> int:
        return self.overall + self.private + self.group + self.group_spacing


def by_chat(sends: Iterable[tuple[float, int]]) -> dict[int, list[float]]:
    chats: dict[int, list[float]] = defaultdict(list)
    for at, chat in sends:
        chats[chat].append(at)
    return dict(chats)


def telegram_limits(sends: Sequence[tuple[float, int]]) -> TelegramLimits:
    """Count what breaks Telegram's limits among (accepted at, chat id) pairs."""
    chats = by_chat(sends)
    groups = [times for chat, times in chats.items() if chat < 0]
    return TelegramLimits(
        overall=crowded((at for at, _ in sends), TELEGRAM_PER_SECOND),
        private=sum(crowded(times, 1) for chat, times in chats.items() if chat > 0),
        group=sum(crowded(times, TELEGRAM_GROUP_PER_MINUTE, 60.0) for times in groups),
        group_spacing=sum(crowded(times, 1, TELEGRAM_GROUP_SPACING) for times in groups),
    )
