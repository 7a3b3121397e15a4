"""Upstreams: one MCP session per server of a project, raw JSON-RPC over streamable HTTP.

An upstream is "a streamable-HTTP MCP URL plus headers" (``UpstreamTarget``); where that is
for a server is decided in one place, the ``Locator`` (by default mcpd's relay,
``{mcpd}/api/v1/servers/{server}/mcp`` with the user's bearer token).

The hop to the relay is ours on both ends, so it is lean: a relay session offers a channel
(``channel.py``: the session's JSON-RPC both ways, one line per message, on one connection),
which the upstream opens once the session is ready and then sends every request over.
Without one (a server mcpd reaches over HTTP, a proxy that buffers request bodies), requests
are JSON-RPC POSTs on kept-alive connections (``http11.HttpClient``, one pool per origin
shared by every upstream), answers are read as JSON (or as SSE when progress was asked for).
Either way results stay plain JSON objects: nothing is validated into models on the way
through; the client validates what it receives, as it would from the server itself.

Each upstream has one owner task: it initializes a session, lists what the server offers
(tools, prompts, resources, templates), reports the change, opens the session's GET stream
(``list_changed`` and ``resources/updated`` arrive there) and then refreshes lists on request
until the session breaks (the stream cannot be reopened, or a request finds the session
gone) or the upstream is closed. After a failure it retries with exponential backoff (capped
by ``Timeouts.reconnect_max``); a request to an upstream that is down wakes it at once. A
request whose session the server no longer knows (404 after a restart) is sent once more on
a new session; see ``may_resend`` for when a lost request may go again.

A server's requests of its client (sampling, elicitation, roots), on the channel, the GET
stream or a request's SSE answer, go to the one client session whose request is in flight
on this upstream (``jsonrpc/asks.py``); the client's answer goes back the way requests go.
mcplocal declares those features to the relay, which passes a server's requests on only for
servers whose spec opts in to them (docs/relay.md).

Every wait is bounded per upstream, so a slow or failing server only ever costs its own tools.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import anyio
from anyio.abc import TaskGroup

from mcpctl.errors import Unavailable
from mcpctl.http11 import Event, HttpClient, HttpError, Response
from mcpctl.jsonrpc import asks, protocol, wire
from mcpctl.jsonrpc.asks import InFlight, Tie, Untied
from mcpctl.jsonrpc.protocol import JsonObject
from mcpctl.mcplocal.channel import Channel, ChannelClosed, ChannelRefused

log = logging.getLogger(__name__)

Kind = Literal["tools", "prompts", "resources", "templates"]
ALL_KINDS: frozenset[Kind] = frozenset({"tools", "prompts", "resources", "templates"})
State = Literal["idle", "connecting", "ready", "down", "closed"]
CLIENT_INFO = {"name": "mcplocal", "version": "0.1.0"}
TOOLS_CALL = "tools/call"
_PAGE_CAP = 100
_CHANGED: dict[str, tuple[Kind, ...]] = {
    "notifications/tools/list_changed": ("tools",),
    "notifications/prompts/list_changed": ("prompts",),
    "notifications/resources/list_changed": ("resources", "templates"),
}
_LISTS: dict[Kind, tuple[str, str, str]] = {
    # kind: (method, result key, capability)
    "tools": ("tools/list", "tools", "tools"),
    "prompts": ("prompts/list", "prompts", "prompts"),
    "resources": ("resources/list", "resources", "resources"),
    "templates": ("resources/templates/list", "resourceTemplates", "resources"),
}
_JSON = "application/json"
_SSE = "text/event-stream"

ProgressSink = Callable[[JsonObject], Awaitable[None]]
ResourceUpdated = Callable[[str, JsonObject], Awaitable[None]]
ServerLog = Callable[[str, JsonObject], Awaitable[None]]  # (server, notifications/message params)


@dataclass(frozen=True)
class UpstreamTarget:
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)


Locator = Callable[[str], UpstreamTarget]


def relay_locator(template: str, mcpd_url: str, token: str | None) -> Locator:
    """Servers reached through mcpd's relay (``template`` has ``{mcpd}`` and ``{server}``)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    base = mcpd_url.rstrip("/")

    def locate(server: str) -> UpstreamTarget:
        return UpstreamTarget(template.format(mcpd=base, server=quote(server, safe="")), headers)

    return locate


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    request: float = 60.0
    call: float | None = None
    reconnect_max: float = 5.0


@dataclass(frozen=True)
class Listing:
    """What one server offers, as it named it (JSON objects as the server sent them)."""

    tools: tuple[JsonObject, ...] = ()
    prompts: tuple[JsonObject, ...] = ()
    resources: tuple[JsonObject, ...] = ()
    templates: tuple[JsonObject, ...] = ()


class RpcError(Exception):
    """The server's own JSON-RPC error; it passes through to the client as it is."""

    def __init__(self, error: JsonObject) -> None:
        self.error = error
        super().__init__(f"MCP error {error.get('code')}: {error.get('message')}")

    @property
    def code(self) -> object:
        return self.error.get("code")


class SessionLost(Exception):
    """The session is gone: the server answered 404 for it (``unprocessed``: the request
    was not handled), or the connection broke under a request (it may have been)."""

    def __init__(self, why: str, *, unprocessed: bool) -> None:
        super().__init__(why)
        self.unprocessed = unprocessed


def may_resend(method: str, exc: SessionLost) -> bool:
    """Whether a request lost with ``exc`` can go again on a new session: always when the
    server did not process it; never for a tool call that may have reached the server (it may
    have acted); other requests only read, so sending them twice is harmless."""
    return exc.unprocessed or method != TOOLS_CALL


def describe(exc: BaseException) -> str:
    """One line for a failure, looking through the task groups errors may come wrapped in."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, RpcError):
        return str(exc)
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0]}" if text else exc.__class__.__name__


class HttpPools:
    """One keep-alive pool per origin, shared by every upstream that reaches it."""

    def __init__(self, connect_timeout: float) -> None:
        self.connect_timeout = connect_timeout
        self._pools: dict[str, HttpClient] = {}

    def for_url(self, url: str) -> tuple[HttpClient, str]:
        """The pool for ``url``'s origin, and the request target (path and query)."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = HttpClient(
                origin, connect_timeout=self.connect_timeout, max_idle=64
            )
        target = parts.path or "/"
        return pool, f"{target}?{parts.query}" if parts.query else target

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()


class _Session:
    """One initialized upstream session: its id and version, and the headers they make."""

    def __init__(self, target: UpstreamTarget, session_id: str | None, version: str) -> None:
        self.id = session_id
        self.version = version
        self.headers = {
            **target.headers,
            "accept": f"{_JSON}, {_SSE}",
            "content-type": _JSON,
            "mcp-protocol-version": version,
        }
        if session_id is not None:
            self.headers["mcp-session-id"] = session_id
        self.stream_headers = {**self.headers, "accept": _SSE}
        self.offers_channel = False
        self.channel: Channel | None = None
        self.broken = asyncio.Event()
        self.why = ""

    def breaks(self, why: str) -> None:
        if not self.broken.is_set():
            self.why = why
            self.broken.set()
        if self.channel is not None:
            self.channel.close(why)


class Upstream:
    """One server of a project: its session, its state and what it offers."""

    def __init__(
        self,
        label: str,
        server: str,
        target: UpstreamTarget,
        timeouts: Timeouts,
        on_change: Callable[[Upstream], Awaitable[None]],
        *,
        pools: HttpPools,
        on_resource_updated: ResourceUpdated | None = None,
        on_log: ServerLog | None = None,
    ) -> None:
        self.label = label
        self.server = server
        self.target = target
        self.timeouts = timeouts
        self._on_change = on_change
        self._on_resource_updated = on_resource_updated
        self._on_log = on_log
        self._http, self._path = pools.for_url(target.url)
        self.state: State = "idle"
        self.error: str | None = None
        self.listing = Listing()
        self.capabilities: JsonObject = {}
        self._session: _Session | None = None
        self._ids = itertools.count(1)
        self._closing = False
        self._stale: set[Kind] = set()
        self._attempts = 0
        self._wake = anyio.Event()
        self._settled = anyio.Event()
        self._stopped = anyio.Event()
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._ties = InFlight()

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, tg: TaskGroup) -> None:
        """Connect in the background (once); later calls do nothing."""
        if self.state == "idle" and not self._closing:
            self.state = "connecting"
            tg.start_soon(self._run, name=f"upstream {self.label}")

    def kick(self) -> None:
        """Retry now instead of at the end of the backoff."""
        self._wake.set()

    async def wait_settled(self) -> None:
        """Wait for the connection attempt under way (or the next one) to succeed or fail."""
        if self.state in ("connecting", "down"):
            await self._settled.wait()

    async def aclose(self) -> None:
        self._closing = True
        if self.state == "idle":
            self.state = "closed"
            return
        self._wake.set()
        if (session := self._session) is not None:
            session.breaks("closed")
        with anyio.move_on_after(self.timeouts.connect):
            await self._stopped.wait()
            return
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        self._task = asyncio.current_task()
        failures = 0
        try:
            while not self._closing:
                self.state = "connecting"
                was_ready, error = await self._connect_and_serve()
                if self._closing:
                    break
                failures = 0 if was_ready else failures + 1
                await self._mark_down(error, was_ready=was_ready, first=failures <= 1)
                with anyio.move_on_after(min(self.timeouts.reconnect_max, 0.25 * 2**failures)):
                    await self._wake.wait()
                self._wake = anyio.Event()
        finally:
            self.state = "closed"
            self._announce_settled()
            self._stopped.set()

    def _announce_settled(self) -> None:
        settled, self._settled = self._settled, anyio.Event()
        settled.set()

    async def _connect_and_serve(self) -> tuple[bool, str]:
        """Returns whether the connection got ready, and why it ended."""
        ready = False
        self._attempts += 1
        session: _Session | None = None
        try:
            with anyio.fail_after(self.timeouts.connect):
                session = await self._initialize()
                self.listing = await self._fetch(session, ALL_KINDS, Listing())
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._listen, session)
                ready = True
                await self._mark_ready(session)
                await self._serve(session)
                tg.cancel_scope.cancel()
            return ready, session.why or "the connection was closed"
        except Exception as exc:  # the connection's top level: whatever ends it is reported
            return ready, describe(exc)
        finally:
            self._session = None
            if session is not None and session.channel is not None:
                session.channel.close()
            if session is not None and session.id is not None:
                self._end_later(session)

    async def _initialize(self) -> _Session:
        """Raises: RpcError, SessionLost, HttpError, ValueError (not an MCP answer)."""
        provisional = _Session(self.target, None, protocol.LATEST_VERSION)
        params = {
            "protocolVersion": protocol.LATEST_VERSION,
            "capabilities": asks.declared(asks.FEATURE_NAMES),
            "clientInfo": CLIENT_INFO,
        }
        message = self._message("initialize", params)
        async with self._http.request(
            "POST", self._path, headers=provisional.headers, body=protocol.encode(message)
        ) as response:
            answer = await self._answer(response, message["id"], None, provisional)
            session_id = response.header("mcp-session-id")
            offers_channel = response.header(wire.CHANNEL_HEADER) == wire.CHANNEL_NDJSON
        result = _result_of(answer)
        version = result.get("protocolVersion")
        if not isinstance(version, str):
            raise ValueError("the initialize result names no protocolVersion")
        caps = result.get("capabilities")
        self.capabilities = caps if isinstance(caps, dict) else {}
        session = _Session(self.target, session_id, version)
        session.offers_channel = offers_channel
        await self._notify(session, "notifications/initialized")
        return session

    async def _open_channel(self, session: _Session) -> Channel | None:
        """The session's channel, or None (plain requests) when it cannot be opened."""
        try:
            return await Channel.open(self.target.url, session.headers, self.timeouts.connect)
        except (ChannelRefused, OSError, TimeoutError) as exc:
            log.info("%s: no relay channel (%s); using plain requests", self.label, describe(exc))
            return None

    async def _serve(self, session: _Session) -> None:
        """Refresh lists when the server says they changed, until the session breaks."""
        broken = asyncio.ensure_future(session.broken.wait())
        try:
            while True:
                woken = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait((broken, woken), return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
                if broken.done() or self._closing:
                    return
                self._wake = anyio.Event()
                kinds, self._stale = frozenset(self._stale), set()
                if kinds:
                    with anyio.fail_after(self.timeouts.request):
                        self.listing = await self._fetch(session, kinds, self.listing)
                    await self._on_change(self)
        finally:
            broken.cancel()

    async def _listen(self, session: _Session) -> None:
        """The session's channel, if the server offers one and it opens (requests then go
        over it too; until then, and without one, they are plain POSTs); else its GET
        stream: list changes and resource updates. A stream that ends is reopened; one that
        cannot be (the session is gone, the server is down) breaks the session, which the
        owner then replaces. A channel that ends breaks the session at once."""
        if session.offers_channel and (channel := await self._open_channel(session)):
            session.channel = channel  # from now on, requests go over it
            await self._follow_channel(session, channel)
            return
        failures = 0
        while not session.broken.is_set():
            try:
                async with self._http.request(
                    "GET", self._path, headers=session.stream_headers
                ) as response:
                    if response.status == 405:
                        return  # the server offers no stream: nothing to follow
                    if response.status == 404:
                        session.breaks("the server no longer knows the session")
                        return
                    if response.status != 200:
                        raise HttpError(f"the event stream answered HTTP {response.status}")
                    failures = 0
                    async for event in response.events():
                        await self._on_event(event, session)
            except HttpError as exc:
                failures += 1
                if failures >= 3:
                    session.breaks(f"the event stream failed: {exc}")
                    return
            await anyio.sleep(0.05 * failures)

    async def _follow_channel(self, session: _Session, channel: Channel) -> None:
        """The channel carries what the GET stream would; when it ends, so does the session."""
        while (message := await channel.notifications.get()) is not None:
            await self._on_message(message, session)
        session.breaks(f"the relay channel ended: {channel.closed.result()}")

    async def _on_event(self, event: Event, session: _Session) -> None:
        try:
            message = protocol.decode(event.data)
        except ValueError:
            return
        if isinstance(message, dict):
            await self._on_message(message, session)

    async def _on_message(self, message: JsonObject, session: _Session) -> None:
        method = message.get("method")
        if "id" in message:
            self._server_request(message, session)
            return
        kinds = _CHANGED.get(method) if isinstance(method, str) else None
        if kinds:
            self._stale.update(kinds)
            self._wake.set()
        elif method == "notifications/resources/updated" and self._on_resource_updated:
            params = message.get("params")
            if isinstance(params, dict) and isinstance(uri := params.get("uri"), str):
                await self._on_resource_updated(uri, params)
        elif method == "notifications/message" and self._on_log:
            params = message.get("params")
            if isinstance(params, dict):
                await self._on_log(self.server, params)

    def _server_request(self, message: JsonObject, session: _Session) -> None:
        """A request of the server: ``ping`` is answered here, the others by the client
        session they are tied to; either way in the background."""
        request_id = message.get("id")
        method = str(message.get("method"))
        if method == "ping":
            self._spawn(self._reply(session, protocol.result(request_id, {})))
            return
        try:
            tie = self._ties.choose(method)
        except Untied as exc:
            self._spawn(self._reply(session, protocol.error(request_id, exc.code, str(exc))))
            return

        async def answer() -> None:
            await self._reply(session, await asks.relay(tie, message))

        self._ties.spawn(tie, answer())

    async def _reply(self, session: _Session, answer: JsonObject) -> None:
        """Send the answer to a server request back: on the channel, or as a POST."""
        channel = session.channel
        try:
            if channel is not None and channel.is_open:
                channel.send(answer)
                return
            async with self._http.request(
                "POST", self._path, headers=session.headers, body=protocol.encode(answer)
            ) as response:
                await response.read()
        except (ChannelClosed, HttpError, OSError) as exc:
            log.info("%s: an answer to the server was lost: %s", self.label, describe(exc))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _end_later(self, session: _Session) -> None:
        """End a session we leave (DELETE), in the background and best effort."""

        async def end() -> None:
            try:
                with anyio.fail_after(self.timeouts.connect):
                    async with self._http.request(
                        "DELETE", self._path, headers=session.headers
                    ) as response:
                        await response.read()
            except Exception as exc:  # best effort: the server expires it anyway
                log.debug("%s: ending the session failed: %s", self.label, describe(exc))

        self._spawn(end())

    async def _mark_ready(self, session: _Session) -> None:
        recovered = self.error is not None
        self._session = session
        self.state = "ready"
        self.error = None
        if recovered:
            log.warning("%s: available again; its tools are back", self.label)
        try:
            await self._on_change(self)
        finally:
            self._announce_settled()  # after the view has it: a waiting list sees it

    async def _mark_down(self, error: str, *, was_ready: bool, first: bool) -> None:
        self.state = "down"
        self.error = error
        self.listing = Listing()
        if was_ready or first:
            log.warning(
                "%s: unavailable (%s); its tools, prompts and resources are left out "
                "until it recovers",
                self.label,
                error,
            )
        else:
            log.debug("%s: still unavailable (%s)", self.label, error)
        try:
            await self._on_change(self)
        finally:
            self._announce_settled()

    # -- lists -------------------------------------------------------------------------

    async def _fetch(self, session: _Session, kinds: frozenset[Kind], listing: Listing) -> Listing:
        for kind in ("tools", "prompts", "resources", "templates"):
            method, key, capability = _LISTS[kind]
            if kind in kinds and self.capabilities.get(capability) is not None:
                try:
                    items = await self._all_pages(session, method, key)
                except RpcError as exc:
                    if exc.code != protocol.METHOD_NOT_FOUND:
                        raise
                    items = ()  # e.g. resources without templates: nothing of that kind
                listing = replace(listing, **{kind: items})
        return listing

    async def _all_pages(self, session: _Session, method: str, key: str) -> tuple[JsonObject, ...]:
        """Every item of a paginated list, following cursors (at most _PAGE_CAP pages)."""
        out: list[JsonObject] = []
        cursor: object = None
        for _ in range(_PAGE_CAP):
            params = {"cursor": cursor} if cursor else None
            page = await self._call(session, method, params, None)
            items = page.get(key)
            if isinstance(items, list):
                out.extend(item for item in items if isinstance(item, dict))
            if not (cursor := page.get("nextCursor")):
                break
        return tuple(out)

    # -- requests ----------------------------------------------------------------------

    async def request(
        self,
        method: str,
        params: JsonObject | None,
        *,
        read_timeout: float | None,
        progress: ProgressSink | None = None,
        tie: Tie | None = None,
    ) -> JsonObject:
        """Send one request; its result. With a ``tie``, the server's requests of its
        client while it runs go to the tied client session.

        Raises:
            Unavailable: the server is down, the connection broke during the request, or
                no answer within ``read_timeout``.
            RpcError: the server's error, with its code.
        """
        self._ties.enter(tie)
        try:
            return await self._request(method, params, read_timeout, progress)
        finally:
            self._ties.leave(tie)

    async def _request(
        self,
        method: str,
        params: JsonObject | None,
        read_timeout: float | None,
        progress: ProgressSink | None,
    ) -> JsonObject:
        session = await self._ready_session()
        try:
            return await self._timed(session, method, params, read_timeout, progress)
        except SessionLost as exc:
            self._lost(session, str(exc))
            if not may_resend(method, exc):
                raise self._unavailable(str(exc)) from exc
            log.info("%s: session lost (%s); sending the request again", self.label, exc)
        session = await self._reopened(session)
        try:
            return await self._timed(session, method, params, read_timeout, progress)
        except SessionLost as exc:
            self._lost(session, str(exc))
            raise self._unavailable(str(exc)) from exc

    async def _timed(
        self,
        session: _Session,
        method: str,
        params: JsonObject | None,
        read_timeout: float | None,
        progress: ProgressSink | None,
    ) -> JsonObject:
        if read_timeout is None:
            return await self._call(session, method, params, progress)
        try:
            # asyncio's own timeout: anyio's costs about 5 µs more, on every call.
            async with asyncio.timeout(read_timeout):
                return await self._call(session, method, params, progress)
        except TimeoutError:
            raise Unavailable(
                f"server {self.server!r} did not answer {method} within {read_timeout:g} s"
            ) from None

    async def _call(
        self,
        session: _Session,
        method: str,
        params: JsonObject | None,
        progress: ProgressSink | None,
    ) -> JsonObject:
        """One request on ``session``: its result.

        Raises: RpcError, SessionLost.
        """
        message = self._message(method, params)
        if progress is not None:
            sent = dict(params or {})
            sent["_meta"] = {**(sent.get("_meta") or {}), "progressToken": message["id"]}
            message["params"] = sent
        if session.channel is not None:
            return _result_of(await self._over_channel(session.channel, message, progress))
        try:
            async with self._http.request(
                "POST", self._path, headers=session.headers, body=protocol.encode(message)
            ) as response:
                answer = await self._answer(response, message["id"], progress, session)
        except HttpError as exc:
            raise SessionLost(f"the connection broke: {exc}", unprocessed=False) from exc
        except ValueError as exc:
            raise SessionLost(f"not an MCP answer: {exc}", unprocessed=False) from exc
        return _result_of(answer)

    @staticmethod
    async def _over_channel(
        channel: Channel, message: JsonObject, progress: ProgressSink | None
    ) -> JsonObject:
        """The answer to ``message`` sent on ``channel``; a caller that goes away first
        (cancelled, timed out) cancels the request upstream.

        Raises: SessionLost.
        """
        request_id = message["id"]
        try:
            pending = channel.request(message, progress=progress is not None)
            if pending.events is None or progress is None:
                return await pending.answer
            events = pending.events
            while True:
                getter = asyncio.ensure_future(events.get())
                await asyncio.wait((getter, pending.answer), return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    params = getter.result().get("params")
                    if isinstance(params, dict):
                        await progress(params)
                    continue
                getter.cancel()
                while not events.empty():
                    params = events.get_nowait().get("params")
                    if isinstance(params, dict):
                        await progress(params)
                return pending.answer.result()
        except ChannelClosed as exc:
            raise SessionLost(f"the relay channel ended: {exc}", unprocessed=not exc.sent) from exc
        except BaseException:
            channel.forget(request_id)
            if channel.is_open:
                cancelled = {"requestId": request_id, "reason": "the client went away"}
                with contextlib.suppress(ChannelClosed):
                    channel.send(
                        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": cancelled}
                    )
            raise

    async def _notify(
        self, session: _Session, method: str, params: JsonObject | None = None
    ) -> None:
        message: JsonObject = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        async with self._http.request(
            "POST", self._path, headers=session.headers, body=protocol.encode(message)
        ) as response:
            await response.read()

    async def _answer(
        self,
        response: Response,
        request_id: int,
        progress: ProgressSink | None,
        session: _Session,
    ) -> JsonObject:
        """The JSON-RPC answer to ``request_id`` in ``response`` (JSON or an SSE stream).

        Raises: SessionLost (404 on a session), ValueError (no answer in it).
        """
        if response.status == 404 and session.id is not None:
            await response.read()
            raise SessionLost("the server no longer knows the session", unprocessed=True)
        content_type = response.header("content-type") or ""
        if content_type.startswith(_SSE):
            async for event in response.events():
                message = _parse(event.data)
                if message.get("id") == request_id and "method" not in message:
                    return message
                if "method" in message and "id" in message:
                    self._server_request(message, session)
                    continue
                if message.get("method") == "notifications/progress" and progress is not None:
                    params = message.get("params")
                    if isinstance(params, dict):
                        await progress(params)
            raise ValueError(f"the event stream ended without an answer (HTTP {response.status})")
        body = await response.read()
        try:
            message = _parse(body)
        except ValueError:
            raise ValueError(f"HTTP {response.status}: {body[:200]!r}") from None
        return message

    def _message(self, method: str, params: JsonObject | None) -> JsonObject:
        message: JsonObject = {"jsonrpc": "2.0", "id": next(self._ids), "method": method}
        if params is not None:
            message["params"] = params
        return message

    def _unavailable(self, why: str) -> Unavailable:
        return Unavailable(f"server {self.server!r}: the connection was lost ({why})")

    async def _ready_session(self) -> _Session:
        if self.state in ("down", "connecting"):
            self.kick()
            with anyio.move_on_after(self.timeouts.connect):
                await self.wait_settled()
        session = self._session
        if session is None or self.state != "ready":
            raise Unavailable(
                f"server {self.server!r} is unavailable: {self.error or 'not connected yet'}"
            )
        return session

    async def _reopened(self, lost: _Session) -> _Session:
        """A new session once ``lost`` is replaced: the owner reconnects at once (waits at
        most ``Timeouts.connect``).

        Raises:
            Unavailable: the new connection failed or did not come in time.
        """
        attempts = self._attempts
        self.kick()
        with anyio.move_on_after(self.timeouts.connect):
            while not self._closing:
                session = self._session
                if self.state == "ready" and session is not None and session is not lost:
                    return session
                if self.state in ("down", "closed") and self._attempts > attempts:
                    break  # the new attempt failed
                await self._settled.wait()
        raise Unavailable(
            f"server {self.server!r} is unavailable: {self.error or 'not connected again yet'}"
        )

    def _lost(self, session: _Session, error: str) -> None:
        if self._session is session:
            self.error = error
            session.breaks(error)


def _parse(data: bytes | str) -> JsonObject:
    """Raises: ValueError for anything but one JSON object."""
    message = protocol.decode(data)
    if not isinstance(message, dict):
        raise ValueError("not a JSON-RPC message")
    return message


def _result_of(answer: JsonObject) -> JsonObject:
    """Raises: RpcError for an error answer; ValueError for a malformed one."""
    error = answer.get("error")
    if isinstance(error, dict):
        raise RpcError(error)
    result = answer.get("result")
    if not isinstance(result, dict):
        raise ValueError("the answer holds neither a result nor an error")
    return result
