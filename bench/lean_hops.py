"""Two hops that only forward: the least that any two Python processes between an HTTP MCP
client and a stdio MCP server add to a call on this machine (mcp_overhead.py's path (f)).

``python bench/lean_hops.py hub --port P -- SERVER ARGV...`` starts the stdio server and
relays the newline-delimited JSON-RPC of one TCP connection to its pipes and back, as bytes.
``python bench/lean_hops.py front --port P --hub HUB_PORT`` is the least of streamable HTTP
on 127.0.0.1:P (one JSON answer per POST on kept-alive connections; no event streams, like
bench/lean_echo_server.py's ``--http``), holding one connection to the hub: each POSTed
message goes there as one line, under an id of the front's own so that clients never
collide, and its answer comes back with the client's id.

Each hop has the shape of ours (mcplocal's channel to mcpd, mcpd's pipe to the server) and
none of the work: no sessions, names, authorization, audit or capture, no ASGI and no task
per request: protocol callbacks and httptools, on uvloop (as mcpd and mcplocal run under
uvicorn). Per call, the front parses the HTTP request and decodes and encodes the JSON-RPC
message and its answer once each (with orjson, as ours do); the hub only moves bytes.

``front --asgi`` serves the same front as an ASGI app under uvicorn instead: the difference
is what uvicorn and ASGI cost one hop (mcpd and mcplocal are served that way).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
from collections.abc import Callable
from typing import Any, cast

import httptools
import orjson
import uvicorn
import uvloop
from starlette.types import Receive, Scope, Send

# -- the hub: one TCP connection <-> the stdio server's pipes ------------------------------------


class _ToServer(asyncio.Protocol):
    """The front's connection: its bytes go to the server's stdin (_FromServer sends the
    server's output back on it)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.hub.client = cast(asyncio.WriteTransport, transport)

    def data_received(self, data: bytes) -> None:
        self.hub.stdin.write(data)


class _FromServer(asyncio.SubprocessProtocol):
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 1 and self.hub.client is not None:
            self.hub.client.write(data)


class Hub:
    def __init__(self) -> None:
        self.client: asyncio.WriteTransport | None = None
        self.stdin: asyncio.WriteTransport

    async def serve(self, port: int, server: list[str]) -> None:
        loop = asyncio.get_running_loop()
        child, _ = await loop.subprocess_exec(lambda: _FromServer(self), *server, stderr=None)
        self.stdin = cast(asyncio.WriteTransport, child.get_pipe_transport(0))
        listener = await loop.create_server(lambda: _ToServer(self), "127.0.0.1", port)
        async with listener:
            await listener.serve_forever()


# -- the front: streamable HTTP (JSON answers only) -> one line stream to the hub -----------------

Answered = Callable[[bytes], None]  # takes the encoded answer, with the client's id


class _FromHub(asyncio.Protocol):
    """The hub connection's answers, line by line, back to the request that waits."""

    def __init__(self, front: Front) -> None:
        self.front = front
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        lines = (self.buffer + data).split(b"\n")
        self.buffer = lines.pop()
        for line in lines:
            message = orjson.loads(line)
            waiting = self.front.waiting.pop(message.get("id"), None)
            if waiting is not None:
                answered, theirs = waiting
                message["id"] = theirs
                answered(orjson.dumps(message))


class _Client(asyncio.Protocol):
    """One client connection: httptools parses its requests; answers go back in order."""

    def __init__(self, front: Front) -> None:
        self.front = front
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.WriteTransport
        self.body = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.WriteTransport, transport)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_begin(self) -> None:
        self.body = b""

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        if self.parser.get_method() != b"POST":
            self.transport.write(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
        elif not self.front.forward(self.body, self.answer):
            self.transport.write(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")

    def answer(self, out: bytes) -> None:
        head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        head += b"mcp-session-id: lean\r\ncontent-length: %d\r\n\r\n" % len(out)
        self.transport.write(head + out)


class Front:
    def __init__(self) -> None:
        self.waiting: dict[int, tuple[Answered, Any]] = {}
        self.ids = itertools.count(1)
        self.hub: asyncio.WriteTransport

    def forward(self, body: bytes, answered: Answered) -> bool:
        """Send a POSTed message to the hub; False if it is a notification or a response
        (nothing to wait for), else ``answered`` gets its answer."""
        message: dict[str, Any] = orjson.loads(body)
        if "id" not in message or "method" not in message:
            self.hub.write(body.strip() + b"\n")
            return False
        own = next(self.ids)
        self.waiting[own] = (answered, message["id"])
        message["id"] = own
        self.hub.write(orjson.dumps(message) + b"\n")
        return True

    async def serve(self, port: int, hub_port: int, *, asgi: bool) -> None:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(10):  # the hub may still be starting
            while True:
                try:
                    hub, _ = await loop.create_connection(
                        lambda: _FromHub(self), "127.0.0.1", hub_port
                    )
                    break
                except OSError:
                    await asyncio.sleep(0.05)
        self.hub = cast(asyncio.WriteTransport, hub)
        if asgi:
            config = uvicorn.Config(
                self.app,
                host="127.0.0.1",
                port=port,
                interface="asgi3",
                log_level="warning",
                access_log=False,
                proxy_headers=False,  # as mcplocal runs
            )
            await uvicorn.Server(config).serve()
            return
        listener = await loop.create_server(lambda: _Client(self), "127.0.0.1", port)
        async with listener:
            await listener.serve_forever()

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The same front as an ASGI app, for uvicorn to serve (``--asgi``): what uvicorn and
        ASGI cost a hop, as mcpd and mcplocal run under them."""
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        headers: list[tuple[bytes, bytes]] = []
        if scope["method"] != "POST":
            status, out = 405, b""
        elif not self.forward(body, answer.set_result):
            status, out = 202, b""
        else:
            out = await answer
            status = 200
            headers += [(b"content-type", b"application/json"), (b"mcp-session-id", b"lean")]
        headers.append((b"content-length", b"%d" % len(out)))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": out})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["hub", "front"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--hub", type=int, help="front: the hub's port")
    parser.add_argument("--asgi", action="store_true", help="front: as an ASGI app, by uvicorn")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    if args.role == "hub":
        uvloop.run(Hub().serve(args.port, argv[split + 1 :]))
    else:
        uvloop.run(Front().serve(args.port, args.hub, asgi=args.asgi))


if __name__ == "__main__":
    main()
