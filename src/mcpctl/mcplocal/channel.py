"""The client end of a relay session's channel (mcpd's ``relay/channel.py``): one POST whose
chunked body and streamed answer carry the session's JSON-RPC, one message per line.

A request is one line written and one line read, on a connection that stays open: no
request line, headers or status per message, and nothing but a JSON parser on either end. That is
the lean path for the hop that is ours on both ends; everything else (the first
``initialize``, ending the session, servers that mcpd reaches over HTTP) stays plain
streamable HTTP.

``open`` fails (``ChannelRefused``) unless the answer is 200 ``application/x-ndjson`` and its
first line arrives within the timeout: a proxy in between that buffers request bodies never
lets it through, and the caller then keeps to plain requests.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from typing import cast
from urllib.parse import urlsplit

import httptools

from mcpctl.jsonrpc import protocol, wire
from mcpctl.jsonrpc.protocol import JsonObject

_NDJSON = wire.NDJSON.decode()
_LAST_CHUNK = b"0\r\n\r\n"


class ChannelRefused(Exception):
    """The server did not open a channel (another status or content type, or no first line
    in time)."""


class ChannelClosed(Exception):
    """The channel ended (``sent``: the message went out before it did)."""

    def __init__(self, why: str, *, sent: bool) -> None:
        super().__init__(why)
        self.sent = sent


class _Pending:
    """A request in flight: its answer, and (if it asked for progress) what came before."""

    __slots__ = ("answer", "events", "token")

    def __init__(self, loop: asyncio.AbstractEventLoop, token: object | None = None) -> None:
        self.answer: asyncio.Future[JsonObject] = loop.create_future()
        self.token = token
        self.events: asyncio.Queue[JsonObject] | None = None if token is None else asyncio.Queue()


def _retrieved(future: asyncio.Future[None]) -> None:
    """Mark a failure of ``open`` as seen: it may come after ``open`` stopped waiting."""
    if not future.cancelled():
        future.exception()


class Channel(asyncio.Protocol):
    """One open channel. ``notifications`` yields what the server sends unasked (list
    changes, resource updates, log messages), then None when the channel ends."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._status = 0
        self._content_type = ""
        self._header_name = b""
        self._opened: asyncio.Future[None] = self._loop.create_future()
        self._opened.add_done_callback(_retrieved)
        self._buffer = b""
        self._pending: dict[object, _Pending] = {}
        self._progress: dict[object, _Pending] = {}  # by progress token
        self.notifications: asyncio.Queue[JsonObject | None] = asyncio.Queue()
        self.closed: asyncio.Future[str] = self._loop.create_future()

    # -- opening -------------------------------------------------------------------------

    @classmethod
    async def open(cls, url: str, headers: Mapping[str, str], connect_timeout: float) -> Channel:
        """Open a channel on ``url`` (an MCP endpoint) with the session's ``headers``.

        Raises:
            ChannelRefused: the server answered something else, or nothing in time.
            OSError: the connection failed.
        """
        parts = urlsplit(url)
        https = parts.scheme == "https"
        host = parts.hostname or "127.0.0.1"
        port = parts.port or (443 if https else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        loop = asyncio.get_running_loop()
        context = ssl.create_default_context() if https else None
        async with asyncio.timeout(connect_timeout):
            transport, channel = await loop.create_connection(
                cls, host, port, ssl=context, server_hostname=host if https else None
            )
            # uvloop may call connection_made only after create_connection has returned.
            channel.connection_made(transport)
            head = [f"POST {path} HTTP/1.1", f"host: {parts.netloc}"]
            fixed = {"content-type", "accept", "transfer-encoding", "content-length", "host"}
            head += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in fixed]
            head += [
                f"content-type: {_NDJSON}",
                f"accept: {_NDJSON}",
                "transfer-encoding: chunked",
            ]
            channel._write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
            try:
                await asyncio.shield(channel._opened)
            except BaseException:
                channel.close()
                raise
        return channel

    # -- use -----------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return not self.closed.done()

    def send(self, message: JsonObject) -> None:
        """Write one message (a notification, or a response).

        Raises: ChannelClosed (not sent).
        """
        if self.closed.done():
            raise ChannelClosed(self.closed.result(), sent=False)
        line = protocol.encode(message) + b"\n"
        self._write(b"%x\r\n%b\r\n" % (len(line), line))

    def request(self, message: JsonObject, *, progress: bool = False) -> _Pending:
        """Send a request; its pending answer, and with ``progress`` the progress
        notifications for the token in its ``params._meta.progressToken``.

        Raises: ChannelClosed (not sent).
        """
        token = protocol.progress_token_of(message.get("params")) if progress else None
        pending = _Pending(self._loop, token)
        self.send(message)
        self._pending[message["id"]] = pending
        if token is not None:
            self._progress[token] = pending
        return pending

    def forget(self, request_id: object) -> None:
        """Stop waiting for ``request_id``'s answer (its caller went away)."""
        pending = self._pending.pop(request_id, None)
        if pending is not None and pending.token is not None:
            self._progress.pop(pending.token, None)

    def close(self, why: str = "closed") -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(_LAST_CHUNK)
            self._transport.close()
        self._end(why)

    # -- the protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(f"the connection was lost ({exc})" if exc else "the server closed it")

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.close(f"not HTTP: {exc}")

    def _write(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            raise ChannelClosed("the connection is closed", sent=False)
        self._transport.write(data)

    # httptools' callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"content-type":
            self._content_type = value.decode("latin-1").split(";")[0].strip()

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        if self._status != 200 or self._content_type != _NDJSON:
            why = f"HTTP {self._status} {self._content_type or '(no content type)'}"
            if not self._opened.done():
                self._opened.set_exception(ChannelRefused(why))
            self.close(why)

    def on_body(self, body: bytes) -> None:
        lines = (self._buffer + body).split(b"\n")
        self._buffer = lines.pop()
        for line in lines:
            if not line.strip():
                if not self._opened.done():
                    self._opened.set_result(None)
                continue
            try:
                message = protocol.decode(line)
            except ValueError:
                continue
            if isinstance(message, dict):
                self._dispatch(message)

    def on_message_complete(self) -> None:
        self.close("the server ended the channel")

    def _dispatch(self, message: JsonObject) -> None:
        if "method" not in message:
            pending = self._pending.pop(message.get("id"), None)
            if pending is None:
                return
            if pending.token is not None:
                self._progress.pop(pending.token, None)
            if not pending.answer.done():
                pending.answer.set_result(message)
            return
        if message["method"] == "notifications/progress":
            params = message.get("params")
            token = params.get("progressToken") if isinstance(params, dict) else None
            pending = self._progress.get(token)
            if pending is not None and pending.events is not None:
                pending.events.put_nowait(message)
            return
        self.notifications.put_nowait(message)

    def _end(self, why: str) -> None:
        if self.closed.done():
            return
        self.closed.set_result(why)
        if not self._opened.done():
            self._opened.set_exception(ChannelRefused(why))
        pending, self._pending, self._progress = self._pending, {}, {}
        for item in pending.values():
            if not item.answer.done():
                item.answer.set_exception(ChannelClosed(why, sent=True))
        self.notifications.put_nowait(None)
