"""A project endpoint: everything behind one project's MCP URL (or its stdio connection):
the aggregator, the connected client sessions, the dispatcher of the MCP methods, and the
watch that keeps it in step with the project in mcpd.

Clients of the handshake era (``initialize`` and ``Mcp-Session-Id``, every version up to
2025-11-25: what MCP clients speak today) are served by our own lean transport
(``streamable.py``, ``stdio.py``) and ``dispatch.py``. Clients of the 2026-07-28 era
(no handshake; the version named on every request) are served by the MCP SDK's server over
the same aggregator (``ProjectServer`` here): that era's wire rules are the SDK's to follow.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    PromptsListChanged,
    ResourcesListChanged,
    ServerEvent,
    ToolsListChanged,
)
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel

from mcpctl.errors import AppError, InvalidInput, NotFound
from mcpctl.jsonrpc import protocol
from mcpctl.jsonrpc.protocol import JsonObject
from mcpctl.mcplocal.aggregate import Aggregator
from mcpctl.mcplocal.clients import LOG_LEVELS, ClientSessions
from mcpctl.mcplocal.dispatch import Dispatcher
from mcpctl.mcplocal.projects import ProjectSource, ProjectView
from mcpctl.mcplocal.upstreams import HttpPools, Kind, Locator, RpcError, Timeouts

log = logging.getLogger(__name__)

R = TypeVar("R", bound=BaseModel)
_ALL_CHANGES = NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True)
_LIST_CHANGED: dict[Kind, str] = {
    "tools": "notifications/tools/list_changed",
    "prompts": "notifications/prompts/list_changed",
    "resources": "notifications/resources/list_changed",
    "templates": "notifications/resources/list_changed",
}


def as_mcp_error(exc: AppError) -> MCPError:
    code = (
        types.INVALID_PARAMS if isinstance(exc, InvalidInput | NotFound) else types.INTERNAL_ERROR
    )
    return MCPError(code, exc.message, {"code": exc.code})


async def guarded(what: str, call: Awaitable[Any], model: type[R]) -> R:
    """A handler's answer as ``model``; our errors as JSON-RPC errors, never the SDK's code 0
    for an unexpected exception."""
    try:
        result = await call
        if isinstance(result, bytes):
            return model.model_validate_json(result)
        return model.model_validate(result)
    except MCPError:
        raise
    except RpcError as exc:
        error = exc.error
        raise MCPError(
            int(error.get("code", types.INTERNAL_ERROR)),
            str(error.get("message")),
            error.get("data"),
        ) from exc
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


class Handlers:
    """The 2026-07-28 era's request handlers (the SDK's server), each routed to the aggregator."""

    def __init__(self, agg: Aggregator) -> None:
        self.agg = agg

    async def list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return await guarded("tools/list", self.agg.listed("tools"), types.ListToolsResult)

    async def call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        session = ctx.session
        wanted = ctx.meta is not None and "progress_token" in ctx.meta

        async def relay_progress(progress: JsonObject) -> None:
            await session.report_progress(
                float(progress.get("progress", 0)), progress.get("total"), progress.get("message")
            )

        return await guarded(
            "tools/call",
            self._call(_plain(params), relay_progress if wanted else None),
            types.CallToolResult,
        )

    async def _call(self, params: JsonObject, progress: Any) -> JsonObject:
        return await self.agg.call_tool_result(params, progress)

    async def list_prompts(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        return await guarded("prompts/list", self.agg.listed("prompts"), types.ListPromptsResult)

    async def get_prompt(
        self, ctx: ServerRequestContext[Any, Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        return await guarded(
            "prompts/get", self.agg.get_prompt(_plain(params)), types.GetPromptResult
        )

    async def list_resources(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return await guarded(
            "resources/list", self.agg.listed("resources"), types.ListResourcesResult
        )

    async def list_templates(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return await guarded(
            "resources/templates/list",
            self.agg.listed("templates"),
            types.ListResourceTemplatesResult,
        )

    async def read_resource(
        self, ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        return await guarded(
            "resources/read", self.agg.read_resource(_plain(params)), types.ReadResourceResult
        )

    async def complete(
        self, ctx: ServerRequestContext[Any, Any], params: types.CompleteRequestParams
    ) -> types.CompleteResult:
        return await guarded(
            "completion/complete", self.agg.complete(_plain(params)), types.CompleteResult
        )


def _plain(params: BaseModel) -> JsonObject:
    plain: JsonObject = params.model_dump(by_alias=True, exclude_none=True, mode="json")
    return plain


def build_server(project: str, agg: Aggregator, bus: InMemorySubscriptionBus) -> ProjectServer:
    """The SDK server of one project, for 2026-07-28 clients."""
    handlers = Handlers(agg)
    return ProjectServer(
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
        on_subscriptions_listen=ListenHandler(bus),
    )


@dataclass(frozen=True)
class EndpointConfig:
    timeouts: Timeouts
    list_wait: float
    # How long one long-poll of the project waits for a change at mcpd.
    project_wait: float
    # The pause before asking mcpd again after an error, or when it answered without waiting.
    poll_interval: float


class ProjectRuntime:
    """Everything behind one project endpoint, whatever the transport."""

    def __init__(self, name: str, agg: Aggregator, clients: ClientSessions) -> None:
        self.name = name
        self.aggregator = agg
        self.clients = clients
        self.dispatcher = Dispatcher(name, agg, clients)
        self.bus = InMemorySubscriptionBus()
        self.server = build_server(name, agg, self.bus)
        self.problem: str | None = None

    async def changed(self, kinds: frozenset[Kind]) -> None:
        """Tell every client what changed: handshake-era sessions on their streams,
        2026-07-28 clients on their ``subscriptions/listen`` streams."""
        methods = sorted({_LIST_CHANGED[k] for k in kinds})
        for method in methods:
            self.clients.broadcast({"jsonrpc": "2.0", "method": method})
        events: list[ServerEvent] = []
        if "tools" in kinds:
            events.append(ToolsListChanged())
        if "prompts" in kinds:
            events.append(PromptsListChanged())
        if kinds & {"resources", "templates"}:
            events.append(ResourcesListChanged())
        for event in events:
            await self.bus.publish(event)

    async def resource_updated(self, uri: str, params: JsonObject) -> None:
        """A server's ``resources/updated``, to the sessions that subscribed to ``uri``."""
        data = protocol.encode(
            {"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": params}
        )
        for session in self.clients.subscriptions.holders(uri):
            session.notify(data)

    async def server_log(self, server: str, params: JsonObject) -> None:
        """A server's ``notifications/message``, to every handshake-era session whose level
        (``logging/setLevel``; by default every message) it meets. Its ``logger`` is
        prefixed with the server's name, so clients can tell the servers apart."""
        level = params.get("level")
        rank = LOG_LEVELS.index(level) if level in LOG_LEVELS else len(LOG_LEVELS) - 1
        logger = params.get("logger")
        named = f"{server}/{logger}" if isinstance(logger, str) and logger else server
        data = protocol.encode(
            {
                "jsonrpc": "2.0",
                "method": "notifications/message",
                "params": {**params, "logger": named},
            }
        )
        for session in self.clients:
            wanted = session.log_level
            if wanted is None or rank >= LOG_LEVELS.index(wanted):
                session.notify(data)

    async def end_session(self, session_id: str) -> bool:
        """End a client session (DELETE, or its stdio connection closing); False when unknown."""
        session = self.clients.get(session_id)
        if session is None:
            return False
        for uri in self.clients.end(session):
            try:
                await self.aggregator.subscribe(uri, False)
            except Exception as exc:  # best effort: the server drops it with our session
                log.debug("project %s: unsubscribing %s failed: %s", self.name, uri, exc)
        return True

    async def watch(self, source: ProjectSource, config: EndpointConfig, since: str | None) -> None:
        """Follow the project's changes in mcpd (servers, naming), from resourceVersion
        ``since``: each long-poll answers when the project changed, or after
        ``config.project_wait`` with nothing (asked again at once). Errors keep the current
        servers and pause ``config.poll_interval``, as does an mcpd that answers at once
        without a change (one that does not know the long-poll)."""
        known = since
        while True:
            try:
                view = await source.follow(self.name, known, config.project_wait)
                problem = None
            except NotFound:
                view = ProjectView(self.name, (), self.aggregator.prefix)
                problem = "is not in mcpd any more; it serves nothing until it is created again"
            except AppError as exc:
                self._report(f"cannot be reread from mcpd ({exc.message}); keeping its servers")
                await anyio.sleep(config.poll_interval)
                continue
            if view is None:  # no change within the wait
                continue
            self._report(problem)
            if await self.aggregator.set_project(view):
                log.info(
                    "project %s: now serving %s", self.name, ", ".join(view.servers) or "nothing"
                )
            unchanged = view.resource_version is None or view.resource_version == known
            known = view.resource_version
            if unchanged:
                # Not a change: a missing project, or an mcpd that did not wait. Not at once.
                await anyio.sleep(config.poll_interval)

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
            "sessions": len(self.clients),
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
    name: str,
    *,
    source: ProjectSource,
    locator: Locator,
    config: EndpointConfig,
    pools: HttpPools,
) -> AsyncIterator[ProjectRuntime]:
    """A running project endpoint; upstreams connect on first use and close on exit.

    Raises:
        NotFound: mcpd has no such project.
        Unavailable, Unauthenticated, PermissionDenied: mcpd could not tell.
    """
    first = await source.get(name)
    async with anyio.create_task_group() as tg:
        runtime: ProjectRuntime | None = None

        async def changed(kinds: frozenset[Kind]) -> None:
            if runtime is not None:
                await runtime.changed(kinds)

        async def updated(uri: str, params: JsonObject) -> None:
            if runtime is not None:
                await runtime.resource_updated(uri, params)

        async def logged(server: str, params: JsonObject) -> None:
            if runtime is not None:
                await runtime.server_log(server, params)

        agg = Aggregator(
            name,
            locator=locator,
            timeouts=config.timeouts,
            list_wait=config.list_wait,
            tg=tg,
            on_change=changed,
            pools=pools,
            on_resource_updated=updated,
            on_log=logged,
        )
        await agg.set_project(first)
        runtime = ProjectRuntime(name, agg, ClientSessions())
        tg.start_soon(runtime.watch, source, config, first.resource_version)
        try:
            yield runtime
        finally:
            with anyio.move_on_after(config.timeouts.connect, shield=True):
                await agg.aclose()
            tg.cancel_scope.cancel()
