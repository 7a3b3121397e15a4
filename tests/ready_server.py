"""uvicorn in a test's own event loop that says when it is listening."""

from __future__ import annotations

import socket

import anyio
import uvicorn


class ReadyServer(uvicorn.Server):
    """``ready`` is set once the server listens (after its lifespan started)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = anyio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()
