"""A response as it arrives on one connection: httptools (llhttp, the parser uvicorn uses) fed
from the socket, the status line and headers first, the body on demand."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httptools

from mcpctl.http11.errors import ConnectionLost, HttpError, InvalidResponse, ReadTimeout
from mcpctl.http11.events import Event, EventStream

_READ_SIZE = 65536


class Connection:
    """One open connection to an origin; ``label`` is ``host:port``, for messages."""

    __slots__ = ("idle_since", "label", "reader", "writer")

    def __init__(self, label: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.label = label
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0


class Response:
    """A response whose status line and headers are in; the body is read on demand.

    ``headers`` has lower-cased names; a repeated header's values are joined with ", ".
    """

    __slots__ = (
        "_chunks",
        "_complete",
        "_conn",
        "_head",
        "_interim",
        "_keep_alive",
        "_parser",
        "_read_timeout",
        "_received",
        "_trailing",
        "headers",
        "status",
    )

    def __init__(self, conn: Connection, head: bool, read_timeout: float | None = None) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self._conn = conn
        self._head = head
        self._read_timeout = read_timeout
        self._chunks: list[bytes] = []
        self._received = False
        self._interim = False
        self._complete = False
        self._keep_alive = False
        self._trailing = False
        self._parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (any case), or None."""
        return self.headers.get(name.lower())

    @property
    def complete(self) -> bool:
        """Whether the whole body has arrived (what remains may still be unread here)."""
        return self._complete

    async def read(self) -> bytes:
        """The body, to its end (what remains of it, if ``events`` consumed some).

        Raises:
            HttpError: the connection failed or the body was cut short (``ConnectionLost``),
                nothing came for the read timeout (``ReadTimeout``), not HTTP.
        """
        parts: list[bytes] = []
        while (chunk := await self._next_body()) is not None:
            parts.append(chunk)
        return b"".join(parts)

    def events(self, *, dispatch_unterminated: bool = False) -> AsyncIterator[Event]:
        """The body as a text/event-stream, each event yielded as soon as it is complete
        (``EventStream`` says how ``dispatch_unterminated`` treats a last event cut short).

        Iterating raises what ``read`` raises.
        """
        return EventStream(self._next_body, dispatch_unterminated=dispatch_unterminated)

    async def discard_rest(self, within: float) -> None:
        """Read and drop the rest of the body if it all comes within ``within`` seconds, so
        that the connection can carry another request; else leave it (the request block then
        closes the connection). Never raises for the body: its caller has what it wanted."""
        if self._complete:
            return
        try:
            async with asyncio.timeout(within):
                while await self._next_body() is not None:
                    pass
        except (TimeoutError, HttpError):
            pass

    def _finish(self) -> bool:
        """Detach from the connection; whether it may carry another request (the body was
        read to its end, and the server neither asked to close nor sent anything more)."""
        # Also breaks the cycle through the parser's bound callbacks.
        self._parser = None
        return self._complete and self._keep_alive and not self._trailing

    async def _next_body(self) -> bytes | None:
        """The body bytes that arrived since the last call (waiting for some); None at its end."""
        while not self._chunks:
            if self._complete:
                return None
            await self._receive()
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        return data

    async def _receive(self) -> None:
        """Read once from the connection into the parser."""
        parser = self._parser
        if parser is None:
            raise HttpError("the response was read after its request block ended")
        conn = self._conn
        try:
            if self._read_timeout is None:
                data = await conn.reader.read(_READ_SIZE)
            else:
                async with asyncio.timeout(self._read_timeout):
                    data = await conn.reader.read(_READ_SIZE)
        except TimeoutError as exc:
            seconds = self._read_timeout or 0.0
            raise ReadTimeout(
                f"nothing received from {conn.label} for {seconds:g} s", seconds
            ) from exc
        except OSError as exc:
            raise ConnectionLost(f"connection to {conn.label} failed: {exc}") from exc
        if not data:
            self._end_of_stream()
            return
        self._received = True
        try:
            parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            raise InvalidResponse(f"invalid HTTP response from {conn.label}: {exc}") from exc

    def _end_of_stream(self) -> None:
        """The server closed the connection: the end of a close-delimited body, else an error."""
        label = self._conn.label
        if not self.status:
            raise ConnectionLost(f"connection to {label} closed before the response headers")
        framed = "content-length" in self.headers or self.headers.get(
            "transfer-encoding", ""
        ).lower().endswith("chunked")
        if framed:
            raise ConnectionLost(f"connection to {label} closed in the middle of the response body")
        self._complete = True
        self._keep_alive = False

    # httptools callbacks: the parser looks them up by these names.

    def on_message_begin(self) -> None:
        if self._complete:
            self._trailing = True

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.lower().decode("latin-1")
        text = value.decode("latin-1").rstrip(" \t")
        headers = self.headers
        headers[key] = f"{headers[key]}, {text}" if key in headers else text

    def on_headers_complete(self) -> None:
        parser = self._parser
        assert parser is not None  # the parser calls back only while it is attached
        status = parser.get_status_code()
        if status < 200:
            # An interim response (100 Continue, 103 Early Hints): the final one follows.
            self._interim = True
            self.headers.clear()
            return
        self.status = status
        self._keep_alive = parser.should_keep_alive()
        if self._head:
            self._complete = True

    def on_body(self, body: bytes) -> None:
        if not self._complete:
            self._chunks.append(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
        else:
            self._complete = True
