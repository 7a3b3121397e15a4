"""Upstreams: one MCP client session per server of a project, over streamable HTTP.

An upstream is "a streamable-HTTP MCP URL plus headers" (``UpstreamTarget``); where that is
for a server is decided in one place, the ``Locator`` (by default mcpd's relay,
``{mcpd}/api/v1/servers/{server}/mcp`` with the user's bearer token).

Each upstream has one owner task that enters the client session and keeps it: the SDK's
transport must be entered and left in the same task, and a transport failure cancels the task
that entered it, so no request handler may own it. The owner connects, lists what the server
offers (tools, prompts, resources, templates), reports the change, then waits for refresh
requests (the server's ``list_changed``) until the connection breaks or the upstream is
closed. After a failure it retries with exponential backoff (capped by
``Timeouts.reconnect_max``); a request to an upstream that is down wakes it at once. A
request whose session the server no longer knows (404 after a restart) is sent once more on
a new session; see ``may_resend`` for when a lost request may go again.

Every wait is bounded per upstream, so a slow or failing server only ever costs its own tools.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from typing import Literal, TypeVar
from urllib.parse import quote

import anyio
import httpx2
import mcp_types as types
from anyio.abc import TaskGroup
from mcp.client.session import ClientSession, IncomingMessage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel

from mcpctl.errors import Unavailable

log = logging.getLogger(__name__)

Kind = Literal["tools", "prompts", "resources", "templates"]
ALL_KINDS: frozenset[Kind] = frozenset({"tools", "prompts", "resources", "templates"})
State = Literal["idle", "connecting", "ready", "down", "closed"]
CLIENT_INFO = types.Implementation(name="mcplocal", version="0.1.0")
_PAGE_CAP = 100
_CHANGED: dict[type[BaseModel], tuple[Kind, ...]] = {
    types.ToolListChangedNotification: ("tools",),
    types.PromptListChangedNotification: ("prompts",),
    types.ResourceListChangedNotification: ("resources", "templates"),
}

ResultT = TypeVar("ResultT", bound=BaseModel)


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
    """What one server offers, as it named it."""

    tools: tuple[types.Tool, ...] = ()
    prompts: tuple[types.Prompt, ...] = ()
    resources: tuple[types.Resource, ...] = ()
    templates: tuple[types.ResourceTemplate, ...] = ()


def describe(exc: BaseException) -> str:
    """One line for a failure, looking through the task groups the SDK wraps errors in."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(exc, MCPError):
        return f"MCP error {exc.error.code}: {exc.error.message}"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0]}" if text else exc.__class__.__name__


# How a server answers a session it does not know (HTTP 404): the SDK client's own words
# and mcpd's relay, and the SDK server's.
_UNKNOWN_SESSION = frozenset({"Session terminated", "Session not found"})


def session_terminated(exc: MCPError) -> bool:
    """The server answered that it does not know the session (HTTP 404): after a restart, or
    once it expired. The request was not processed, so it can be sent again."""
    return exc.error.code == types.INVALID_REQUEST and exc.error.message in _UNKNOWN_SESSION


def connection_lost(exc: MCPError) -> bool:
    """The session is gone (closed, or the server restarted and forgot it)."""
    return exc.error.code == types.CONNECTION_CLOSED or session_terminated(exc)


def may_resend(request: types.ClientRequest, exc: MCPError) -> bool:
    """Whether ``request``, lost with ``exc``, can go again on a new session: always when the
    server did not know the session; never for a tool call that may have reached the server
    (it may have acted); other requests only read, so sending them twice is harmless."""
    return session_terminated(exc) or not isinstance(request, types.CallToolRequest)


class Upstream:
    """One server of a project: its session, its state and what it offers."""

    def __init__(
        self,
        label: str,
        server: str,
        target: UpstreamTarget,
        timeouts: Timeouts,
        on_change: Callable[[Upstream], Awaitable[None]],
    ) -> None:
        self.label = label
        self.server = server
        self.target = target
        self.timeouts = timeouts
        self._on_change = on_change
        self.state: State = "idle"
        self.error: str | None = None
        self.listing = Listing()
        self.capabilities = types.ServerCapabilities()
        self._session: ClientSession | None = None
        self._scope: anyio.CancelScope | None = None
        self._closing = False
        self._stale: set[Kind] = set()
        self._attempts = 0
        self._wake = anyio.Event()
        self._settled = anyio.Event()
        self._stopped = anyio.Event()

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
        if self.state != "ready" and self._scope is not None:
            self._scope.cancel()
        self._wake.set()
        with anyio.move_on_after(self.timeouts.connect):
            await self._stopped.wait()
            return
        if self._scope is not None:
            self._scope.cancel()

    async def _run(self) -> None:
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
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                async with AsyncExitStack() as stack:
                    session = await self._open(stack)
                    ready = True
                    await self._mark_ready(session)
                    await self._serve(session)
            return ready, self.error or "the connection was closed"
        except Exception as exc:  # the connection's top level: whatever ends it is reported
            return ready, describe(exc)
        finally:
            self._session = None
            self._scope = None

    async def _open(self, stack: AsyncExitStack) -> ClientSession:
        http = await stack.enter_async_context(
            httpx2.AsyncClient(
                headers=dict(self.target.headers),
                # No read timeout: tool calls and the event stream may stay quiet for long;
                # every request has its own bound instead.
                timeout=httpx2.Timeout(self.timeouts.connect, read=None),
            )
        )
        read, write = await stack.enter_async_context(
            streamable_http_client(self.target.url, http_client=http)
        )
        session = await stack.enter_async_context(
            ClientSession(read, write, message_handler=self._on_message, client_info=CLIENT_INFO)
        )
        with anyio.fail_after(self.timeouts.connect):
            init = await session.initialize()
            self.capabilities = init.capabilities
            self.listing = await self._fetch(session, ALL_KINDS, Listing())
        return session

    async def _serve(self, session: ClientSession) -> None:
        """Refresh lists when the server says they changed, until closed."""
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            if self._closing:
                return
            kinds, self._stale = frozenset(self._stale), set()
            if kinds:
                with anyio.fail_after(self.timeouts.request):
                    self.listing = await self._fetch(session, kinds, self.listing)
                await self._on_change(self)

    async def _mark_ready(self, session: ClientSession) -> None:
        recovered = self.error is not None
        self._session = session
        self.state = "ready"
        self.error = None
        self._announce_settled()
        if recovered:
            log.warning("%s: available again; its tools are back", self.label)
        await self._on_change(self)

    async def _mark_down(self, error: str, *, was_ready: bool, first: bool) -> None:
        self.state = "down"
        self.error = error
        self.listing = Listing()
        self._announce_settled()
        if was_ready or first:
            log.warning(
                "%s: unavailable (%s); its tools, prompts and resources are left out "
                "until it recovers",
                self.label,
                error,
            )
        else:
            log.debug("%s: still unavailable (%s)", self.label, error)
        await self._on_change(self)

    async def _on_message(self, message: IncomingMessage) -> None:
        if isinstance(message, Exception):
            log.debug("%s: transport error: %s", self.label, describe(message))
            return
        kinds = _CHANGED.get(type(message))
        if kinds:
            self._stale.update(kinds)
            self._wake.set()

    # -- lists -------------------------------------------------------------------------

    async def _fetch(
        self, session: ClientSession, kinds: frozenset[Kind], listing: Listing
    ) -> Listing:
        caps = self.capabilities
        if "tools" in kinds and caps.tools is not None:
            listing = replace(listing, tools=await _tools(session))
        if "prompts" in kinds and caps.prompts is not None:
            listing = replace(listing, prompts=await _prompts(session))
        if "resources" in kinds and caps.resources is not None:
            listing = replace(listing, resources=await _resources(session))
        if "templates" in kinds and caps.resources is not None:
            listing = replace(listing, templates=await _templates(session))
        return listing

    # -- requests ----------------------------------------------------------------------

    async def request(
        self,
        request: types.ClientRequest,
        result_type: type[ResultT],
        *,
        read_timeout: float | None,
        progress: ProgressFnT | None = None,
    ) -> ResultT:
        """Send one request; the server's own errors pass through as ``MCPError``.

        Raises:
            Unavailable: the server is down, or the connection broke during the request.
            MCPError: the server's error, with its code.
        """
        session = await self._ready_session()
        try:
            return await self._send(session, request, result_type, read_timeout, progress)
        except MCPError as exc:
            if not connection_lost(exc):
                raise
            self._lost(session, describe(exc))
            if not may_resend(request, exc):
                raise self._unavailable(exc) from exc
            log.info("%s: session lost (%s); sending the request again", self.label, describe(exc))
        session = await self._reopened(session)
        try:
            return await self._send(session, request, result_type, read_timeout, progress)
        except MCPError as exc:
            if not connection_lost(exc):
                raise
            self._lost(session, describe(exc))
            raise self._unavailable(exc) from exc

    async def _send(
        self,
        session: ClientSession,
        request: types.ClientRequest,
        result_type: type[ResultT],
        read_timeout: float | None,
        progress: ProgressFnT | None,
    ) -> ResultT:
        return await session.send_request(
            request,
            result_type,
            request_read_timeout_seconds=read_timeout,
            progress_callback=progress,
        )

    def _unavailable(self, exc: MCPError) -> Unavailable:
        return Unavailable(f"server {self.server!r}: the connection was lost ({exc.error.message})")

    async def _ready_session(self) -> ClientSession:
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

    async def _reopened(self, lost: ClientSession) -> ClientSession:
        """A new session once ``lost`` is closed: the owner reconnects at once (waits at most
        ``Timeouts.connect``).

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

    def _lost(self, session: ClientSession, error: str) -> None:
        if self._session is session and self._scope is not None:
            self.error = error
            self._scope.cancel()


_Page = TypeVar("_Page", bound=types.PaginatedResult)
_Item = TypeVar("_Item")


async def _all_pages(
    fetch: Callable[[types.PaginatedRequestParams], Awaitable[_Page]],
    items: Callable[[_Page], list[_Item]],
) -> tuple[_Item, ...]:
    """Every item of a paginated list, following cursors (at most _PAGE_CAP pages)."""
    out: list[_Item] = []
    cursor: str | None = None
    for _ in range(_PAGE_CAP):
        page = await fetch(types.PaginatedRequestParams(cursor=cursor))
        out.extend(items(page))
        if not (cursor := page.next_cursor):
            break
    return tuple(out)


async def _tools(session: ClientSession) -> tuple[types.Tool, ...]:
    return await _all_pages(lambda p: session.list_tools(params=p), lambda page: page.tools)


async def _prompts(session: ClientSession) -> tuple[types.Prompt, ...]:
    return await _all_pages(lambda p: session.list_prompts(params=p), lambda page: page.prompts)


async def _resources(session: ClientSession) -> tuple[types.Resource, ...]:
    return await _all_pages(lambda p: session.list_resources(params=p), lambda page: page.resources)


async def _templates(session: ClientSession) -> tuple[types.ResourceTemplate, ...]:
    return await _all_pages(
        lambda p: session.list_resource_templates(params=p),
        lambda page: page.resource_templates,
    )
