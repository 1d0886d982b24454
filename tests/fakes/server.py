"""A uvicorn server that says when it listens, for the stand-ins run in a background thread."""

from __future__ import annotations

import asyncio
import socket
import threading

import uvicorn


class ReadyServer(uvicorn.Server):
    """uvicorn that sets `ready` once it listens, so start() waits on an event, not a clock."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().startup(sockets=sockets)
        self.ready.set()
