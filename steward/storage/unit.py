"""The unit of work: one transaction, and once it has committed, the listeners that care.

The wiring module registers who listens (the inbound processor wants to hear of stored
messages, the outbox dispatcher of queued ones), so a reply leaves within milliseconds of the
commit that caused it. A command-line run has nobody listening: other processes poll.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from enum import StrEnum

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction


class Topic(StrEnum):
    """What a committed transaction may have added work for."""

    INBOUND = "inbound"  # stored messages waiting to be processed
    OUTBOX = "outbox"  # queued messages waiting to be sent


Listener = Callable[[], None]
# What the shells hand back to storage inside a unit of work (they never import tortoise).
Connection = BaseDBAsyncClient


class UnitOfWork:
    """Opens transactions and, after each commit, tells the listeners of its topics."""

    def __init__(self) -> None:
        self._listeners: dict[Topic, list[Listener]] = {topic: [] for topic in Topic}

    def on_commit(self, topic: Topic, listener: Listener) -> Callable[[], None]:
        """Call `listener` after every commit that touched `topic`; return the way to stop."""
        self._listeners[topic].append(listener)
        return lambda: self._listeners[topic].remove(listener)

    def committed(self, *topics: Topic) -> None:
        """Tell the listeners of `topics` that a commit has happened."""
        for topic in topics:
            for listener in list(self._listeners[topic]):
                listener()

    @asynccontextmanager
    async def transaction(self, *topics: Topic) -> AsyncIterator[Connection]:
        """One transaction; when it commits, the listeners of `topics` are told."""
        async with in_transaction() as conn:
            yield conn
        self.committed(*topics)
