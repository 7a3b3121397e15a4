"""A relay session's channel: one long-lived POST that carries the session's JSON-RPC both
ways, one message per line (``application/x-ndjson``).

Streamable HTTP costs one HTTP request per message; on the hop between mcplocal and mcpd,
which is ours on both ends, that framing is most of the hop's cost. So a relay session of a
stdio server offers a channel (its ``initialize`` answer carries ``X-Mcpctl-Channel:
ndjson``) and a client may open one with a POST to the same endpoint, naming the session:

- request headers: ``Mcp-Session-Id``, ``Content-Type: application/x-ndjson``, a chunked
  body that stays open; each line of it is one JSON-RPC message (requests, notifications,
  responses), as a POST of streamable HTTP would carry it;
- the answer: 200 ``application/x-ndjson``, streamed; it starts with an empty line (the
  channel is open: a proxy that buffers request bodies never lets it through, and the
  client then falls back to plain requests), then carries the answers, the progress of
  requests that asked for it, and the session's notifications (what its GET stream would
  carry: a channel takes the session's stream over, as a new GET stream does), and the
  server's requests of the client (sampling, elicitation, roots), whose answers the client
  writes as response lines.

Everything else is as on plain requests: each request is authorized (``run`` on the server,
with the caller's current grants; the token is checked again every
``MCPD_RBAC_CACHE_SECONDS``), ``tools/call`` is audited, ``notifications/cancelled`` cancels.
When the client ends the body or goes away, its requests in flight are cancelled; when the
session ends, the answer ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import Receive, Send

from mcpctl.domain.caller import Caller
from mcpctl.errors import AppError
from mcpctl.jsonrpc import protocol, wire
from mcpctl.jsonrpc.protocol import BadRequest, JsonObject
from mcpctl.mcpd.relay.audit import record_call
from mcpctl.mcpd.relay.sessions import RelaySession
from mcpctl.mcpd.relay.stdio import TOOLS_CALL, StdioRelay
from mcpctl.mcpd.services.authz import Authorizer


def wants_channel(content_type: str | None) -> bool:
    return content_type is not None and content_type.split(";")[0].strip() == "application/x-ndjson"


Queue = asyncio.Queue[JsonObject | None]


class Channel:
    """One open channel of ``session``; ``run`` serves it until either side ends it."""

    def __init__(
        self,
        relay: StdioRelay,
        authz: Authorizer,
        session: RelaySession,
        caller: Callable[[], Awaitable[Caller]],
    ) -> None:
        self.relay = relay
        self.authz = authz
        self.session = session
        self._caller = caller
        self._out: Queue = asyncio.Queue()
        self._work: set[asyncio.Future[None]] = set()
        # The answer's send, for the tasks that write their answers themselves; the lock
        # keeps one body message at a time (a send waits while the client reads slowly).
        self._send: Send | None = None
        self._sending = asyncio.Lock()

    async def run(self, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", wire.NDJSON),
                    (b"cache-control", b"no-cache, no-transform"),
                    (b"x-accel-buffering", b"no"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"\n", "more_body": True})
        self.session.listen(self._out)
        self._send = send
        reader = asyncio.ensure_future(self._read(receive))
        writer = asyncio.ensure_future(self._write(send))
        try:
            await asyncio.wait((reader, writer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            reader.cancel()
            self._send = None
            for work in list(self._work):
                work.cancel()
            self.session.stop_listening(self._out)
            self.session.last_seen = time.monotonic()
            if not writer.done():
                self._out.put_nowait(None)  # flush what is queued, then end the answer
                await asyncio.wait((writer,), timeout=5)
                writer.cancel()

    # -- the client's half ---------------------------------------------------------------

    async def _read(self, receive: Receive) -> None:
        pending = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk: bytes = message.get("body", b"")
            if chunk:
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                if len(pending) > wire.MAX_BODY:
                    self._answer(protocol.error(None, protocol.INVALID_REQUEST, "line too long"))
                    return
                for line in lines:
                    if line.strip():
                        await self._on_line(line)
            if not message.get("more_body", False):
                return

    async def _on_line(self, line: bytes) -> None:
        try:
            message = protocol.parse_message(line)
        except BadRequest as exc:
            self._answer(protocol.error(None, protocol.PARSE_ERROR, str(exc)))
            return
        session = self.session
        session.last_seen = time.monotonic()
        method = message.get("method")
        if method is None:
            session.asks.answered(message)  # the client's answer to a server request
            return
        if "id" not in message:
            await self.relay.notification(session, message)
            return
        request_id = message.get("id")
        try:
            caller = await self._caller()
            self.authz.authorize(caller, "run", "servers", session.server)
        except AppError as exc:
            self._answer(protocol.error_of(request_id, exc))
            return
        if method == "ping":
            self._answer(protocol.result(request_id, {}))
            return
        if method == "initialize":
            self._answer(
                protocol.error(
                    request_id, protocol.INVALID_REQUEST, "this session is already initialized"
                )
            )
            return
        self._start(caller, request_id, str(method), message.get("params"))

    def _start(self, caller: Caller, request_id: Any, method: str, params: Any) -> None:
        session = self.session
        work = asyncio.ensure_future(self._serve(caller, request_id, method, params))
        session.requests[request_id] = work
        self._work.add(work)

        def done(work: asyncio.Future[None]) -> None:
            self._work.discard(work)
            if session.requests.get(request_id) is work:
                del session.requests[request_id]

        work.add_done_callback(done)

    async def _serve(self, caller: Caller, request_id: Any, method: str, params: Any) -> None:
        """Relay one request and write its answer from this task, as soon as it is known
        (a done callback and the writer task would each cost a turn of the event loop).

        The call is audited before its answer is written, not after: the kernel often wakes
        the client's side on this very CPU, where it waits for whatever this process does
        next (recording the event after the write added about 50 µs to a call's median,
        bench/RESULTS.md)."""
        session = self.session
        token = protocol.progress_token_of(params)
        started = time.perf_counter()
        failure: BaseException | None = None
        answer: JsonObject | None = None
        try:
            result = await self.relay.call(
                session, method, params, token, self._answer, outlet=self._answer
            )
            answer = protocol.result(request_id, result)
        except asyncio.CancelledError:
            self._answer(StdioRelay.cancelled(request_id))
            raise
        except Exception as exc:
            failure, answer = exc, StdioRelay.failed(request_id, method, exc)
        finally:
            self._audit(caller, method, params, started, failure, answer)
        await self._deliver(answer)

    def _audit(
        self,
        caller: Caller,
        method: str,
        params: Any,
        started: float,
        failure: BaseException | None,
        answer: JsonObject | None,
    ) -> None:
        if method != TOOLS_CALL:
            return
        duration = time.perf_counter() - started
        tool = params.get("name") if isinstance(params, dict) else None
        outcome = StdioRelay.outcome_of(failure, answer)
        record_call(self.relay.audit, caller, self.session.server, tool, duration, outcome)

    # -- our half ------------------------------------------------------------------------

    def _answer(self, message: JsonObject) -> None:
        self._out.put_nowait(message)

    async def _deliver(self, message: JsonObject) -> None:
        """Write ``message`` now if nothing waits to be written before it (progress the
        writer has not written yet must go first), else queue it for the writer."""
        if self._send is None or not self._out.empty() or self._sending.locked():
            self._out.put_nowait(message)
            return
        async with self._sending:
            await self._send(
                {
                    "type": "http.response.body",
                    "body": protocol.encode(message) + b"\n",
                    "more_body": True,
                }
            )

    async def _write(self, send: Send) -> None:
        """Write what is queued, as one body message per batch; end at None (the session
        ended, or another stream took it over)."""
        out = self._out
        while True:
            item = await out.get()
            batch: list[bytes] = []
            while True:
                if item is None:
                    self._send = None  # answers from now on are queued, and never written
                    async with self._sending:
                        await send({"type": "http.response.body", "body": b"".join(batch)})
                    return
                batch.append(protocol.encode(item) + b"\n")
                if out.empty():
                    break
                item = out.get_nowait()
            # Taking the lock does not yield when it is free: nothing can slip in between.
            async with self._sending:
                await send(
                    {"type": "http.response.body", "body": b"".join(batch), "more_body": True}
                )
