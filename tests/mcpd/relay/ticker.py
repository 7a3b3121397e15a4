"""A stdio MCP server that speaks on its own, for the relay's notification streams across
instance restarts.

Run as ``python ticker.py``. Raw JSON-RPC over stdin/stdout (threads, no SDK, so it starts in
tens of milliseconds). Once initialized, every 50 ms it sends a logging message whose data
names its pid and the tick, ``notifications/tools/list_changed``, and
``notifications/resources/updated`` for each URI it is subscribed to. Tools: ``pid`` (its
process id) and ``crash`` (exits at once, mid-call). One resource: ``ticker://clock``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

CLOCK = "ticker://clock"
_write_lock = threading.Lock()
_subscribed: set[str] = set()
_ticking = threading.Event()


def send(message: dict[str, Any]) -> None:
    with _write_lock:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


def notify(method: str, params: dict[str, Any] | None = None) -> None:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    send(message)


def tick() -> None:
    count = 0
    while True:
        count += 1
        data = {"pid": os.getpid(), "tick": count}
        notify("notifications/message", {"level": "info", "logger": "ticker", "data": data})
        notify("notifications/tools/list_changed")
        for uri in sorted(_subscribed):
            notify("notifications/resources/updated", {"uri": uri})
        time.sleep(0.05)


def answer(method: str, params: dict[str, Any]) -> dict[str, Any]:
    if method == "initialize":
        return {
            "protocolVersion": params["protocolVersion"],
            "capabilities": {
                "tools": {"listChanged": True},
                "resources": {"subscribe": True},
                "logging": {},
            },
            "serverInfo": {"name": "ticker", "version": "1.0"},
        }
    if method == "tools/list":
        return {"tools": [{"name": t, "inputSchema": {"type": "object"}} for t in ("pid", "crash")]}
    if method == "tools/call":
        if params.get("name") == "crash":
            os._exit(3)
        return {"content": [{"type": "text", "text": str(os.getpid())}], "isError": False}
    if method == "resources/list":
        return {"resources": [{"uri": CLOCK, "name": "clock"}]}
    if method == "resources/subscribe":
        _subscribed.add(str(params.get("uri")))
    elif method == "resources/unsubscribe":
        _subscribed.discard(str(params.get("uri")))
    return {}


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        message = json.loads(line)
        method = message.get("method")
        if method == "notifications/initialized" and not _ticking.is_set():
            _ticking.set()
            threading.Thread(target=tick, daemon=True).start()
        if method is None or "id" not in message:
            continue
        result = answer(str(method), message.get("params") or {})
        send({"jsonrpc": "2.0", "id": message["id"], "result": result})


if __name__ == "__main__":
    main()
