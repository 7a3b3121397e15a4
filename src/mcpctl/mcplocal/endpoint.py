"""A project endpoint: the MCP server a client talks to (over HTTP or stdio), its connected
client sessions, and the watch that keeps it in step with the project in mcpd.

Errors follow CONVENTIONS.md: an upstream's own JSON-RPC errors pass through with their codes;
ours become JSON-RPC errors (``INVALID_PARAMS`` for bad input or an unknown name,
``INTERNAL_ERROR`` otherwise, with the stable ``code`` in ``data``), except that a tool call
that cannot reach its server answers a tool result with ``isError`` so the model can read why.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import mcp_types as types
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.session import ServerSession
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    PromptsListChanged,
    ResourcesListChanged,
    ServerEvent,
    ToolsListChanged,
)
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError

from mcpctl.errors import AppError, InvalidInput, NotFound
from mcpctl.mcplocal.aggregate import Aggregator
from mcpctl.mcplocal.projects import ProjectSource, ProjectView
from mcpctl.mcplocal.upstreams import Kind, Locator, Timeouts

log = logging.getLogger(__name__)

R = TypeVar("R")
SESSION_HEADER = "mcp-session-id"
_ALL_CHANGES = NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True)


def as_mcp_error(exc: AppError) -> MCPError:
    code = (
        types.INVALID_PARAMS if isinstance(exc, InvalidInput | NotFound) else types.INTERNAL_ERROR
    )
    return MCPError(code, exc.message, {"code": exc.code})


async def guarded(what: str, call: Awaitable[R]) -> R:
    """Our errors as JSON-RPC errors; never the SDK's code 0 for an unexpected exception."""
    try:
        return await call
    except MCPError:
        raise
    except AppError as exc:
        raise as_mcp_error(exc) from exc
    except Exception as exc:  # a handler's top level
        log.exception("%s failed", what)
        raise MCPError(types.INTERNAL_ERROR, f"mcplocal failed: {exc.__class__.__name__}") from exc


class ProjectServer(Server[Any]):
    """Announces ``listChanged`` for tools, prompts and resources to handshake-era clients
    (the SDK's transports ask for the initialization options without any)."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options or _ALL_CHANGES, experimental_capabilities, extensions
        )


class ClientSessions:
    """The clients connected to one endpoint, for the ``list_changed`` fan-out.

    Handshake-era sessions get the notification on their standalone stream; 2026-07-28
    clients get it on their ``subscriptions/listen`` stream through the bus. A session is
    remembered from its first message that carries a session id (stdio: the one connection)
    and forgotten when it is deleted or its stream is gone.
    """

    def __init__(self) -> None:
        self.bus = InMemorySubscriptionBus()
        self._sessions: dict[str | None, ServerSession] = {}

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        request = ctx.request
        if request is None:
            self._sessions[None] = ctx.session
        elif key := request.headers.get(SESSION_HEADER):
            self._sessions[key] = ctx.session
        return await call_next(ctx)

    def forget(self, key: str) -> None:
        self._sessions.pop(key, None)

    def __len__(self) -> int:
        return len(self._sessions)

    async def broadcast(self, kinds: frozenset[Kind]) -> None:
        events: list[ServerEvent] = []
        if "tools" in kinds:
            events.append(ToolsListChanged())
        if "prompts" in kinds:
            events.append(PromptsListChanged())
        if kinds & {"resources", "templates"}:
            events.append(ResourcesListChanged())
        for key, session in list(self._sessions.items()):
            try:
                for event in events:
                    if isinstance(event, ToolsListChanged):
                        await session.send_tool_list_changed()
                    elif isinstance(event, PromptsListChanged):
                        await session.send_prompt_list_changed()
                    else:
                        await session.send_resource_list_changed()
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                self._sessions.pop(key, None)
        for event in events:
            await self.bus.publish(event)


class Handlers:
    """The request handlers of one project's server, each routed to the aggregator."""

    def __init__(self, agg: Aggregator) -> None:
        self.agg = agg

    async def list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return await guarded("tools/list", self.agg.list_tools())

    async def call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        session = ctx.session

        async def relay_progress(progress: float, total: float | None, message: str | None) -> None:
            await session.report_progress(progress, total, message)

        wanted = ctx.meta is not None and "progress_token" in ctx.meta
        return await guarded("tools/call", self._call(params, relay_progress if wanted else None))

    async def _call(
        self, params: types.CallToolRequestParams, progress: ProgressFnT | None
    ) -> types.CallToolResult:
        try:
            return await self.agg.call_tool(params, progress)
        except (InvalidInput, NotFound):
            raise
        except AppError as exc:
            # Not the caller's fault (unavailable, denied): a result the model can read.
            text = types.TextContent(type="text", text=exc.message)
            return types.CallToolResult(content=[text], is_error=True)

    async def list_prompts(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        return await guarded("prompts/list", self.agg.list_prompts())

    async def get_prompt(
        self, ctx: ServerRequestContext[Any, Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        return await guarded("prompts/get", self.agg.get_prompt(params))

    async def list_resources(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return await guarded("resources/list", self.agg.list_resources())

    async def list_templates(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return await guarded("resources/templates/list", self.agg.list_templates())

    async def read_resource(
        self, ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        return await guarded("resources/read", self.agg.read_resource(params))

    async def complete(
        self, ctx: ServerRequestContext[Any, Any], params: types.CompleteRequestParams
    ) -> types.CompleteResult:
        return await guarded("completion/complete", self.agg.complete(params))

    async def set_logging_level(
        self, ctx: ServerRequestContext[Any, Any], params: types.SetLevelRequestParams
    ) -> types.EmptyResult:
        await guarded("logging/setLevel", self.agg.set_logging_level(params.level))
        return types.EmptyResult()


def build_server(project: str, agg: Aggregator, sessions: ClientSessions) -> ProjectServer:
    """The low-level MCP server of one project."""
    handlers = Handlers(agg)
    server = ProjectServer(
        f"mcplocal/{project}",
        version="0.1.0",
        instructions=f"Tools, prompts and resources of the mcpctl project {project!r}.",
        get_tool_input_schema=agg.tool_input_schema,
        on_list_tools=handlers.list_tools,
        on_call_tool=handlers.call_tool,
        on_list_prompts=handlers.list_prompts,
        on_get_prompt=handlers.get_prompt,
        on_list_resources=handlers.list_resources,
        on_list_resource_templates=handlers.list_templates,
        on_read_resource=handlers.read_resource,
        on_completion=handlers.complete,
        on_subscriptions_listen=ListenHandler(sessions.bus),
    )
    # Registered here rather than as ``on_set_logging_level``, which warns that logging is
    # deprecated in 2026-07-28: handshake-era clients still use it.
    server.add_request_handler(
        "logging/setLevel", types.SetLevelRequestParams, handlers.set_logging_level
    )
    server.middleware.append(sessions)
    return server


@dataclass(frozen=True)
class EndpointConfig:
    timeouts: Timeouts
    list_wait: float
    poll_interval: float


class ProjectRuntime:
    """Everything behind one project endpoint, whatever the transport."""

    def __init__(self, name: str, agg: Aggregator, sessions: ClientSessions) -> None:
        self.name = name
        self.aggregator = agg
        self.sessions = sessions
        self.server = build_server(name, agg, sessions)
        self.problem: str | None = None

    async def watch(self, source: ProjectSource, interval: float) -> None:
        """Reread the project from mcpd and follow its changes (servers, naming)."""
        while True:
            await anyio.sleep(interval)
            try:
                view = await source.get(self.name)
                problem = None
            except NotFound:
                view = ProjectView(self.name, (), self.aggregator.prefix)
                problem = "is not in mcpd any more; it serves nothing until it is created again"
            except AppError as exc:
                self._report(f"cannot be reread from mcpd ({exc.message}); keeping its servers")
                continue
            self._report(problem)
            if await self.aggregator.set_project(view):
                log.info(
                    "project %s: now serving %s", self.name, ", ".join(view.servers) or "nothing"
                )

    def _report(self, problem: str | None) -> None:
        if problem != self.problem:
            if problem is not None:
                log.warning("project %s %s", self.name, problem)
            elif self.problem is not None:
                log.warning("project %s is back in step with mcpd", self.name)
            self.problem = problem

    def status(self) -> dict[str, Any]:
        view = self.aggregator.view
        return {
            "project": self.name,
            "toolPrefix": "always" if self.aggregator.prefix else "never",
            "problem": self.problem,
            "sessions": len(self.sessions),
            "tools": len(view.tools),
            "prompts": len(view.prompts),
            "resources": len(view.resources),
            "problems": list(view.problems),
            "servers": [
                {
                    "name": up.server,
                    "state": up.state,
                    "error": up.error,
                    "tools": len(up.listing.tools),
                }
                for up in self.aggregator.upstreams
            ],
        }


@asynccontextmanager
async def open_project(
    name: str, *, source: ProjectSource, locator: Locator, config: EndpointConfig
) -> AsyncIterator[ProjectRuntime]:
    """A running project endpoint; upstreams connect on first use and close on exit.

    Raises:
        NotFound: mcpd has no such project.
        Unavailable, Unauthenticated, PermissionDenied: mcpd could not tell.
    """
    first = await source.get(name)
    async with anyio.create_task_group() as tg:
        sessions = ClientSessions()
        agg = Aggregator(
            name,
            locator=locator,
            timeouts=config.timeouts,
            list_wait=config.list_wait,
            tg=tg,
            on_change=sessions.broadcast,
        )
        await agg.set_project(first)
        runtime = ProjectRuntime(name, agg, sessions)
        tg.start_soon(runtime.watch, source, config.poll_interval)
        try:
            yield runtime
        finally:
            with anyio.move_on_after(config.timeouts.connect, shield=True):
                await agg.aclose()
            tg.cancel_scope.cancel()
