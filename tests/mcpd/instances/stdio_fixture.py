"""A small stdio MCP server for the faults real servers do not produce on demand.

Run as ``python stdio_fixture.py [--say TEXT] [--spawn-at-start] [--crash-at-start CODE]``. Raw JSON-RPC over
stdin/stdout (threads, no SDK, so it starts in tens of milliseconds). Tools:

- ``echo {text}``: the text back.
- ``progress {steps}``: one ``notifications/progress`` per step for the request's token.
- ``hang``: never answers; on ``notifications/cancelled`` prints ``cancelled <id>`` to stderr.
- ``crash {code}``: exits at once with ``code`` (mid-call).
- ``pid``: its process id. ``spawn``: starts a ``sleep`` grandchild, returns its pid.
- ``ask {methods}``: sends ``tools/list_changed``, then the server-to-client requests
  ``methods`` (default ping, sampling/createMessage and roots/list; params from ``ASKED``),
  and returns the answers it got, as JSON text; each answer also goes to stderr as
  ``answered METHOD: JSON``.
- ``client``: the client capabilities its ``initialize`` declared, as JSON text.
- ``env {name}``: prints ``NAME=value`` of its environment to stderr.
- ``getenv {name}``: the value of that environment variable (empty if unset).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

_write_lock = threading.Lock()
_cancelled: dict[Any, threading.Event] = {}
_answers: dict[Any, dict[str, Any]] = {}
_answered = threading.Condition()
_client: dict[str, Any] = {}
ASKED: dict[str, dict[str, Any]] = {
    "sampling/createMessage": {
        "messages": [{"role": "user", "content": {"type": "text", "text": "2+2?"}}],
        "maxTokens": 10,
    },
    "elicitation/create": {
        "message": "Your name?",
        "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}},
    },
}


def send(message: dict[str, Any]) -> None:
    with _write_lock:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


def text_result(text: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": False}


def spawn_sleeper() -> int:
    """A grandchild in the same process group, holding none of our pipes."""
    devnull = subprocess.DEVNULL
    child = subprocess.Popen(["sleep", "600"], stdin=devnull, stdout=devnull, stderr=devnull)
    return child.pid


def ask_client(method: str, request_id: str) -> dict[str, Any]:
    send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": ASKED.get(method, {})})
    with _answered:
        _answered.wait_for(lambda: request_id in _answers, timeout=30)
        answer = _answers.pop(request_id, {"missing": True})
    sys.stderr.write(f"answered {method}: {json.dumps(answer)}\n")
    sys.stderr.flush()
    return answer


ANSWERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "echo": lambda args: str(args.get("text", "")),
    "pid": lambda _: str(os.getpid()),
    "spawn": lambda _: str(spawn_sleeper()),
    "client": lambda _: json.dumps(_client),
    "getenv": lambda args: os.environ.get(str(args.get("name")), ""),
}


def call_tool(request_id: Any, params: dict[str, Any]) -> dict[str, Any] | None:
    name = params.get("name")
    args = params.get("arguments") or {}
    token = (params.get("_meta") or {}).get("progressToken")
    if name in ANSWERS:
        return text_result(ANSWERS[name](args))
    if name == "progress":
        steps = int(args.get("steps", 3))
        for i in range(1, steps + 1):
            if token is not None:
                progress = {"progressToken": token, "progress": i, "total": steps}
                send({"jsonrpc": "2.0", "method": "notifications/progress", "params": progress})
        return text_result(f"{steps} steps")
    if name == "hang":
        event = _cancelled.setdefault(request_id, threading.Event())
        event.wait()
        sys.stderr.write(f"cancelled {request_id}\n")
        sys.stderr.flush()
        return None
    if name == "crash":
        sys.stderr.write("crashing on purpose\n")
        sys.stderr.flush()
        os._exit(int(args.get("code", 3)))
    if name == "ask":
        send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
        methods = args.get("methods") or ("ping", "sampling/createMessage", "roots/list")
        answers = {method: ask_client(method, f"ask-{method}-{request_id}") for method in methods}
        return text_result(json.dumps(answers))
    if name == "env":
        var = str(args.get("name"))
        sys.stderr.write(f"{var}={os.environ.get(var, '')}\n")
        sys.stderr.flush()
        return text_result("printed")
    return {"content": [{"type": "text", "text": f"unknown tool {name}"}], "isError": True}


def handle(message: dict[str, Any]) -> None:
    method = message.get("method")
    request_id = message.get("id")
    if method is None:
        with _answered:
            _answers[request_id] = message
            _answered.notify_all()
        return
    if method == "notifications/cancelled":
        target = (message.get("params") or {}).get("requestId")
        _cancelled.setdefault(target, threading.Event()).set()
        return
    if request_id is None:
        return
    if method == "initialize":
        _client.update(message["params"].get("capabilities") or {})
        result: dict[str, Any] | None = {
            "protocolVersion": message["params"]["protocolVersion"],
            "capabilities": {"tools": {"listChanged": True}},
            "serverInfo": {"name": "stdio-fixture", "version": "1.0"},
            "instructions": "A fixture.",
        }
    elif method == "tools/list":
        tools = [
            *("echo", "progress", "hang", "crash", "pid", "spawn", "ask", "client", "env"),
            "getenv",
        ]
        result = {"tools": [{"name": t, "inputSchema": {"type": "object"}} for t in tools]}
    elif method == "tools/call":
        result = call_tool(request_id, message.get("params") or {})
    elif method == "ping":
        result = {}
    else:
        error = {"code": -32601, "message": f"method not found: {method}"}
        send({"jsonrpc": "2.0", "id": request_id, "error": error})
        return
    if result is not None:
        send({"jsonrpc": "2.0", "id": request_id, "result": result})


def main() -> None:
    argv = sys.argv[1:]
    if "--say" in argv:
        sys.stderr.write(argv[argv.index("--say") + 1] + "\n")
        sys.stderr.flush()
    if "--spawn-at-start" in argv:
        sys.stderr.write(f"child {spawn_sleeper()}\n")
        sys.stderr.flush()
    if "--crash-at-start" in argv:
        os._exit(int(argv[argv.index("--crash-at-start") + 1]))
    for line in sys.stdin:
        if line.strip():
            message = json.loads(line)
            threading.Thread(target=handle, args=(message,), daemon=True).start()


if __name__ == "__main__":
    main()
