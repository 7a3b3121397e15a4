"""A scripted, fault-injecting LLM backend: a raw ASGI app served by uvicorn on a loopback
port, in the test's event loop. It speaks OpenAI chat completions (``POST /v1/chat/completions``)
and Anthropic messages (``POST /v1/messages``), streamed or not as each request asks, so the
adapters, the dispatcher's failover and the OpenAI-compatible endpoint can all be driven
through every failure a real server will not produce on demand.

Each request takes the next behaviour from the backend's script (``default`` once the script
is empty) and is recorded in ``requests`` (and in a ``ledger`` shared by several backends), so
a test can assert exactly which backend served, in which order, and what it was asked::

    ledger: list[Served] = []
    async with (
        serve_backend(FaultyBackend("a", [Fail(503)], ledger=ledger)) as a,
        serve_backend(FaultyBackend("b", ledger=ledger)) as b,
    ):
        ...  # point members at a.url and b.url
    assert [s.backend for s in ledger] == ["a", "b"]

Behaviours: ``Ok`` (text and/or tool calls), ``Fail`` (an error status with the dialect's error
body and any headers, e.g. ``rate_limited("2")``), ``Drop`` (the connection is cut after
``after`` content chunks; before the body's end for a JSON answer), ``Stall`` (nothing for a
while, before the first byte or after ``after`` chunks, then the ``Ok`` answer), ``ErrorEvent``
(an in-stream error after ``after`` chunks), ``Garbage`` (a 200 that is not the API) and
``Raw`` (exact bytes).
"Content chunks" are the ones that carry text or tool-call pieces: the OpenAI role preamble and
Anthropic's message_start/ping do not count, so ``Drop(after=0)`` cuts a stream before the
caller could have seen anything. ``refused_url()`` gives a URL where connections are refused.
``serve_backend(backend, tls=ca)`` serves it over https with a certificate of that test CA
(``tests/http11/certs.py``), for ``localhost``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import uvicorn

from tests.http11.certs import LocalCA
from tests.ready_server import ReadyServer

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Dialect = Literal["openai", "anthropic"]

START_TIMEOUT = 10.0
WAIT = 5.0  # bound of every wait on the backend's events
PATHS: dict[str, Dialect] = {"/v1/chat/completions": "openai", "/v1/messages": "anthropic"}
ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


# -- behaviours ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeCall:
    """A tool call the backend answers with; ``arguments`` is JSON text, streamed in pieces."""

    name: str
    arguments: str = "{}"
    id: str | None = None


@dataclass(frozen=True)
class Ok:
    """A good answer. ``finish`` is the dialect's own reason (default: stop, or tool calls);
    usage is reported as ``prompt_tokens`` and one completion token per content chunk."""

    text: str = "Hello from the faulty backend."
    tool_calls: tuple[FakeCall, ...] = ()
    finish: str | None = None
    prompt_tokens: int = 11


@dataclass(frozen=True)
class Fail:
    """An error status before anything else, with the dialect's error body."""

    status: int
    message: str = "injected failure"
    headers: Mapping[str, str] = field(default_factory=dict)


def rate_limited(retry_after: str = "2") -> Fail:
    return Fail(429, "rate limited", {"retry-after": retry_after})


@dataclass(frozen=True)
class Drop:
    """Cut the connection after ``after`` content chunks (a JSON answer: halfway through)."""

    after: int = 1
    answer: Ok = field(default_factory=Ok)


@dataclass(frozen=True)
class Stall:
    """Send nothing for ``seconds`` (``None``: until the client leaves), before the response
    starts (``after`` None, or a JSON answer) or after ``after`` content chunks of a stream;
    then ``answer`` if the client is still there."""

    seconds: float | None = None
    after: int | None = None
    answer: Ok = field(default_factory=Ok)


@dataclass(frozen=True)
class ErrorEvent:
    """A stream that sends ``after`` content chunks, then an error event for ``status`` (a JSON
    answer: that status at once, as ``Fail``)."""

    after: int = 1
    status: int = 500
    message: str = "injected stream error"
    answer: Ok = field(default_factory=Ok)


@dataclass(frozen=True)
class Garbage:
    """A 200 whose body (or, streamed, whose first event) is not JSON."""


@dataclass(frozen=True)
class Raw:
    """Exactly these bytes with this status and content type (for wire details: CRLF lines,
    multi-line data, comments...)."""

    body: bytes
    content_type: str = "text/event-stream"
    status: int = 200


Behaviour = Ok | Fail | Drop | Stall | ErrorEvent | Garbage | Raw


@dataclass(frozen=True)
class Served:
    """One request the backend served: who, in what order, what was asked, what it did."""

    backend: str
    number: int  # 1, 2, ... per backend
    dialect: Dialect
    headers: dict[str, str]
    body: Any
    behaviour: Behaviour
    peer_port: int = 0  # the client's port: which connection carried the request

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and bool(self.body.get("stream"))


class Dropped(Exception):
    """Raised by the app to make uvicorn cut the connection mid-answer."""


# -- the app ---------------------------------------------------------------------------------


class FaultyBackend:
    """The ASGI app; ``url`` (OpenAI base) and ``anthropic_url`` once ``serve_backend`` runs."""

    def __init__(
        self,
        name: str = "backend",
        script: Iterable[Behaviour] = (),
        *,
        default: Behaviour | None = None,
        ledger: list[Served] | None = None,
    ) -> None:
        self.name = name
        self.script: deque[Behaviour] = deque(script)
        self.default: Behaviour = default if default is not None else Ok()
        self.requests: list[Served] = []
        self.ledger = ledger
        self.port: int | None = None
        self.origin = "http://127.0.0.1"
        # Numbers of the requests whose client went away while the backend held its answer.
        self.departed: list[int] = []
        self._departure = anyio.Event()

    @property
    def anthropic_url(self) -> str:
        assert self.port is not None, "the backend is not served"
        return f"{self.origin}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.anthropic_url}/v1"

    def then(self, *behaviours: Behaviour) -> None:
        self.script.extend(behaviours)

    async def wait_departure(self, number: int) -> None:
        """Until the client of request ``number`` has gone away during a ``Stall``."""
        with anyio.fail_after(WAIT):
            while number not in self.departed:
                await self._departure.wait()

    def _departed(self, number: int) -> None:
        self.departed.append(number)
        departure, self._departure = self._departure, anyio.Event()
        departure.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        dialect = PATHS.get(scope["path"])
        if scope["method"] == "GET" and scope["path"] == "/v1/models":
            await _json(
                send, 200, {"object": "list", "data": [{"id": "faulty", "object": "model"}]}
            )
            return
        if dialect is None or scope["method"] != "POST":
            await _json(send, 404, {"error": {"message": f"no route {scope['path']}"}})
            return
        behaviour = self.script.popleft() if self.script else self.default
        served = Served(
            self.name,
            len(self.requests) + 1,
            dialect,
            {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
            json.loads(body) if body else None,
            behaviour,
            (scope.get("client") or ("", 0))[1],
        )
        self.requests.append(served)
        if self.ledger is not None:
            self.ledger.append(served)
        await _Reply(served, receive, send, self._departed).run()


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _json(
    send: Send, status: int, body: Any, headers: Mapping[str, str] | None = None
) -> None:
    data = json.dumps(body).encode()
    extra = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *extra],
        }
    )
    await send({"type": "http.response.body", "body": data})


class _Reply:
    """Carries out one behaviour for one request."""

    def __init__(
        self, served: Served, receive: Receive, send: Send, departed: Callable[[int], None]
    ) -> None:
        self.served = served
        self.departed = departed
        self.receive = receive
        self.send = send
        self.render = _OpenAI(served) if served.dialect == "openai" else _Anthropic(served)

    async def run(self) -> None:
        b = self.served.behaviour
        if isinstance(b, Fail):
            await _json(self.send, b.status, self.render.error(b.status, b.message), b.headers)
        elif isinstance(b, Garbage):
            await self._garbage()
        elif isinstance(b, Raw):
            await self.send(
                {
                    "type": "http.response.start",
                    "status": b.status,
                    "headers": [(b"content-type", b.content_type.encode())],
                }
            )
            await self.send({"type": "http.response.body", "body": b.body})
        elif isinstance(b, ErrorEvent) and not self.served.stream:
            await _json(self.send, b.status, self.render.error(b.status, b.message))
        elif isinstance(b, Stall) and (b.after is None or not self.served.stream):
            if await self._hold(b.seconds):
                await self._answer(b.answer)
        else:
            await self._answer(b)

    async def _answer(self, b: Ok | Drop | Stall | ErrorEvent) -> None:
        ok = b if isinstance(b, Ok) else b.answer
        if not self.served.stream:
            body = json.dumps(self.render.whole(ok)).encode()
            if isinstance(b, Drop):
                await self._start(
                    "application/json", [(b"content-length", str(len(body)).encode())]
                )
                await self.send(
                    {
                        "type": "http.response.body",
                        "body": body[: len(body) // 2],
                        "more_body": True,
                    }
                )
                raise Dropped
            await _json(self.send, 200, self.render.whole(ok))
            return
        await self._start("text/event-stream")
        content = 0
        for event, counts in self.render.events(ok):
            if counts and isinstance(b, Drop | Stall | ErrorEvent) and content == b.after:
                if isinstance(b, Drop):
                    raise Dropped
                if isinstance(b, ErrorEvent):
                    await self._chunk(self.render.error_event(b.status, b.message))
                    await self._end()
                    return
                if not await self._hold(b.seconds):
                    return
            content += counts
            await self._chunk(event)
        await self._end()

    async def _garbage(self) -> None:
        if not self.served.stream:
            await self._start("application/json")
            await self.send({"type": "http.response.body", "body": b"this is not JSON"})
            return
        await self._start("text/event-stream")
        await self._chunk(b"data: {this is not JSON\n\n")
        await self._end()

    async def _hold(self, seconds: float | None) -> bool:
        """Wait ``seconds`` (forever if None); False if the client went away first."""
        with anyio.move_on_after(seconds):
            while (await self.receive())["type"] != "http.disconnect":
                pass
            self.departed(self.served.number)
            return False
        return True

    async def _start(self, content_type: str, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
        await self.send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", content_type.encode()), *headers],
            }
        )

    async def _chunk(self, data: bytes) -> None:
        await self.send({"type": "http.response.body", "body": data, "more_body": True})

    async def _end(self) -> None:
        await self.send({"type": "http.response.body", "body": b""})


def _pieces(text: str) -> list[str]:
    """Text as a model streams it: word by word, each with its leading space."""
    return re.findall(r"\s*\S+", text) or ([text] if text else [])


def _fragments(arguments: str) -> list[str]:
    """Arguments in three pieces, as models stream them."""
    third = max(-(-len(arguments) // 3), 1)
    return [arguments[i : i + third] for i in range(0, len(arguments), third)]


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


class _OpenAI:
    def __init__(self, served: Served) -> None:
        self.served = served
        self.model = (served.body or {}).get("model", "faulty")
        self.id = f"chatcmpl-{served.backend}-{served.number}"

    def _call_id(self, index: int, call: FakeCall) -> str:
        return call.id or f"call_{self.served.backend}_{self.served.number}_{index}"

    def _finish(self, ok: Ok) -> str:
        return ok.finish or ("tool_calls" if ok.tool_calls else "stop")

    def _usage(self, ok: Ok) -> dict[str, int]:
        completion = len(_pieces(ok.text)) + sum(
            len(_fragments(c.arguments)) for c in ok.tool_calls
        )
        return {
            "prompt_tokens": ok.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": ok.prompt_tokens + completion,
        }

    def error(self, status: int, message: str) -> Any:
        return {"error": {"message": message, "type": "faulty_error", "param": None, "code": None}}

    def whole(self, ok: Ok) -> Any:
        message: dict[str, Any] = {"role": "assistant", "content": ok.text or None}
        if ok.tool_calls:
            message["tool_calls"] = [
                {
                    "id": self._call_id(i, c),
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for i, c in enumerate(ok.tool_calls)
            ]
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": 0,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self._finish(ok)}],
            "usage": self._usage(ok),
        }

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return _sse(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": 0,
                "model": self.model,
                "choices": [choice],
            }
        )

    def events(self, ok: Ok) -> Iterator[tuple[bytes, int]]:
        """(event, 1 if it carries content else 0), in order."""
        yield self._chunk({"role": "assistant", "content": ""}), 0
        for piece in _pieces(ok.text):
            yield self._chunk({"content": piece}), 1
        for i, call in enumerate(ok.tool_calls):
            head = {"index": i, "id": self._call_id(i, call), "type": "function"}
            for n, fragment in enumerate(_fragments(call.arguments)):
                function = (
                    {"name": call.name, "arguments": fragment}
                    if n == 0
                    else {"arguments": fragment}
                )
                yield (
                    self._chunk(
                        {
                            "tool_calls": [
                                {**(head if n == 0 else {"index": i}), "function": function}
                            ]
                        }
                    ),
                    1,
                )
        yield self._chunk({}, self._finish(ok)), 0
        if ((self.served.body or {}).get("stream_options") or {}).get("include_usage"):
            usage = {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": 0,
                "model": self.model,
                "choices": [],
                "usage": self._usage(ok),
            }
            yield _sse(usage), 0
        yield b"data: [DONE]\n\n", 0

    def error_event(self, status: int, message: str) -> bytes:
        return _sse({"error": {"message": message, "type": "server_error", "code": status}})


class _Anthropic:
    def __init__(self, served: Served) -> None:
        self.served = served
        self.model = (served.body or {}).get("model", "faulty")
        self.id = f"msg_{served.backend}_{served.number}"

    def _call_id(self, index: int, call: FakeCall) -> str:
        return call.id or f"toolu_{self.served.backend}_{self.served.number}_{index}"

    def _stop(self, ok: Ok) -> str:
        return ok.finish or ("tool_use" if ok.tool_calls else "end_turn")

    def _output_tokens(self, ok: Ok) -> int:
        return len(_pieces(ok.text)) + sum(len(_fragments(c.arguments)) for c in ok.tool_calls)

    def error(self, status: int, message: str) -> Any:
        kind = ANTHROPIC_ERRORS.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}

    def whole(self, ok: Ok) -> Any:
        content: list[dict[str, Any]] = [{"type": "text", "text": ok.text}] if ok.text else []
        content += [
            {
                "type": "tool_use",
                "id": self._call_id(i, c),
                "name": c.name,
                "input": json.loads(c.arguments or "{}"),
            }
            for i, c in enumerate(ok.tool_calls)
        ]
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": self._stop(ok),
            "stop_sequence": None,
            "usage": {"input_tokens": ok.prompt_tokens, "output_tokens": self._output_tokens(ok)},
        }

    def events(self, ok: Ok) -> Iterator[tuple[bytes, int]]:
        message = {**self.whole(ok), "content": [], "stop_reason": None}
        message["usage"] = {"input_tokens": ok.prompt_tokens, "output_tokens": 1}
        yield _sse({"type": "message_start", "message": message}, "message_start"), 0
        yield _sse({"type": "ping"}, "ping"), 0
        index = 0
        if ok.text:
            yield self._block_start(index, {"type": "text", "text": ""}), 0
            for piece in _pieces(ok.text):
                yield self._delta(index, {"type": "text_delta", "text": piece}), 1
            yield _sse({"type": "content_block_stop", "index": index}, "content_block_stop"), 0
            index += 1
        for i, call in enumerate(ok.tool_calls):
            block = {
                "type": "tool_use",
                "id": self._call_id(i, call),
                "name": call.name,
                "input": {},
            }
            yield self._block_start(index, block), 0
            yield self._delta(index, {"type": "input_json_delta", "partial_json": ""}), 0
            for fragment in _fragments(call.arguments):
                yield self._delta(index, {"type": "input_json_delta", "partial_json": fragment}), 1
            yield _sse({"type": "content_block_stop", "index": index}, "content_block_stop"), 0
            index += 1
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": self._stop(ok), "stop_sequence": None},
            "usage": {"output_tokens": self._output_tokens(ok)},
        }
        yield _sse(delta, "message_delta"), 0
        yield _sse({"type": "message_stop"}, "message_stop"), 0

    def _block_start(self, index: int, block: dict[str, Any]) -> bytes:
        return _sse(
            {"type": "content_block_start", "index": index, "content_block": block},
            "content_block_start",
        )

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        return _sse(
            {"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta"
        )

    def error_event(self, status: int, message: str) -> bytes:
        return _sse(self.error(status, message), "error")


# -- serving ---------------------------------------------------------------------------------


class _Uvicorn(ReadyServer):
    """uvicorn that says when it is ready and stops when told, without its 100 ms polling."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.stopping = anyio.Event()

    async def main_loop(self) -> None:
        await self.on_tick(0)  # sets the default response headers
        await self.stopping.wait()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop at once: a test backend has nothing worth finishing, and uvicorn's graceful
        shutdown spends at least 100 ms per backend."""
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        for task in list(self.server_state.tasks):
            task.cancel()


class _QuietDrops(logging.Filter):
    """Keeps uvicorn from logging a traceback for each connection a ``Drop`` cuts on purpose,
    and for each answer still running when the backend stops."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.exc_info and isinstance(record.exc_info[1], Dropped | asyncio.CancelledError)
        )


@asynccontextmanager
async def serve_backend(
    backend: FaultyBackend, *, tls: LocalCA | None = None
) -> AsyncIterator[FaultyBackend]:
    """``backend`` served on a free loopback port in this event loop until the block ends
    (over https with ``tls``'s server certificate, as ``https://localhost:PORT``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    backend.port = sock.getsockname()[1]
    backend.origin = "https://localhost" if tls else "http://127.0.0.1"
    config = uvicorn.Config(
        backend,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
        ssl_certfile=tls.cert_file if tls else None,
        ssl_keyfile=tls.key_file if tls else None,
    )
    server = _Uvicorn(config)
    quiet = _QuietDrops()
    logger = logging.getLogger("uvicorn.error")
    logger.addFilter(quiet)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            with anyio.fail_after(START_TIMEOUT):
                await server.ready.wait()
            try:
                yield backend
            finally:
                server.should_exit = True
                server.stopping.set()
    finally:
        logger.removeFilter(quiet)
        sock.close()


@contextmanager
def refused_url() -> Iterator[str]:
    """An OpenAI base URL on loopback where every connection is refused: the port is bound
    (so nobody else takes it meanwhile) but never listened on."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        sock.close()
