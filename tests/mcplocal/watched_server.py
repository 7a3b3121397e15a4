"""A stdio MCP server of ours with one resource that changes on demand, for resource
subscriptions end to end: ``watched://counter`` can be subscribed to, and the tool ``touch``
bumps it and sends ``notifications/resources/updated`` when someone subscribed. The tool
``log`` sends three ``notifications/message`` (debug, info, error; logger ``watched-logger``).

mcpd runs it with the process runtime (``python watched_server.py``); the mcplocal tests
reach it through mcpd's relay.
"""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server

URI = "watched://counter"
Ctx = ServerRequestContext[Any]


def watched_server() -> Server[Any]:
    state = {"count": 0, "subscribed": False}

    async def list_resources(
        ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[types.Resource(uri=URI, name="counter")])

    async def read_resource(
        ctx: Ctx, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        text = types.TextResourceContents(uri=URI, mime_type="text/plain", text=str(state["count"]))
        return types.ReadResourceResult(contents=[text])

    async def subscribe(ctx: Ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
        state["subscribed"] = True
        return types.EmptyResult()

    async def unsubscribe(ctx: Ctx, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        state["subscribed"] = False
        return types.EmptyResult()

    async def list_tools(
        ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        schema = {"type": "object", "properties": {}}
        tools = [types.Tool(name=name, input_schema=schema) for name in ("touch", "log")]
        return types.ListToolsResult(tools=tools)

    async def call_tool(ctx: Ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        if params.name == "log":
            for level in ("debug", "info", "error"):
                await ctx.session.send_log_message(level, f"a {level} message", "watched-logger")
            return types.CallToolResult(content=[types.TextContent(type="text", text="logged")])
        state["count"] = int(state["count"]) + 1
        if state["subscribed"]:
            await ctx.session.send_resource_updated(URI)
        told = "told the subscribers" if state["subscribed"] else "nobody subscribed"
        text = types.TextContent(type="text", text=f"count {state['count']}; {told}")
        return types.CallToolResult(content=[text])

    return Server(
        "watched",
        version="1.0",
        on_list_resources=list_resources,
        on_read_resource=read_resource,
        on_subscribe_resource=subscribe,
        on_unsubscribe_resource=unsubscribe,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def main() -> None:
    server = watched_server()
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)
