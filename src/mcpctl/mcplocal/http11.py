"""A lean HTTP/1.1 client for mcplocal's upstream JSON-RPC traffic: kept-alive connections to
one origin, request heads built in one join, responses parsed by httptools (llhttp, the parser
uvicorn uses), server-sent events parsed as they arrive.

It replaces a general-purpose client on the hot path, where that client's per-request work
cost more CPU than the proxying itself. It does exactly what the upstream traffic needs and no
more: no redirects, no cookies, no proxies, no compression, no read timeout (callers bound
their own waits and cancel).

A connection goes back to the pool only after a response was read to its end inside a block
that exited cleanly; any other exit closes it, so a pooled connection never sits mid-response.
A pooled connection the server closed while it was idle (uvicorn drops idle keep-alive
connections after 5 s) is noticed before use when its end of stream has already arrived, and
otherwise by the request failing before any byte of the response came back; that request is
then sent once more, on a fresh connection, and only once. A server that closed an idle
connection never read the request sent on it; a server that read a request and died without a
byte of answer looks the same, and resending to it is the risk every keep-alive client takes.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import urlsplit

import httptools

_NO_HEADERS: Mapping[str, str] = MappingProxyType({})
_READ_SIZE = 65536
# Framing and connection management belong to this client; a caller's value would break them.
_RESERVED = frozenset({"host", "content-length", "transfer-encoding", "connection"})
# Methods whose empty body is sent without a Content-Length (RFC 9110 8.6).
_NO_CONTENT_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS", "TRACE"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
_TARGET = re.compile(r"/[\x21-\x7e]*")
_UTF8_BOM = b"\xef\xbb\xbf"


class HttpError(Exception):
    """The exchange failed in transport: cannot connect, connection lost, or not valid HTTP.

    Deliberately not an ``AppError``: the JSON-RPC layer above decides what it means (an
    upstream that is down, a request to resend).
    """


class _Stale(Exception):
    """A pooled connection turned out closed by the server; the request may go again."""


@dataclass(frozen=True, slots=True)
class Event:
    """One server-sent event; ``id`` is the one this event carried (None if it had none)."""

    event: str
    data: str
    id: str | None


class _Connection:
    __slots__ = ("label", "reader", "writer")

    def __init__(self, label: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.label = label
        self.reader = reader
        self.writer = writer


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
        "_received",
        "_trailing",
        "headers",
        "status",
    )

    def __init__(self, conn: _Connection, head: bool) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self._conn = conn
        self._head = head
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

    async def read(self) -> bytes:
        """The body, to its end (what remains of it, if ``events`` consumed some).

        Raises:
            HttpError: the connection failed or the body was cut short.
        """
        parts: list[bytes] = []
        while (chunk := await self._next_body()) is not None:
            parts.append(chunk)
        return b"".join(parts)

    def events(self) -> AsyncIterator[Event]:
        """The body as a text/event-stream, each event yielded as soon as it is complete.

        Iterating raises HttpError when the connection fails or the body is cut short.
        """
        return _EventStream(self)

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
        try:
            data = await self._conn.reader.read(_READ_SIZE)
        except OSError as exc:
            raise HttpError(f"connection to {self._conn.label} failed: {exc}") from exc
        if not data:
            self._end_of_stream()
            return
        self._received = True
        try:
            parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            raise HttpError(f"invalid HTTP response from {self._conn.label}: {exc}") from exc

    def _end_of_stream(self) -> None:
        """The server closed the connection: the end of a close-delimited body, else an error."""
        label = self._conn.label
        if not self.status:
            raise HttpError(f"connection to {label} closed before the response headers")
        framed = "content-length" in self.headers or self.headers.get(
            "transfer-encoding", ""
        ).lower().endswith("chunked")
        if framed:
            raise HttpError(f"connection to {label} closed in the middle of the response body")
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


class _EventStream:
    """The WHATWG event-stream interpretation, fed body chunks as they arrive.

    Lines end in CRLF, LF or CR; a blank line completes an event; events without a data line
    are not dispatched; comments and ``retry`` are skipped.
    """

    __slots__ = (
        "_data",
        "_event",
        "_id",
        "_partial",
        "_ready",
        "_response",
        "_skip_lf",
        "_started",
    )

    def __init__(self, response: Response) -> None:
        self._response = response
        self._ready: deque[Event] = deque()
        self._partial: list[bytes] = []
        self._skip_lf = False
        self._started = False
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None

    def __aiter__(self) -> _EventStream:
        return self

    async def __anext__(self) -> Event:
        while not self._ready:
            chunk = await self._response._next_body()
            if chunk is None:
                raise StopAsyncIteration
            self._feed(chunk)
        return self._ready.popleft()

    def _feed(self, chunk: bytes) -> None:
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if b"\n" not in chunk and b"\r" not in chunk:
            self._partial.append(chunk)
            return
        if self._partial:
            self._partial.append(chunk)
            chunk = b"".join(self._partial)
            self._partial.clear()
        if not self._started:
            self._started = True
            chunk = chunk.removeprefix(_UTF8_BOM)
        lines = chunk.splitlines(keepends=True)
        last = lines[-1][-1:]
        if last == b"\r":
            self._skip_lf = True  # its LF, if any, is at the start of the next chunk
        elif last != b"\n":
            self._partial.append(lines.pop())
        for line in lines:
            self._line(line.rstrip(b"\r\n"))

    def _line(self, line: bytes) -> None:
        if not line:
            if self._data:
                self._ready.append(Event(self._event or "message", "\n".join(self._data), self._id))
                self._data = []
            self._event = ""
            self._id = None
            return
        if line[:1] == b":":
            return
        field, colon, value = line.decode("utf-8", "replace").partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id" and "\0" not in value:
            self._id = value


class HttpClient:
    """Keep-alive connections to ONE origin (scheme://host:port), pooled."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] = _NO_HEADERS,
        connect_timeout: float = 10.0,
        max_idle: int = 16,
    ) -> None:
        """Check the origin and encode the default headers once, for every request.

        Raises:
            ValueError: ``base_url`` is not an http(s) origin, or a header is malformed or one
                this client sets itself (Host, Content-Length, Transfer-Encoding, Connection).
        """
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        if url.path not in ("", "/") or url.query or url.fragment:
            raise ValueError(f"not an origin (scheme://host:port): {base_url!r}")
        self._scheme = url.scheme
        self._host = url.hostname
        default_port = 443 if url.scheme == "https" else 80
        self._port = url.port or default_port
        self._label = f"{self._host}:{self._port}"
        self._ssl = ssl.create_default_context() if url.scheme == "https" else None
        self._connect_timeout = connect_timeout
        self._max_idle = max_idle
        host = f"[{self._host}]" if ":" in self._host else self._host
        authority = host if self._port == default_port else f"{host}:{self._port}"
        self._defaults = {
            "host": f"Host: {authority}\r\n".encode("latin-1"),
            "connection": b"Connection: keep-alive\r\n",
        }
        for name, value in headers.items():
            key = name.lower()
            self._defaults[key] = _header_line(key, name, value)
        self._default_head = b"".join(self._defaults.values())
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()
        self._closed = False

    @asynccontextmanager
    async def request(
        self,
        method: str,
        target: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> AsyncIterator[Response]:
        """Send a request and yield the response once its status line and headers are in.

        ``target`` is a path and query ("/api/v1/servers/x/mcp") or a full URL of this origin;
        ``headers`` add to (or replace) the client's default headers.

        Raises:
            HttpError: cannot connect, the connection failed, or the answer was not HTTP.
            ValueError: the target is of another origin, or a header is malformed or reserved.
        """
        data = self._encode(method, target, headers, body)
        response = await self._exchange(data, method == "HEAD")
        conn = response._conn
        try:
            yield response
        except BaseException:
            response._finish()
            self._discard(conn)
            raise
        if response._finish() and not self._closed:
            self._release(conn)
        else:
            self._discard(conn)

    async def aclose(self) -> None:
        """Close every connection, pooled or in use; later requests raise HttpError."""
        self._closed = True
        self._idle.clear()
        conns = list(self._open)
        for conn in conns:
            self._discard(conn)
        for conn in conns:
            # Closed either way; how the peer took it does not matter here.
            with suppress(OSError):
                await conn.writer.wait_closed()

    # -- requests ----------------------------------------------------------------------------

    def _encode(
        self, method: str, target: str, headers: Mapping[str, str] | None, body: bytes
    ) -> bytes:
        if not target.startswith("/"):
            target = self._path_of(target)
        if _TARGET.fullmatch(target) is None:
            raise ValueError(f"invalid request target: {target!r}")
        parts = [method.encode("ascii"), b" ", target.encode("ascii"), b" HTTP/1.1\r\n"]
        if headers:
            defaults = self._defaults
            lines: list[bytes] = []
            overridden: list[str] = []
            for name, value in headers.items():
                key = name.lower()
                lines.append(_header_line(key, name, value))
                if key in defaults:
                    overridden.append(key)
            if overridden:
                parts.extend(line for key, line in defaults.items() if key not in overridden)
            else:
                parts.append(self._default_head)
            parts.extend(lines)
        else:
            parts.append(self._default_head)
        if body or method not in _NO_CONTENT_METHODS:
            parts.append(b"Content-Length: %d\r\n" % len(body))
        parts.append(b"\r\n")
        parts.append(body)
        return b"".join(parts)

    def _path_of(self, url: str) -> str:
        parts = urlsplit(url)
        default_port = 443 if parts.scheme == "https" else 80
        same = (
            parts.scheme == self._scheme
            and parts.hostname == self._host
            and (parts.port or default_port) == self._port
        )
        if not same:
            raise ValueError(f"{url!r} is not on {self._scheme}://{self._label}")
        path = parts.path or "/"
        return f"{path}?{parts.query}" if parts.query else path

    async def _exchange(self, data: bytes, head: bool) -> Response:
        if self._closed:
            raise HttpError(f"the client for {self._label} is closed")
        conn = self._checkout()
        if conn is not None:
            try:
                return await self._start(conn, data, head, reused=True)
            except _Stale:
                pass
        return await self._start(await self._connect(), data, head, reused=False)

    async def _start(self, conn: _Connection, data: bytes, head: bool, *, reused: bool) -> Response:
        """Send ``data`` on ``conn`` and read the response head.

        Raises:
            _Stale: ``conn`` was reused and failed before any byte of a response came back.
        """
        response = Response(conn, head)
        try:
            try:
                conn.writer.write(data)
                await conn.writer.drain()
            except OSError as exc:
                raise HttpError(f"cannot send to {conn.label}: {exc}") from exc
            while not response.status:
                await response._receive()
        except HttpError:
            self._discard(conn)
            if reused and not response._received:
                raise _Stale from None
            raise
        except BaseException:
            self._discard(conn)
            raise
        return response

    # -- connections -------------------------------------------------------------------------

    async def _connect(self) -> _Connection:
        try:
            async with asyncio.timeout(self._connect_timeout):
                reader, writer = await asyncio.open_connection(
                    self._host,
                    self._port,
                    ssl=self._ssl,
                )
        except TimeoutError as exc:
            raise HttpError(
                f"cannot connect to {self._label}: timed out after {self._connect_timeout:g} s"
            ) from exc
        except OSError as exc:
            raise HttpError(f"cannot connect to {self._label}: {exc}") from exc
        conn = _Connection(self._label, reader, writer)
        if self._closed:  # aclose ran while this connection was being made
            writer.close()
            raise HttpError(f"the client for {self._label} is closed")
        self._open.add(conn)
        return conn

    def _checkout(self) -> _Connection | None:
        """The most recently used idle connection whose server has not closed it, if any."""
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.reader.at_eof():
                return conn
            self._discard(conn)
        return None

    def _release(self, conn: _Connection) -> None:
        if len(self._idle) < self._max_idle:
            self._idle.append(conn)
        else:
            self._discard(conn)

    def _discard(self, conn: _Connection) -> None:
        self._open.discard(conn)
        conn.writer.close()


def _header_line(key: str, name: str, value: str) -> bytes:
    """``name: value`` on the wire; ``key`` is ``name`` lower-cased."""
    if _TOKEN.fullmatch(name) is None or _FIELD_VALUE.fullmatch(value) is None:
        raise ValueError(f"invalid header {name!r}: {value!r}")
    if key in _RESERVED:
        raise ValueError(f"header {name!r} is set by the client itself")
    return f"{name}: {value}\r\n".encode("latin-1")
