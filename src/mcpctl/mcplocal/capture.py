"""Capture: every JSON-RPC message of every client session, in a bounded ring buffer each.

Recorded by the transport (``streamable.py``) as messages pass: requests as they were parsed,
answers and notifications as the bytes that were sent (decoded only when someone reads the
capture, so recording costs the hot path next to nothing), including the standalone stream
that carries ``list_changed``. Each message gets a sequence number, the time it passed, and
for responses the milliseconds since their request. Served at ``GET /sessions`` and
``GET /sessions/{id}/messages``.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

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
        is_request = isinstance(message, dict) and "method" in message
        msg_id = message.get("id") if isinstance(message, dict) else None
        self._append(direction, message, self._timing(direction, msg_id, is_request, at), at)

    def add_encoded(self, direction: str, data: bytes, answers: Any, at: float) -> None:
        """A message as sent (decoded when read); ``answers``: the request id it answers."""
        self._append(direction, data, self._timing(direction, answers, False, at), at)

    def _append(self, direction: str, message: Any, ms: float | None, at: float) -> None:
        self.seq += 1
        self.last = at
        entry = {"seq": self.seq, "at": at, "direction": direction, "ms": ms, "message": message}
        if len(self.messages) == self.messages.maxlen:
            self.dropped += 1
        self.messages.append(entry)

    def _timing(self, direction: str, msg_id: Any, is_request: bool, at: float) -> float | None:
        if msg_id is None or not isinstance(msg_id, str | int):
            return None
        if is_request:
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
        self._waiting = 0

    def _touch(self) -> None:
        # Every message passes here: a new event only when someone waits for this one.
        if self._waiting:
            changed, self._changed = self._changed, anyio.Event()
            changed.set()

    async def changed(self) -> None:
        """Wait for the next message or stream change (the console follows sessions live)."""
        self._waiting += 1
        try:
            await self._changed.wait()
        finally:
            self._waiting -= 1

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

    def record_encoded(
        self, session_id: str, project: str, direction: str, data: bytes, answers: Any, at: float
    ) -> None:
        self.session(session_id, project).add_encoded(direction, data, answers, at)
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
        out = []
        for entry in log.messages:
            if entry["seq"] > since:
                if isinstance(entry["message"], bytes):
                    entry["message"] = _json(entry["message"])
                out.append(entry)
        return out


def _json(data: bytes | str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None
