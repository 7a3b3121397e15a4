"""The echo server of bench/echo_server.py without the SDK: the standard library only.

``python bench/lean_echo_server.py [--tools N]`` speaks newline-delimited JSON-RPC on stdio:
``initialize``, ``ping``, ``tools/list`` (``echo`` and N-1 filler tools) and ``tools/call``
of ``echo``. It starts in tens of milliseconds, where importing the SDK takes about half a
second of CPU: the cold-start benchmark uses it to time mcpctl's own start-up work, not
Python's imports (the SDK server's rows stay next to it).
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tools", type=int, default=1)
    listing = {"tools": tools(parser.parse_args().tools)}
    for line in sys.stdin:
        if not line.strip():
            continue
        reply = answer(json.loads(line), listing)
        if reply is not None:
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
