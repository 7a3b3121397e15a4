"""A fast OpenAI-compatible backend for the gateway benchmark: the standard library only.

``python bench/fast_llm_backend.py --port P [--stream-ms MS]`` answers
``POST /v1/chat/completions`` with the same short completion every time, whole (JSON with
Content-Length) or streamed (``stream: true``: server-sent events in a chunked body: the role
chunk, one chunk per word, the finish chunk, a usage chunk when ``stream_options`` asks, and
``data: [DONE]``), on kept-alive connections; ``GET /v1/models`` and ``GET /healthz`` too, and
``GET /stats``: the connections and requests it has taken so far.

It costs tens of microseconds per request, so that a gateway's overhead in front of it shows.
``--stream-ms`` makes each stream take that long (spread evenly before its words, as a model
generates them): a backend whose limit is known, for the throughput measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

WORDS = ("Hello", " from", " the", " fast", " backend.")
TEXT = "".join(WORDS)
MODEL = "fast-model"
USAGE = {"prompt_tokens": 9, "completion_tokens": len(WORDS), "total_tokens": 9 + len(WORDS)}


def _completion() -> bytes:
    body = {
        "id": "chatcmpl-fast",
        "object": "chat.completion",
        "created": 0,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": TEXT},
                "finish_reason": "stop",
            }
        ],
        "usage": USAGE,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    event = {
        "id": "chatcmpl-fast",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return _framed(b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n")


def _framed(data: bytes) -> bytes:
    """One piece of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


COMPLETION = _completion()
JSON_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    % len(COMPLETION)
)
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
ROLE = _chunk({"role": "assistant", "content": ""})
PIECES = [_chunk({"content": word}) for word in WORDS]
FINISH = _chunk({}, "stop")
USAGE_CHUNK = _framed(
    b"data: "
    + json.dumps(
        {"id": "chatcmpl-fast", "object": "chat.completion.chunk", "created": 0, "model": MODEL}
        | {"choices": [], "usage": USAGE},
        separators=(",", ":"),
    ).encode()
    + b"\n\n"
)
DONE = _framed(b"data: [DONE]\n\n") + b"0\r\n\r\n"
MODELS = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode()
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


class Backend:
    def __init__(self, stream_seconds: float) -> None:
        self.pause = stream_seconds / len(WORDS)
        self.connections = 0
        self.requests = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, _, fields = head.partition(b"\r\n")
                length = 0
                for line in fields.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b""
                await self.answer(request_line, body, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def answer(self, request_line: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
        method, target, _ = request_line.split(b" ", 2)
        self.requests += 1
        if method == b"POST" and target == b"/v1/chat/completions":
            request = json.loads(body)
            if not request.get("stream"):
                writer.write(JSON_HEAD + COMPLETION)
                return
            await self.stream(
                writer, bool((request.get("stream_options") or {}).get("include_usage"))
            )
        elif method == b"GET" and target in (b"/v1/models", b"/healthz", b"/stats"):
            data = MODELS if target == b"/v1/models" else b"ok"
            if target == b"/stats":
                stats = {"connections": self.connections, "requests": self.requests}
                data = json.dumps(stats).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (len(data), data)
            )
        else:
            writer.write(NOT_FOUND)

    async def stream(self, writer: asyncio.StreamWriter, usage: bool) -> None:
        writer.write(SSE_HEAD + ROLE)
        for piece in PIECES:
            if self.pause:
                await writer.drain()
                await asyncio.sleep(self.pause)
            writer.write(piece)
        writer.write(FINISH + USAGE_CHUNK + DONE if usage else FINISH + DONE)
        await writer.drain()


async def main(port: int, stream_seconds: float) -> None:
    backend = Backend(stream_seconds)
    server = await asyncio.start_server(backend.serve, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--stream-ms", type=float, default=0.0, help="How long each stream takes.")
    args = parser.parse_args()
    try:
        asyncio.run(main(args.port, args.stream_ms / 1000))
    except KeyboardInterrupt:
        sys.exit(0)
