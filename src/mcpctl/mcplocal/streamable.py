"""The streamable-HTTP transport of a project endpoint (MCP 2025-11-25 and the versions
before it), written straight to ASGI.

- ``POST``: one JSON-RPC message. ``initialize`` opens a session (``Mcp-Session-Id`` in the
  answer); every other message needs the session's id (400 without, 404 for an unknown or
  ended one). Requests are answered as ``application/json``; a call that reaches a server
  (``tools/call``, ``prompts/get``, ``resources/read``, ``completion/complete``) from a
  client that accepts ``text/event-stream`` becomes an SSE stream when something must reach
  the client before the answer: its progress, the server's requests of the client (sampling,
  elicitation, roots; the client POSTs its answers as JSON-RPC responses). With ``sse``
  (setting ``answers: sse``), every request of a client that accepts ``text/event-stream``
  is answered as an SSE stream, as the MCP SDK's servers do. Notifications and responses
  get 202. A client that goes away before its answer cancels the request
  (upstream too); so does ``notifications/cancelled``.
- ``GET``: the session's standalone stream (``list_changed``, ``resources/updated``); one
  at a time (409 for a second).
- ``DELETE``: ends the session.
- A request naming a protocol version of the 2026-07-28 era (no handshake) goes to the MCP
  SDK's transport for that era (``endpoint.py``).

Every message is recorded in the capture store as it passes, without parsing anything twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from mcpctl.jsonrpc import asks, protocol, wire
from mcpctl.jsonrpc.protocol import BadRequest, JsonObject
from mcpctl.mcplocal.capture import CaptureStore
from mcpctl.mcplocal.clients import STREAM_BACKLOG, ClientSession
from mcpctl.mcplocal.endpoint import ProjectRuntime
from mcpctl.mcplocal.upstreams import ProgressSink

_JSON = "application/json"
_SSE = "text/event-stream"
_UPSTREAM_METHODS = frozenset(
    {"tools/call", "prompts/get", "resources/read", "completion/complete"}
)


class StreamableHttp:
    """The ASGI app of one project's ``/projects/{project}/mcp``."""

    def __init__(
        self,
        runtime: ProjectRuntime,
        capture: CaptureStore,
        modern: ASGIApp,
        *,
        sse: bool = False,
    ) -> None:
        self.runtime = runtime
        self.capture = capture
        self.modern = modern
        self.sse = sse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        version = headers.get(wire.VERSION_HEADER)
        session_id = headers.get(wire.SESSION_HEADER)
        if (
            session_id is None
            and version is not None
            and version not in protocol.SUPPORTED_VERSIONS
        ):
            await self.modern(scope, receive, send)
            return
        method = scope["method"]
        try:
            if method == "POST":
                await self._post(headers, session_id, receive, send)
            elif method == "GET":
                await self._get(headers, session_id, receive, send)
            elif method == "DELETE":
                await self._delete(session_id, send)
            else:
                await wire.send_empty(send, 405, [(b"allow", b"GET, POST, DELETE")])
        except BadRequest as exc:
            await wire.send_json(send, 400, protocol.error_of(None, exc))
        except wire.BodyTooLarge as exc:
            await wire.send_json(
                send, 413, protocol.error(None, protocol.INVALID_REQUEST, str(exc))
            )
        except ConnectionResetError:
            return

    # -- POST ------------------------------------------------------------------------------

    async def _post(
        self, headers: Mapping[str, str], session_id: str | None, receive: Receive, send: Send
    ) -> None:
        content_type = headers.get("content-type", _JSON)
        if not content_type.startswith(_JSON):
            await _refuse(send, 415, "Unsupported Media Type: send application/json")
            return
        arrived = self.capture.clock()
        message = protocol.parse_message(await wire.read_body(receive))
        request_id = message.get("id")
        if session_id is None:
            if message.get("method") != "initialize" or "id" not in message:
                await _refuse(send, 400, "Bad Request: no Mcp-Session-Id; start with initialize")
                return
            await self._initialize(message, arrived, send)
            return
        session = self.runtime.clients.get(session_id)
        if session is None:
            await _refuse(send, 404, "Session not found", request_id)
            return
        _check_version(headers)
        session.last_seen = time.monotonic()
        self._record_in(session, message, arrived)
        method = message.get("method")
        if method is None:
            session.asks.answered(message)  # the client's answer to a server's request
            await wire.send_empty(send, 202)
        elif "id" not in message:
            if method == "notifications/cancelled":
                params = message.get("params")
                if isinstance(params, dict):
                    session.cancel(params.get("requestId"))
            await wire.send_empty(send, 202)
        elif (self.sse or method in _UPSTREAM_METHODS) and _SSE in headers.get("accept", ""):
            await self._streamed(session, message, receive, send)
        else:
            await self._answered(session, message, receive, send)

    async def _initialize(self, message: JsonObject, arrived: float, send: Send) -> None:
        version, result = self.runtime.dispatcher.initialize(message.get("params"))
        session = self.runtime.clients.open(version)
        session.capabilities = asks.capabilities_of(message.get("params"))
        self._record_in(session, message, arrived)
        data = protocol.encode(protocol.result(message["id"], result))
        self._record_out(session, message["id"], data)
        await wire.send_body(send, 200, data, wire.JSON, [(b"mcp-session-id", session.id.encode())])

    async def _answered(
        self, session: ClientSession, message: JsonObject, receive: Receive, send: Send
    ) -> None:
        request_id = message["id"]
        dispatcher = self.runtime.dispatcher
        if message.get("method") not in _UPSTREAM_METHODS:
            data = await dispatcher.answer(session, message, None)
        else:
            answered = await self._watched(session, message, None, receive)
            if answered is None:
                return
            data = answered
        self._record_out(session, request_id, data)
        await wire.send_body(send, 200, data, wire.JSON, [])

    async def _streamed(
        self, session: ClientSession, message: JsonObject, receive: Receive, send: Send
    ) -> None:
        """Answer as JSON, or as an SSE stream once progress or a server's request must go
        first (``wire.answer_lazily``)."""
        request_id = message["id"]
        token = protocol.progress_token_of(message.get("params"))
        outbox = wire.Outbox()
        progress: ProgressSink | None = None
        if token is not None:

            async def progress(params: JsonObject) -> None:
                note = {
                    "jsonrpc": "2.0",
                    "method": "notifications/progress",
                    "params": {**params, "progressToken": token},
                }
                outbox.put_message(note)

        dispatcher = self.runtime.dispatcher
        work = asyncio.ensure_future(
            dispatcher.answer(session, message, progress, outbox.put_message)
        )
        session.inflight[request_id] = work

        def answer() -> bytes:
            # Recorded before it is written: nothing after the write (see Channel._serve).
            data = _cancelled(request_id) if work.cancelled() else work.result()
            self._record_out(session, request_id, data)
            return data

        try:
            await wire.answer_lazily(
                receive,
                send,
                work,
                outbox,
                answer,
                lambda d: self._record_out(session, None, d),
                eager=self.sse,
            )
        finally:
            session.inflight.pop(request_id, None)

    async def _watched(
        self,
        session: ClientSession,
        message: JsonObject,
        progress: ProgressSink | None,
        receive: Receive,
    ) -> bytes | None:
        """The answer, computed in a task the client's ``notifications/cancelled`` or its
        going away cancels; None when it went away (nobody to answer)."""
        request_id = message["id"]
        work = asyncio.ensure_future(self.runtime.dispatcher.answer(session, message, progress))
        session.inflight[request_id] = work
        try:
            if await wire.until_disconnect(receive, work):
                return None
        finally:
            session.inflight.pop(request_id, None)
        return _cancelled(request_id) if work.cancelled() else work.result()

    # -- GET and DELETE ----------------------------------------------------------------------

    async def _get(
        self, headers: Mapping[str, str], session_id: str | None, receive: Receive, send: Send
    ) -> None:
        if _SSE not in headers.get("accept", ""):
            await _refuse(send, 406, "Not Acceptable: the stream is text/event-stream")
            return
        session = self.runtime.clients.get(session_id) if session_id else None
        if session is None:
            if session_id is None:
                await _refuse(send, 400, "Bad Request: no Mcp-Session-Id; start with initialize")
            else:
                await _refuse(send, 404, "Session not found")
            return
        if session.outlet is not None:
            await _refuse(send, 409, "Conflict: this session's stream is already open")
            return
        queue: asyncio.Queue[bytes] = asyncio.Queue()

        def outlet(data: bytes) -> None:
            if queue.qsize() < STREAM_BACKLOG or not data:
                queue.put_nowait(data)

        session.outlet = outlet
        self.capture.listening(session.id, self.runtime.name, True)
        try:
            await wire.start_sse(send)
            gone = asyncio.ensure_future(wire.wait_disconnect(receive))
            try:
                while not session.closed:
                    getter = asyncio.ensure_future(queue.get())
                    await asyncio.wait((getter, gone), return_when=asyncio.FIRST_COMPLETED)
                    if not getter.done():
                        getter.cancel()
                        return
                    data = getter.result()
                    if not data:
                        break  # the session ended
                    self._record_out(session, None, data)
                    await send(
                        {
                            "type": "http.response.body",
                            "body": wire.sse_data(data),
                            "more_body": True,
                        }
                    )
            finally:
                gone.cancel()
            await wire.end_stream(send)
        finally:
            if session.outlet is outlet:
                session.outlet = None
            self.capture.listening(session.id, self.runtime.name, False)

    async def _delete(self, session_id: str | None, send: Send) -> None:
        if session_id is None:
            await _refuse(send, 400, "Bad Request: no Mcp-Session-Id")
            return
        if not await self.runtime.end_session(session_id):
            await _refuse(send, 404, "Session not found")
            return
        self.capture.close(session_id)
        await wire.send_empty(send, 200)

    # -- capture -----------------------------------------------------------------------------

    def _record_in(self, session: ClientSession, message: JsonObject, at: float) -> None:
        self.capture.record(session.id, self.runtime.name, "in", message, at)

    def _record_out(self, session: ClientSession, request_id: Any, data: bytes) -> None:
        self.capture.record_encoded(
            session.id, self.runtime.name, "out", data, request_id, self.capture.clock()
        )


_HEADERS = frozenset(
    {b"content-type", b"accept", wire.SESSION_HEADER.encode(), wire.VERSION_HEADER.encode()}
)


def _headers(scope: Scope) -> dict[str, str]:
    """The request headers the transport reads, in one pass (the first of repeated ones)."""
    out: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.lower()
        if name in _HEADERS:
            key = name.decode("latin-1")
            if key not in out:
                out[key] = raw_value.decode("latin-1")
    return out


def _cancelled(request_id: Any) -> bytes:
    return protocol.encode(
        protocol.error(request_id, protocol.REQUEST_CANCELLED, "Request cancelled")
    )


async def _refuse(send: Send, status: int, text: str, request_id: Any = None) -> None:
    await wire.send_json(send, status, protocol.error(request_id, protocol.INVALID_REQUEST, text))


def _check_version(headers: Mapping[str, str]) -> None:
    """Raises: BadRequest when the header names a version we do not speak.

    Any version we speak is accepted, not only the session's: clients (and the conformance
    suite) send an older one on some requests after a newer handshake, and the SDK servers
    accept that too; the messages are the same.
    """
    version = headers.get(wire.VERSION_HEADER)
    if version is not None and version not in protocol.SUPPORTED_VERSIONS:
        raise BadRequest(
            f"MCP-Protocol-Version {version!r} is not supported "
            f"({', '.join(protocol.SUPPORTED_VERSIONS)})"
        )
