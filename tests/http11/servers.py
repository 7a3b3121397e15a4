"""Raw asyncio servers for the client's tests: each connection handed to a test's handler, so a
test decides byte by byte what the server sends (or does not)."""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import anyio

BOUND = 5.0

Handler = Callable[[int, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Raw:
    """The server's URL, how many connections it took, and the request bodies it read."""

    url: str
    port: int = 0
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    heads: list[bytes] = field(default_factory=list)


@asynccontextmanager
async def raw_server(
    handler: Handler, *, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1"
) -> AsyncIterator[Raw]:
    """An asyncio server calling ``handler(n, reader, writer)`` for its n-th connection."""
    raw = Raw("")
    tasks: list[asyncio.Task[None]] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.append(task)
        raw.connections += 1
        try:
            await handler(raw.connections, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # the client went away, as some tests make it
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, host, 0, ssl=tls)
    raw.port = server.sockets[0].getsockname()[1]
    raw.url = f"{'https' if tls else 'http'}://{host}:{raw.port}"
    try:
        yield raw
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        with anyio.fail_after(BOUND):
            await asyncio.gather(*tasks, return_exceptions=True)
            await server.wait_closed()


async def read_request(raw: Raw, reader: asyncio.StreamReader) -> bytes:
    """One request from ``reader``: its head is kept in ``raw.heads``, its body returned."""
    head = await reader.readuntil(b"\r\n\r\n")
    raw.heads.append(head)
    length = re.search(rb"(?i)Content-Length: (\d+)", head)
    body = await reader.readexactly(int(length[1])) if length else b""
    raw.requests.append(body)
    return body


def ok(body: bytes, content_type: bytes = b"application/json") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s" % (
        content_type,
        len(body),
        body,
    )


def chunk(data: bytes) -> bytes:
    """One piece of a chunked body (``b""`` is the last one)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
)


@dataclass
class ProxyLog:
    url: str = ""
    heads: list[bytes] = field(default_factory=list)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        with suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
    finally:
        writer.close()


@asynccontextmanager
async def forward_proxy(refusal: bytes | None = None) -> AsyncIterator[ProxyLog]:
    """A forward proxy on loopback: CONNECT tunnels, and absolute-form requests passed on in
    origin form (one request per connection is all these tests send through it)."""
    log = ProxyLog()
    tasks: list[asyncio.Task[None]] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.append(task)
        head = await reader.readuntil(b"\r\n\r\n")
        log.heads.append(head)
        if refusal is not None:
            writer.write(refusal)
            writer.close()
            return
        request_line, rest = head.split(b"\r\n", 1)
        method, target, version = request_line.split(b" ")
        if method == b"CONNECT":
            host, port = target.rsplit(b":", 1)
            up_reader, up_writer = await asyncio.open_connection(host.decode(), int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            url = urlsplit(target.decode())
            up_reader, up_writer = await asyncio.open_connection(url.hostname, url.port)
            kept = [h for h in rest.split(b"\r\n") if not h.lower().startswith(b"proxy-")]
            origin_form = (url.path or "/").encode()
            up_writer.write(
                b" ".join([method, origin_form, version]) + b"\r\n" + b"\r\n".join(kept)
            )
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    log.url = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield log
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        with anyio.fail_after(5):
            await asyncio.gather(*tasks, return_exceptions=True)
