"""The echo server of bench/echo_server.py without the SDK: the standard library only.

``python bench/lean_echo_server.py [--tools N] [--http PORT]`` speaks newline-delimited
JSON-RPC on stdio, or with ``--http`` the least of streamable HTTP (one JSON answer per
POST on kept-alive connections; no event streams) on 127.0.0.1:PORT:
``initialize``, ``ping``, ``tools/list`` (``echo`` and N-1 filler tools) and ``tools/call``
of ``echo``. It starts in tens of milliseconds, where importing the SDK takes about half a
second of CPU: the cold-start benchmark uses it to time mcpctl's own start-up work, not
Python's imports (the SDK server's rows stay next to it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"message": {"type": "string", "description": "What to send back."}},
    "required": ["message"],
}


def tools(count: int) -> list[dict[str, Any]]:
    listed = [{"name": "echo", "description": "Answer the message.", "inputSchema": SCHEMA}]
    listed += [
        {"name": f"tool_{i:03d}", "description": f"Filler tool {i}.", "inputSchema": SCHEMA}
        for i in range(1, count)
    ]
    return listed


def answer(message: dict[str, Any], listing: dict[str, Any]) -> dict[str, Any] | None:
    method = message.get("method")
    if "id" not in message or method is None:
        return None
    result: dict[str, Any]
    if method == "initialize":
        requested = message.get("params", {}).get("protocolVersion", "2025-06-18")
        result = {
            "protocolVersion": requested,
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "bench-lean-echo", "version": "1.0"},
        }
    elif method == "ping":
        result = {}
    elif method == "tools/list":
        result = listing
    elif method == "tools/call":
        text = str(message.get("params", {}).get("arguments", {}).get("message", ""))
        result = {"content": [{"type": "text", "text": text}]}
    else:
        error = {"code": -32601, "message": "Method not found"}
        return {"jsonrpc": "2.0", "id": message["id"], "error": error}
    return {"jsonrpc": "2.0", "id": message["id"], "result": result}


async def serve_http(port: int, listing: dict[str, Any]) -> None:
    """Answer POSTs with JSON until killed: a server that costs next to nothing, so that
    what a client spends on streamable HTTP itself shows (mcp_overhead.py)."""

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while request := await reader.readline():
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            reply = answer(json.loads(body), listing) if request.startswith(b"POST") else None
            if reply is None:
                status = b"202 Accepted" if request.startswith(b"POST") else b"405 Not Allowed"
                writer.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\n\r\n")
            else:
                out = json.dumps(reply).encode()
                head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                head += b"mcp-session-id: lean\r\ncontent-length: %d\r\n\r\n" % len(out)
                writer.write(head + out)
            await writer.drain()

    server = await asyncio.start_server(session, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tools", type=int, default=1)
    parser.add_argument("--http", type=int, metavar="PORT")
    args = parser.parse_args()
    listing = {"tools": tools(args.tools)}
    if args.http:
        asyncio.run(serve_http(args.http, listing))
        return
    for line in sys.stdin:
        if not line.strip():
            continue
        reply = answer(json.loads(line), listing)
        if reply is not None:
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
