"""The MCP methods of a project endpoint, on plain JSON-RPC messages, whatever the transport.

``Dispatcher.answer`` takes one request and returns its encoded JSON-RPC answer; the HTTP
and stdio transports only move bytes. List answers are the view's pre-encoded results spliced
into the response, and tool calls pass the server's result through untouched.

Errors follow CONVENTIONS.md: a server's own JSON-RPC errors pass through with their codes;
ours become JSON-RPC errors (``-32602`` for bad input or an unknown name, ``-32603``
otherwise, with the stable ``code`` in ``data``), except that a tool call that cannot reach
its server answers a tool result with ``isError`` so the model can read why. Unknown methods
are ``-32601``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mcpctl.errors import AppError, InvalidInput
from mcpctl.jsonrpc import protocol
from mcpctl.jsonrpc.asks import Outlet, Tie
from mcpctl.jsonrpc.protocol import JsonObject
from mcpctl.mcplocal.aggregate import Aggregator
from mcpctl.mcplocal.clients import LOG_LEVELS, ClientSession, ClientSessions
from mcpctl.mcplocal.upstreams import ProgressSink, RpcError

log = logging.getLogger(__name__)

SERVER_VERSION = "0.1.0"
Result = JsonObject | bytes
Handler = Callable[[ClientSession, JsonObject, ProgressSink | None, Tie], Awaitable[Result]]
_EMPTY: JsonObject = {}


def capabilities() -> JsonObject:
    return {
        "tools": {"listChanged": True},
        "prompts": {"listChanged": True},
        "resources": {"subscribe": True, "listChanged": True},
        "completions": {},
        "logging": {},
    }


def encode_answer(request_id: Any, result: Result) -> bytes:
    """The JSON-RPC response carrying ``result`` (an object, or one already encoded)."""
    if isinstance(result, bytes):
        return (
            b'{"jsonrpc":"2.0","id":' + protocol.encode(request_id) + b',"result":' + result + b"}"
        )
    return protocol.encode(protocol.result(request_id, result))


class MethodNotFound(Exception):
    pass


class Dispatcher:
    """The request handlers of one project endpoint, routed to its aggregator."""

    def __init__(self, project: str, agg: Aggregator, clients: ClientSessions) -> None:
        self.project = project
        self.agg = agg
        self.clients = clients
        self.subscriptions = clients.subscriptions
        self._handlers: dict[str, Handler] = {
            "ping": self._ping,
            "tools/list": self._tools,
            "tools/call": self._call_tool,
            "prompts/list": self._prompts,
            "prompts/get": self._get_prompt,
            "resources/list": self._resources,
            "resources/templates/list": self._templates,
            "resources/read": self._read_resource,
            "resources/subscribe": self._subscribe,
            "resources/unsubscribe": self._unsubscribe,
            "completion/complete": self._complete,
            "logging/setLevel": self._set_level,
        }

    def initialize(self, params: object) -> tuple[str, JsonObject]:
        """The version this session speaks and the initialize result."""
        requested = params.get("protocolVersion") if isinstance(params, dict) else None
        if isinstance(requested, str) and requested in protocol.SUPPORTED_VERSIONS:
            version = requested
        else:
            version = protocol.LATEST_VERSION
        result = {
            "protocolVersion": version,
            "capabilities": capabilities(),
            "serverInfo": {"name": f"mcplocal/{self.project}", "version": SERVER_VERSION},
            "instructions": f"Tools, prompts and resources of the mcpctl project {self.project!r}.",
        }
        return version, result

    async def answer(
        self,
        session: ClientSession,
        message: JsonObject,
        progress: ProgressSink | None,
        outlet: Outlet | None = None,
    ) -> bytes:
        """The encoded answer to the request ``message`` (never raises for the request's
        own failures; cancellation propagates). A server's requests of the client while it
        runs go to ``outlet`` (the request's own stream), else to the session's stream."""
        request_id = message.get("id")
        method = message.get("method")
        params = message.get("params")
        try:
            handler = self._handlers.get(method) if isinstance(method, str) else None
            if handler is None:
                raise MethodNotFound(method)
            if params is None:
                params = _EMPTY
            elif not isinstance(params, dict):
                raise InvalidInput("params: must be an object")
            tie = session.tie(outlet)
            return encode_answer(request_id, await handler(session, params, progress, tie))
        except MethodNotFound:
            error = protocol.error(request_id, protocol.METHOD_NOT_FOUND, "Method not found")
        except RpcError as exc:
            error = {"jsonrpc": "2.0", "id": request_id, "error": exc.error}
        except AppError as exc:
            error = protocol.error_of(request_id, exc)
        except Exception as exc:  # a handler's top level: never an answer-less request
            log.exception("project %s: %s failed", self.project, method)
            error = protocol.error(
                request_id,
                protocol.INTERNAL_ERROR,
                f"mcplocal failed: {exc.__class__.__name__}",
                {"code": "internal"},
            )
        return protocol.encode(error)

    # -- handlers ----------------------------------------------------------------------

    async def _ping(self, session: ClientSession, params: JsonObject, *_: Any) -> Result:
        return {}

    async def _tools(self, session: ClientSession, params: JsonObject, *_: Any) -> Result:
        return await self.agg.listed("tools")

    async def _prompts(self, session: ClientSession, params: JsonObject, *_: Any) -> Result:
        return await self.agg.listed("prompts")

    async def _resources(self, session: ClientSession, params: JsonObject, *_: Any) -> Result:
        return await self.agg.listed("resources")

    async def _templates(self, session: ClientSession, params: JsonObject, *_: Any) -> Result:
        return await self.agg.listed("templates")

    async def _call_tool(
        self, session: ClientSession, params: JsonObject, progress: ProgressSink | None, tie: Tie
    ) -> Result:
        return await self.agg.call_tool_result(params, progress, tie)

    async def _get_prompt(
        self, session: ClientSession, params: JsonObject, _: Any, tie: Tie
    ) -> Result:
        return await self.agg.get_prompt(params, tie)

    async def _read_resource(
        self, session: ClientSession, params: JsonObject, _: Any, tie: Tie
    ) -> Result:
        return await self.agg.read_resource(params, tie)

    async def _subscribe(self, session: ClientSession, params: JsonObject, *_: Any) -> Result:
        uri = _uri(params)
        if self.subscriptions.add(session, uri):
            try:
                await self.agg.subscribe(uri, True)
            except BaseException:
                self.subscriptions.discard(session, uri)
                raise
        return {}

    async def _unsubscribe(self, session: ClientSession, params: JsonObject, *_: Any) -> Result:
        uri = _uri(params)
        if self.subscriptions.discard(session, uri):
            await self.agg.subscribe(uri, False)
        return {}

    async def _complete(
        self, session: ClientSession, params: JsonObject, _: Any, tie: Tie
    ) -> Result:
        return await self.agg.complete(params, tie)

    async def _set_level(self, session: ClientSession, params: JsonObject, *_: Any) -> Result:
        level = params.get("level")
        if level not in LOG_LEVELS:
            raise InvalidInput(f"params.level: must be one of {', '.join(LOG_LEVELS)}")
        session.log_level = str(level)
        # The servers are shared: they send what the most verbose session asked for, and
        # each session gets only its own level and above (ProjectRuntime.server_log).
        await self.agg.set_logging_level(self.clients.lowest_log_level() or str(level))
        return {}


def _uri(params: JsonObject) -> str:
    uri = params.get("uri")
    if not isinstance(uri, str) or not uri:
        raise InvalidInput("params.uri: must be a non-empty string")
    return uri
