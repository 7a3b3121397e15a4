"""Answers written straight to ASGI: JSON bodies, SSE streams, and the client going away.

mcpd's relay and mcplocal write their answers themselves instead of through Starlette
responses: a JSON answer is one ``http.response.start`` and one body message, which is all
the hot path may cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from starlette.types import Message, Receive, Send

from mcpctl.jsonrpc.protocol import JsonObject, encode

JSON = b"application/json"
SSE = b"text/event-stream"
NDJSON = b"application/x-ndjson"
SESSION_HEADER = "mcp-session-id"
# On a relay session's initialize answer: the session takes a channel (mcpd/relay/channel.py).
CHANNEL_HEADER = "x-mcpctl-channel"
CHANNEL_NDJSON = "ndjson"
VERSION_HEADER = "mcp-protocol-version"
MAX_BODY = 16 * 1024 * 1024
# How long a request runs before ``until_disconnect`` starts watching its client.
WATCH_AFTER = 0.05

Headers = list[tuple[bytes, bytes]]


def header_list(extra: Iterable[tuple[str, str]] = ()) -> Headers:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra]


async def send_body(
    send: Send, status: int, body: bytes, content_type: bytes, headers: Headers
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_json(
    send: Send, status: int, message: JsonObject, headers: Headers | None = None
) -> None:
    await send_body(send, status, encode(message), JSON, headers or [])


async def send_empty(send: Send, status: int, headers: Headers | None = None) -> None:
    await send_body(send, status, b"", JSON, headers or [])


async def start_sse(send: Send, headers: Headers | None = None) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", SSE),
                (b"cache-control", b"no-cache, no-transform"),
                (b"x-accel-buffering", b"no"),
                *(headers or []),
            ],
        }
    )


def sse_data(data: bytes) -> bytes:
    """One SSE ``message`` event carrying an encoded JSON-RPC message."""
    return b"event: message\ndata: " + data + b"\n\n"


def sse_event(message: JsonObject) -> bytes:
    return sse_data(encode(message))


async def send_event(send: Send, message: JsonObject, *, last: bool = False) -> None:
    await send({"type": "http.response.body", "body": sse_event(message), "more_body": not last})


async def end_stream(send: Send) -> None:
    await send({"type": "http.response.body", "body": b"", "more_body": False})


class BodyTooLarge(Exception):
    pass


async def read_body(receive: Receive, limit: int = MAX_BODY) -> bytes:
    """The whole request body.

    Raises:
        BodyTooLarge: past ``limit`` bytes.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionResetError("the client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the request body is larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def wait_disconnect(receive: Receive) -> None:
    """Return when the client has gone away (call only after the body was read)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def until_disconnect(
    receive: Receive, work: asyncio.Future[Any], also: asyncio.Future[Any] | None = None
) -> bool:
    """Wait for ``work`` (or ``also``) or the client going away, whichever first; True if
    it went away (``work`` is then cancelled and awaited).

    The client is watched only once ``work`` has taken ``WATCH_AFTER`` seconds: most
    requests are answered sooner, and a watcher task for each would cost more than the
    call (a client that leaves earlier is noticed that much later)."""
    loop = asyncio.get_running_loop()
    # One future woken by any of them, not asyncio.wait: this runs for every relayed
    # request, and the general helper costs about twice as much.
    woken: asyncio.Future[None] = loop.create_future()
    watcher: asyncio.Task[None] | None = None

    def wake(_: object) -> None:
        if not woken.done():
            woken.set_result(None)

    def watch() -> None:
        nonlocal watcher
        watcher = loop.create_task(wait_disconnect(receive))
        watcher.add_done_callback(wake)

    timer = loop.call_later(WATCH_AFTER, watch)
    work.add_done_callback(wake)
    if also is not None:
        also.add_done_callback(wake)
    try:
        await woken
    except BaseException:
        work.cancel()
        raise
    finally:
        timer.cancel()
        work.remove_done_callback(wake)
        if also is not None:
            also.remove_done_callback(wake)
        if watcher is not None:
            watcher.remove_done_callback(wake)
            watcher.cancel()
    if work.done() or (also is not None and also.done()):
        return False
    work.cancel()
    await asyncio.wait((work,))
    return True


class Outbox:
    """What a request's answer must carry before it (progress notifications, the server's
    requests of the client), encoded. The first message turns an answer that would have
    been one JSON body into an SSE stream (``answer_lazily``)."""

    def __init__(self) -> None:
        self.items: list[bytes] = []
        self.arrived: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def put(self, data: bytes) -> None:
        self.items.append(data)
        if not self.arrived.done():
            self.arrived.set_result(None)

    def put_message(self, message: JsonObject) -> None:
        self.put(encode(message))

    def take(self) -> list[bytes]:
        items, self.items = self.items, []
        if self.arrived.done():
            self.arrived = asyncio.get_running_loop().create_future()
        return items


async def answer_lazily(
    receive: Receive,
    send: Send,
    work: asyncio.Future[Any],
    outbox: Outbox,
    answer: Callable[[], bytes],
    sent: Callable[[bytes], None] | None = None,
    *,
    eager: bool = False,
) -> bytes | None:
    """Answer a request whose client accepts SSE: one JSON body (``answer()``, once
    ``work`` is done) if nothing came into ``outbox`` before; else an SSE stream of what
    did, then the answer (``eager``: an SSE stream in any case). Each message of ``outbox``
    is told to ``sent`` before it is written; ``answer()`` is called right before the
    answer is written, so work that must go with it (recording it) is done there and not
    after the write, where it would hold up the client's side. The answer written, or None
    when the client went away first (``work`` is then cancelled)."""
    if not eager:
        if await until_disconnect(receive, work, outbox.arrived):
            return None
        if work.done() and not outbox.items:
            data = answer()
            await send_body(send, 200, data, JSON, [])
            return data
    await start_sse(send)
    watcher = asyncio.ensure_future(wait_disconnect(receive))
    try:
        while True:
            for data in outbox.take():
                if sent is not None:
                    sent(data)
                await send(
                    {"type": "http.response.body", "body": sse_data(data), "more_body": True}
                )
            if work.done():
                break
            await asyncio.wait((work, outbox.arrived, watcher), return_when=asyncio.FIRST_COMPLETED)
            if watcher.done() and not work.done():
                work.cancel()
                await asyncio.wait((work,))
                return None
        data = answer()
        await send({"type": "http.response.body", "body": sse_data(data), "more_body": False})
        return data
    except BaseException:
        work.cancel()
        raise
    finally:
        watcher.cancel()
