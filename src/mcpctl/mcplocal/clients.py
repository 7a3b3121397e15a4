"""The clients connected to one project endpoint: their sessions, the streams notifications
reach them on, their requests in flight (for cancellation) and their resource subscriptions.

A session is created by ``initialize`` and lives until the client deletes it, or until it has
been idle (no request, no open stream) for ``IDLE_SECONDS``; past ``MAX_SESSIONS`` the idlest
is dropped. ``list_changed``, ``resources/updated`` and the servers' log messages reach a
session through its standalone stream (the HTTP GET stream; on stdio, the one connection): a
session without one misses them, as the MCP spec allows, and lists again when it next asks.
A server's requests of the client (sampling, elicitation, roots) reach the session whose call
is in flight (``tie``): on that call's own stream, else on the standalone one.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mcpctl.jsonrpc.asks import Asks, Tie
from mcpctl.jsonrpc.asks import Outlet as MessageOutlet
from mcpctl.jsonrpc.protocol import JsonObject, encode

LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
IDLE_SECONDS = 3600.0
MAX_SESSIONS = 10_000
STREAM_BACKLOG = 1000

Outlet = Callable[[bytes], None]


@dataclass(eq=False)
class ClientSession:
    """One client session of an endpoint."""

    id: str
    version: str
    last_seen: float = field(default_factory=time.monotonic)
    inflight: dict[Any, asyncio.Task[Any]] = field(default_factory=dict)
    subscriptions: set[str] = field(default_factory=set)
    outlet: Outlet | None = None  # the standalone stream, while open
    log_level: str | None = None  # from logging/setLevel; None: every message
    closed: bool = False
    capabilities: JsonObject = field(default_factory=dict)  # the client's, from initialize
    asks: Asks = field(default_factory=lambda: Asks("mcplocal"))  # the servers' requests

    def tie(self, outlet: MessageOutlet | None = None) -> Tie:
        """What a call of this session holds while in flight upstream: the server's requests
        then reach this client, on ``outlet`` (the call's own stream) or the session's."""
        return Tie(self, self.asks, self.capabilities, outlet, self.stream)

    def stream(self) -> MessageOutlet | None:
        if self.outlet is None or self.closed:
            return None
        outlet = self.outlet
        return lambda message: outlet(encode(message))

    def notify(self, message: bytes) -> bool:
        """Send ``message`` on the session's stream; False when it has none."""
        if self.outlet is None or self.closed:
            return False
        self.outlet(message)
        return True

    def cancel(self, request_id: object) -> None:
        task = self.inflight.get(request_id) if isinstance(request_id, str | int) else None
        if task is not None:
            task.cancel()


class Subscriptions:
    """Which sessions follow which resource URI; the first subscriber and the last one out
    are what the server hears about."""

    def __init__(self) -> None:
        self._by_uri: dict[str, set[ClientSession]] = {}

    def add(self, session: ClientSession, uri: str) -> bool:
        """True when ``uri`` had no subscriber before."""
        session.subscriptions.add(uri)
        holders = self._by_uri.setdefault(uri, set())
        first = not holders
        holders.add(session)
        return first

    def discard(self, session: ClientSession, uri: str) -> bool:
        """True when ``uri`` has no subscriber left (and had this one)."""
        session.subscriptions.discard(uri)
        holders = self._by_uri.get(uri)
        if holders is None or session not in holders:
            return False
        holders.discard(session)
        if holders:
            return False
        del self._by_uri[uri]
        return True

    def drop(self, session: ClientSession) -> list[str]:
        """Forget every subscription of ``session``; the URIs nobody follows any more."""
        return [uri for uri in list(session.subscriptions) if self.discard(session, uri)]

    def holders(self, uri: str) -> list[ClientSession]:
        return list(self._by_uri.get(uri, ()))


class ClientSessions:
    """The sessions of one endpoint, by id."""

    def __init__(
        self,
        *,
        idle_seconds: float = IDLE_SECONDS,
        max_sessions: int = MAX_SESSIONS,
        sweep_every: float = 60.0,
    ) -> None:
        self.idle_seconds = idle_seconds
        self.max_sessions = max_sessions
        self.sweep_every = sweep_every
        self.subscriptions = Subscriptions()
        self._sessions: dict[str, ClientSession] = {}
        self._swept = time.monotonic()

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[ClientSession]:
        return iter(list(self._sessions.values()))

    def get(self, session_id: str) -> ClientSession | None:
        return self._sessions.get(session_id)

    def open(self, version: str, session_id: str | None = None) -> ClientSession:
        """A new session (``session_id`` for transports with one implicit session)."""
        self._sweep()
        session = ClientSession(session_id or secrets.token_hex(16), version)
        self._sessions[session.id] = session
        return session

    def end(self, session: ClientSession) -> list[str]:
        """End ``session``: its requests are cancelled, its stream closes; returns the URIs
        nobody subscribes to any more."""
        self._sessions.pop(session.id, None)
        session.closed = True
        if session.outlet is not None:
            session.outlet(b"")  # wakes the stream, which then ends
        for task in list(session.inflight.values()):
            task.cancel()
        session.asks.cancel_all()
        return self.subscriptions.drop(session)

    def lowest_log_level(self) -> str | None:
        """The most verbose level a session asked for with ``logging/setLevel``, if any."""
        asked = {s.log_level for s in self._sessions.values() if s.log_level is not None}
        return min(asked, key=LOG_LEVELS.index) if asked else None

    def broadcast(self, message: JsonObject) -> None:
        data = encode(message)
        for session in self:
            session.notify(data)

    def _sweep(self) -> None:
        now = time.monotonic()
        if len(self._sessions) < self.max_sessions and now - self._swept < self.sweep_every:
            return
        self._swept = now
        for session in list(self._sessions.values()):
            idle = now - session.last_seen > self.idle_seconds
            if idle and session.outlet is None and not session.inflight:
                self.end(session)
        while len(self._sessions) >= self.max_sessions:
            idlest = min(self._sessions.values(), key=lambda s: s.last_seen)
            self.end(idlest)
