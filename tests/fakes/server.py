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


def local_socket() -> socket.socket:
    """A socket bound to a free port of 127.0.0.1, for uvicorn's `sockets=`.

    Made with IPPROTO_TCP named: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on
    sockets whose protocol says TCP, and a plain socket.socket() says 0. Without it every answer
    written in two pieces waited for the client's delayed ACK, about 40 ms a request.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock
