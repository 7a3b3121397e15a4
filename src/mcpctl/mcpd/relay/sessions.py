"""Relay sessions in memory, and the fan-out of a server's notifications to them.

A session is created by ``initialize`` on a stdio server's endpoint and named by the
``Mcp-Session-Id`` it answers. It belongs to one server and one user (the token that created
it; impersonation included): a request naming it at another server's endpoint or with another
user's token is answered 404, as for an unknown session. It ends on ``DELETE``, or after
``idle_seconds`` without a request while it has no request in flight and no open GET stream
(expired sessions are swept when a new one is created: no timer runs for them).

Each server has one ``ServerHub`` subscribed to its instance's current connection: list
changes and log messages go to every session of that server with an open GET stream,
``notifications/resources/updated`` only to the sessions that subscribed to that URI. A
session's stream holds at most ``STREAM_BUFFER`` undelivered messages; past that, new ones
are dropped for it (a stalled client must not grow mcpd's memory).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mcpctl.domain.caller import Caller
from mcpctl.errors import Unavailable
from mcpctl.jsonrpc.asks import Asks, Outlet, Tie
from mcpctl.jsonrpc.protocol import JsonObject
from mcpctl.mcpd.instances.connection import Connection

log = logging.getLogger(__name__)

STREAM_BUFFER = 1000
RESOURCE_UPDATED = "notifications/resources/updated"


@dataclass(eq=False)
class RelaySession:
    id: str
    server: str
    protocol_version: str
    caller: Caller
    token_digest: str
    authenticated_at: float
    last_seen: float
    requests: dict[Any, asyncio.Future[Any]] = field(default_factory=dict)
    resources: set[str] = field(default_factory=set)
    listener: asyncio.Queue[JsonObject | None] | None = None
    closed: bool = False
    capabilities: JsonObject = field(default_factory=dict)  # the client's, from initialize
    asks: Asks = field(default_factory=lambda: Asks("mcpd"))  # the server's requests of it

    def owned_by(self, caller: Caller) -> bool:
        return (caller.user, caller.impersonated_by) == (
            self.caller.user,
            self.caller.impersonated_by,
        )

    @property
    def busy(self) -> bool:
        return bool(self.requests) or self.listener is not None

    def tie(self, outlet: Outlet | None = None) -> Tie:
        """What a request of this session holds while in flight upstream, so that the
        server's requests then reach this client: on ``outlet`` (the request's own stream)
        if given, else on the session's stream (GET or channel)."""
        return Tie(self, self.asks, self.capabilities, outlet, self.stream)

    def stream(self) -> Outlet | None:
        return self.deliver if self.listener is not None else None

    def deliver(self, message: JsonObject) -> None:
        queue = self.listener
        if queue is None:
            return
        if queue.qsize() >= STREAM_BUFFER:
            log.debug("session %s: stream full; a notification was dropped", self.id)
            return
        queue.put_nowait(message)

    def listen(
        self, queue: asyncio.Queue[JsonObject | None] | None = None
    ) -> asyncio.Queue[JsonObject | None]:
        """A new stream for this session (a GET stream, or a channel's ``queue``, which
        carries its answers too); an older one ends (the client reconnected)."""
        self.stop_listening()
        if queue is None:
            queue = asyncio.Queue()
        self.listener = queue
        return queue

    def stop_listening(self, queue: asyncio.Queue[JsonObject | None] | None = None) -> None:
        old = self.listener
        if old is None or (queue is not None and old is not queue):
            return
        self.listener = None
        old.put_nowait(None)


class ServerHub:
    """The sessions of one server and its current connection's notifications."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.sessions: set[RelaySession] = set()
        self.connection: Connection | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def attach(self, connection: Connection) -> bool:
        """Follow ``connection`` (the instance's current one); True if it is a new one."""
        if connection is self.connection:
            return False
        self.detach()
        self.connection = connection
        self._unsubscribe = connection.subscribe(self.publish)
        return True

    def detach(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._unsubscribe = None
        self.connection = None

    def subscribers(self, uri: str) -> int:
        return sum(1 for s in self.sessions if uri in s.resources)

    def subscribed_uris(self) -> set[str]:
        return {uri for s in self.sessions for uri in s.resources}

    def publish(self, message: JsonObject) -> None:
        """Deliver one notification of the server (called by its connection's reader)."""
        if message.get("method") == RESOURCE_UPDATED:
            params = message.get("params")
            uri = params.get("uri") if isinstance(params, dict) else None
            for session in self.sessions:
                if uri in session.resources:
                    session.deliver(message)
            return
        for session in self.sessions:
            session.deliver(message)


class SessionStore:
    def __init__(
        self,
        *,
        idle_seconds: float = 1800.0,
        max_sessions: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idle_seconds = idle_seconds
        self.max_sessions = max_sessions
        self.clock = clock
        self._sessions: dict[str, RelaySession] = {}
        self._hubs: dict[str, ServerHub] = {}
        self._swept = clock()
        # Told the URIs an ended session was the last to follow, to unsubscribe upstream.
        self.on_release: Callable[[Connection | None, set[str]], None] | None = None

    def __len__(self) -> int:
        return len(self._sessions)

    def hub(self, server: str) -> ServerHub:
        hub = self._hubs.get(server)
        if hub is None:
            hub = self._hubs[server] = ServerHub(server)
        return hub

    def current_hub(self, server: str) -> ServerHub | None:
        """``server``'s hub while it has sessions; None (and none made) otherwise."""
        return self._hubs.get(server)

    def create(
        self,
        server: str,
        caller: Caller,
        token_digest: str,
        protocol_version: str,
        capabilities: JsonObject | None = None,
    ) -> RelaySession:
        """A new session of ``server`` for ``caller``.

        Raises:
            Unavailable: ``max_sessions`` sessions are open.
        """
        now = self.clock()
        if now - self._swept > min(self.idle_seconds, 60.0):
            self.sweep()
        if len(self._sessions) >= self.max_sessions:
            self.sweep()
            if len(self._sessions) >= self.max_sessions:
                raise Unavailable(
                    f"the relay has {len(self._sessions)} open sessions, its maximum; "
                    "close unused MCP clients or retry later",
                    retry_after=60,
                )
        session = RelaySession(
            id=secrets.token_hex(16),
            server=server,
            protocol_version=protocol_version,
            caller=caller,
            token_digest=token_digest,
            authenticated_at=now,
            last_seen=now,
            capabilities=capabilities or {},
        )
        self._sessions[session.id] = session
        self.hub(server).sessions.add(session)
        return session

    def get(self, session_id: str) -> RelaySession | None:
        return self._sessions.get(session_id)

    def end(self, session: RelaySession) -> None:
        """Forget ``session``: its requests in flight are cancelled, its stream ends."""
        if session.closed:
            return
        session.closed = True
        self._sessions.pop(session.id, None)
        hub = self._hubs.get(session.server)
        if hub is not None:
            hub.sessions.discard(session)
            orphans = {uri for uri in session.resources if hub.subscribers(uri) == 0}
            if orphans and self.on_release is not None:
                self.on_release(hub.connection, orphans)
            if not hub.sessions:
                hub.detach()
                del self._hubs[session.server]
        for future in list(session.requests.values()):
            future.cancel()
        session.asks.cancel_all()
        session.stop_listening()

    def sweep(self) -> int:
        """End the sessions idle for ``idle_seconds``; how many."""
        now = self._swept = self.clock()
        expired = [
            s
            for s in self._sessions.values()
            if not s.busy and now - s.last_seen >= self.idle_seconds
        ]
        for session in expired:
            self.end(session)
        return len(expired)

    def close(self) -> None:
        for session in list(self._sessions.values()):
            self.end(session)
