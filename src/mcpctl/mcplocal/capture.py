"""Capture: every JSON-RPC message of every client session, in a bounded ring buffer each.

Taken at the HTTP boundary (an ASGI wrapper around a project's MCP endpoint), so it sees the
messages exactly as they travel: request bodies (single or batch), JSON responses and every
event of the SSE streams, including the standalone stream that carries ``list_changed``.
Each message gets a sequence number, the time it passed, and for responses the milliseconds
since their request. Served at ``GET /sessions`` and ``GET /sessions/{id}/messages``.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY = 4 * 1024 * 1024
_PENDING_CAP = 1000


@dataclass
class SessionLog:
    id: str
    project: str
    started: float
    size: int
    last: float = 0.0
    seq: int = 0
    dropped: int = 0
    closed: bool = False
    listening: bool = False
    messages: deque[dict[str, Any]] = field(init=False)
    _pending: OrderedDict[tuple[str, Any], float] = field(default_factory=OrderedDict)

    def __post_init__(self) -> None:
        self.messages = deque(maxlen=self.size)

    def add(self, direction: str, message: Any, at: float) -> None:
        self.seq += 1
        self.last = at
        entry: dict[str, Any] = {"seq": self.seq, "at": at, "direction": direction}
        if isinstance(message, dict):
            entry["ms"] = self._timing(direction, message, at)
        entry["message"] = message
        if len(self.messages) == self.messages.maxlen:
            self.dropped += 1
        self.messages.append(entry)

    def _timing(self, direction: str, message: dict[str, Any], at: float) -> float | None:
        msg_id = message.get("id")
        if msg_id is None:
            return None
        if "method" in message:
            self._pending[(direction, msg_id)] = at
            while len(self._pending) > _PENDING_CAP:
                self._pending.popitem(last=False)
            return None
        # A response travels the other way from its request.
        asked = self._pending.pop(("in" if direction == "out" else "out", msg_id), None)
        return None if asked is None else round((at - asked) * 1000, 3)

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project": self.project,
            "started": self.started,
            "lastActivity": self.last,
            "messages": self.seq,
            "kept": len(self.messages),
            "dropped": self.dropped,
            "closed": self.closed,
            "listening": self.listening,
        }


class CaptureStore:
    """Sessions by id, the oldest dropped past ``max_sessions``."""

    def __init__(
        self, *, per_session: int, max_sessions: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.per_session = per_session
        self.max_sessions = max_sessions
        self.clock = clock
        self._sessions: OrderedDict[str, SessionLog] = OrderedDict()
        self._changed = anyio.Event()

    def _touch(self) -> None:
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    async def changed(self) -> None:
        """Wait for the next message or stream change (the console follows sessions live)."""
        await self._changed.wait()

    def session(self, session_id: str, project: str) -> SessionLog:
        log = self._sessions.get(session_id)
        if log is None:
            log = SessionLog(session_id, project, self.clock(), self.per_session)
            self._sessions[session_id] = log
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
        return log

    def record(
        self, session_id: str, project: str, direction: str, payload: Any, at: float
    ) -> None:
        log = self.session(session_id, project)
        for message in payload if isinstance(payload, list) else [payload]:
            log.add(direction, message, at)
        self._touch()

    def close(self, session_id: str) -> None:
        if (log := self._sessions.get(session_id)) is not None:
            log.closed = True
            self._touch()

    def listening(self, session_id: str, project: str, listening: bool) -> None:
        """Whether the client holds its standalone event stream open (gets list_changed)."""
        self.session(session_id, project).listening = listening
        self._touch()

    def sessions(self) -> list[dict[str, Any]]:
        return [log.summary() for log in reversed(self._sessions.values())]

    def messages(self, session_id: str, since: int = 0) -> list[dict[str, Any]] | None:
        log = self._sessions.get(session_id)
        if log is None:
            return None
        return [m for m in log.messages if m["seq"] > since]

    def wrap(self, project: str, app: ASGIApp) -> ASGIApp:
        """``app`` with its traffic recorded under ``project``."""

        async def captured(scope: Scope, receive: Receive, send: Send) -> None:
            await _Exchange(self, project, scope).run(app, receive, send)

        return captured


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _json(data: bytes | str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


class _SseEvents:
    """The ``data`` of each complete event of a text/event-stream, fed in chunks."""

    def __init__(self) -> None:
        self._buffer = ""

    def feed(self, chunk: bytes) -> Iterator[str]:
        self._buffer += chunk.decode("utf-8", "replace").replace("\r\n", "\n")
        while "\n\n" in self._buffer:
            event, self._buffer = self._buffer.split("\n\n", 1)
            data = [line[5:].lstrip(" ") for line in event.split("\n") if line.startswith("data:")]
            if data and any(data):
                yield "\n".join(data)


class _Exchange:
    """One HTTP request to an MCP endpoint and its response, recorded as messages."""

    def __init__(self, store: CaptureStore, project: str, scope: Scope) -> None:
        self.store = store
        self.project = project
        self._scope = scope
        self.method = scope.get("method", "")
        self.session_id = _header(scope.get("headers", []), b"mcp-session-id")
        self.arrived = store.clock()
        self.body = bytearray()
        self.sse: _SseEvents | None = None
        self.response = bytearray()
        self.stream_open = False

    async def run(self, app: ASGIApp, receive: Receive, send: Send) -> None:
        async def receive_and_keep() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(self.body) < MAX_BODY:
                self.body.extend(message.get("body", b""))
            return message

        async def send_and_record(message: Message) -> None:
            self._observe(message)
            await send(message)

        try:
            await app(self._scope, receive_and_keep, send_and_record)
        finally:
            if self.stream_open and self.session_id is not None:
                self.store.listening(self.session_id, self.project, False)

    def _observe(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._started(message)
        elif message["type"] == "http.response.body" and self.session_id is not None:
            self._body(message.get("body", b""), more=message.get("more_body", False))

    def _started(self, message: Message) -> None:
        headers = message.get("headers", [])
        self.session_id = self.session_id or _header(headers, b"mcp-session-id")
        if (_header(headers, b"content-type") or "").startswith("text/event-stream"):
            self.sse = _SseEvents()
        if self.session_id is None:
            return
        if self.method == "POST" and (payload := _json(bytes(self.body))) is not None:
            self.store.record(self.session_id, self.project, "in", payload, self.arrived)
        elif self.method == "DELETE":
            self.store.close(self.session_id)
        elif self.method == "GET" and self.sse is not None and message["status"] == 200:
            self.stream_open = True
            self.store.listening(self.session_id, self.project, True)

    def _body(self, chunk: bytes, *, more: bool) -> None:
        if self.sse is not None:
            for data in self.sse.feed(chunk):
                if (payload := _json(data)) is not None:
                    self._out(payload)
            return
        if len(self.response) < MAX_BODY:
            self.response.extend(chunk)
        if not more and self.response and (payload := _json(bytes(self.response))) is not None:
            self._out(payload)

    def _out(self, payload: Any) -> None:
        assert self.session_id is not None
        self.store.record(self.session_id, self.project, "out", payload, self.store.clock())
