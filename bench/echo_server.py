"""A tiny stdio MCP server for the MCP benchmarks, on the SDK's low-level ``Server``.

``python bench/echo_server.py [--tools N]``: the tool ``echo`` (answers its ``message``) and
N-1 more tools (``tool_001`` ...) that only fill ``tools/list``. Everything is computed once,
so the server's own share of a call is as small as the SDK allows.
"""

from __future__ import annotations

import argparse
from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"message": {"type": "string", "description": "What to send back."}},
    "required": ["message"],
}


def echo_server(tool_count: int) -> Server[Any]:
    tools = [types.Tool(name="echo", description="Answer the message.", input_schema=SCHEMA)]
    tools += [
        types.Tool(name=f"tool_{i:03d}", description=f"Filler tool {i}.", input_schema=SCHEMA)
        for i in range(1, tool_count)
    ]
    listing = types.ListToolsResult(tools=tools)
    schemas = {tool.name: SCHEMA for tool in tools}

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return listing

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        message = str((params.arguments or {}).get("message", ""))
        return types.CallToolResult(content=[types.TextContent(type="text", text=message)])

    return Server(
        "bench-echo",
        version="1.0",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        get_tool_input_schema=schemas.get,
    )


async def serve(tool_count: int) -> None:
    server = echo_server(tool_count)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tools", type=int, default=1, help="How many tools (default 1: echo).")
    anyio.run(serve, parser.parse_args().tools)
