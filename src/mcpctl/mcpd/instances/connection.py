"""One persistent stdio JSON-RPC connection per instance, shared by every caller.

The interface the relay builds on::

    conn = Connection(stream, server="time")
    init = await conn.start(timeout=30)       # initialize + notifications/initialized, once
    conn.initialize_result                    # the server's InitializeResult (raw dict)
    result = await conn.request("tools/call", {"name": ..., "arguments": ...},
                                on_progress=callback, timeout=60)
    unsubscribe = conn.subscribe(on_notification)   # list_changed, resources/updated, logging
    await conn.closed                         # the reason it ended (a ConnectionLost)

Guarantees:

- Ids are our own counter on the upstream side: callers never see or choose them, so
  concurrent callers cannot collide. ``request()`` returns the ``result`` object or raises
  ``RpcError`` (the server's JSON-RPC error, code/message/data kept for pass-through).
- Progress: when ``on_progress`` is given, the request carries a progress token of ours;
  ``notifications/progress`` with that token reach only that callback (params without the
  token). A caller's own ``_meta.progressToken`` is replaced, never forwarded.
- Cancellation: if the caller's task is cancelled (or ``timeout`` passes) while the request is
  pending, ``notifications/cancelled`` with the upstream id is sent, and the late answer is
  dropped.
- Other server notifications go to every subscriber (callbacks run in the reader task: keep
  them short and non-blocking; an exception in one is logged and does not stop the others).
- Server-to-client requests: ``ping`` is answered. Sampling, elicitation and ``roots/list``
  are declared in our ``initialize`` only for the ``client_features`` the server opted in to
  (its spec's ``clientFeatures``); such a request is handed to the one caller whose request
  (made with a ``tie``) is in flight when it comes (``jsonrpc/asks.py``), and its answer goes
  back to the server. Every other one gets the JSON-RPC error -32601 "not supported by the
  shared connection".
- When the stream ends (the instance exits or crashes), every pending request fails at once
  with ``ConnectionLost`` (an ``Unavailable``), and so does every later ``request()``.

Messages are handled as raw JSON (dicts), not SDK sessions: this is the relay's hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from mcpctl.errors import Unavailable
from mcpctl.jsonrpc import asks, protocol
from mcpctl.jsonrpc.asks import InFlight, Tie, Untied
from mcpctl.mcpd.runtime.base import StdioStream

log = logging.getLogger(__name__)

PROTOCOL_VERSION = "2025-11-25"
CLIENT_INFO = {"name": "mcpd", "version": "0.1.0"}
METHOD_NOT_FOUND = -32601
NOT_SUPPORTED = "not supported by the shared connection"

JsonObject = dict[str, Any]
ProgressCallback = Callable[[JsonObject], None]
NotificationCallback = Callable[[JsonObject], None]


class RpcError(Exception):
    """A JSON-RPC error answered by the server; passed through as it came."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} (JSON-RPC error {code})")
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> JsonObject:
        error: JsonObject = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


class ConnectionLost(Unavailable):
    """The instance's stream ended: it exited, crashed or was stopped."""

    code = "instance_unavailable"
    title = "Instance unavailable"


class RequestTimeout(Unavailable):
    code = "instance_timeout"
    title = "Instance did not answer in time"


def _encode(message: JsonObject) -> bytes:
    return protocol.encode(message) + b"\n"


class Connection:
    def __init__(
        self, stream: StdioStream, *, server: str, client_features: Iterable[str] = ()
    ) -> None:
        self.server = server
        self.client_features = frozenset(client_features)
        self._ties = InFlight()
        self._stream = stream
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[JsonObject]] = {}
        self._progress: dict[int, ProgressCallback] = {}
        self._subscribers: list[NotificationCallback] = []
        self._lost: ConnectionLost | None = None
        self._reader: asyncio.Task[None] | None = None
        self.closed: asyncio.Future[ConnectionLost] = asyncio.get_running_loop().create_future()
        self.initialize_result: JsonObject = {}
        self.last_activity = time.monotonic()

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, timeout: float | None = None) -> JsonObject:  # noqa: ASYNC109
        """Start reading and perform the handshake; the server's InitializeResult.

        Raises:
            ConnectionLost: the server exited before answering.
            RequestTimeout: no answer within ``timeout``.
            RpcError: the server refused to initialize.
        """
        self._reader = asyncio.create_task(self._read_loop(), name=f"mcp-reader-{self.server}")
        params = {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": asks.declared(self.client_features),
            "clientInfo": CLIENT_INFO,
        }
        self.initialize_result = await self.request("initialize", params, timeout=timeout)
        await self.notify("notifications/initialized")
        return self.initialize_result

    async def close(self) -> None:
        """Stop reading; pending requests fail with ConnectionLost. The stream's owner stops
        the instance."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._fail_all("the connection was closed")
        self._ties.cancel_all()

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    @property
    def alive(self) -> bool:
        return self._lost is None

    def subscribe(self, callback: NotificationCallback) -> Callable[[], None]:
        """Receive every server notification except progress; returns the unsubscribe."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    # -- calls ---------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        params: JsonObject | None = None,
        *,
        on_progress: ProgressCallback | None = None,
        # A per-request bound is part of the interface: callers pass their client's deadline.
        timeout: float | None = None,  # noqa: ASYNC109
        tie: Tie | None = None,
    ) -> JsonObject:
        """Send one request and wait for its result. With a ``tie``, the server's sampling,
        elicitation and roots requests while it is in flight may be handed to its session.

        Raises:
            RpcError: the server answered with a JSON-RPC error.
            ConnectionLost: the instance is gone or went away meanwhile.
            RequestTimeout: no answer within ``timeout`` (the server is told to cancel).
        """
        if self._lost is not None:
            raise self._lost_error()
        upstream_id = next(self._ids)
        message: JsonObject = {"jsonrpc": "2.0", "id": upstream_id, "method": method}
        if params is not None or on_progress is not None:
            message["params"] = self._with_progress_token(params, upstream_id, on_progress)
        future: asyncio.Future[JsonObject] = asyncio.get_running_loop().create_future()
        self._pending[upstream_id] = future
        if on_progress is not None:
            self._progress[upstream_id] = on_progress
        tied = bool(self.client_features)
        if tied:
            self._ties.enter(tie)
        try:
            await self._send(message)
            if timeout is None:
                return await future
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError as exc:
            await self._cancel_upstream(upstream_id, "timed out")
            raise RequestTimeout(
                f"server {self.server!r} did not answer {method} within {timeout:g} s"
            ) from exc
        except asyncio.CancelledError:
            await asyncio.shield(self._cancel_upstream(upstream_id, "cancelled by the caller"))
            raise
        finally:
            self._pending.pop(upstream_id, None)
            self._progress.pop(upstream_id, None)
            if tied:
                self._ties.leave(tie)
            self.last_activity = time.monotonic()

    async def notify(self, method: str, params: JsonObject | None = None) -> None:
        """Send a notification (e.g. ``notifications/roots/list_changed``).

        Raises:
            ConnectionLost: the instance is gone.
        """
        if self._lost is not None:
            raise self._lost_error()
        message: JsonObject = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        await self._send(message)

    @staticmethod
    def _with_progress_token(
        params: JsonObject | None, token: int, on_progress: ProgressCallback | None
    ) -> JsonObject:
        out = dict(params or {})
        meta = out.get("_meta")
        if on_progress is None and not (isinstance(meta, dict) and "progressToken" in meta):
            return out
        meta = dict(meta) if isinstance(meta, dict) else {}
        if on_progress is None:
            del meta["progressToken"]
        else:
            meta["progressToken"] = token
        if meta:
            out["_meta"] = meta
        else:
            out.pop("_meta", None)
        return out

    async def _send(self, message: JsonObject) -> None:
        try:
            await self._stream.write(_encode(message))
        except ConnectionError as exc:
            self._lose(f"cannot write to it ({exc})")
            raise self._lost_error() from exc

    async def _cancel_upstream(self, upstream_id: int, reason: str) -> None:
        if self._lost is not None or upstream_id not in self._pending:
            return
        self._pending.pop(upstream_id, None)
        with contextlib.suppress(ConnectionLost):
            await self.notify(
                "notifications/cancelled", {"requestId": upstream_id, "reason": reason}
            )

    # -- reading -------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        reason = "its output ended (the instance exited)"
        try:
            while True:
                raw = await self._stream.read_message()
                if raw is None:
                    break
                try:
                    message = protocol.decode(raw)
                except ValueError:
                    log.warning("server %r wrote a line that is not JSON; ignored", self.server)
                    continue
                if isinstance(message, dict):
                    await self._dispatch(message)
        except (ValueError, ConnectionError, OSError) as exc:
            reason = f"reading from it failed ({exc})"
        self._lose(reason)

    async def _dispatch(self, message: JsonObject) -> None:
        method = message.get("method")
        if method is None:
            self._resolve(message)
        elif "id" in message:
            await self._answer_server_request(message)
        elif method == "notifications/progress":
            self._route_progress(message.get("params") or {})
        else:
            for callback in list(self._subscribers):
                try:
                    callback(message)
                except Exception:  # a subscriber's bug must not stop the reader
                    log.exception("a notification subscriber of %r failed", self.server)

    def _resolve(self, message: JsonObject) -> None:
        upstream_id = message.get("id")
        future = self._pending.get(upstream_id) if isinstance(upstream_id, int) else None
        if future is None or future.done():
            return  # a late answer to a cancelled request
        error = message.get("error")
        if isinstance(error, dict):
            future.set_exception(
                RpcError(
                    int(error.get("code", -32603)),
                    str(error.get("message", "")),
                    error.get("data"),
                )
            )
        else:
            result = message.get("result")
            future.set_result(result if isinstance(result, dict) else {})

    def _route_progress(self, params: JsonObject) -> None:
        token = params.get("progressToken")
        callback = self._progress.get(token) if isinstance(token, int) else None
        if callback is None:
            return
        try:
            callback({k: v for k, v in params.items() if k != "progressToken"})
        except Exception:  # the caller's bug must not stop the reader
            log.exception("a progress callback of %r failed", self.server)

    async def _answer_server_request(self, message: JsonObject) -> None:
        method = message.get("method")
        reply: JsonObject = {"jsonrpc": "2.0", "id": message["id"]}
        if method == "ping":
            reply["result"] = {}
        elif isinstance(method, str) and asks.FEATURES.get(method) in self.client_features:
            try:
                tie = self._ties.choose(method)
            except Untied as exc:
                reply["error"] = {"code": exc.code, "message": str(exc)}
            else:
                self._ties.spawn(tie, self._relay(tie, message))
                return
        else:
            reply["error"] = {"code": METHOD_NOT_FOUND, "message": f"{method}: {NOT_SUPPORTED}"}
        with contextlib.suppress(ConnectionLost):
            await self._send(reply)

    async def _relay(self, tie: Tie, message: JsonObject) -> None:
        """Ask ``tie``'s client the server's ``message``; its answer goes back to the server."""
        reply = await asks.relay(tie, message)
        if self._lost is None:
            with contextlib.suppress(ConnectionLost):
                await self._send(reply)

    def _lose(self, reason: str) -> None:
        self._ties.cancel_all()
        if self._lost is None:
            self._lost = ConnectionLost(f"server {self.server!r}: {reason}")
            if not self.closed.done():
                self.closed.set_result(self._lost)
        self._fail_all(reason)

    def _fail_all(self, reason: str) -> None:
        if self._lost is None:
            self._lose(reason)
            return
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(self._lost_error())

    def _lost_error(self) -> ConnectionLost:
        """A fresh error per caller (one shared instance would chain their tracebacks)."""
        assert self._lost is not None
        return ConnectionLost(self._lost.message)
