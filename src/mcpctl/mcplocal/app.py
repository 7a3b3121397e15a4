"""The mcplocal HTTP app: ``create_app(settings)`` is the one composition root.

Routes:
    GET  /healthz                       liveness, and the projects being served
    *    /projects/{project}/mcp        the project's MCP endpoint (streamable HTTP)
    GET  /projects/{project}/status     its servers' states and naming problems (JSON)
    GET  /sessions                      captured client sessions, newest first
    GET  /sessions/{id}/messages        one session's captured messages (?since=SEQ)

A project endpoint is opened on its first request (after mcpd confirms the project exists)
and kept for the life of the app, so sessions, list_changed fan-out and capture stay per
project. Its MCP URL is served by our streamable-HTTP transport (``streamable.py``), and for
2026-07-28 clients by the SDK's session manager. Every route answers loopback Host and Origin
headers only (DNS-rebinding protection); the SDK's manager also gets its own check with the
same lists. Upstream connections are pooled per origin for the whole app (``HttpPools``).

The MCP URL is the hot path: ``McplocalApp`` answers it ahead of Starlette's middleware and
router (the same Host and Origin check, then the project's endpoint), reading each header it
needs in one pass over the raw list; the other routes go through Starlette.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
from anyio.abc import TaskGroup, TaskStatus
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mcpctl.domain.names import is_valid_name
from mcpctl.errors import AppError, InvalidInput, NotFound
from mcpctl.mcplocal.capture import CaptureStore
from mcpctl.mcplocal.endpoint import EndpointConfig, ProjectRuntime, open_project
from mcpctl.mcplocal.projects import McpdProjects, ProjectSource
from mcpctl.mcplocal.settings import Settings
from mcpctl.mcplocal.streamable import StreamableHttp
from mcpctl.mcplocal.upstreams import HttpPools, Locator, Timeouts, relay_locator

log = logging.getLogger(__name__)


def endpoint_config(settings: Settings) -> EndpointConfig:
    return EndpointConfig(
        timeouts=Timeouts(
            connect=settings.connect_timeout,
            request=settings.request_timeout,
            call=settings.call_timeout,
            reconnect_max=settings.reconnect_max_delay,
        ),
        list_wait=settings.list_wait,
        project_wait=settings.project_wait_seconds,
        poll_interval=settings.project_poll_interval,
    )


class HttpEndpoint:
    """A project runtime served over streamable HTTP."""

    def __init__(self, runtime: ProjectRuntime, asgi: ASGIApp) -> None:
        self.runtime = runtime
        self.asgi = asgi
        self.stop = anyio.Event()


class Endpoints:
    """The project endpoints, each opened on its first request."""

    def __init__(
        self,
        settings: Settings,
        source: ProjectSource,
        locator: Locator,
        capture: CaptureStore,
        tg: TaskGroup,
        pools: HttpPools,
    ) -> None:
        self.settings = settings
        self.pools = pools
        self.source = source
        self.locator = locator
        self.capture = capture
        self._tg = tg
        self._config = endpoint_config(settings)
        self._sse_answers = settings.answers == "sse"
        self._security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=settings.allowed_hosts(),
            allowed_origins=settings.allowed_origins(),
        )
        self._open: dict[str, HttpEndpoint] = {}
        self._locks: dict[str, anyio.Lock] = {}

    def names(self) -> list[str]:
        return sorted(self._open)

    def opened(self, name: str) -> HttpEndpoint | None:
        return self._open.get(name)

    async def get(self, name: str) -> HttpEndpoint:
        """Raises: NotFound (no such project), and mcpd's errors while it is first opened."""
        if not is_valid_name(name):
            raise NotFound(f"project {name!r} not found")
        if (endpoint := self._open.get(name)) is not None:
            return endpoint
        lock = self._locks.setdefault(name, anyio.Lock())
        async with lock:
            if (endpoint := self._open.get(name)) is None:
                try:
                    endpoint = await self._tg.start(self._serve, name)
                except BaseException:
                    # Names that are not projects must not pile up locks.
                    if not lock.statistics().tasks_waiting:
                        self._locks.pop(name, None)
                    raise
                self._open[name] = endpoint
        return endpoint

    async def _serve(self, name: str, *, task_status: TaskStatus[HttpEndpoint]) -> None:
        async with open_project(
            name, source=self.source, locator=self.locator, config=self._config, pools=self.pools
        ) as runtime:
            manager = StreamableHTTPSessionManager(
                app=runtime.server, security_settings=self._security
            )
            async with manager.run():
                asgi = StreamableHttp(
                    runtime, self.capture, manager.handle_request, sse=self._sse_answers
                )
                endpoint = HttpEndpoint(runtime, asgi)
                task_status.started(endpoint)
                await endpoint.stop.wait()

    async def aclose(self) -> None:
        for endpoint in self._open.values():
            endpoint.stop.set()


@dataclass
class AppState:
    settings: Settings
    endpoints: Endpoints
    capture: CaptureStore


def state_of(scope_or_request: Scope | Request) -> AppState:
    app = scope_or_request.app if isinstance(scope_or_request, Request) else scope_or_request["app"]
    state: AppState = app.state.mcplocal
    return state


def rpc_error(exc: AppError) -> Response:
    """An error before the MCP layer (no such project, mcpd down) as a JSON-RPC error."""
    code = (
        types.INVALID_PARAMS if isinstance(exc, InvalidInput | NotFound) else types.INTERNAL_ERROR
    )
    error = {"code": code, "message": exc.message, "data": {"code": exc.code}}
    return JSONResponse({"jsonrpc": "2.0", "id": None, "error": error}, exc.http_status)


def problem(exc: AppError) -> Response:
    body = {"title": exc.title, "status": exc.http_status, "detail": exc.message, "code": exc.code}
    return JSONResponse(body, exc.http_status, media_type="application/problem+json")


class ProjectMcp:
    """The ASGI app at ``/projects/{project}/mcp`` (an app, not a request handler: the SDK's
    transport answers on the raw ASGI channel, SSE streams included)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve_project(state_of(scope), scope["path_params"]["project"], scope, receive, send)


async def serve_project(
    state: AppState, name: str, scope: Scope, receive: Receive, send: Send
) -> None:
    try:
        endpoint = await state.endpoints.get(name)
    except AppError as exc:
        await rpc_error(exc)(scope, receive, send)
        return
    await endpoint.asgi(scope, receive, send)


async def healthz(request: Request) -> Response:
    state = state_of(request)
    return JSONResponse(
        {"status": "ok", "mcpd": state.settings.mcpd_url, "projects": state.endpoints.names()}
    )


async def project_status(request: Request) -> Response:
    name = request.path_params["project"]
    try:
        endpoint = await state_of(request).endpoints.get(name)
    except AppError as exc:
        return problem(exc)
    return JSONResponse(endpoint.runtime.status())


async def sessions(request: Request) -> Response:
    return JSONResponse({"items": state_of(request).capture.sessions()})


async def session_messages(request: Request) -> Response:
    session_id = request.path_params["session"]
    since_text = request.query_params.get("since", "0")
    if not since_text.isdigit():
        return problem(InvalidInput("since: must be a sequence number (0 or more)"))
    messages = state_of(request).capture.messages(session_id, int(since_text))
    if messages is None:
        return problem(NotFound(f"session {session_id!r} not found (never seen, or dropped)"))
    return JSONResponse({"session": session_id, "items": messages})


class LoopbackOnly:
    """Refuse requests whose Host or Origin is not loopback with our port (DNS rebinding)."""

    def __init__(self, app: ASGIApp, hosts: list[str], origins: list[str]) -> None:
        self.app = app
        self.hosts = {h.lower() for h in hosts}
        self.origins = {o.lower() for o in origins}

    def refusal(self, scope: Scope) -> Response | None:
        """The answer to an HTTP request from elsewhere; None for one from here."""
        host = ""
        origin = None
        for name, value in scope["headers"]:  # the last of repeated ones, as a dict keeps
            key = name.lower()
            if key == b"host":
                host = value.decode("latin-1")
            elif key == b"origin":
                origin = value.decode("latin-1")
        if host.lower() not in self.hosts:
            return Response("Invalid Host header", 421)
        if origin is not None and origin.lower() not in self.origins:
            return Response("Invalid Origin header", 403)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (refusal := self.refusal(scope)) is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)


_PROJECTS = "/projects/"
_MCP = "/mcp"


def project_of(scope: Scope) -> str | None:
    """The project an HTTP request to ``/projects/{project}/mcp`` names, else None (a name
    is one path segment, as the router matches it)."""
    if scope["type"] != "http":
        return None
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    if not (path.startswith(_PROJECTS) and path.endswith(_MCP)):
        return None
    name = path[len(_PROJECTS) : -len(_MCP)]
    return name if name and "/" not in name else None


class McplocalApp:
    """The app: MCP requests (``/projects/{project}/mcp``, the hot path) are answered ahead
    of Starlette's middleware and router, with the same Host and Origin check; everything
    else (and everything before the lifespan has run) goes through Starlette."""

    def __init__(self, app: Starlette, guard: LoopbackOnly) -> None:
        self.app = app
        self.guard = guard

    @property
    def state(self) -> State:
        return self.app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = project_of(scope)
        state: AppState | None = getattr(self.app.state, "mcplocal", None)
        if name is None or state is None:
            await self.app(scope, receive, send)
            return
        if (refusal := self.guard.refusal(scope)) is not None:
            await refusal(scope, receive, send)
            return
        # What the router would have set, for the SDK's transport behind the endpoint.
        scope["app"] = self.app
        scope["path_params"] = {"project": name}
        await serve_project(state, name, scope, receive, send)


def create_app(
    settings: Settings,
    *,
    locator: Locator | None = None,
    projects: ProjectSource | None = None,
) -> McplocalApp:
    """The app; ``locator`` and ``projects`` replace the mcpd relay and mcpd (tests)."""
    token = settings.token.get_secret_value() if settings.token else None
    locate = locator or relay_locator(settings.upstream_url_template, settings.mcpd_url, token)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        source = projects or McpdProjects(settings.mcpd_url, token)
        capture = CaptureStore(
            per_session=settings.capture_messages, max_sessions=settings.capture_sessions
        )
        pools = HttpPools(settings.connect_timeout)
        try:
            async with anyio.create_task_group() as tg:
                endpoints = Endpoints(settings, source, locate, capture, tg, pools)
                app.state.mcplocal = AppState(settings, endpoints, capture)
                try:
                    yield
                finally:
                    await endpoints.aclose()
        finally:
            await pools.aclose()
            if projects is None:
                await source.aclose()

    routes: list[Any] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/projects/{project}/mcp", ProjectMcp()),
        Route("/projects/{project}/status", project_status, methods=["GET"]),
        Route("/sessions", sessions, methods=["GET"]),
        Route("/sessions/{session}/messages", session_messages, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(
        LoopbackOnly, hosts=settings.allowed_hosts(), origins=settings.allowed_origins()
    )
    guard = LoopbackOnly(app, settings.allowed_hosts(), settings.allowed_origins())
    return McplocalApp(app, guard)
