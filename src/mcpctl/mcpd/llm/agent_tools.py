"""The tools an agent offers its LLM: those of its project's servers, named as mcplocal names
them, and the calls the LLM makes of them (docs/agents.md, "Chat").

- Names: ``{server}__{tool}`` (``domain/naming.py``), plain names with the project's
  ``toolPrefix: never``; the servers in the project's order, so that a plain name offered by
  two servers goes to the first, as in mcplocal.
- Listing is mcpd's own work: every tool of the project is offered, whoever chats. A server
  that cannot run is left out of the list for this turn (logged), the chat goes on.
- A call is the caller's: ``run`` on the server is checked first (a denial is audited, no
  call is made, and the LLM gets a tool result saying so); then ``tools/call`` on the server,
  audited as the relay audits it (verb ``call`` on the Server, tool, duration, outcome).
- What the LLM gets back is text: the text parts of the result, other parts as JSON. A
  failure of any kind (unknown tool, arguments that are not a JSON object, denied, the server
  cannot run, a JSON-RPC error, the tool's own ``isError``) is a tool result that starts with
  ``error:``, so the model can tell and go on.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mcpctl.domain.caller import Caller
from mcpctl.domain.naming import NameMap
from mcpctl.errors import AppError, PermissionDenied
from mcpctl.jsonrpc.protocol import JsonObject
from mcpctl.mcpd.instances.connection import RpcError
from mcpctl.mcpd.llm.messages import Tool, ToolCall, arguments_object
from mcpctl.mcpd.llm.server_calls import ServerLinks
from mcpctl.mcpd.relay.audit import CallOutcome, record_call
from mcpctl.mcpd.services.audit import AuditLog
from mcpctl.mcpd.services.authz import Authorizer
from mcpctl.resources.projects import ProjectSpec

log = logging.getLogger(__name__)

MAX_LIST_PAGES = 50
EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


@dataclass(frozen=True)
class AgentTool:
    """One offered tool: the name the LLM sees, and the server and name it comes from."""

    server: str
    name: str
    tool: Tool


@dataclass(frozen=True)
class ToolResult:
    """What a call gave: the text for the LLM (``error: ...`` on failure)."""

    call: ToolCall
    text: str
    is_error: bool
    server: str | None = None
    tool: str | None = None


def result_text(result: JsonObject) -> str:
    """A ``CallToolResult`` as text: text parts as they are, other parts as JSON."""
    parts: list[str] = []
    content = result.get("content")
    for item in content if isinstance(content, list) else []:
        if isinstance(item, dict) and item.get("type") == "text":
            parts.append(str(item.get("text", "")))
        else:
            parts.append(json.dumps(item, ensure_ascii=False))
    if not parts and result.get("structuredContent") is not None:
        parts.append(json.dumps(result["structuredContent"], ensure_ascii=False))
    return "\n".join(parts)


def _as_tool(exposed: str, item: JsonObject) -> Tool:
    schema = item.get("inputSchema")
    return Tool(
        exposed,
        str(item.get("description") or ""),
        schema if isinstance(schema, dict) else EMPTY_SCHEMA,
    )


class Toolbox:
    """The tools of one chat turn and the calls of them; close it when the turn ends."""

    def __init__(
        self,
        links: ServerLinks,
        tools: Sequence[AgentTool],
        authz: Authorizer,
        audit: AuditLog,
    ) -> None:
        self.links = links
        self.tools = {t.tool.name: t for t in tools}
        self.authz = authz
        self.audit = audit

    def offered(self) -> list[Tool]:
        return [t.tool for t in self.tools.values()]

    async def aclose(self) -> None:
        await self.links.aclose()

    async def call(self, caller: Caller, call: ToolCall) -> ToolResult:
        """Run one call the LLM made, as ``caller`` (never raises for the call's failures)."""
        found = self.tools.get(call.name)
        if found is None:
            known = ", ".join(self.tools) or "none"
            return ToolResult(call, f"error: there is no tool {call.name!r} (tools: {known})", True)
        try:
            self.authz.authorize(caller, "run", "servers", found.server)
            arguments = arguments_object(call)
        except (PermissionDenied, ValueError) as exc:
            return ToolResult(call, f"error: not run: {exc}", True, found.server, found.name)
        text, is_error = await self._run(caller, found, arguments)
        return ToolResult(call, text, is_error, found.server, found.name)

    async def _run(
        self, caller: Caller, found: AgentTool, arguments: dict[str, Any]
    ) -> tuple[str, bool]:
        server, name = found.server, found.name
        started = time.perf_counter()
        try:
            link = await self.links.open(server)
            result = await link.request("tools/call", {"name": name, "arguments": arguments})
        except RpcError as exc:
            self._audit(caller, server, name, started, CallOutcome("upstream_error", exc.code))
            return f"error: {exc}", True
        except AppError as exc:
            self._audit(caller, server, name, started, CallOutcome(error=exc))
            return f"error: {exc}", True
        self._audit(caller, server, name, started, CallOutcome.of_answer({"result": result}))
        text = result_text(result)
        if result.get("isError") is True:
            return f"error: {text}", True
        return text, False

    def _audit(
        self, caller: Caller, server: str, tool: str, started: float, outcome: CallOutcome
    ) -> None:
        record_call(self.audit, caller, server, tool, time.perf_counter() - started, outcome)


async def _list(links: ServerLinks, server: str) -> list[JsonObject]:
    """Every tool ``server`` lists (following ``nextCursor``)."""
    link = await links.open(server)
    tools: list[JsonObject] = []
    cursor: object = None
    for _ in range(MAX_LIST_PAGES):
        result = await link.request("tools/list", {"cursor": cursor} if cursor else {})
        listed = result.get("tools")
        tools += [t for t in listed if isinstance(t, dict)] if isinstance(listed, list) else []
        cursor = result.get("nextCursor")
        if not cursor:
            break
    return tools


async def open_toolbox(
    links: ServerLinks, project: ProjectSpec | None, authz: Authorizer, audit: AuditLog
) -> Toolbox:
    """The tools of ``project``'s servers (none without a project)."""
    names = NameMap(prefix=project is not None and project.toolPrefix != "never")
    tools: list[AgentTool] = []
    for server in project.servers if project is not None else []:
        try:
            listed = await _list(links, server)
        except (AppError, RpcError) as exc:
            log.warning("agent chat: the tools of server %s are left out: %s", server, exc)
            continue
        for item in listed:
            original = item.get("name")
            if isinstance(original, str) and (exposed := names.add(server, original)):
                tools.append(AgentTool(server, original, _as_tool(exposed, item)))
    return Toolbox(links, tools, authz, audit)
