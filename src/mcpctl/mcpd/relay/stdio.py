"""JSON-RPC of a relay session, answered over its server's shared stdio connection.

The lean path: a request is parsed once, sent with ``Connection.request`` (which remaps its
id), and its answer written back as one ``application/json`` body. When something must reach
the client before the answer and the client accepts SSE, the answer becomes an SSE stream
(``wire.answer_lazily``): the request's ``notifications/progress`` (carrying the client's own
token, when it asked for progress), the server's requests of the client (sampling,
elicitation, roots: ``jsonrpc/asks.py``; the client's answers come back as POSTed
responses), then the answer.

- ``initialize`` is answered from the instance's cached InitializeResult, with the protocol
  version negotiated (``protocol.negotiate``) and a new ``Mcp-Session-Id``.
- ``ping`` is answered by the relay itself.
- ``notifications/cancelled`` from the client cancels its request upstream; so does a client
  that goes away before the answer. The cancelled request is answered -32800.
- ``resources/subscribe``/``unsubscribe`` are counted per URI: the upstream is subscribed
  while at least one session is, and only subscribed sessions get the URI's updates. They are
  subscribed again when the instance is replaced (after a crash or restart).
- Sessions follow their server's instance: when its connection ends, the server's sessions
  are attached to the next instance as soon as the supervisor runs one (its restart after a
  crash, ``mcpctl restart server``, a keep-alive server's start), so its notifications reach
  the open GET streams without waiting for a request. The relay never starts an instance for
  that: a stopped one (idle, changed spec) is started by the next request, and the sessions
  follow it then.
- Errors of the upstream pass through with their code, message and data; ours follow
  ``protocol.py`` (a ``tools/call`` that cannot run answers a tool result with ``isError``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from starlette.types import Receive, Send

from mcpctl.domain.caller import Caller
from mcpctl.errors import AppError, InvalidInput, Unavailable
from mcpctl.jsonrpc import asks, protocol, wire
from mcpctl.jsonrpc.asks import Outlet
from mcpctl.jsonrpc.protocol import JsonObject
from mcpctl.mcpd.instances.connection import Connection, RpcError
from mcpctl.mcpd.instances.supervisor import Instance, State, Supervisor
from mcpctl.mcpd.relay.audit import CallOutcome, record_call
from mcpctl.mcpd.relay.sessions import RelaySession, SessionStore
from mcpctl.mcpd.services.audit import AuditLog

log = logging.getLogger(__name__)

TOOLS_CALL = "tools/call"
SUBSCRIBE = "resources/subscribe"
UNSUBSCRIBE = "resources/unsubscribe"
# How long sessions wait for the supervisor to settle on their server's next instance (it
# bounds its own restarts and starts; this only bounds the wait for them).
FOLLOW_SECONDS = 300.0


class StdioRelay:
    def __init__(self, supervisor: Supervisor, sessions: SessionStore, audit: AuditLog) -> None:
        self.supervisor = supervisor
        self.sessions = sessions
        self.audit = audit
        self._background: set[asyncio.Task[Any]] = set()
        self._closed = False
        sessions.on_release = self._release

    # -- the session's start -------------------------------------------------------------

    async def initialize(
        self,
        send: Send,
        message: JsonObject,
        caller: Caller,
        token_digest: str,
        instance: Instance,
    ) -> None:
        """Answer ``initialize`` and open a session.

        Raises:
            Unavailable: too many sessions are open.
        """
        connection = self._attach(instance)
        cached = connection.initialize_result
        params = message.get("params")
        requested = params.get("protocolVersion") if isinstance(params, dict) else None
        version = protocol.negotiate(requested, str(cached.get("protocolVersion", "")))
        session = self.sessions.create(
            instance.server, caller, token_digest, version, asks.capabilities_of(params)
        )
        answer = protocol.result(message.get("id"), {**cached, "protocolVersion": version})
        headers = [
            (wire.SESSION_HEADER.encode(), session.id.encode()),
            (wire.CHANNEL_HEADER.encode(), wire.CHANNEL_NDJSON.encode()),
        ]
        await wire.send_json(send, 200, answer, headers)

    # -- messages of a session -----------------------------------------------------------

    async def notification(self, session: RelaySession, message: JsonObject) -> None:
        """A client notification: cancellation is acted on, the others are not relayed
        (``initialized`` was sent upstream once, by mcpd; a client's roots changes are not
        relayed: the server's ``roots/list`` asks the client in flight)."""
        if message.get("method") == "notifications/cancelled":
            params = message.get("params")
            if isinstance(params, dict):
                future = session.requests.get(params.get("requestId"))
                if future is not None:
                    future.cancel()

    async def request(
        self,
        session: RelaySession,
        caller: Caller,
        message: JsonObject,
        *,
        sse: bool,
        receive: Receive,
        send: Send,
    ) -> None:
        """Answer one request of ``session`` (as JSON, or as SSE when something must reach
        the client before the answer)."""
        request_id = message.get("id")
        method = message.get("method")
        params = message.get("params")
        if method == "ping":
            await wire.send_json(send, 200, protocol.result(request_id, {}))
            return
        if method == "initialize":
            refusal = protocol.error(
                request_id, protocol.INVALID_REQUEST, "this session is already initialized"
            )
            await wire.send_json(send, 400, refusal)
            return
        started = time.perf_counter()
        outbox = wire.Outbox() if sse else None
        emit = outbox.put_message if outbox is not None else None
        token = protocol.progress_token_of(params) if sse else None
        work = asyncio.ensure_future(
            self.call(session, str(method), params, token, emit, outlet=emit)
        )
        session.requests[request_id] = work
        answer: JsonObject | None = None

        def audit() -> None:
            # Once the answer is known and before it is written (see Channel._serve for why).
            if method == TOOLS_CALL:
                tool = params.get("name") if isinstance(params, dict) else None
                duration = time.perf_counter() - started
                outcome = self.outcome(work, answer)
                record_call(self.audit, caller, session.server, tool, duration, outcome)

        try:
            if outbox is None:
                gone = await wire.until_disconnect(receive, work)
                answer = None if gone else self.answer(request_id, str(method), work)
                if answer is not None:
                    audit()
                    await wire.send_json(send, 200, answer)
            else:

                def final() -> bytes:
                    nonlocal answer
                    answer = self.answer(request_id, str(method), work)
                    audit()
                    return protocol.encode(answer)

                await wire.answer_lazily(receive, send, work, outbox, final)
        finally:
            if session.requests.get(request_id) is work:
                del session.requests[request_id]
            session.last_seen = time.monotonic()
        if answer is None:
            audit()  # the client went away first: no answer was written

    # -- calling upstream ----------------------------------------------------------------

    def _attach(self, instance: Instance) -> Connection:
        connection = instance.connection
        if connection is None:
            raise Unavailable(
                f"server {instance.server!r} runs over http now; start a new MCP session"
            )
        hub = self.sessions.hub(instance.server)
        if hub.attach(connection):
            uris = hub.subscribed_uris()
            if uris:
                self._spawn(self._resubscribe(connection, uris))
            connection.closed.add_done_callback(
                lambda _: self._spawn(self._follow(instance.server, connection))
            )
        return connection

    async def _follow(self, server: str, ended: Connection) -> None:
        """Attach ``server``'s sessions to the instance that replaces the one behind
        ``ended``, as soon as the supervisor runs one (within ``FOLLOW_SECONDS``). Never
        start one: a stopped server stays stopped until a request starts it."""
        try:
            async with asyncio.timeout(FOLLOW_SECONDS):
                instance = await self._next_instance(server, ended)
        except TimeoutError:
            return
        still_wanted = self.sessions.current_hub(server) is not None
        if instance is not None and instance.connection is not None and still_wanted:
            self._attach(instance)

    async def _next_instance(self, server: str, ended: Connection) -> Instance | None:
        while True:
            hub = self.sessions.current_hub(server)
            if hub is None or hub.connection is not ended:
                return None  # no session left, or a request attached the next instance
            # Right after a crash, Running is still about the dead instance: acquire then
            # waits for the restarted one. Running, it never starts one itself; when the
            # slot stops instead (deleted, CrashLoop, idle), wait for Running again.
            await self.supervisor.wait_for(server, State.RUNNING)
            try:
                return await self.supervisor.acquire(server)
            except AppError as exc:
                log.debug("relay sessions of %s wait for another instance: %s", server, exc)

    async def call(
        self,
        session: RelaySession,
        method: str,
        params: Any,
        token: object | None,
        emit: Callable[[JsonObject], None] | None,
        *,
        outlet: Outlet | None = None,
    ) -> JsonObject:
        """One request of ``session`` upstream; its result. With a progress ``token`` and
        ``emit``, the server's progress goes to ``emit`` as the client's notifications.
        The server's requests of the client meanwhile go to ``outlet`` (the request's own
        stream), else to the session's stream."""
        connection = self._attach(await self.supervisor.acquire(session.server))
        if method in (SUBSCRIBE, UNSUBSCRIBE):
            return await self._subscription(session, connection, method, params)
        sent = params if isinstance(params, dict) else None
        tie = session.tie(outlet) if connection.client_features else None
        if token is None or emit is None:
            return await connection.request(method, sent, tie=tie)

        def on_progress(progress: JsonObject) -> None:
            note = {**progress, "progressToken": token}
            emit({"jsonrpc": "2.0", "method": "notifications/progress", "params": note})

        return await connection.request(method, sent, on_progress=on_progress, tie=tie)

    async def _subscription(
        self, session: RelaySession, connection: Connection, method: str, params: Any
    ) -> JsonObject:
        uri = params.get("uri") if isinstance(params, dict) else None
        if not isinstance(uri, str):
            raise InvalidInput(f"{method}: params.uri must be a string")
        hub = self.sessions.hub(session.server)
        if method == SUBSCRIBE:
            if uri in session.resources:
                return {}
            if hub.subscribers(uri) == 0:
                await connection.request(method, {"uri": uri})
            session.resources.add(uri)
            return {}
        if uri not in session.resources:
            return {}
        session.resources.discard(uri)
        if hub.subscribers(uri) == 0:
            await connection.request(method, {"uri": uri})
        return {}

    async def _resubscribe(self, connection: Connection, uris: set[str]) -> None:
        for uri in sorted(uris):
            try:
                await connection.request(SUBSCRIBE, {"uri": uri}, timeout=30)
            except (AppError, RpcError) as exc:
                log.warning("could not subscribe %s again on %s: %s", uri, connection.server, exc)

    def _release(self, connection: Connection | None, uris: set[str]) -> None:
        """Unsubscribe upstream from the URIs an ended session was the last to follow."""
        if connection is None or not connection.alive or not uris:
            return

        async def unsubscribe() -> None:
            for uri in sorted(uris):
                with contextlib.suppress(AppError, RpcError):
                    await connection.request(UNSUBSCRIBE, {"uri": uri}, timeout=30)

        self._spawn(unsubscribe())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        if self._closed:
            work.close()
            return
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def aclose(self) -> None:
        self._closed = True
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.wait(self._background)

    # -- answers ---------------------------------------------------------------------------

    @staticmethod
    def answer(request_id: Any, method: str, work: asyncio.Future[JsonObject]) -> JsonObject:
        """The JSON-RPC answer to a request whose ``work`` is done."""
        if work.cancelled():
            return StdioRelay.cancelled(request_id)
        exc = work.exception()
        if exc is None:
            return protocol.result(request_id, work.result())
        return StdioRelay.failed(request_id, method, exc)

    @staticmethod
    def cancelled(request_id: Any) -> JsonObject:
        return protocol.error(request_id, protocol.REQUEST_CANCELLED, "Request cancelled")

    @staticmethod
    def failed(request_id: Any, method: str, exc: BaseException) -> JsonObject:
        """The JSON-RPC answer to a request whose relaying raised ``exc``."""
        if isinstance(exc, RpcError):
            return protocol.error(request_id, exc.code, exc.message, exc.data)
        if isinstance(exc, AppError):
            if method == TOOLS_CALL and not isinstance(exc, InvalidInput):
                return protocol.result(request_id, protocol.tool_error(exc))
            return protocol.error_of(request_id, exc)
        log.error("relaying %s failed", method, exc_info=exc)
        return protocol.error(
            request_id, protocol.INTERNAL_ERROR, f"mcpd failed: {exc.__class__.__name__}"
        )

    @staticmethod
    def outcome(work: asyncio.Future[JsonObject], answer: JsonObject | None) -> CallOutcome:
        if work.cancelled():
            return CallOutcome("cancelled")
        return StdioRelay.outcome_of(work.exception(), answer)

    @staticmethod
    def outcome_of(exc: BaseException | None, answer: JsonObject | None) -> CallOutcome:
        """How a call that answered ``answer`` (after raising ``exc``, if any) ended; no
        answer: it was cancelled, or its client went away."""
        if answer is None:
            return CallOutcome("cancelled")
        if isinstance(exc, AppError):
            return CallOutcome(error=exc)
        return CallOutcome.of_answer(answer)

    # -- the session's GET stream ----------------------------------------------------------

    async def listen(self, session: RelaySession, receive: Receive, send: Send) -> None:
        """Stream the server's notifications to ``session`` until it ends or goes away."""
        queue = session.listen()
        await wire.start_sse(send)
        watcher = asyncio.ensure_future(wire.wait_disconnect(receive))
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait((getter, watcher), return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    return
                message = getter.result()
                if message is None:
                    await wire.end_stream(send)
                    return
                await wire.send_event(send, message)
        finally:
            watcher.cancel()
            session.stop_listening(queue)
            session.last_seen = time.monotonic()
