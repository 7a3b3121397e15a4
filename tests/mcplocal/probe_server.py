"""A small MCP server of ours over stdio, for what the real servers cannot show: a tool that
reports progress and records its own cancellation, and one that fails with a custom code.

mcpd runs it with the process runtime like any server (``python probe_server.py``); the
mcplocal tests reach it through mcpd's relay.
"""

from __future__ import annotations

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError

PROBE_ERROR_CODE = -31001  # outside JSON-RPC's reserved range


def probe_server() -> MCPServer:
    server = MCPServer("probe", version="1.0")
    cancelled = anyio.Event()

    @server.tool(description="Sleep, reporting progress first; records being cancelled.")
    async def sleep(seconds: float, ctx: Context) -> str:
        await ctx.report_progress(1, 2, "started")
        try:
            await anyio.sleep(seconds)
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise
        return "slept"

    @server.tool(description="Whether a sleep was cancelled, waiting up to `wait` seconds.")
    async def was_cancelled(wait: float) -> bool:
        with anyio.move_on_after(wait):
            await cancelled.wait()
        return cancelled.is_set()

    @server.tool(description="Always fails with a protocol error of its own code.")
    async def fail() -> str:
        raise MCPError(PROBE_ERROR_CODE, "probe failed on purpose", {"reason": "test"})

    return server


if __name__ == "__main__":
    probe_server().run()
