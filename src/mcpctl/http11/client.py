"""``HttpClient``: kept-alive HTTP/1.1 connections to one origin, request heads built in one
join, responses parsed by httptools as they arrive (``response.py``).

It replaces a general-purpose client on hot paths (mcplocal's upstream JSON-RPC traffic, mcpd's
calls to LLM backends), where that client's per-request work cost more CPU than the proxying
itself. It does what that traffic needs and no more: no redirects, no cookies, no compression
(callers ask for identity), http:// forward proxies only when given one (``proxy.py``).

Connections. A connection goes back to the pool only after a response was read to its end
inside a request block that exited cleanly; any other exit closes it, so a pooled connection
never sits mid-response, and a stream left half read is never reused. ``max_connections``
bounds the connections open at once (a request waits up to the connect timeout for one to free
up, then fails with ``PoolTimeout``); ``max_idle`` bounds those kept for reuse; ``idle_expiry``
closes one left idle longer than that (under the server's own keep-alive timeout, so that the
server never closes a connection just as a request goes out on it).

Stale connections. A pooled connection the server closed while it was idle (uvicorn drops idle
keep-alive connections after 5 s) is noticed before use when its end of stream has already
arrived. Otherwise the request fails before any byte of the response came back; with
``resend_stale`` (the default) that request is then sent once more, on a fresh connection, and
only once. A server that closed an idle connection never read the request sent on it; a server
that read a request and died without a byte of answer looks the same, and resending to it is
the risk every keep-alive client takes. A caller that must never send a request twice (a
costly generation) turns it off, and keeps ``idle_expiry`` below the server's timeout instead.

Timeouts (``Timeout``, per client and per request): ``connect`` bounds making a connection
(TCP, the proxy's tunnel, the TLS handshake) and waiting for a free one; ``write`` sending the
request; ``read`` each wait for the next bytes of the response, its headers included. ``None``
waits for ever (a caller that bounds its own waits and cancels).
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import urlsplit

from mcpctl.http11.errors import (
    ConnectError,
    ConnectionLost,
    ConnectTimeout,
    HttpError,
    HttpTimeout,
    PoolTimeout,
    WriteTimeout,
)
from mcpctl.http11.proxy import Proxy, open_tunnel
from mcpctl.http11.response import Connection, Response
from mcpctl.http11.tls import client_context

_NO_HEADERS: Mapping[str, str] = MappingProxyType({})
# Framing and connection management belong to this client; a caller's value would break them.
_RESERVED = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "proxy-authorization"}
)
# Methods whose empty body is sent without a Content-Length (RFC 9110 8.6).
_NO_CONTENT_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS", "TRACE"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
_TARGET = re.compile(r"/[\x21-\x7e]*")


@dataclass(frozen=True, slots=True)
class Timeout:
    """Seconds to wait (``None``: no bound): for a connection, between two reads of the
    response, to send the request."""

    connect: float | None = 10.0
    read: float | None = None
    write: float | None = None


class _Stale(Exception):
    """A pooled connection turned out closed by the server; the request may go again."""


class HttpClient:
    """Keep-alive connections to ONE origin (scheme://host:port), pooled."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] = _NO_HEADERS,
        connect_timeout: float | None = 10.0,
        read_timeout: float | None = None,
        write_timeout: float | None = None,
        max_idle: int = 16,
        max_connections: int | None = None,
        idle_expiry: float | None = None,
        resend_stale: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        proxy: Proxy | None = None,
    ) -> None:
        """Check the origin and encode the default headers once, for every request.

        ``ssl_context`` (https only; default: ``tls.client_context()``) verifies the server;
        ``proxy`` is the forward proxy to reach the origin through, if any.

        Raises:
            ValueError: ``base_url`` is not an http(s) origin, or a header is malformed or one
                this client sets itself (Host, Content-Length, Transfer-Encoding, Connection).
        """
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        if url.path not in ("", "/") or url.query or url.fragment:
            raise ValueError(f"not an origin (scheme://host:port): {base_url!r}")
        if max_connections is not None and max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._scheme = url.scheme
        self._host = url.hostname
        default_port = 443 if url.scheme == "https" else 80
        self._port = url.port or default_port
        self._label = f"{self._host}:{self._port}"
        self._ssl: ssl.SSLContext | None = None
        if url.scheme == "https":
            self._ssl = ssl_context if ssl_context is not None else client_context()
        self._timeout = Timeout(connect_timeout, read_timeout, write_timeout)
        self._max_idle = max_idle
        self._idle_expiry = idle_expiry
        self._resend_stale = resend_stale
        self._slots = asyncio.Semaphore(max_connections) if max_connections else None
        host = f"[{self._host}]" if ":" in self._host else self._host
        authority = host if self._port == default_port else f"{host}:{self._port}"
        self._tunnel_to = f"{host}:{self._port}"
        self._proxy = proxy
        # Through a proxy, a plain http request names its origin in the request line.
        self._target_prefix = b""
        self._defaults = {
            "host": f"Host: {authority}\r\n".encode("latin-1"),
            "connection": b"Connection: keep-alive\r\n",
        }
        if proxy is not None and self._ssl is None:
            self._target_prefix = f"http://{authority}".encode("ascii")
            if proxy.authorization:
                line = f"Proxy-Authorization: {proxy.authorization}\r\n"
                self._defaults["proxy-authorization"] = line.encode("latin-1")
        for name, value in headers.items():
            key = name.lower()
            self._defaults[key] = _header_line(key, name, value)
        self._default_head = b"".join(self._defaults.values())
        self._idle: list[Connection] = []
        self._open: set[Connection] = set()
        self._closed = False

    @asynccontextmanager
    async def request(
        self,
        method: str,
        target: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        timeouts: Timeout | None = None,
    ) -> AsyncIterator[Response]:
        """Send a request and yield the response once its status line and headers are in.

        ``target`` is a path and query ("/api/v1/servers/x/mcp") or a full URL of this origin;
        ``headers`` add to (or replace) the client's default headers; ``timeouts`` replace
        the client's own for this request.

        Raises:
            HttpError: cannot connect, the connection failed, a timeout passed, or the answer
                was not HTTP (the subclasses of ``errors`` say which).
            ValueError: the target is of another origin, or a header is malformed or reserved.
        """
        data = self._encode(method, target, headers, body)
        bounds = self._timeout if timeouts is None else timeouts
        slots = self._slots
        if slots is not None:
            await self._wait_for_slot(slots, bounds.connect)
        try:
            response = await self._exchange(data, method == "HEAD", bounds)
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
        finally:
            if slots is not None:
                slots.release()

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
        parts = [
            method.encode("ascii"),
            b" ",
            self._target_prefix,
            target.encode("ascii"),
            b" HTTP/1.1\r\n",
        ]
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

    async def _wait_for_slot(self, slots: asyncio.Semaphore, seconds: float | None) -> None:
        if not slots.locked():
            await slots.acquire()  # returns at once
            return
        try:
            async with asyncio.timeout(seconds):
                await slots.acquire()
        except TimeoutError as exc:
            raise PoolTimeout(
                f"no free connection to {self._label} within {seconds:g} s", seconds or 0.0
            ) from exc

    async def _exchange(self, data: bytes, head: bool, bounds: Timeout) -> Response:
        if self._closed:
            raise HttpError(f"the client for {self._label} is closed")
        conn = self._checkout()
        if conn is not None:
            try:
                return await self._start(conn, data, head, bounds, reused=self._resend_stale)
            except _Stale:
                pass
        conn = await self._connect(bounds.connect)
        return await self._start(conn, data, head, bounds, reused=False)

    async def _start(
        self, conn: Connection, data: bytes, head: bool, bounds: Timeout, *, reused: bool
    ) -> Response:
        """Send ``data`` on ``conn`` and read the response head.

        Raises:
            _Stale: ``conn`` was reused and failed before any byte of a response came back.
        """
        response = Response(conn, head, bounds.read)
        try:
            await self._send(conn, data, bounds.write)
            while not response.status:
                await response._receive()
        except HttpError as exc:
            self._discard(conn)
            if reused and not response._received and not isinstance(exc, HttpTimeout):
                raise _Stale from None
            raise
        except BaseException:
            self._discard(conn)
            raise
        return response

    async def _send(self, conn: Connection, data: bytes, seconds: float | None) -> None:
        try:
            conn.writer.write(data)
            if seconds is None:
                await conn.writer.drain()
            else:
                async with asyncio.timeout(seconds):
                    await conn.writer.drain()
        except TimeoutError as exc:
            raise WriteTimeout(
                f"cannot send to {conn.label}: not sent within {seconds:g} s", seconds or 0.0
            ) from exc
        except OSError as exc:
            raise ConnectionLost(f"cannot send to {conn.label}: {exc}") from exc

    # -- connections -------------------------------------------------------------------------

    async def _connect(self, seconds: float | None) -> Connection:
        try:
            async with asyncio.timeout(seconds):
                reader, writer = await self._open_connection()
        except TimeoutError as exc:
            raise ConnectTimeout(
                f"cannot connect to {self._label}: timed out after {seconds:g} s", seconds or 0.0
            ) from exc
        except OSError as exc:  # refused, unreachable, name not found, TLS (ssl.SSLError)
            raise ConnectError(f"cannot connect to {self._label}: {exc}", str(exc)) from exc
        conn = Connection(self._label, reader, writer)
        if self._closed:  # aclose ran while this connection was being made
            writer.close()
            raise HttpError(f"the client for {self._label} is closed")
        self._open.add(conn)
        return conn

    async def _open_connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        proxy = self._proxy
        if proxy is None:
            return await asyncio.open_connection(self._host, self._port, ssl=self._ssl)
        proxy.check()
        reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
        try:
            if self._ssl is not None:
                await open_tunnel(proxy, self._tunnel_to, reader, writer)
                await writer.start_tls(self._ssl, server_hostname=self._host)
        except BaseException:
            writer.close()
            raise
        return reader, writer

    def _checkout(self) -> Connection | None:
        """The most recently used idle connection that is still good to use, if any: its
        server has not closed it, and it has not been idle past ``idle_expiry``."""
        idle = self._idle
        expiry = self._idle_expiry
        now = time.monotonic() if expiry is not None and idle else 0.0
        while idle:
            conn = idle.pop()
            if expiry is not None and now - conn.idle_since > expiry:
                # The rest were idle longer still.
                self._discard(conn)
                for older in idle:
                    self._discard(older)
                idle.clear()
                return None
            if not conn.reader.at_eof():
                return conn
            self._discard(conn)
        return None

    def _release(self, conn: Connection) -> None:
        if len(self._idle) < self._max_idle:
            if self._idle_expiry is not None:
                conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            self._discard(conn)

    def _discard(self, conn: Connection) -> None:
        self._open.discard(conn)
        conn.writer.close()


def _header_line(key: str, name: str, value: str) -> bytes:
    """``name: value`` on the wire; ``key`` is ``name`` lower-cased."""
    if _TOKEN.fullmatch(name) is None or _FIELD_VALUE.fullmatch(value) is None:
        raise ValueError(f"invalid header {name!r}: {value!r}")
    if key in _RESERVED:
        raise ValueError(f"header {name!r} is set by the client itself")
    return f"{name}: {value}\r\n".encode("latin-1")
